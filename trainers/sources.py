"""Reading a parallel-data source into raw English→X pairs, in every supported format.

The embedded demo corpus and JSONL, TSV/CSV (each optionally .xz or .gz compressed), parquet, a `datasets`
save_to_disk directory, a Hugging Face dataset in the local cache (`hf:org/name`, trainers/hub.py) and
Moses-style line files (`train.en` + `train.<lang>`). A table may be wide (a
column per language) or long (`source`, `target`, `language` columns). Nothing here normalises or filters:
`trainers.data.build_language_data` does that in the same way for every source.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import gzip
import io
import json
import lzma
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from core.config import DataConfig
from core.errors import UserError
from trainers.hub import hub_dataset_frame, pooled_frame
from trainers.languages import LANGUAGE_NAMES

# Column names of the "long" table form: one row per pair, {"source", "target", "language"}.
LANGUAGE_COLUMN = "language"
LONG_SOURCE_COLUMN = "source"
LONG_TARGET_COLUMN = "target"
# Hugging Face translation datasets keep a pair in one dict column: {"translation": {"en": .., "de": ..}}.
TRANSLATION_COLUMN = "translation"

_SUFFIX_FORMATS = {".jsonl": "jsonl", ".tsv": "tsv", ".csv": "csv", ".parquet": "parquet"}
_COMPRESSED: dict[str, Callable[..., Any]] = {".xz": lzma.open, ".gz": gzip.open}
SOURCE_HELP = (
    "Point data.source at a .jsonl/.tsv/.csv/.parquet file (.jsonl/.tsv/.csv may be .xz or .gz "
    "compressed), a directory of Moses-style line files (train.en + train.<lang>), a `datasets` "
    "save_to_disk directory, 'hf:<org>/<name>' for a Hugging Face dataset in the local cache, or use 'demo' "
    "for the embedded corpus."
)


@dataclass(frozen=True)
class Pair:
    source: str  # English
    target: str  # language X


def _strip_compression(name: str) -> str:
    for suffix in _COMPRESSED:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_text(path: Path, what: str) -> str:
    """The whole (decompressed) file as text: UTF-8, with or without a byte-order mark. A file in another
    encoding is refused naming the line, never read as garbage: UTF-16 without a BOM decodes as "valid"
    UTF-8 with a NUL after every ASCII letter, so a NUL byte is refused too (text never holds one)."""
    opener = _COMPRESSED.get(path.suffix.lower(), open)
    fix = "Save it as UTF-8 text (in an editor, or with `iconv -f <its encoding> -t utf-8`)."
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, lzma.LZMAError, gzip.BadGzipFile, zlib.error) as err:
        raise UserError(f"{path} cannot be read as compressed {what}: {err}.", "Check the file.") from None
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UserError(f"{path} is UTF-16 text (it starts with a UTF-16 byte-order mark), not UTF-8.", fix)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise UserError(
            f"{path} line {line} is not UTF-8: byte 0x{raw[err.start]:02x} cannot be decoded ({err.reason}).", fix
        ) from None
    if (nul := text.find("\x00")) >= 0:
        line = text.count("\n", 0, nul) + 1
        raise UserError(f"{path} line {line} holds a NUL byte: the file is binary or UTF-16, not UTF-8 text.", fix)
    return text


def text_lines(text: str) -> list[str]:
    """Lines ended as universal-newline mode ends them (\n, \r\n, \r); not `str.splitlines`, which also
    splits at U+2028 and the like, characters a JSON string may hold."""
    return re.split(r"\r\n|\r|\n", text)


def _is_hf_dataset_dir(path: Path) -> bool:
    return any((path / marker).is_file() for marker in ("dataset_info.json", "dataset_dict.json", "state.json"))


def resolve_format(path: Path, fmt: str) -> str:
    """The concrete format of a source: `fmt` itself, or for 'auto' decided by suffix/directory contents."""
    if not path.exists():
        raise UserError(f"data.source: {path} does not exist.", SOURCE_HELP)
    if not path.is_dir() and not path.is_file():  # reading a pipe or a device could block or never end
        raise UserError(f"data.source: {path} is not a regular file or a directory.", SOURCE_HELP)
    if fmt == "auto":
        if path.is_dir():
            if _is_hf_dataset_dir(path):
                return "hf"
            if any(path.glob("*.en")):
                return "moses"
            raise UserError(
                f"data.source: directory {path} is neither a `datasets` save_to_disk directory (no "
                "dataset_info.json / dataset_dict.json) nor a Moses directory (no *.en files).",
                SOURCE_HELP,
            )
        suffix = Path(_strip_compression(path.name.lower())).suffix
        if suffix not in _SUFFIX_FORMATS:
            raise UserError(
                f"data.source: cannot tell the format of {path} from its suffix '{suffix}'.",
                f"Rename it or set data.format to one of {sorted(_SUFFIX_FORMATS.values())}.",
            )
        return _SUFFIX_FORMATS[suffix]
    wants_dir = fmt in ("moses", "hf")
    if wants_dir != path.is_dir():
        kind = "a directory" if wants_dir else "a file"
        raise UserError(
            f"data.format is '{fmt}', which reads {kind}, but data.source {path} is not one.",
            "Set data.format to 'auto' or to the format of the source.",
        )
    return fmt


def fingerprint(path: Path) -> tuple:
    """Changes whenever the source's bytes may have: keys the in-process caches."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)


