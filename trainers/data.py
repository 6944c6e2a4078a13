"""Parallel English→X data: loading, normalisation, the fixed test split and nested training prefixes.

Every source (the embedded demo corpus, JSONL, TSV/CSV, parquet, a `datasets` save_to_disk directory,
Moses-style line files) is read into raw `Pair`s for one language by `read_pairs`; `build_language_data`
then turns them into a `LanguageData` in the same way for all of them:

1. normalise both sides (Unicode NFC, whitespace runs collapsed, stripped);
2. drop empty, over-long (`data.max_chars`) and duplicate pairs, counting each reason;
3. order the unique pairs by a keyed hash of their text and `data.split_seed`, so the order depends
   only on the set of pairs and the seed (not on file order, the Python version or hash
   randomisation), and appending data to a file does not reshuffle what was there;
4. the first `data.test_size` pairs are the test split; the training pool is the rest minus every pair
   whose English or target side equals (case-insensitively) a side of a test pair, so no test
   sentence is ever trained on, even through a near-duplicate with different spacing or casing.

Training runs take prefixes of the pool, so the 500-pair set is the first 500 pairs of the 1000-pair set.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import json
import lzma
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import pandas as pd

from core.config import DataConfig
from core.errors import UserError
from trainers.languages import LANGUAGE_NAMES, language_name

__all__ = [
    "DEMO_SOURCE",
    "DROP_REASONS",
    "LanguageData",
    "Pair",
    "build_language_data",
    "check_capacity",
    "corpus_languages",
    "corpus_stats",
    "data_fingerprint",
    "demo_corpus_path",
    "dropped_column",
    "language_name",
    "load_language",
    "load_languages",
    "normalize_text",
    "read_pairs",
    "resolve_format",
]

DEMO_SOURCE = "demo"
# Shipped as package data beside this module (pyproject: trainers = ["demo_data/*"]).
DEMO_CORPUS = Path(__file__).resolve().parent / "demo_data" / "demo_corpus.jsonl.xz"

# Column names of the "long" table form: one row per pair, {"source", "target", "language"}.
LANGUAGE_COLUMN = "language"
LONG_SOURCE_COLUMN = "source"
LONG_TARGET_COLUMN = "target"
# Hugging Face translation datasets keep a pair in one dict column: {"translation": {"en": .., "de": ..}}.
TRANSLATION_COLUMN = "translation"

DROP_EMPTY = "empty"
DROP_TOO_LONG = "too long"
DROP_DUPLICATE = "duplicate"
DROP_OVERLAP = "overlaps test"
DROP_REASONS = (DROP_EMPTY, DROP_TOO_LONG, DROP_DUPLICATE, DROP_OVERLAP)

_SUFFIX_FORMATS = {".jsonl": "jsonl", ".tsv": "tsv", ".csv": "csv", ".parquet": "parquet"}
_COMPRESSED: dict[str, Callable[..., IO[str]]] = {".xz": lzma.open, ".gz": gzip.open}
_SOURCE_HELP = (
    "Point data.source at a .jsonl/.tsv/.csv/.parquet file (.jsonl/.tsv/.csv may be .xz or .gz "
    "compressed), a directory of Moses-style line files (train.en + train.<lang>), a `datasets` "
    "save_to_disk directory, or use 'demo' for the embedded corpus."
)


@dataclass(frozen=True)
class Pair:
    source: str  # English
    target: str  # language X


@dataclass
class LanguageData:
    language: str  # code, e.g. "de"
    name: str  # display name, e.g. "German" (used in prompts)
    train: list[Pair]  # the training pool in one fixed seeded order; runs take prefixes
    test: list[Pair]  # the fixed test split; no side of it appears in `train`
    dropped: dict[str, int]  # reason -> count, every reason in DROP_REASONS present

    def prefix(self, n: int) -> list[Pair]:
        """The first `n` training pairs (a new list): smaller runs see a subset of larger ones."""
        if n < 0:
            raise ValueError(f"prefix size must be non-negative, got {n}")
        if n > len(self.train):
            raise UserError(
                f"Language {self.language} ({self.name}): {n} training pairs requested but the pool has "
                f"only {len(self.train)} (after setting aside {len(self.test)} test pairs and dropping "
                f"{sum(self.dropped.values())} unusable ones).",
                "Request fewer pairs (sweep.sizes, budget) or add data for this language.",
            )
        return self.train[:n]


# --------------------------------------------------------------------------------------------------
# Normalisation and the split (pure functions)


def normalize_text(text: str) -> str:
    """Unicode NFC with every whitespace run (including newlines and non-breaking spaces) one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _overlap_key(text: str) -> str:
    # Stricter than equality of normalised text: "Open File" and "Open file" are the same sentence
    # for leakage purposes.
    return text.casefold()


