"""Parallel English→X data: loading, normalisation, the fixed test split and nested training prefixes.

Every source (the embedded demo corpus, JSONL, TSV/CSV, parquet, a `datasets` save_to_disk directory,
Moses-style line files) is read into raw `Pair`s for one language by `read_pairs` (trainers/sources.py); `build_language_data`
then turns them into a `LanguageData` in the same way for all of them:

1. normalise both sides (Unicode NFC, whitespace runs collapsed, stripped);
2. drop empty (nothing visible: format characters such as a zero-width space alone count as empty),
   over-long (`data.max_chars`) and duplicate pairs, counting each reason;
3. order the unique pairs by a keyed hash of their text and `data.split_seed`, so the order depends
   only on the set of pairs and the seed (not on file order, the Python version or hash
   randomisation), and appending data to a file does not reshuffle what was there;
4. the first `data.test_size` pairs are the test split; the training pool is the rest minus every pair
   whose English or target side equals a side of a test pair ignoring case, invisible format
   characters and compatibility forms (NFKC: full-width letters), so no test sentence is ever trained
   on, even through a near-duplicate with different spacing, casing or zero-width characters.

With `data.test_source` (a standard test set such as FLORES-200 devtest, trainers/test_sets.py) step 4
changes: the test split is the first `data.test_size` pairs of that set in its own order, none of it is
filtered but for empty and repeated pairs (a standard set is scored whole), and every source pair sharing
a side with ANY sentence of the set is dropped as overlapping.

Training runs take prefixes of the pool, so the 500-pair set is the first 500 pairs of the 1000-pair set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from core.config import DataConfig
from core.errors import UserError
from trainers.languages import language_name
from trainers.sources import (
    LANGUAGE_COLUMN,
    SOURCE_HELP,
    Pair,
    fingerprint,
    hub_pairs,
    hub_table,
    moses_files,
    read_pairs,
    read_table,
    resolve_format,
    table_languages,
)
from trainers.hub import hub_dataset_name, is_hub_dataset
from trainers.test_sets import read_test_pairs, test_set_key

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

DROP_EMPTY = "empty"
DROP_TOO_LONG = "too long"
DROP_DUPLICATE = "duplicate"
DROP_OVERLAP = "overlaps test"
DROP_REASONS = (DROP_EMPTY, DROP_TOO_LONG, DROP_DUPLICATE, DROP_OVERLAP)


@dataclass
class LanguageData:
    language: str  # code, e.g. "de"
    name: str  # display name, e.g. "German" (used in prompts)
    train: list[Pair]  # the training pool in one fixed seeded order; runs take prefixes
    test: list[Pair]  # the fixed test split; no side of it appears in `train`
    dropped: dict[str, int]  # reason -> count, every reason in DROP_REASONS present
    test_origin: str | None = None  # the fixed test set's file (data.test_source); None: cut from the source

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


@lru_cache(maxsize=1)
def _format_characters() -> re.Pattern:
    """Runs of format characters (Unicode category Cf), as a class of code-point ranges (a regex class
    listing ~160 single characters searches several times slower)."""
    points = {c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"}
    starts = sorted(c for c in points if c - 1 not in points)
    ends = sorted(c for c in points if c + 1 not in points)
    ranges = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in zip(starts, ends))
    return re.compile(f"[{ranges}]+")


def _visible(text: str) -> str:
    """`text` without format characters (zero-width space and joiners, direction marks, a stray
    byte-order mark, soft hyphens), which change the string but not what a reader sees."""
    if text.isascii() or not _format_characters().search(text):
        return text
    return " ".join(_format_characters().sub("", text).split())


def _overlap_key(text: str) -> str:
    # Stricter than equality of normalised text: "Open File", "Open file", "Open\u200b file" and the
    # full-width "Ｏｐｅｎ file" are the same sentence for leakage purposes.
    return _visible(unicodedata.normalize("NFKC", text)).casefold()


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
    fixed_test: Iterable[Pair] | None = None,
    test_origin: str | None = None,
) -> LanguageData:
    """Normalise, filter and deduplicate raw pairs, then carve the test split and the training pool; with
    `fixed_test` (a standard test set, in its own order) the test split comes from it instead."""
    dropped = Counter({reason: 0 for reason in DROP_REASONS})
    unique: dict[Pair, None] = {}
    for pair in raw:
        source, target = normalize_text(pair.source), normalize_text(pair.target)
        if not _visible(source) or not _visible(target):  # nothing visible is empty too
            dropped[DROP_EMPTY] += 1
        elif len(source) > max_chars or len(target) > max_chars:
            dropped[DROP_TOO_LONG] += 1
        elif (clean := Pair(source, target)) in unique:
            dropped[DROP_DUPLICATE] += 1
        else:
            unique[clean] = None
    if fixed_test is not None:
        return _with_fixed_test(language, name, list(unique), fixed_test, test_size, split_seed, dropped, test_origin)
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


def _with_fixed_test(language: str, name: str, unique: list[Pair], fixed_test: Iterable[Pair], test_size: int,
                     split_seed: int, dropped: Counter, origin: str | None) -> LanguageData:
    test_set: dict[Pair, None] = {}
    for pair in fixed_test:
        clean = Pair(normalize_text(pair.source), normalize_text(pair.target))
        if _visible(clean.source) and _visible(clean.target):
            test_set.setdefault(clean)
    if not test_set:
        raise UserError(f"The test set of {language} ({name}) in {origin} holds no pair with text on both sides.",
                        "Check data.test_source (and data.test_english) for this language.")
    # Every sentence of the set, not only the first test_size: raising test_size later must not put a
    # sentence that was trained on into the test split.
    test_sources = {_overlap_key(p.source) for p in test_set}
    test_targets = {_overlap_key(p.target) for p in test_set}
    ordered = sorted(unique, key=lambda p: _order_key(p, split_seed))
    train = [p for p in ordered if _overlap_key(p.source) not in test_sources and _overlap_key(p.target) not in test_targets]
    dropped[DROP_OVERLAP] = len(ordered) - len(train)
    if not train:
        raise UserError(
            f"Every one of the {len(ordered)} usable pairs of {language} ({name}) shares a side with its test "
            f"set ({origin}), so nothing is left to train on.",
            "Check that data.source is the training corpus and data.test_source the test set, not the same data.",
        )
    return LanguageData(language=language, name=name, train=train, test=list(test_set)[:test_size],
                        dropped=dict(dropped), test_origin=origin)


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
        raise UserError(f"data.source: cannot expand the home directory in {data.source!r}.", SOURCE_HELP) from None


def corpus_languages(data: DataConfig) -> list[str]:
    """The language codes the configured source holds, sorted (e.g. to train a tokenizer on all of them).

    A long table names them in its `language` column and a Moses directory in its file suffixes. In a
    wide table they are the text columns named by a known code (the built-in table or
    `data.language_names`) other than the English one. With `data.target_column` set and no `language`
    column the table holds one language that it does not name: the result is then empty.
    """
    if is_hub_dataset(data.source):
        table = hub_table(data.source, data.dataset_config, data.split)
        if data.target_column and LANGUAGE_COLUMN not in table.frame.columns:
            return []
        return table_languages(table, data.source_column, data.language_names)
    path, fmt = _source_path(data)
    fmt = resolve_format(path, fmt)
    if fmt == "moses":
        return sorted(moses_files(path))
    table = read_table(path, fmt, fingerprint(path))
    if data.target_column and LANGUAGE_COLUMN not in table.frame.columns:
        return []
    return table_languages(table, data.source_column, data.language_names)


# --------------------------------------------------------------------------------------------------
# Loading with an in-process cache (the sweep asks for the same language many times)


@lru_cache(maxsize=64)
def _load_cached(data_json: str, language: str, fingerprint: tuple) -> LanguageData:
    # `fingerprint` (the source's and the test set's files) only keys the cache.
    data = DataConfig.model_validate_json(data_json)
    if is_hub_dataset(data.source):
        raw = hub_pairs(data, language)
    else:
        path, fmt = _source_path(data)
        raw = read_pairs(path, fmt, language, data)  # first: "not in the source" beats "no display name"
    fixed, origin = read_test_pairs(data, language) or (None, None)
    return build_language_data(
        language,
        language_name(language, data.language_names),
        raw,
        test_size=data.test_size,
        split_seed=data.split_seed,
        max_chars=data.max_chars,
        fixed_test=fixed,
        test_origin=origin,
    )


def _source_key(data: DataConfig) -> tuple:
    if is_hub_dataset(data.source):
        return (hub_dataset_name(data.source), data.dataset_config, data.split)
    path, _ = _source_path(data)
    if not path.exists():
        raise UserError(f"data.source: {path} does not exist.", SOURCE_HELP)
    return fingerprint(path)


def load_language(data: DataConfig, language: str) -> LanguageData:
    """The test split and training pool of one language (cached; each call returns fresh lists)."""
    key = _source_key(data) + test_set_key(data, language)
    cached = _load_cached(data.model_dump_json(), language, key)
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
            "Lower the largest size in sweep.sizes, sweep.mixtures or sweep.probes (and budget.languages "
            "floors), lower "
            "data.test_size, add data for those languages, or remove them from `languages`.",
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
        # A standard test set's pairs are not the source's: count what the source holds.
        from_source = data.train if data.test_origin else kept
        rows.append(
            {
                "language": code,
                "name": data.name,
                "pairs": len(from_source) + data.dropped.get(DROP_OVERLAP, 0),
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
