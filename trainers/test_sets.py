"""A standard test set per language (`data.test_source`) instead of a split cut from the training source.

The shapes, chosen so FLORES-200 reads naturally (its devtest is one line file per language, all aligned):

    test_source: {el: flores200_dataset/devtest/ell_Grek.devtest, de: .../deu_Latn.devtest}
    test_english: flores200_dataset/devtest/eng_Latn.devtest

or one path with `{lang}` standing for the planner's language code (`tests/{lang}.jsonl`), or one table or
directory holding every language. A language a mapping does not name keeps a split cut from the source. With `test_english` each language's file is the target side, line i
translating line i of the English file; without it a file is read like `data.source` (any format).
`trainers.data.build_language_data` then takes the split from these pairs and removes their sentences
from the training pool.
"""

from __future__ import annotations

from pathlib import Path

from core.config import DataConfig
from core.errors import UserError
from trainers.sources import Pair, fingerprint, read_lines, read_pairs

LANG_PLACEHOLDER = "{lang}"
TEST_SOURCE_HELP = (
    "Set data.test_source to a mapping language -> file (with data.test_english: target-side line files "
    "aligned with that English file, as FLORES-200 devtest), or to one path with '{lang}' for the code."
)


def _existing(text: str, what: str) -> Path:
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # `~name/...` for a user this system does not know
        raise UserError(f"{what}: cannot expand the home directory in {text!r}.", TEST_SOURCE_HELP) from None
    if not path.exists():
        raise UserError(f"{what}: {path} does not exist.", TEST_SOURCE_HELP)
    return path


def test_set_path(data: DataConfig, language: str) -> Path | None:
    """The file (or directory) holding `language`'s test set; None without data.test_source."""
    spec = data.test_source
    if spec is None:
        return None
    if isinstance(spec, dict):
        if language not in spec:
            # Its split is cut from the source as without test_source (e.g. a corpus language the config
            # does not train, whose pool only feeds the shared tokenizer).
            return None
        spec = spec[language]
    return _existing(spec.replace(LANG_PLACEHOLDER, language), f"data.test_source ({language})")


def test_set_key(data: DataConfig, language: str) -> tuple:
    """What the test set's bytes are keyed by in the loader's cache (empty without data.test_source)."""
    path = test_set_path(data, language)
    if path is None:
        return ()
    english = _existing(data.test_english, "data.test_english") if data.test_english else None
    return fingerprint(path) + (fingerprint(english) if english else ())


def read_test_pairs(data: DataConfig, language: str) -> tuple[list[Pair], str] | None:
    """The raw pairs of `language`'s standard test set, in file order, and the file they came from."""
    path = test_set_path(data, language)
    if path is None:
        return None
    if not data.test_english:
        return read_pairs(path, "auto", language, data), str(path)
    english = _existing(data.test_english, "data.test_english")
    for side in (english, path):
        if not side.is_file():
            raise UserError(f"{side} is not a file: with data.test_english every test set is a line file.",
                            TEST_SOURCE_HELP)
    sources, targets = read_lines(english), read_lines(path)
    if len(sources) != len(targets):
        raise UserError(
            f"The test files do not align: {english} has {len(sources)} lines but {path} has {len(targets)}.",
            "Line i of data.test_english must translate line i of each data.test_source file (the same split of "
            "the same release, e.g. both FLORES-200 devtest).",
        )
    return [Pair(s, t) for s, t in zip(sources, targets)], str(path)