def _order_key(pair: Pair, seed: int) -> bytes:
    # A keyed cryptographic hash is stable across processes, platforms and Python versions (unlike
    # hash()), and ranks each pair independently of the others, so the order is a function of the
    # set of pairs and the seed only.
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{seed}\x00{pair.source}\x00{pair.target}".encode("utf-8"))
    return h.digest()


def build_language_data(
    language: str,
    name: str,
    raw: Iterable[Pair],
    *,
    test_size: int,
    split_seed: int,
    max_chars: int,
) -> LanguageData:
    """Normalise, filter and deduplicate raw pairs, then carve the test split and the training pool."""
    dropped = Counter({reason: 0 for reason in DROP_REASONS})
    unique: dict[Pair, None] = {}
    for pair in raw:
        source, target = normalize_text(pair.source), normalize_text(pair.target)
        if not source or not target:
            dropped[DROP_EMPTY] += 1
        elif len(source) > max_chars or len(target) > max_chars:
            dropped[DROP_TOO_LONG] += 1
        elif (clean := Pair(source, target)) in unique:
            dropped[DROP_DUPLICATE] += 1
        else:
            unique[clean] = None
    if len(unique) <= test_size:
        raise UserError(
            f"Language {language} ({name}) has only {len(unique)} usable pairs, not more than the "
            f"{test_size} test pairs (data.test_size), so nothing would be left to train on.",
            "Lower data.test_size or add data for this language.",
        )
    ordered = sorted(unique, key=lambda p: _order_key(p, split_seed))
    test = ordered[:test_size]
    test_sources = {_overlap_key(p.source) for p in test}
    test_targets = {_overlap_key(p.target) for p in test}
    train = [
        p
        for p in ordered[test_size:]
        if _overlap_key(p.source) not in test_sources and _overlap_key(p.target) not in test_targets
    ]
    dropped[DROP_OVERLAP] = len(ordered) - test_size - len(train)
    return LanguageData(language=language, name=name, train=train, test=test, dropped=dict(dropped))


# --------------------------------------------------------------------------------------------------
# Sources