@dataclass(frozen=True)
class _Table:
    frame: pd.DataFrame  # index = row labels used in error messages
    origin: str  # the file or directory, for messages
    row_label: str  # "line" (text formats) or "row" (parquet, datasets)
    header: bool = False  # the column names come from the file's first line (TSV, CSV)
    labels: tuple[str | None, ...] = ()  # each row's `language` value, None where it has none (read_table)


class _DuplicateKey(ValueError):
    pass


def _object_without_repeats(items: list[tuple[str, Any]]) -> dict:
    # json.loads keeps the last of a repeated key without a word: {"de": "a", "de": "b"} would lose "a".
    record = dict(items)
    if len(record) < len(items):
        seen: set[str] = set()
        raise _DuplicateKey(next(k for k, _ in items if k in seen or seen.add(k)))
    return record


# A \ud800-\udfff escape not paired by json into one character leaves a lone surrogate: not text.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _read_jsonl(path: Path) -> _Table:
    records, lines = [], []
    example = 'Each line must be one JSON object, e.g. {"en": "Hello.", "de": "Hallo."} or ' \
        '{"source": "Hello.", "target": "Hallo.", "language": "de"}.'
    for number, line in enumerate(text_lines(read_text(path, "JSON lines")), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=_object_without_repeats)
        except json.JSONDecodeError as err:
            raise UserError(
                f"{path} line {number} is not valid JSON ({err.msg} at column {err.colno}).", example
            ) from None
        except _DuplicateKey as err:
            raise UserError(f"{path} line {number} gives the key '{err}' twice.", "Keep one of them.") from None
        if not isinstance(record, dict):
            raise UserError(
                f"{path} line {number} is a JSON {type(record).__name__}, not an object.",
                'Each line must be one JSON object, e.g. {"en": "Hello.", "de": "Hallo."}.',
            )
        if _SURROGATE_ESCAPE.search(line):
            try:
                json.dumps(record, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise UserError(
                    f"{path} line {number} holds a lone UTF-16 surrogate escape (\\ud800 to \\udfff without "
                    "its partner), which is not text.",
                    "Fix the escape: a character outside the Basic Multilingual Plane is a pair such as "
                    "\\ud83d\\ude00, or write the character itself.",
                ) from None
        records.append(record)
        lines.append(number)
    return _Table(pd.DataFrame.from_records(records, index=lines), str(path), "line")


def _read_delimited(path: Path, fmt: str) -> _Table:
    # TSV files are rarely quoted and sentences contain quote marks, so tabs alone separate fields;
    # CSV follows RFC 4180 quoting. Parsed with `csv` rather than pandas, whose reader silently turns
    # a first column into the index when the first row has one field too many.
    dialect: dict[str, Any] = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {}
    rows, lines = [], []
    # A sentence may be long: a side beyond data.max_chars is dropped and counted, not the file refused.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    reader = csv.reader(io.StringIO(read_text(path, fmt.upper()), newline=""), **dialect)
    try:
        header = next(reader, None)
        if not header:
            raise UserError(f"{path} is empty; it needs a header row naming its columns.", "Add the header row.")
        if repeated := sorted({c for c in header if header.count(c) > 1}):
            raise UserError(f"{path}: the header names column(s) {repeated} more than once.",
                            "Give every column its own name.")
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise UserError(
                    f"{path} line {reader.line_num} has {len(row)} fields but the header has {len(header)}.",
                    "Give every row one value per header column"
                    + (" (tabs separate values; a value cannot contain one)." if fmt == "tsv" else
                       " (quote values that contain commas)."),
                )
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as err:
        raise UserError(f"{path} line {reader.line_num} cannot be read as {fmt.upper()}: {err}.",
                        "Fix that line's quoting.") from None
    return _Table(pd.DataFrame(rows, columns=header, index=lines), str(path), "line", header=True)


def _read_parquet(path: Path) -> _Table:
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises many types; all mean "not a readable parquet file"
        raise UserError(f"{path} cannot be read as parquet: {err}.", "Check that it is a parquet file.") from None
    frame.index = range(1, len(frame) + 1)
    return _Table(frame, str(path), "row")


def _read_hf(path: Path) -> _Table:
    import datasets  # heavy import, only for this format

    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as err:
        raise UserError(
            f"{path} cannot be read with datasets.load_from_disk: {err}.",
            "Point data.source at a directory written by Dataset.save_to_disk or DatasetDict.save_to_disk.",
        ) from None
    return _Table(pooled_frame(loaded), str(path), "row")


_TABLE_READERS: dict[str, Callable[[Path], _Table]] = {
    "jsonl": _read_jsonl,
    "tsv": lambda p: _read_delimited(p, "tsv"),
    "csv": lambda p: _read_delimited(p, "csv"),
    "parquet": _read_parquet,
    "hf": _read_hf,
}


def _expand_translation(table: _Table) -> pd.DataFrame:
    """Turn a `translation` object column into one column per language. A file may mix the forms row by
    row: a row's own value of a language wins, a row without one takes its translation object's."""
    frame = table.frame
    if TRANSLATION_COLUMN not in frame.columns:
        return frame
    values = []
    for row, value in zip(frame.index, frame[TRANSLATION_COLUMN]):
        if isinstance(value, list) and all(isinstance(item, tuple) and len(item) == 2 for item in value):
            value = dict(value)  # an Arrow map column reads as (key, value) tuples
        if not (is_missing(value) or isinstance(value, dict)):
            raise _bad_cell(table, row, TRANSLATION_COLUMN, value, "an object",
                            f"A '{TRANSLATION_COLUMN}' value maps language codes to text, "
                            '{"en": "Hello.", "de": "Hallo."}.')
        values.append(value if isinstance(value, dict) else {})
    expanded = pd.DataFrame.from_records(values, index=frame.index)
    merged = frame.drop(columns=TRANSLATION_COLUMN)
    for column in expanded.columns:
        if column in merged.columns:
            own = merged[column].astype(object)
            merged[column] = own.where([not is_missing(v) for v in own], expanded[column].astype(object))
        else:
            merged[column] = expanded[column]
    return merged


@lru_cache(maxsize=8)
def read_table(path: Path, fmt: str, fingerprint: tuple) -> _Table:
    # `fingerprint` only keys the cache: an edited file is read again. Callers must not mutate the frame.
    return _finish(_TABLE_READERS[fmt](path))


def _finish(table: _Table) -> _Table:
    table = dataclasses.replace(table, frame=_expand_translation(table))
    return dataclasses.replace(table, labels=_row_languages(table))


@lru_cache(maxsize=4)
def hub_table(source: str, config: str | None, split: str | None) -> _Table:
    """A `hf:org/name` dataset from the local `datasets` cache as a table (trainers.hub). Keyed by name,
    config and split only: a cached Hub dataset changes only when it is downloaded again."""
    return _finish(_Table(hub_dataset_frame(source, config, split), source, "row"))


def hub_pairs(data_cfg: DataConfig, language: str) -> list[Pair]:
    """Raw pairs of one language from a `hf:org/name` source."""
    table = hub_table(data_cfg.source, data_cfg.dataset_config, data_cfg.split)
    return _table_pairs(table, language, data_cfg.source_column, data_cfg.target_column)


def _bad_cell(table: _Table, row, column: str, value: Any, expected: str, fix: str) -> UserError:
    return UserError(f"{table.origin} {table.row_label} {row}: '{column}' is {type(value).__name__} {value!r}, "
                     f"not {expected}.", fix)


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _first_present(columns: list[str], *names: str | None) -> str:
    """The first of `names` that is a column, else the first given name (for the error message)."""
    given = [n for n in names if n]
    return next((n for n in given if n in columns), given[0])


def _unknown_language(
    origin: str, language: str, present: Iterable[str], what: str, header: bool = False
) -> UserError:
    return UserError(
        f"Language '{language}' is not in {origin}; it has {what}: {', '.join(sorted(present)) or 'none'}.",
        "Fix `languages` in the config (codes must be spelled as in the data), or add pairs for that language "
        "to the source." + (" The first line of the file is its header, naming the columns (e.g. en, de): "
                           "add one if the file starts with a pair." if header else ""),
    )


def _row_languages(table: _Table) -> tuple[str | None, ...]:
    """Each row's `language` value, None where it has none (an empty cell included); a value that is
    not text is refused rather than its row dropped."""
    if LANGUAGE_COLUMN not in table.frame.columns:
        return (None,) * len(table.frame)
    labels = []
    for row, value in zip(table.frame.index, table.frame[LANGUAGE_COLUMN].tolist()):
        if not (is_missing(value) or isinstance(value, str)):
            raise _bad_cell(table, row, LANGUAGE_COLUMN, value, "a language code",
                            f"Every '{LANGUAGE_COLUMN}' value must be a code such as \"de\", or empty for a row in "
                            "the wide form (a column per language).")
        labels.append(value if isinstance(value, str) and value.strip() else None)
    return tuple(labels)


def _table_pairs(table: _Table, language: str, source_column: str, target_column: str | None) -> list[Pair]:
    """Pairs of one language from a table in wide form (a column per language, e.g. en, de) or long
    form (source, target, language columns; the `language` column selects rows). A file may mix the
    forms row by row: a row with a `language` value is in the long form, a row without one in the wide."""
    frame, columns = table.frame, [str(c) for c in table.frame.columns]
    labels = table.labels
    long_form = LANGUAGE_COLUMN in columns
    long_targets = [target_column] if target_column else [language, LONG_TARGET_COLUMN]
    wide_target = target_column or language
    # With target_column set, a table with a `language` column is long throughout: that column is its target.
    wide_rows = wide_target in columns and (not long_form or (target_column is None and None in labels))
    if language not in labels and not wide_rows:
        if long_form:
            present = {label for label in labels if label is not None}
            raise _unknown_language(table.origin, language, present, f"these values in column '{LANGUAGE_COLUMN}'")
        if target_column is None:
            others = [c for c in columns if c not in (source_column, LONG_SOURCE_COLUMN)]
            raise _unknown_language(table.origin, language, others, "these columns", table.header)
    source = _first_present(columns, source_column, LONG_SOURCE_COLUMN)
    target = _first_present(columns, *(long_targets if language in labels else [wide_target]))
    for role, column, key in (("English", source, "source_column"), (language, target, "target_column")):
        if column not in columns:
            raise UserError(
                f"{table.origin} has no {role} column '{column}'. Its columns are: {', '.join(columns)}.",
                f"Set data.{key} to one of them.",
            )

    wanted = {source_column, LONG_SOURCE_COLUMN, *long_targets, wide_target}
    values = {c: frame[c].tolist() for c in wanted if c in columns}
    missing = [None] * len(frame)

    def present_values(names: list[str], i: int) -> list[tuple[str, Any]]:
        return [(n, values[n][i]) for n in names if n in values and not is_missing(values[n][i])]

    pairs = []
    for i, (row, label) in enumerate(zip(frame.index, labels)):
        if label is None:
            if long_form and not is_missing(values.get(long_targets[-1], missing)[i]):
                raise UserError(
                    f"{table.origin} {table.row_label} {row} has a '{long_targets[-1]}' value but no "
                    f"'{LANGUAGE_COLUMN}': its pair belongs to no language.",
                    f"Give the row its '{LANGUAGE_COLUMN}' value.",
                )
            names = [wide_target]
        elif label == language:
            names = long_targets
        else:
            continue  # a pair of another language
        found = present_values(names, i)
        if not found and label is None:
            continue  # a wide row without this language (wide JSONL with mixed keys)
        tgt_column, tgt = found[0] if found else (names[-1], "")  # a long row without its target: empty, counted
        src_column, src = (present_values([source_column, LONG_SOURCE_COLUMN], i) or [(source, "")])[0]
        for column, value in ((src_column, src), (tgt_column, tgt)):
            if not isinstance(value, str):
                raise UserError(
                    f"{table.origin} {table.row_label} {row}: '{column}' is {type(value).__name__} "
                    f"{value!r}, not text.",
                    "Every source and target value must be a string.",
                )
        pairs.append(Pair(src, tgt))
    if not pairs:
        raise UserError(f"{table.origin} has no {language} pairs in column '{target}'.", "Add pairs for it.")
    return pairs


def moses_files(directory: Path) -> dict[str, list[tuple[Path, Path]]]:
    """language -> [(english file, target file)] for every `<stem>.en` with a `<stem>.<lang>` beside it."""
    files = {p.name: p for p in sorted(directory.iterdir()) if p.is_file()}
    by_language: dict[str, list[tuple[Path, Path]]] = {}
    for name, path in files.items():
        stem, dot, suffix = name.rpartition(".")
        if dot and stem and suffix != "en" and f"{stem}.en" in files:
            by_language.setdefault(suffix, []).append((files[f"{stem}.en"], path))
    return by_language


def read_lines(path: Path) -> list[str]:
    # Split on "\n" only: str.splitlines would also split on characters such as U+2028 inside a
    # sentence and silently misalign the two files.
    lines = [line.removesuffix("\r") for line in read_text(path, "text").split("\n")]
    return lines[:-1] if lines and lines[-1] == "" else lines


def _moses_pairs(directory: Path, language: str) -> list[Pair]:
    by_language = moses_files(directory)
    if language not in by_language:
        raise _unknown_language(
            str(directory), language, by_language, "line files (<name>.en + <name>.<lang>) for"
        )
    pairs = []
    for en_file, target_file in by_language[language]:
        sources, targets = read_lines(en_file), read_lines(target_file)
        if len(sources) != len(targets):
            raise UserError(
                f"Moses files do not align: {en_file} has {len(sources)} lines but {target_file} has "
                f"{len(targets)}.",
                "Line i of the .en file must be the translation of line i of the other file; fix the files.",
            )
        pairs.extend(Pair(s, t) for s, t in zip(sources, targets))
    return pairs


def read_pairs(path: str | Path, fmt: str, language: str, data_cfg: DataConfig) -> list[Pair]:
    """Raw (not yet normalised or filtered) pairs of one language from one source."""
    path = Path(path)
    fmt = resolve_format(path, fmt)
    if fmt == "moses":
        return _moses_pairs(path, language)
    table = read_table(path, fmt, fingerprint(path))
    return _table_pairs(table, language, data_cfg.source_column, data_cfg.target_column)


def table_languages(table: _Table, source_column: str, names: Mapping[str, str]) -> list[str]:
    """The languages of a table: its `language` values and, for rows without one (wide form), its text
    columns named by a known code."""
    frame, labels = table.frame, table.labels
    found = {label for label in labels if label is not None}
    if found and None not in labels:
        return sorted(found)
    known = {c.lower() for c in LANGUAGE_NAMES} | {c.lower() for c in names}
    return sorted(found | {
        str(c)
        for c in frame.columns
        if c not in (source_column, "en", LANGUAGE_COLUMN)
        and str(c).lower().replace("_", "-") in known
        and all(isinstance(v, str) or is_missing(v) for v in frame[c])
    })
