"""Reading a parallel-data source into raw English→X pairs, in every supported format.

The embedded demo corpus and JSONL, TSV/CSV (each optionally .xz or .gz compressed), parquet, a `datasets`
save_to_disk directory and Moses-style line files (`train.en` + `train.<lang>`). A table may be wide (a
column per language) or long (`source`, `target`, `language` columns). Nothing here normalises or filters:
`trainers.data.build_language_data` does that in the same way for every source.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import json
import lzma
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import pandas as pd

from core.config import DataConfig
from core.errors import UserError
from trainers.languages import LANGUAGE_NAMES

# Column names of the "long" table form: one row per pair, {"source", "target", "language"}.
LANGUAGE_COLUMN = "language"
LONG_SOURCE_COLUMN = "source"
LONG_TARGET_COLUMN = "target"
# Hugging Face translation datasets keep a pair in one dict column: {"translation": {"en": .., "de": ..}}.
TRANSLATION_COLUMN = "translation"

_SUFFIX_FORMATS = {".jsonl": "jsonl", ".tsv": "tsv", ".csv": "csv", ".parquet": "parquet"}
_COMPRESSED: dict[str, Callable[..., IO[str]]] = {".xz": lzma.open, ".gz": gzip.open}
SOURCE_HELP = (
    "Point data.source at a .jsonl/.tsv/.csv/.parquet file (.jsonl/.tsv/.csv may be .xz or .gz "
    "compressed), a directory of Moses-style line files (train.en + train.<lang>), a `datasets` "
    "save_to_disk directory, or use 'demo' for the embedded corpus."
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


def _open_text(path: Path) -> IO[str]:
    opener = _COMPRESSED.get(path.suffix.lower(), open)
    return opener(path, "rt", encoding="utf-8", newline="")


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


def _read_jsonl(path: Path) -> _Table:
    records, lines = [], []
    try:
        with _open_text(path) as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise UserError(
                        f"{path} line {number} is not valid JSON ({err.msg} at column {err.colno}).",
                        'Each line must be one JSON object, e.g. {"en": "Hello.", "de": "Hallo."} or '
                        '{"source": "Hello.", "target": "Hallo.", "language": "de"}.',
                    ) from None
                if not isinstance(record, dict):
                    raise UserError(
                        f"{path} line {number} is a JSON {type(record).__name__}, not an object.",
                        'Each line must be one JSON object, e.g. {"en": "Hello.", "de": "Hallo."}.',
                    )
                records.append(record)
                lines.append(number)
    except (UnicodeDecodeError, EOFError, lzma.LZMAError, gzip.BadGzipFile) as err:
        raise UserError(f"{path} cannot be read as UTF-8 JSON lines: {err}.", "Save it as UTF-8 text.") from None
    return _Table(pd.DataFrame.from_records(records, index=lines), str(path), "line")


def _read_delimited(path: Path, fmt: str) -> _Table:
    # TSV files are rarely quoted and sentences contain quote marks, so tabs alone separate fields;
    # CSV follows RFC 4180 quoting. Parsed with `csv` rather than pandas, whose reader silently turns
    # a first column into the index when the first row has one field too many.
    dialect: dict[str, Any] = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {}
    rows, lines = [], []
    try:
        with _open_text(path) as f:
            reader = csv.reader(f, **dialect)
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
    except (csv.Error, UnicodeDecodeError, EOFError, lzma.LZMAError, gzip.BadGzipFile) as err:
        raise UserError(f"{path} cannot be read as {fmt.upper()}: {err}.", "Save it as UTF-8 text.") from None
    return _Table(pd.DataFrame(rows, columns=header, index=lines), str(path), "line")


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
        if isinstance(loaded, datasets.DatasetDict):
            # We make our own test split, so a DatasetDict's splits are pooled (in name order).
            loaded = datasets.concatenate_datasets([loaded[name] for name in sorted(loaded)])
    except (FileNotFoundError, ValueError) as err:
        raise UserError(
            f"{path} cannot be read with datasets.load_from_disk: {err}.",
            "Point data.source at a directory written by Dataset.save_to_disk or DatasetDict.save_to_disk.",
        ) from None
    frame = loaded.to_pandas()
    frame.index = range(1, len(frame) + 1)
    return _Table(frame, str(path), "row")


_TABLE_READERS: dict[str, Callable[[Path], _Table]] = {
    "jsonl": _read_jsonl,
    "tsv": lambda p: _read_delimited(p, "tsv"),
    "csv": lambda p: _read_delimited(p, "csv"),
    "parquet": _read_parquet,
    "hf": _read_hf,
}


def _expand_translation(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn a `translation` dict column into one column per language (existing columns win)."""
    if TRANSLATION_COLUMN not in frame.columns:
        return frame
    values = [v if isinstance(v, dict) else {} for v in frame[TRANSLATION_COLUMN]]
    expanded = pd.DataFrame.from_records(values, index=frame.index)
    expanded = expanded.drop(columns=[c for c in expanded.columns if c in frame.columns])
    return pd.concat([frame.drop(columns=TRANSLATION_COLUMN), expanded], axis=1)