def demo_corpus_path() -> Path:
    """The embedded corpus file (JSONL lines {"source", "target", "language"}, xz-compressed)."""
    if not DEMO_CORPUS.is_file():
        raise UserError(
            f"The embedded demo corpus (trainers/demo_data/{DEMO_CORPUS.name}) is missing from this installation.",
            "Reinstall the package, or rebuild the file with scripts/build_demo_corpus.py.",
        )
    return DEMO_CORPUS


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
        raise UserError(f"data.source: {path} does not exist.", _SOURCE_HELP)
    if not path.is_dir() and not path.is_file():  # reading a pipe or a device could block or never end
        raise UserError(f"data.source: {path} is not a regular file or a directory.", _SOURCE_HELP)
    if fmt == "auto":
        if path.is_dir():
            if _is_hf_dataset_dir(path):
                return "hf"
            if any(path.glob("*.en")):
                return "moses"
            raise UserError(
                f"data.source: directory {path} is neither a `datasets` save_to_disk directory (no "
                "dataset_info.json / dataset_dict.json) nor a Moses directory (no *.en files).",
                _SOURCE_HELP,
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


def _fingerprint(path: Path) -> tuple:
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
def _read_table(path: Path, fmt: str, fingerprint: tuple) -> _Table:
    # `fingerprint` only keys the cache: an edited file is read again. Callers must not mutate the frame.
    table = _TABLE_READERS[fmt](path)
    return dataclasses.replace(table, frame=_expand_translation(table.frame))


def _is_missing(value: Any) -> bool:
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
        if _is_missing(tgt):
            continue  # this row holds a pair of another language (wide JSONL with mixed keys)
        src = "" if _is_missing(src) else src
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


def _moses_files(directory: Path) -> dict[str, list[tuple[Path, Path]]]:
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
    by_language = _moses_files(directory)
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


def _source_path(data: DataConfig) -> tuple[Path, str]:
    """The path and requested format of the configured source."""
    if data.source == DEMO_SOURCE:
        if data.format not in ("auto", "jsonl"):
            raise UserError(
                f"data.format is '{data.format}' but the demo corpus is JSONL.", "Leave data.format as 'auto'."
            )
        return demo_corpus_path(), "jsonl"
    try:
        return Path(data.source).expanduser(), data.format
    except RuntimeError:  # `~name/...` for a user this system does not know
        raise UserError(f"data.source: cannot expand the home directory in {data.source!r}.", _SOURCE_HELP) from None


def read_pairs(path: str | Path, fmt: str, language: str, data_cfg: DataConfig) -> list[Pair]:
    """Raw (not yet normalised or filtered) pairs of one language from one source."""
    path = Path(path)
    fmt = resolve_format(path, fmt)
    if fmt == "moses":
        return _moses_pairs(path, language)
    table = _read_table(path, fmt, _fingerprint(path))
    return _table_pairs(table, language, data_cfg.source_column, data_cfg.target_column)


def _table_languages(table: _Table, source_column: str, names: Mapping[str, str]) -> list[str]:
    frame = table.frame
    if LANGUAGE_COLUMN in frame.columns:
        return sorted({v for v in frame[LANGUAGE_COLUMN] if isinstance(v, str)})
    known = {c.lower() for c in LANGUAGE_NAMES} | {c.lower() for c in names}
    return sorted(
        str(c)
        for c in frame.columns
        if c not in (source_column, "en")
        and str(c).lower().replace("_", "-") in known
        and all(isinstance(v, str) or _is_missing(v) for v in frame[c])
    )


def corpus_languages(data: DataConfig) -> list[str]:
    """The language codes the configured source holds, sorted (e.g. to train a tokenizer on all of them).

    A long table names them in its `language` column and a Moses directory in its file suffixes. In a
    wide table they are the text columns named by a known code (the built-in table or
    `data.language_names`) other than the English one. With `data.target_column` set and no `language`
    column the table holds one language that it does not name: the result is then empty.
    """
    path, fmt = _source_path(data)
    fmt = resolve_format(path, fmt)
    if fmt == "moses":
        return sorted(_moses_files(path))
    table = _read_table(path, fmt, _fingerprint(path))
    if data.target_column and LANGUAGE_COLUMN not in table.frame.columns:
        return []
    return _table_languages(table, data.source_column, data.language_names)


# --------------------------------------------------------------------------------------------------
# Loading with an in-process cache (the sweep asks for the same language many times)


@lru_cache(maxsize=64)
def _load_cached(data_json: str, language: str, fingerprint: tuple) -> LanguageData:
    data = DataConfig.model_validate_json(data_json)
    path, fmt = _source_path(data)
    raw = read_pairs(path, fmt, language, data)  # first: "not in the source" beats "no display name"
    return build_language_data(
        language,
        language_name(language, data.language_names),
        raw,
        test_size=data.test_size,
        split_seed=data.split_seed,
        max_chars=data.max_chars,
    )


def load_language(data: DataConfig, language: str) -> LanguageData:
    """The test split and training pool of one language (cached; each call returns fresh lists)."""
    path, _ = _source_path(data)
    if not path.exists():
        raise UserError(f"data.source: {path} does not exist.", _SOURCE_HELP)
    cached = _load_cached(data.model_dump_json(), language, _fingerprint(path))
    # Copies, so a caller that appends to or shuffles its lists cannot corrupt the cache.
    return dataclasses.replace(cached, train=list(cached.train), test=list(cached.test), dropped=dict(cached.dropped))


def data_fingerprint(data: LanguageData) -> str:
    """A hash of the language's training pool and test split, in order, after normalisation: an edited,
    added or removed pair changes it (any pair may move into a run's prefix, since the order is a hash of
    the pairs), a file merely reformatted does not. Each pair is hashed as a JSON array, so no text can
    imitate a separator."""
    h = hashlib.sha256()
    for part, pairs in (("train", data.train), ("test", data.test)):
        h.update(f"{part}:{len(pairs)}\n".encode())
        for pair in pairs:
            h.update(json.dumps([pair.source, pair.target], ensure_ascii=False).encode("utf-8") + b"\n")
    return h.hexdigest()[:16]


def load_languages(data: DataConfig, languages: list[str]) -> dict[str, LanguageData]:
    return {language: load_language(data, language) for language in languages}


def check_capacity(
    datasets: Mapping[str, LanguageData], largest_size: int, needs: Mapping[str, int] | None = None
) -> None:
    """Fail, listing every short language, if a training pool is smaller than `largest_size` pairs
    (or than that language's entry in `needs`, e.g. a budget floor, when larger)."""
    short = []
    for code, data in datasets.items():
        need = max(largest_size, (needs or {}).get(code, 0))
        if len(data.train) < need:
            short.append(f"{code} ({data.name}) has {len(data.train):,} but needs {need:,}")
    if short:
        raise UserError(
            "Not enough training pairs (counted after setting aside each language's test split and dropping "
            "pairs that overlap it): " + "; ".join(short) + ".",
            "Lower the largest size in sweep.sizes (and budget.languages floors), lower data.test_size, "
            "add data for those languages, or remove them from `languages`.",
        )


def _mean_length(texts: list[str], measure: Callable[[str], int]) -> float:
    return sum(map(measure, texts)) / len(texts) if texts else 0.0


def _word_count(text: str) -> int:
    # Whitespace words: for scripts written without spaces (Chinese, Japanese) this counts phrases.
    return len(text.split())


def dropped_column(reason: str) -> str:
    """The `corpus_stats` column counting one drop reason: "overlaps test" -> "dropped_overlaps_test"."""
    return "dropped_" + reason.replace(" ", "_")


def corpus_stats(datasets: Mapping[str, LanguageData]) -> pd.DataFrame:
    """One row per language: pair counts, mean lengths (over test + train) and drops by reason."""
    rows = []
    for code, data in datasets.items():
        kept = data.test + data.train
        english, target = [p.source for p in kept], [p.target for p in kept]
        rows.append(
            {
                "language": code,
                "name": data.name,
                "pairs": len(kept) + data.dropped.get(DROP_OVERLAP, 0),
                "train": len(data.train),
                "test": len(data.test),
                "en_chars": _mean_length(english, len),
                "x_chars": _mean_length(target, len),
                "en_words": _mean_length(english, _word_count),
                "x_words": _mean_length(target, _word_count),
                "dropped": sum(data.dropped.values()),
                **{dropped_column(reason): data.dropped.get(reason, 0) for reason in DROP_REASONS},
            }
        )
    return pd.DataFrame(rows).set_index("language")
