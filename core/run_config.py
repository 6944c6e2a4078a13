"""The sections of the config schema (core.config) that describe one training run: where the pairs come
from (`data`), the base model (`model`), the recipe (`train`) and the alignment term (`align`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from core.strict import Strict as _Strict


class DataConfig(_Strict):
    """Where the English→X pairs come from and how each language is split."""

    source: str = Field(
        "demo",
        description="'demo' for the embedded corpus, or a path: a .jsonl/.tsv/.csv/.parquet file, a "
        "directory of Moses-style line files (train.en/train.de), a `datasets` save_to_disk directory, or "
        "'hf:<org>/<name>', a Hugging Face dataset read from the local `datasets` cache (see dataset_config, split).",
    )
    dataset_config: str | None = Field(
        None, description="With data.source 'hf:<name>': the dataset's configuration (subset) name, e.g. 'de-en'."
    )
    split: str | None = Field(
        None, description="With data.source 'hf:<name>': the split to read (e.g. 'train'); default: every split, "
        "pooled (the test split is cut by the planner)."
    )
    test_source: str | dict[str, str] | None = Field(
        None, description="A fixed test set instead of one cut from data.source: a mapping language code -> "
        "file, or one path (with '{lang}' standing for the code, or a table holding every language). With "
        "data.test_english the files are target-side line files (FLORES-200 devtest); otherwise any format "
        "data.source reads. Pairs sharing a side with any of its sentences are removed from training pools."
    )
    test_english: str | None = Field(
        None, description="With data.test_source: the English line file every target-side test file is "
        "aligned with line by line (e.g. flores200_dataset/devtest/eng_Latn.devtest)."
    )
    format: Literal["auto", "jsonl", "tsv", "csv", "moses", "parquet", "hf"] = "auto"
    source_column: str = Field("en", description="English column for TSV/CSV/parquet/hf tables.")
    target_column: str | None = Field(
        None, description="Target column for single-language tables; default: the language code."
    )
    test_size: int = Field(200, ge=1, description="Fixed test pairs per language (never trained on); with "
                           "data.test_source, the first this many of its sentences (in file order).")
    split_seed: int = Field(0, description="Seed of the per-language shuffle that fixes test and training order.")
    max_chars: int = Field(300, ge=10, description="Pairs with a side longer than this are dropped.")
    general_dir: str | None = Field(
        None, description="Directory of per-language `{lang}.jsonl` general instructions answered in X."
    )
    general_ratio: float = Field(0.0, ge=0.0, description="General-task examples per translation example.")
    language_names: dict[str, str] = Field(
        default_factory=dict, description="Display names for codes the built-in table does not know."
    )

    @model_validator(mode="after")
    def _companions_have_their_key(self) -> "DataConfig":
        # A key that only means something beside another would otherwise be silently ignored.
        if self.test_english and not self.test_source:
            raise ValueError("data.test_english is set but data.test_source is not: set both (or neither)")
        if (self.dataset_config or self.split) and not self.source.startswith("hf:"):
            raise ValueError("data.dataset_config and data.split apply only to a data.source 'hf:<org>/<name>'")
        return self


class LoraConfig(_Strict):
    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | None = None


class ModelConfig(_Strict):
    """`tiny` builds a small Llama from scratch; `smollm2-135m` is the built-in pretrained instruct model
    (docs/base-model.md); anything else is a .gguf file or a local HF checkpoint directory."""

    name: str = Field(
        "tiny",
        description="'tiny', a built-in pretrained model ('smollm2-135m', see docs/base-model.md), a .gguf file, "
        "a local Hugging Face checkpoint directory, or a Hub id ('org/name') read from the local HF cache.",
    )
    revision: str = Field(
        "main", description="With a Hub id in model.name: the branch, tag or commit to load from the HF cache."
    )
    hidden_size: int = Field(128, ge=8)
    layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    intermediate_size: int | None = Field(None, description="Default: 4 × hidden_size.")
    vocab_size: int = Field(8000, ge=256, description="BPE vocabulary of the `tiny` tokenizer.")
    context_length: int = Field(128, ge=16)
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "fp32", description="'auto': bf16 where the device computes it natively (CUDA with bf16, a CPU with "
        "AVX512-BF16 or AMX), else fp32."
    )
    threads: int | None = Field(None, ge=1, description="torch threads; default: all cores / workers.")
    attention: Literal["auto", "eager", "sdpa"] = Field(
        "auto", description="Attention kernel of a checkpoint: 'auto' is eager on CPU (faster at proxy-run "
        "lengths, benchmarks/train_throughput.py) and sdpa on a GPU."
    )
    compile: bool | None = Field(
        None, description="torch.compile the training forward pass; default (null): on a GPU only (it was "
        "slower on CPU for proxy runs, which are too short to repay compilation)."
    )
    lora: LoraConfig | None = None
    quantization: Literal["none", "4bit"] = Field(
        "none", description="Experimental. '4bit': QLoRA, the frozen base of a LoRA run loaded in 4-bit NF4 "
        "(bitsandbytes; needs model.lora, a CUDA GPU and the bitsandbytes package)."
    )

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> "ModelConfig":
        if self.hidden_size % self.heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by heads ({self.heads})")
        if self.quantization != "none" and self.lora is None:
            raise ValueError("model.quantization '4bit' (QLoRA) quantizes the frozen base of a LoRA run: set model.lora")
        return self


class AlignConfig(_Strict):
    """The contrastive cross-lingual alignment term (used when train.objective is coit+align)."""

    weight: float = Field(0.5, ge=0.0)
    layer: int = Field(-1, description="Hidden-state layer to align (0 = embeddings, -1 = last).")
    pooling: Literal["mean", "last"] = "mean"
    temperature: float = Field(0.05, gt=0.0)
    symmetric: bool = False


class TrainConfig(_Strict):
    """One CoIT proxy run."""

    objective: Literal["coit", "coit+align"] = "coit"
    epochs: float = Field(10.0, gt=0.0, description="Epochs over the run's pairs (fixed-epochs protocol).")
    max_steps: int | None = Field(None, ge=1, description="Fixed-steps protocol; overrides epochs when set.")
    batch_size: int = Field(
        16, ge=1, description="The GLOBAL batch: examples per optimizer step over all processes of a launch "
        "(world × accumulation × micro_batch_size), so the recipe is the same on any number of GPUs."
    )
    micro_batch_size: int | None = Field(
        None, ge=1, description="Examples per forward/backward pass on one process; the gradients of "
        "batch_size / (processes × micro_batch_size) passes are accumulated into one step, weighted by response "
        "tokens (the same step as one full batch). Default (null): each process's whole share in one pass."
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass instead of storing them (the model's "
        "gradient_checkpointing_enable, non-reentrant): less memory, ~30% more compute, the same losses."
    )
    learning_rate: float = Field(2e-3, gt=0.0)
    warmup_ratio: float = Field(0.05, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    reverse_direction: bool = Field(False, description="Also train X→English translation instructions.")
    cross_lingual_instructions: bool = Field(
        False, description="Also train instructions in English answered in X ('… Answer in {language}:')."
    )
    prompt_format: Literal["instruction", "chat"] = Field(
        "instruction", description="'instruction': '### Instruction/Input/Response' sections; 'chat': the "
        "tokenizer's own chat template (a pretrained chat model), the response ending its assistant turn."
    )
    system_prompt: str | None = Field(
        "", description="chat only: the system message ('' = an empty one; null = the template's default)."
    )
    eval_batch_size: int = Field(64, ge=1)
    eval_size: int | None = Field(None, ge=1, description="Evaluate on the first N test pairs (default all).")
    max_new_tokens: int | None = Field(
        None, ge=1, description="Upper limit on generated tokens per test translation; default (null): none "
        "beyond ~1.5x the longest reference of the batch (in the model's tokens) and the context length."
    )
    spbleu: bool = Field(
        False, description="Also score spBLEU (sacreBLEU BLEU with the 'flores200' SentencePiece tokenizer; "
        "needs `sentencepiece` and the tokenizer model in sacreBLEU's cache). Always on when fit.metric is spbleu."
    )
    no_repeat_ngram_size: int = Field(
        0, ge=0, description="Greedy decoding never repeats an n-gram of its own output (0 = off); the prompt "
        "is not counted, so copying names or numbers from the source stays allowed."
    )
    repetition_penalty: float = Field(
        1.0, ge=1.0, description="Divide the logits of tokens already in the output by this (1 = off)."
    )
    samples: int = Field(5, ge=0, description="Sample translations written to the run directory.")
    comet_checkpoint: str | None = Field(
        None, description="Local COMET checkpoint file (needs `unbabel-comet`); adds a 'comet' metric."
    )
