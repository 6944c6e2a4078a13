"""Models and tokenizers: the embedded `tiny` Llama trained from scratch, or a local HF checkpoint.

`tiny` (the default) is a small `LlamaConfig` causal LM initialised from a seed, with a byte-level BPE
tokenizer trained by `tokenizers` on the training pools of every language of the configured corpus —
never on a test pair. One tokenizer serves all languages, so token counts are comparable across
languages and the final multilingual run uses the same vocabulary as the proxy runs. It is trained once
and cached on disk, keyed by everything that determines it (the data settings that fix the training
pools, the corpus files, the vocabulary size and the prompt format).

A built-in pretrained model (`smollm2-135m`: SmolLM2-135M-Instruct, see `trainers.pretrained`) or a
`.gguf` file resolves to a checkpoint directory converted once from the GGUF and cached. Any other
`model.name` is a local Hugging Face checkpoint directory. Checkpoints are loaded with
`AutoModelForCausalLM`/`AutoTokenizer` without network access, optionally wrapped with LoRA by `peft`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from core.errors import UserError
from core.files import cache_root
from trainers.prompts import SECTION_MARKERS, SOURCE_LANGUAGE_NAME, templates_fingerprint, translation_instruction

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from core.config import DataConfig, ModelConfig, PlannerConfig

TINY = "tiny"
PAD, BOS, EOS = "<pad>", "<s>", "</s>"
# Bump when the tokenizer recipe below changes, so stale caches are never reused.
TOKENIZER_RECIPE = 2


def set_threads(model_cfg: "ModelConfig") -> int:
    """Use `model.threads` torch threads (default: every core). Parallel workers must split the cores:
    an oversubscribed core slows a small model's step by an order of magnitude."""
    n = model_cfg.threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


def is_tiny(model_cfg: "ModelConfig") -> bool:
    return model_cfg.name == TINY


# --------------------------------------------------------------------------------------------- tokenizer


def load_tokenizer(cfg: "PlannerConfig") -> PreTrainedTokenizerFast:
    """The run's tokenizer: the cached `tiny` BPE (trained on first use) or the checkpoint's own."""
    if not is_tiny(cfg.model):
        path = checkpoint_dir(cfg.model.name, cfg.model.revision)
        tokenizer = _from_checkpoint(AutoTokenizer, path, local_files_only=True)
        if tokenizer.pad_token_id is None:  # many causal LMs ship without one; padding is always masked
            tokenizer.pad_token = tokenizer.eos_token
        if tokenizer.eos_token_id is None:
            raise UserError(
                f"The tokenizer in {path} has no EOS token, so generated translations could never end.",
                "Use a checkpoint whose tokenizer defines eos_token.",
            )
        return tokenizer
    languages = tokenizer_languages(cfg)
    directory = cache_root() / "tokenizers" / tokenizer_cache_key(cfg.data, languages, cfg.model.vocab_size)
    if not (directory / "tokenizer.json").is_file():
        tokenizer = train_tokenizer(tokenizer_training_texts(cfg.data, languages), cfg.model.vocab_size)
        _save_atomically(tokenizer, directory)
    return PreTrainedTokenizerFast.from_pretrained(str(directory))


def tokenizer_languages(cfg: "PlannerConfig") -> list[str]:
    """Every language of the corpus, so one tokenizer serves any run on it; a single-language table
    that does not name its language contributes the configured languages."""
    from trainers import data

    return data.corpus_languages(cfg.data) or sorted(cfg.languages)