@lru_cache(maxsize=8)
def read_table(path: Path, fmt: str, fingerprint: tuple) -> _Table:
    # `fingerprint` only keys the cache: an edited file is read again. Callers must not mutate the frame.
    table = _TABLE_READERS[fmt](path)
    return dataclasses.replace(table, frame=_expand_translation(table.frame))


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _first_present(columns: list[str], *names: str | None) -> str:
    """The first of `names` that is a column, else the first given name (for the error message)."""
    given = [n for n in names if n]
    return next((n for n in given if n in columns), given[0])


def _unknown_language(origin: str, language: str, present: Iterable[str], what: str) -> UserError:
    return UserError(
        f"Language '{language}' is not in {origin}; it has {what}: {', '.join(sorted(present)) or 'none'}.",
        "Fix `languages` in the config, or add pairs for that language to the source.",
    )


def _table_pairs(table: _Table, language: str, source_column: str, target_column: str | None) -> list[Pair]:
    """Pairs of one language from a table in wide form (a column per language, e.g. en, de) or long
    form (source, target, language columns; the `language` column selects rows)."""
    frame, columns = table.frame, [str(c) for c in table.frame.columns]
    if LANGUAGE_COLUMN in columns:
        present = {v for v in frame[LANGUAGE_COLUMN] if isinstance(v, str)}
        if language not in present:
            raise _unknown_language(table.origin, language, present, f"these values in column '{LANGUAGE_COLUMN}'")
        frame = frame[frame[LANGUAGE_COLUMN] == language]
        target = target_column or _first_present(columns, language, LONG_TARGET_COLUMN)
    else:
        target = target_column or language
        if target not in columns and target_column is None:
            others = [c for c in columns if c not in (source_column, LONG_SOURCE_COLUMN)]
            raise _unknown_language(table.origin, language, others, "these columns")
    source = _first_present(columns, source_column, LONG_SOURCE_COLUMN)
    for role, column, key in (("English", source, "source_column"), (language, target, "target_column")):
        if column not in columns:
            raise UserError(
                f"{table.origin} has no {role} column '{column}'. Its columns are: {', '.join(columns)}.",
                f"Set data.{key} to one of them.",
            )

    pairs = []
    for row, src, tgt in zip(frame.index, frame[source], frame[target]):
        if is_missing(tgt):
            continue  # this row holds a pair of another language (wide JSONL with mixed keys)
        src = "" if is_missing(src) else src
        for column, value in ((source, src), (target, tgt)):
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


def _read_lines(path: Path) -> list[str]:
    # Split on "\n" only: str.splitlines would also split on characters such as U+2028 inside a
    # sentence and silently misalign the two files.
    try:
        with _open_text(path) as f:
            text = f.read()
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text: {err}.", "Save it as UTF-8.") from None
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return lines[:-1] if lines and lines[-1] == "" else lines


def _moses_pairs(directory: Path, language: str) -> list[Pair]:
    by_language = moses_files(directory)
    if language not in by_language:
        raise _unknown_language(
            str(directory), language, by_language, "line files (<name>.en + <name>.<lang>) for"
        )
    pairs = []
    for en_file, target_file in by_language[language]:
        sources, targets = _read_lines(en_file), _read_lines(target_file)
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
    frame = table.frame
    if LANGUAGE_COLUMN in frame.columns:
        return sorted({v for v in frame[LANGUAGE_COLUMN] if isinstance(v, str)})
    known = {c.lower() for c in LANGUAGE_NAMES} | {c.lower() for c in names}
    return sorted(
        str(c)
        for c in frame.columns
        if c not in (source_column, "en")
        and str(c).lower().replace("_", "-") in known
        and all(isinstance(v, str) or is_missing(v) for v in frame[c])
    )
