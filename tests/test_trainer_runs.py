"""End-to-end CoIT proxy runs on the embedded demo corpus: real tokenizer, real training, real sacrebleu.

One tokenizer (the demo recipe) is trained once per test session into a temporary cache; models are
small and use one thread. The scaling runs are shared by the tests that read them.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings

import pytest
import torch
import yaml

import trainers.model as model_module
import trainers.train as train_module
from planner.cli import main as planner_main
from core.config import RESOLVED_CONFIG_NAME, config_from_dict, load_config
from core.errors import UserError
from trainers import data
from trainers.coit import METRICS_FILE, SAMPLES_FILE, RunResult, train_one
from trainers.evaluate import measured_metrics
from trainers.model import (
    build_model,
    count_parameters,
    load_tokenizer,
    save_checkpoint,
    tokenizer_languages,
    tokenizer_training_texts,
)

torch.set_num_threads(1)

# Data scaling at small sizes, seed 0: the demo model, fixed epochs. Test loss falls with 4× the data
# already here; chrF does not yet, because below ~1,000 pairs a from-scratch model still ignores the
# source and emits frequent target phrases, whose chrF is a flat few points (see the slow test below).
SCALING_LANGUAGES = ("de", "es")
SMALL, LARGE = 100, 400
SCALING = {
    "model": {"threads": 1},
    "train": {"epochs": 6, "eval_size": 50, "samples": 3},
}
# The demo protocol (10 epochs) at 250 vs 1,000 pairs: the 1,000-pair model has begun to translate
# (chrF ≈ 14–16 on de/es) while the 250-pair one has not (≈ 5–6), a margin far above seed noise.
CHRF_SMALL, CHRF_LARGE = 250, 1000
CHRF_SCALING = {"model": {"threads": 1}, "train": {"epochs": 10, "eval_size": 100, "samples": 0}}
# Much smaller runs for the plumbing tests (same tokenizer: same data and vocabulary settings).
TINY = {
    "model": {"threads": 1, "context_length": 64, "hidden_size": 32, "layers": 1, "heads": 2},
    "train": {"epochs": 1, "batch_size": 8, "eval_size": 8, "max_new_tokens": 8, "samples": 2},
}


def make_cfg(overrides: dict, tmp_path=None):
    body = load_config(preset="quick").model_dump(mode="json")
    for section, values in overrides.items():
        body[section] = {**body[section], **values} if isinstance(values, dict) else values
    if tmp_path is not None:
        body["output_dir"] = str(tmp_path / "out")
    return config_from_dict(body)


@pytest.fixture(scope="module", autouse=True)
def tokenizer_cache(tmp_path_factory):
    """A session-wide temporary tokenizer cache (the base temp dir is shared by every module)."""
    patch = pytest.MonkeyPatch()
    cache = tmp_path_factory.getbasetemp() / "planner-cache"
    patch.setenv("PLANNER_CACHE_DIR", str(cache))
    yield cache
    patch.undo()


@pytest.fixture(scope="module")
def scaling_runs(tmp_path_factory):
    """(language, n_pairs) -> RunResult, with every training example the model saw recorded."""
    out = tmp_path_factory.mktemp("scaling")
    cfg = make_cfg(SCALING, out)
    seen: dict[tuple[str, int], list] = {}
    real_train = train_module.train_model

    def recording(cfg_, model, tokenizer, examples, *args, **kwargs):
        seen[current] = list(examples)
        return real_train(cfg_, model, tokenizer, examples, *args, **kwargs)

    runs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "train_model", recording)
        for language in SCALING_LANGUAGES:
            for n in (SMALL, LARGE):
                current = (language, n)
                runs[current] = train_one(cfg, language, n, seed=0, progress=False)
    return cfg, runs, seen


def test_four_times_the_data_lowers_test_loss(scaling_runs):
    _, runs, _ = scaling_runs
    for language in SCALING_LANGUAGES:
        small, large = runs[(language, SMALL)], runs[(language, LARGE)]
        assert large.metrics["loss"] < small.metrics["loss"] - 0.2, (language, small.metrics, large.metrics)
        assert large.n_tokens > 3 * small.n_tokens and large.steps > 3 * small.steps


@pytest.mark.slow
def test_four_times_the_data_raises_chrf(tmp_path):
    """Acceptance: with the demo protocol, chrF at 4× the data beats 1× on two languages (~2 min)."""
    cfg = make_cfg(CHRF_SCALING, tmp_path)
    for language in SCALING_LANGUAGES:
        small, large = (train_one(cfg, language, n, seed=0, progress=False) for n in (CHRF_SMALL, CHRF_LARGE))
        assert large.metrics["chrf"] > small.metrics["chrf"] + 4.0, (language, small.metrics, large.metrics)
        assert large.metrics["loss"] < small.metrics["loss"], (language, small.metrics, large.metrics)


def test_run_result_and_run_directory(scaling_runs):
    cfg, runs, _ = scaling_runs
    r = runs[("de", SMALL)]
    assert isinstance(r, RunResult) and (r.language, r.n_pairs, r.seed) == ("de", SMALL, 0)
    assert set(r.metrics) == {"chrf", "bleu", "loss", "loss_se", "bpb", "bpb_se"}  # this config fits chrf
    assert all(math.isfinite(v) for v in r.metrics.values())
    assert set(measured_metrics(cfg)) <= set(r.metrics)  # what `planner launch` checks a plan's metric against
    assert r.steps == 6 * math.ceil(SMALL / 16) and r.train_seconds > 0 and r.eval_seconds > 0
    run_dir = cfg.out / "runs" / f"de-{SMALL}-s0"
    assert r.run_dir == str(run_dir)
    written = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    assert written["metrics"] == r.metrics and written["n_tokens"] == r.n_tokens and "samples" not in written
    # How each generated score was computed, as sacreBLEU states it; which base model it was.
    assert written["signatures"]["chrf"].startswith("nrefs:1|") and "tok:13a" in written["signatures"]["bleu"]
    assert written["base_model"] == {"model": "tiny"}
    assert yaml.safe_load((run_dir / RESOLVED_CONFIG_NAME).read_text(encoding="utf-8"))["train"]["epochs"] == 6
    samples = [json.loads(line) for line in (run_dir / SAMPLES_FILE).read_text(encoding="utf-8").splitlines()]
    assert samples == r.samples and len(samples) == 3 and set(samples[0]) == {"source", "reference", "hypothesis"}
    test = data.load_language(cfg.data, "de").test
    assert [s["source"] for s in samples] == [p.source for p in test[:3]]
    # n_tokens: the pairs' own text, both sides, in the model's tokenizer.
    tok = load_tokenizer(cfg)
    pairs = data.load_language(cfg.data, "de").prefix(SMALL)
    assert r.n_tokens == sum(len(tok(t, add_special_tokens=False)["input_ids"]) for p in pairs for t in (p.source, p.target))


def test_same_config_and_seed_reproduce_the_metrics_exactly(scaling_runs, tmp_path):
    cfg, runs, _ = scaling_runs
    again = train_one(cfg, "de", SMALL, seed=0, run_dir=tmp_path / "again", progress=False)
    first = runs[("de", SMALL)]
    assert again.metrics == first.metrics and again.samples == first.samples
    assert again.train["losses"] == first.train["losses"]
    # The seed matters (initialisation, batch order, template assignment): not a constant result.
    tiny = make_cfg(TINY, tmp_path)
    a, b = (train_one(tiny, "de", 32, seed=s, run_dir=tmp_path / f"s{s}", progress=False) for s in (0, 1))
    assert a.train["losses"] != b.train["losses"]


def test_model_never_trains_on_a_test_pair(scaling_runs):
    cfg, _, seen = scaling_runs
    for (language, n), examples in seen.items():
        lang = data.load_language(cfg.data, language)
        test_sides = {t.casefold() for p in lang.test for t in (p.source, p.target)}
        assert len(examples) == n
        assert [e.pair for e in examples] == lang.prefix(n)
        for e in examples:
            assert e.response.casefold() not in test_sides
            assert e.pair.source.casefold() not in test_sides and e.pair.target.casefold() not in test_sides


def test_tokenizer_never_sees_a_test_sentence(tmp_path, monkeypatch):
    # A small corpus of three languages where the same English sentences recur across languages, so
    # one language's test source is another's training source.
    rows = []
    for lang, word in (("de", "Datei"), ("fr", "fichier"), ("es", "archivo")):
        rows += [{"source": f"Open file {i}", "target": f"{word} {i} {lang}", "language": lang} for i in range(60)]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = make_cfg({"data": {"source": str(corpus), "test_size": 10}, "languages": ["de"],
                    "model": {"vocab_size": 300}})
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    assert tokenizer_languages(cfg) == ["de", "es", "fr"]  # every corpus language, not only the configured one

    calls = []
    real = model_module.train_tokenizer

    def spy(texts, vocab_size):
        texts = list(texts)
        calls.append(texts)
        return real(texts, vocab_size)

    monkeypatch.setattr(model_module, "train_tokenizer", spy)
    tok = load_tokenizer(cfg)
    assert len(calls) == 1
    seen = {t.casefold() for t in calls[0]}
    pools = data.load_languages(cfg.data, ["de", "es", "fr"])
    test_sentences = {t.casefold() for d in pools.values() for p in d.test for t in (p.source, p.target)}
    train_sentences = {t.casefold() for d in pools.values() for p in d.train for t in (p.source, p.target)}
    assert not seen & test_sentences
    assert train_sentences - test_sentences <= seen  # every other training sentence is used
    assert any(p.source.casefold() in train_sentences for d in pools.values() for p in d.test)  # the trap exists
    # Cached: a second load trains nothing and returns the same vocabulary.
    assert load_tokenizer(cfg).get_vocab() == tok.get_vocab() and len(calls) == 1
    other = make_cfg({"data": {"source": str(corpus), "test_size": 10}, "model": {"vocab_size": 320}})
    load_tokenizer(other)
    assert len(calls) == 2
    assert list(tokenizer_training_texts(cfg.data, ["de", "es", "fr"])) == calls[0]


def test_local_checkpoint_directory_and_lora(tmp_path):
    base = make_cfg(TINY, tmp_path)
    tokenizer = load_tokenizer(base)
    ckpt = save_checkpoint(build_model(base, tokenizer, seed=7), tokenizer, tmp_path / "ckpt")
    assert (ckpt / "config.json").is_file() and any(ckpt.glob("*.safetensors"))

    cfg = make_cfg({**TINY, "model": {**TINY["model"], "name": str(ckpt)}}, tmp_path)
    reloaded = build_model(cfg, load_tokenizer(cfg), seed=0)
    saved = build_model(base, tokenizer, seed=7)
    for (name, a), (_, b) in zip(saved.state_dict().items(), reloaded.state_dict().items()):
        assert torch.equal(a, b), name  # the checkpoint's weights, not a fresh initialisation
    r = train_one(cfg, "es", 40, seed=0, run_dir=tmp_path / "ckpt_run", progress=False)
    assert all(math.isfinite(v) for v in r.metrics.values()) and r.steps == 5

    lora = make_cfg({**TINY, "model": {**TINY["model"], "name": str(ckpt),
                                       "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}}}, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build_model(lora, tokenizer, seed=0)
    # peft reads transformers' deprecated is_gradient_checkpointing: not a warning for the user to see
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert count_parameters(model, trainable_only=True) < 0.1 * count_parameters(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    lang = data.load_language(lora.data, "es")
    from trainers.coit import language_examples

    train_module.train_model(lora, model, tokenizer, language_examples(lora, lang, lang.prefix(24), 0), seed=0,
                             progress=False)
    for n, p in model.named_parameters():
        assert (not torch.equal(p, before[n])) == (n in trainable), n  # only LoRA weights move


def test_model_name_must_be_tiny_or_a_checkpoint(tmp_path):
    cfg = make_cfg({"model": {"name": str(tmp_path / "missing")}})
    with pytest.raises(UserError, match="neither 'tiny' nor a local Hugging Face checkpoint"):
        load_tokenizer(cfg)


def test_cli_prints_one_json_object_and_reports_user_errors(tmp_path, capsys):
    config = tmp_path / "planner.yaml"
    body = {**TINY, "output_dir": str(tmp_path / "out")}
    config.write_text(yaml.safe_dump(body), encoding="utf-8")
    code = planner_main(["train-one", "--config", str(config), "--language", "es", "--pairs", "16",
                         "--seed", "3", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    row = json.loads(out[0])
    assert (row["language"], row["n_pairs"], row["seed"]) == ("es", 16, 3) and row["n_tokens"] > 0
    assert {"chrf", "bleu", "loss", "train_seconds", "eval_seconds", "steps", "run_dir"} <= set(row)
    assert (tmp_path / "out" / "runs" / "es-16-s3" / METRICS_FILE).is_file()

    code = planner_main(["train-one", "--config", str(config), "--language", "es", "--pairs", "10000000"])
    err = capsys.readouterr().err
    assert code == 2 and "10000000 training pairs requested" in err and "Traceback" not in err
    code = planner_main(["train-one", "--config", str(config), "--language", "xx", "--pairs", "10"])
    assert code == 2 and "'xx'" in capsys.readouterr().err


def test_same_code_runs_data_parallel_under_torchrun(tmp_path, tokenizer_cache):
    """Two CPU processes (gloo DDP): the same optimizer steps as one process (train.batch_size is the global
    batch, split over the processes), one writer, one result."""
    config = tmp_path / "planner.yaml"
    config.write_text(yaml.safe_dump({**TINY, "output_dir": str(tmp_path / "out")}), encoding="utf-8")
    args = ["train-one", "--config", str(config), "--language", "es", "--pairs", "64", "--no-progress"]
    env = {**os.environ, "PLANNER_CACHE_DIR": str(tokenizer_cache), "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "planner"]
    result = subprocess.run(launch + args + ["--out", str(tmp_path / "ddp")], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 1  # printed by rank 0 only
    single = train_one(make_cfg(TINY, tmp_path), "es", 64, seed=0, run_dir=tmp_path / "single", progress=False)
    assert rows[0]["steps"] == single.steps and math.isfinite(rows[0]["chrf"])
    assert rows[0]["loss"] == pytest.approx(single.metrics["loss"], abs=1e-3)  # the same training, split in two
    assert json.loads((tmp_path / "ddp" / METRICS_FILE).read_text(encoding="utf-8"))["steps"] == rows[0]["steps"]
