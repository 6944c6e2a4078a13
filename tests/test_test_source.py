"""A standard test set (data.test_source, FLORES-200 style line files or any source format), its removal from
the training pools, and the scores recorded with their sacreBLEU signature (spBLEU included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import DataConfig, config_from_dict
from core.errors import UserError
from trainers.data import (
    DROP_OVERLAP,
    corpus_stats,
    data_fingerprint,
    dropped_column,
    load_language,
    load_languages,
)

# 30 training pairs; three of them share a side with a test sentence (one exactly, one only after
# normalisation of case and spacing, one on the German side only).
TEST_EN = [f"Test sentence number {i} about the weather." for i in range(8)]
TEST_DE = [f"Testsatz Nummer {i} über das Wetter." for i in range(8)]
TEST_EL = [f"Πρόταση δοκιμής {i} για τον καιρό." for i in range(8)]


def _train_rows() -> list[dict]:
    rows = [{"en": f"Training sentence {i} on a topic.", "de": f"Trainingssatz {i} zu einem Thema.",
             "el": f"Πρόταση εκπαίδευσης {i} για ένα θέμα."} for i in range(30)]
    rows[3]["en"] = TEST_EN[6]  # exact English side of a test sentence beyond the first test_size
    rows[7]["en"] = "  test SENTENCE number 1 about   the weather. "  # same after normalisation and casefold
    rows[11]["de"] = TEST_DE[2]  # the German side only
    return rows


@pytest.fixture
def flores(tmp_path: Path) -> dict:
    """A training corpus and a FLORES-200-like devtest directory (one aligned line file per language)."""
    corpus = tmp_path / "pairs.jsonl"
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _train_rows()), encoding="utf-8")
    devtest = tmp_path / "devtest"
    devtest.mkdir()
    for name, lines in (("eng_Latn", TEST_EN), ("deu_Latn", TEST_DE), ("ell_Grek", TEST_EL)):
        (devtest / f"{name}.devtest").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {
        "source": str(corpus),
        "test_size": 5,
        "test_source": {"de": str(devtest / "deu_Latn.devtest"), "el": str(devtest / "ell_Grek.devtest")},
        "test_english": str(devtest / "eng_Latn.devtest"),
    }


def test_flores_files_are_the_test_split_and_leave_every_pool(flores):
    de = load_language(DataConfig(**flores), "de")
    # The first test_size lines, in file order (not a hashed order), aligned with the English file.
    assert [(p.source, p.target) for p in de.test] == list(zip(TEST_EN, TEST_DE))[:5]
    assert de.test_origin.endswith("deu_Latn.devtest")
    # Rows 3, 7 and 11 share a side with the test set (row 3 with a sentence past test_size: the whole set
    # is kept out of training, so raising test_size later cannot test on a trained sentence).
    assert de.dropped[DROP_OVERLAP] == 3
    assert len(de.train) == 27
    trained = {s.casefold() for p in de.train for s in (p.source, p.target)}
    assert not trained & {s.casefold() for s in TEST_EN + TEST_DE}
    # `planner data stats` counts the removed pairs in their own column; the source's pairs exclude the test set.
    stats = corpus_stats({"de": de})
    assert stats.loc["de", dropped_column(DROP_OVERLAP)] == 3
    assert stats.loc["de", "pairs"] == 30 and stats.loc["de", "test"] == 5 and stats.loc["de", "train"] == 27
    # Greek shares only the English side (rows 3 and 7).
    el = load_language(DataConfig(**flores), "el")
    assert el.dropped[DROP_OVERLAP] == 2 and [p.target for p in el.test] == TEST_EL[:5]


def test_a_test_set_larger_than_test_size_or_smaller_is_used_as_far_as_it_goes(flores):
    de = load_language(DataConfig(**{**flores, "test_size": 50}), "de")
    assert len(de.test) == 8


def test_the_fingerprint_follows_the_test_files(flores):
    before = load_language(DataConfig(**flores), "de")
    target = Path(flores["test_source"]["de"])
    lines = list(TEST_DE)
    lines[0] = "Ein ganz anderer Testsatz."
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    after = load_language(DataConfig(**flores), "de")  # the loader's cache notices the edited file
    assert after.test[0].target == "Ein ganz anderer Testsatz."
    assert data_fingerprint(after) != data_fingerprint(before)
    # and differs from the split cut from the source
    cut = load_language(DataConfig(source=flores["source"], test_size=5), "de")
    assert data_fingerprint(cut) != data_fingerprint(before)


def test_a_template_path_reads_any_source_format(tmp_path: Path, flores):
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "de.tsv").write_text("en\tde\n" + "".join(f"{e}\t{d}\n" for e, d in zip(TEST_EN, TEST_DE)),
                                  encoding="utf-8")
    data = DataConfig(source=flores["source"], test_size=4, test_source=str(tests / "{lang}.tsv"))
    de = load_language(data, "de")
    assert [p.target for p in de.test] == TEST_DE[:4] and de.dropped[DROP_OVERLAP] == 3
    with pytest.raises(UserError, match="el.tsv does not exist"):
        load_language(data, "el")


def test_a_language_the_mapping_does_not_name_keeps_a_split_cut_from_the_source(flores):
    mapped = {"el": flores["test_source"]["el"]}
    de = load_languages(DataConfig(**{**flores, "test_source": mapped}), ["de"])["de"]
    cut = load_language(DataConfig(source=flores["source"], test_size=5), "de")
    assert de.test_origin is None and de.test == cut.test and de.train == cut.train


def test_test_source_mistakes_are_user_errors(tmp_path: Path, flores):
    short = tmp_path / "short.devtest"
    short.write_text("Nur eine Zeile.\n", encoding="utf-8")
    with pytest.raises(UserError, match="do not align: .* has 8 lines but .* has 1"):
        load_language(DataConfig(**{**flores, "test_source": {"de": str(short)}}), "de")
    with pytest.raises(UserError, match="data.test_english is set but data.test_source is not"):
        config_from_dict({"data": {"test_english": flores["test_english"]}})
    # A test set that is the training corpus itself leaves nothing to train on: said, not trained on nothing.
    with pytest.raises(UserError, match="shares a side with its test set"):
        load_language(DataConfig(source=flores["source"], test_source=flores["source"]), "de")


# ------------------------------------------------------------------------------ scores and signatures


def test_every_generated_score_carries_its_sacrebleu_signature():
    from trainers.evaluate import score_with_signatures

    scores, signatures = score_with_signatures(["Die Datei ist offen."], ["Die Datei ist geöffnet."], "de")
    assert set(scores) == set(signatures) == {"chrf", "bleu"}
    assert 0 < scores["chrf"] < 100
    assert signatures["bleu"].startswith("nrefs:1|case:mixed|") and "|tok:13a|" in signatures["bleu"]
    assert "|nc:6|nw:0|" in signatures["chrf"]
    # The tokenizer chosen for the language is part of the signature: scores are not comparable otherwise.
    assert "|tok:char|" in score_with_signatures(["ファイル"], ["ファイル"], "ja")[1]["bleu"]


@pytest.fixture
def sacrebleu_cache(tmp_path, monkeypatch):
    from sacrebleu.tokenizers import tokenizer_spm

    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path / "sacrebleu"))
    return tmp_path / "sacrebleu" / "models" / "flores200sacrebleuspm"


def test_spbleu_without_its_tokenizer_model_says_how_to_fetch_it(sacrebleu_cache):
    from trainers.evaluate import score_translations

    with pytest.raises(UserError) as err:
        score_translations(["Hallo."], ["Hallo."], "de", spbleu=True)
    message = str(err.value)
    assert str(sacrebleu_cache) in message and "nothing is downloaded" in message
    assert "curl -L -o" in message and "tinyurl.com/flores200sacrebleuspm" in message
    assert not sacrebleu_cache.exists()  # and nothing was fetched


def test_spbleu_scores_with_a_sentencepiece_model_from_the_cache(sacrebleu_cache):
    """A stand-in for the FLORES-200 SentencePiece model, trained here on a few sentences: the metric's
    machinery (sacreBLEU's flores200 tokenizer reading the cache) is the real one."""
    sentencepiece = pytest.importorskip("sentencepiece")
    from trainers.evaluate import measured_metrics, score_with_signatures

    sacrebleu_cache.parent.mkdir(parents=True)
    text = TEST_EN + TEST_DE + TEST_EL + [r["el"] for r in _train_rows()]
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(text * 5), model_prefix=str(sacrebleu_cache),
                                             vocab_size=60, character_coverage=1.0, minloglevel=2)
    Path(f"{sacrebleu_cache}.model").rename(sacrebleu_cache)  # sacreBLEU's file name has no suffix
    scores, signatures = score_with_signatures(TEST_EL[:3], TEST_EL[:3], "el", spbleu=True)
    assert scores["spbleu"] == pytest.approx(100.0) and "|tok:flores200|" in signatures["spbleu"]
    worse, _ = score_with_signatures([TEST_EL[0], TEST_EL[2], TEST_EL[1]], TEST_EL[:3], "el", spbleu=True)
    assert worse["spbleu"] < 100.0 and worse["spbleu"] > worse["bleu"]  # pieces match where whole words do not
    cfg = config_from_dict({"fit": {"metric": "spbleu"}})
    assert "spbleu" in measured_metrics(cfg) and "spbleu" not in measured_metrics(config_from_dict({}))


def test_generation_length_follows_the_references_unless_capped():
    from trainers.evaluate import new_token_budget

    assert config_from_dict({}).train.max_new_tokens is None
    # ~1.5x the longest reference (+4): a 120-token Greek reference gets 184, not the old fixed 64.
    assert new_token_budget([30, 120], None, 1000) == 184
    assert new_token_budget([30, 120], 64, 1000) == 64  # an explicit number still wins
    assert new_token_budget([30, 120], None, 50) == 50  # never past the context


def test_data_stats_says_which_test_set_each_language_scores_on(flores, tmp_path, capsys):
    from planner.cli import main

    config = {"languages": ["de", "el"], "data": flores, "sweep": {"sizes": [5, 10]},
              "output_dir": str(tmp_path / "out")}
    (tmp_path / "c.yaml").write_text(json.dumps(config), encoding="utf-8")
    assert main(["data", "stats", "--config", str(tmp_path / "c.yaml")]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "test sets from data.test_source (de: " in head and "deu_Latn.devtest" in head and "ell_Grek" in head
    assert "cut from the source" not in head and "overlaps test" in head