def tokenizer_cache_key(data_cfg: "DataConfig", languages: list[str], vocab_size: int) -> str:
    """A hash of everything the tiny tokenizer depends on."""
    from trainers.test_sets import test_set_key

    fields = ("source", "format", "source_column", "target_column", "test_size", "split_seed", "max_chars",
              "language_names", "dataset_config", "split", "test_source", "test_english")
    body = {
        "data": {f: getattr(data_cfg, f) for f in fields},
        "languages": languages,
        "files": _source_fingerprint(data_cfg.source),
        # The test sets' files decide which sentences leave the pools the tokenizer is trained on.
        "test_files": [[str(part) for part in test_set_key(data_cfg, lang)] for lang in languages],
        "vocab_size": vocab_size,
        "prompt_format": templates_fingerprint(),
        "recipe": TOKENIZER_RECIPE,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _source_fingerprint(source: str) -> list:
    """Size and modification time of the corpus files, so an edited corpus gets a fresh tokenizer."""
    from trainers import data

    path = data.demo_corpus_path() if source == data.DEMO_SOURCE else Path(source).expanduser()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [[str(p.relative_to(path) if path.is_dir() else p.name), p.stat().st_size, p.stat().st_mtime_ns]
            for p in files if p.exists()]


def tokenizer_training_texts(data_cfg: "DataConfig", languages: list[str]) -> Iterator[str]:
    """The text the model is trained on, from every language's training pool: each distinct sentence
    once, plus every pair's instruction as training phrases it — so the instruction words, paid on every
    training example, become whole tokens.

    No sentence of any language's test split is ever included, not even when it is also in another
    language's training pool (the same English UI string can be a German test source and a Spanish
    training source): one tokenizer serves every language, so it must not have seen any test sentence."""
    from trainers import data

    pools = data.load_languages(data_cfg, languages)
    seen = {text.casefold() for lang in pools.values() for p in lang.test for text in (p.source, p.target)}
    for lang in pools.values():
        for i, pair in enumerate(lang.train):
            yield translation_instruction(i, SOURCE_LANGUAGE_NAME, lang.name)
            for text in (pair.source, pair.target):
                key = text.casefold()
                if key not in seen:
                    seen.add(key)
                    yield text


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE (any script, no unknown tokens) whose prompt section headers are single tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, bos_id)])
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, clean_up_tokenization_spaces=False
    )
    # The headers are on every example: one token each instead of a handful of rare-word pieces.
    wrapped.add_tokens(list(SECTION_MARKERS))
    return wrapped


