"""Hub ids for model.name (with model.revision) and `hf:org/name` data sources, read offline from local caches
that each test builds in tmp in the layouts huggingface_hub and datasets use; nothing is downloaded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets
import huggingface_hub.constants
import pytest
import torch
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

from core.config import config_from_dict
from core.errors import UserError
from trainers import data as data_module
from trainers import sources
from trainers.data import corpus_languages, load_language
from trainers.hub import hub_commit, is_hub_id
from trainers.model import build_model, load_tokenizer, model_provenance, tiny_config, train_tokenizer

REPO = "acme/tiny-llama"
MAIN = "a" * 40  # commit hashes: the snapshot directories' names
TAGGED = "b" * 40


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """HF_HOME in tmp, offline. The libraries read their settings at import, so the constants they
    consult at call time are set too (the environment alone would reach only a new process)."""
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    sources.hub_table.cache_clear()
    data_module._load_cached.cache_clear()
    yield home
    sources.hub_table.cache_clear()
    data_module._load_cached.cache_clear()


def _write_snapshot(home: Path, commit: str, seed: int) -> dict[str, torch.Tensor]:
    """A tiny Llama + BPE tokenizer as the Hub cache stores a model repository's snapshot."""
    snapshot = home / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / commit
    texts = ["Hello world.", "Hallo Welt.", "The weather is nice.", "Das Wetter ist schön."] * 20
    tokenizer = train_tokenizer(texts, 300)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_config(config_from_dict({"model": {"hidden_size": 32, "heads": 2}}).model, tokenizer))
    model.save_pretrained(str(snapshot))
    tokenizer.save_pretrained(str(snapshot))
    return load_file(str(snapshot / "model.safetensors"))


def _ref(home: Path, name: str, commit: str) -> None:
    refs = home / "hub" / f"models--{REPO.replace('/', '--')}" / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    (refs / name).write_text(commit)


def _cfg(**model) -> object:
    return config_from_dict({"model": {"name": REPO, **model}, "languages": ["de"]})


def test_a_hub_id_loads_offline_from_the_cache_at_its_revision(offline):
    main = _write_snapshot(offline, MAIN, seed=1)
    tagged = _write_snapshot(offline, TAGGED, seed=2)
    _ref(offline, "main", MAIN)
    _ref(offline, "v1", TAGGED)

    tokenizer = load_tokenizer(_cfg())
    assert tokenizer("Hallo Welt.", add_special_tokens=False)["input_ids"]
    for revision, expected in (("main", main), ("v1", tagged), (TAGGED, tagged)):
        model = build_model(_cfg(revision=revision), tokenizer, seed=0)
        weight = model.get_input_embeddings().weight
        assert torch.equal(weight, expected["model.embed_tokens.weight"]), revision
    assert not torch.equal(main["model.embed_tokens.weight"], tagged["model.embed_tokens.weight"])
    # The commit a moving branch stands for is what a run records.
    assert hub_commit(REPO, "main") == MAIN and hub_commit(REPO, "v1") == TAGGED
    assert model_provenance(_cfg(revision="v1").model) == {"model": REPO, "revision": "v1", "commit": TAGGED}
    assert model_provenance(config_from_dict({}).model) == {"model": "tiny"}
    # Moving the branch moves what it resolves to.
    _ref(offline, "main", TAGGED)
    assert model_provenance(_cfg().model)["commit"] == TAGGED


def test_a_model_missing_offline_names_the_cache_and_the_command(offline):
    with pytest.raises(UserError) as err:
        load_tokenizer(_cfg(revision="v2"))
    message = str(err.value)
    assert f"not in the HF cache at {offline / 'hub'}" in message and "HF_HUB_OFFLINE is set" in message
    assert f"hf download {REPO} --revision v2" in message


def test_hub_ids_and_local_paths_are_told_apart(tmp_path, monkeypatch):
    assert is_hub_id("Qwen/Qwen2.5-7B") and is_hub_id("org/name.v2")
    assert not any(map(is_hub_id, ["tiny", "/abs/dir", "a/b/c", "../x", "dir/model.gguf", "org/"]))
    # An existing local directory named like an id is the local directory.
    local = tmp_path / "org" / "name"
    local.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="neither 'tiny' nor a local Hugging Face checkpoint"):
        load_tokenizer(config_from_dict({"model": {"name": "org/name"}, "languages": ["de"]}))


# ------------------------------------------------------------------------------------------ datasets


def _cache_dataset(tmp_path: Path, name: str, config: str, rows: dict[str, list[dict]]) -> None:
    """Fill the `datasets` cache for Hub dataset `name` the way a first online load_dataset would: the
    prepared Arrow files under <cache>/<org>___<name>/<config>/<version>/<hash>/ (built here from local
    JSON lines by datasets' own JSON builder; only the directory is named as a Hub download names it)."""
    from datasets.packaged_modules.json.json import Json

    files = {}
    for split, split_rows in rows.items():
        path = tmp_path / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in split_rows), encoding="utf-8")
        files[split] = str(path)
    org, short = name.split("/")
    builder = Json(data_files=files, dataset_name=short, config_name=config, hash="0" * 16)
    builder.download_and_prepare()
    built = Path(builder.cache_dir).parents[1]  # <cache>/<short>/<config>-<data files hash>
    target = Path(datasets.config.HF_DATASETS_CACHE) / f"{org}___{short}" / config
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(built, target)


def test_a_hub_dataset_is_read_offline_from_the_datasets_cache(offline, tmp_path):
    train = [{"translation": {"en": f"Sentence {i}.", "de": f"Satz {i}."}} for i in range(12)]
    extra = [{"translation": {"en": f"Extra {i}.", "de": f"Zusatz {i}."}} for i in range(4)]
    _cache_dataset(tmp_path, "acme/pairs", "de-en", {"train": train, "validation": extra})
    body = {"source": "hf:acme/pairs", "dataset_config": "de-en", "split": "train", "test_size": 3}
    cfg = config_from_dict({"data": body, "languages": ["de"]})
    de = load_language(cfg.data, "de")
    assert len(de.test) == 3 and len(de.train) == 9
    assert {p.source for p in de.test + de.train} == {f"Sentence {i}." for i in range(12)}
    assert corpus_languages(cfg.data) == ["de"]
    # No split: every split pooled (the planner cuts its own test split).
    pooled = load_language(config_from_dict({"data": {**body, "split": None}, "languages": ["de"]}).data, "de")
    assert len(pooled.test) + len(pooled.train) == 16


def test_hub_dataset_mistakes_are_user_errors(offline, tmp_path):
    _cache_dataset(tmp_path, "acme/pairs", "de-en", {"train": [{"en": "Yes.", "de": "Ja."}] * 2})
    cases = [
        ({"source": "hf:acme/missing"}, "not in the local `datasets` cache at"),
        ({"source": "hf:acme/pairs", "dataset_config": "fr-en"}, "config 'fr-en'"),
        ({"source": "hf:acme/pairs", "dataset_config": "de-en", "split": "test"}, "Unknown split"),
    ]
    for body, expected in cases:
        cfg = config_from_dict({"data": body, "languages": ["de"]})
        with pytest.raises(UserError, match=expected):
            load_language(cfg.data, "de")
    with pytest.raises(UserError, match="apply only to a data.source 'hf:"):
        config_from_dict({"data": {"source": "demo", "split": "train"}})