def _save_atomically(tokenizer: PreTrainedTokenizerFast, directory: Path) -> None:
    """Write into a temporary sibling and rename, so concurrent sweep workers never read a half-written
    tokenizer; if another worker won the race, its (identical) tokenizer is kept."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=directory.parent))
    try:
        tokenizer.save_pretrained(str(tmp))
        try:
            tmp.rename(directory)
        except OSError:
            if not (directory / "tokenizer.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ model


def checkpoint_dir(name: str, revision: str = "main") -> Path:
    """The checkpoint directory `model.name` stands for. Built-in names come first (as 'tiny' does), so
    a local directory with such a name is reached as ./name; then a local directory; then a Hub id
    (`org/name` at `revision`), resolved in the HF cache (trainers.hub)."""
    from trainers import hub, pretrained

    if pretrained.is_builtin(name) or pretrained.is_gguf_path(name):
        return pretrained.pretrained_checkpoint(name)
    path = Path(name).expanduser()
    if not path.exists() and hub.is_hub_id(name):
        return hub.hub_checkpoint(name, revision)
    if not path.is_dir() or not (path / "config.json").is_file():
        builtin = ", ".join(repr(n) for n in sorted(pretrained.BUILTIN_MODELS))
        raise UserError(
            f"model.name is {name!r}, which is neither 'tiny' nor a local Hugging Face checkpoint directory "
            f"(a directory holding config.json, the weights and the tokenizer files) nor a built-in "
            f"pretrained model ({builtin}), a .gguf file or a Hub id ('org/name').",
            f"Set model.name to 'tiny', {builtin}, a .gguf file, such a directory or a Hub id in the HF cache.",
        )
    return path


def model_provenance(model_cfg: "ModelConfig") -> dict:
    """What identifies the base model beyond its config entry, for a run's records: for a Hub id, the
    commit its revision resolved to in the cache (a branch such as `main` moves; the commit does not)."""
    from trainers import hub

    name = model_cfg.name
    if is_tiny(model_cfg) or Path(name).expanduser().exists() or not hub.is_hub_id(name):
        return {"model": name}
    return {"model": name, "revision": model_cfg.revision, "commit": hub.hub_commit(name, model_cfg.revision)}


def tiny_config(model_cfg: "ModelConfig", tokenizer) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=model_cfg.hidden_size,
        intermediate_size=model_cfg.intermediate_size or 4 * model_cfg.hidden_size,
        num_hidden_layers=model_cfg.layers,
        num_attention_heads=model_cfg.heads,
        num_key_value_heads=model_cfg.heads,
        max_position_embeddings=model_cfg.context_length,
        # Tied input/output embeddings: at this size the vocabulary matrix is most of the parameters.
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def build_model(cfg: "PlannerConfig", tokenizer, seed: int) -> "PreTrainedModel":
    """A fresh `tiny` model initialised from `seed`, or the local checkpoint (with LoRA when configured)."""
    m = cfg.model
    torch.manual_seed(seed)
    if is_tiny(m) and m.quantization != "none":
        raise UserError("model.quantization '4bit' (QLoRA) quantizes a pretrained checkpoint; the 'tiny' model is "
                        "trained from scratch.", "Set model.quantization to none, or model.name to a checkpoint.")
    if is_tiny(m):
        model = LlamaForCausalLM(tiny_config(m, tokenizer))
    else:
        from trainers.train import default_device

        path = checkpoint_dir(m.name, m.revision)
        device = default_device()
        quantized = quantization_kwargs(m, device)  # {} unless QLoRA (UserError where it cannot run)
        model = _from_checkpoint(AutoModelForCausalLM, path, local_files_only=True, dtype=base_dtype(m, device),
                                 attn_implementation=attention_kernel(m, device), **quantized)
        if len(tokenizer) > model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(len(tokenizer))
        if quantized:
            from peft import prepare_model_for_kbit_training

            # Norms and head to fp32 for stable training; checkpointing is train.gradient_checkpointing's call.
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    if m.lora:
        model = _with_lora(model, m)
    return model


def base_dtype(model_cfg: "ModelConfig", device: torch.device) -> torch.dtype:
    """The dtype a checkpoint's weights are loaded in. The frozen base of a LoRA run needs no fp32 copy: bf16
    on a GPU that has it (half the memory of a 7B base; peft keeps the trainable adapters in fp32 and
    model.precision decides autocast), and on a CPU when model.precision resolves to bf16 there (on CPU
    without native bf16 it would be emulated, slower). A fully trained model keeps fp32 master weights."""
    from trainers.train import native_bf16, resolve_precision

    if model_cfg.lora and ((device.type == "cuda" and native_bf16(device))
                           or resolve_precision(model_cfg.precision, device) == "bf16"):
        return torch.bfloat16
    return torch.float32


def quantization_kwargs(model_cfg: "ModelConfig", device: torch.device) -> dict:
    """`from_pretrained` arguments for `model.quantization` (experimental QLoRA: the frozen base in 4-bit
    NF4 with double quantization, computing in bf16); {} for 'none'. A UserError where it cannot run."""
    if model_cfg.quantization == "none":
        return {}
    import importlib.util

    if device.type != "cuda" or importlib.util.find_spec("bitsandbytes") is None:
        raise UserError(
            "model.quantization '4bit' (QLoRA, experimental) needs a CUDA GPU and the bitsandbytes package"
            + (" (this machine has no CUDA GPU)." if device.type != "cuda" else " (it is not installed)."),
            "Set model.quantization to none, or run on a CUDA GPU with `pip install bitsandbytes`.",
        )
    from accelerate import PartialState
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                bnb_4bit_compute_dtype=torch.bfloat16)
    # A 4-bit model cannot be moved after loading: each process loads it onto its own GPU.
    return {"quantization_config": config, "device_map": {"": PartialState().local_process_index}}


def _from_checkpoint(auto_class, path: Path, **kwargs):
    """`auto_class.from_pretrained` of a local checkpoint; a directory it cannot load is a UserError."""
    try:
        return auto_class.from_pretrained(str(path), **kwargs)
    except (OSError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(
            f"The checkpoint {path} cannot be loaded ({auto_class.__name__}): {first}",
            "Point model.name (or --model/--before) at a whole directory written by save_pretrained.",
        ) from None


def attention_kernel(model_cfg: "ModelConfig", device: torch.device) -> str:
    """`model.attention`; 'auto' is eager on CPU, where at proxy-run lengths (~100 tokens) it trains
    faster than the fused SDPA kernel, whose CPU backward is slow (benchmarks/train_throughput.py), and
    sdpa on accelerators."""
    if model_cfg.attention != "auto":
        return model_cfg.attention
    return "eager" if device.type == "cpu" else "sdpa"


def _with_lora(model, model_cfg: "ModelConfig"):
    from peft import LoraConfig, get_peft_model

    lora = model_cfg.lora
    peft_cfg = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,  # None: peft's default for the architecture
        task_type="CAUSAL_LM",
    )
    try:
        with warnings.catch_warnings():
            # peft asks the model for transformers' deprecated alias of is_activation_checkpointing, and
            # every final run printed that library-to-library FutureWarning to the user
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            return get_peft_model(model, peft_cfg)
    except ValueError as err:
        raise UserError(
            f"LoRA could not be applied to {model_cfg.name}: {err}",
            "Set model.lora.target_modules to module names of this architecture (e.g. [q_proj, v_proj]).",
        ) from None


def save_checkpoint(model, tokenizer, directory: str | Path) -> Path:
    """Save a trained model (LoRA merged into the weights) and its tokenizer as a checkpoint directory
    that `model.name` accepts (safetensors weights)."""
    directory = Path(directory)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


def count_parameters(model, trainable_only: bool = False) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    params = {id(p): p for p in model.parameters() if p.requires_grad or not trainable_only}
    return sum(p.numel() for p in params.values())
