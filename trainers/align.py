"""Cross-lingual alignment: the contrastive training term and the layer-wise representation analysis.

A sentence's representation at layer k is its hidden states there, pooled over the sentence's own tokens
(special tokens such as BOS are left out: a causal model's BOS state is the same for every sentence, so
it would only pull all representations towards one point). Pooling is the mean over tokens, or the
last token (the only one that has seen the whole sentence in a causal model). Layer 0 is the embedding
output, layer L the last hidden state (after the final norm for Llama-style models).

Training term (`train.objective: coit+align`): for the distinct translation pairs in a training batch,
pool the English sentences and their translations at `align.layer`, L2-normalise, and apply InfoNCE
with in-batch negatives at temperature τ (`align.temperature`, default 0.05): English sentence i must
pick its own translation among the batch's translations. `align.symmetric` averages that with the
X→English direction. The term, times `align.weight`, is added to the instruction loss on every step
(`trainers.train.train_model(extra_loss=...)`); each sentence is encoded on its own, without a prompt,
in one extra forward pass per step over the batch's 2N sentences (about as much work as the instruction
step itself; benchmarks/align_overhead.py measures it). Under DDP the two forward passes share one
backward pass, which DistributedDataParallel handles (each parameter's gradient is reduced once).

Analysis (`planner align-report`): for held-out test pairs and at every layer, the mean cosine of true
translation pairs against the mean over all mismatched pairs (the exact expectation for a random pair,
so no sampling noise), and top-1 retrieval accuracy English→X and X→English among the test pairs.
Written as `alignment/alignment.csv` (and `.json` with the provenance) with the columns `COLUMNS`.
The models come from a run directory (`before` = the run's initial model rebuilt from its seed,
`after` = its saved trained model), from checkpoints, or from training the same proxy run with and
without the term (`trainers.align_stages`).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Literal, Sequence

import torch
import torch.nn.functional as F

from core.errors import UserError
from core.files import atomic_write_texts
from trainers.train import Batch, ExtraLoss, accepts_logits_to_keep, autocast

if TYPE_CHECKING:
    from core.config import PlannerConfig
    from trainers.data import Pair

Pooling = Literal["mean", "last"]
POOLINGS: tuple[str, ...] = ("mean", "last")
ALIGN_OBJECTIVE = "coit+align"
ALIGNMENT_DIR = "alignment"
ALIGNMENT_CSV = "alignment.csv"
ALIGNMENT_JSON = "alignment.json"
COLUMNS = ("stage", "language", "layer", "cos_true", "cos_random", "retrieval_en_x", "retrieval_x_en")
BEFORE, AFTER = "before", "after"


# ------------------------------------------------------------------------------------------ pure math


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """Pool `hidden` [B, T, H] over the positions where `mask` [B, T] is true: their mean, or the state at
    the last such position. A row with no position set pools to zeros (mean) or position 0 (last)."""
    m = mask.to(hidden.dtype).unsqueeze(-1)
    if pooling == "mean":
        return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
    if pooling == "last":
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = torch.where(mask.bool(), positions, torch.zeros_like(positions)).amax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


def info_nce(
    anchors: torch.Tensor, positives: torch.Tensor, temperature: float, symmetric: bool = False
) -> torch.Tensor:
    """InfoNCE with in-batch negatives: row i of `anchors` [N, H] should be most similar (cosine) to row i
    of `positives` [N, H] among all N rows. Mean over anchors of −log softmax_j(cos(a_i, p_j)/τ)[i];
    `symmetric` averages it with the same loss from `positives` to `anchors`. Computed in float32."""
    if anchors.shape != positives.shape or anchors.ndim != 2:
        raise ValueError(f"anchors {tuple(anchors.shape)} and positives {tuple(positives.shape)} must both be [N, H]")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    a = F.normalize(anchors.float(), dim=-1)
    p = F.normalize(positives.float(), dim=-1)
    logits = a @ p.T / temperature
    labels = torch.arange(a.shape[0], device=a.device)
    loss = F.cross_entropy(logits, labels)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logits.T, labels))
    return loss


@dataclass(frozen=True)
class LayerAlignment:
    cos_true: float  # mean cosine of a sentence and its translation
    cos_random: float  # mean cosine of a sentence and another pair's translation
    retrieval_en_x: float  # share of English sentences whose nearest translation (cosine) is their own
    retrieval_x_en: float  # share of translations whose nearest English sentence is their own


def layer_alignment(source: torch.Tensor, target: torch.Tensor) -> LayerAlignment:
    """Alignment of paired representations `source` [N, H] (English) and `target` [N, H] (X), N ≥ 2.

    `cos_random` is the mean over all N(N−1) mismatched pairs, i.e. the exact expected cosine of a
    random pair of these sentences. Retrieval ties go to the lower index (`argmax`)."""
    n = source.shape[0]
    if n < 2 or target.shape != source.shape:
        shapes = f"{tuple(source.shape)} and {tuple(target.shape)}"
        raise ValueError(f"need two equally shaped [N ≥ 2, H] tensors, got {shapes}")
    sim = F.normalize(source.double(), dim=-1) @ F.normalize(target.double(), dim=-1).T
    truth = torch.arange(n, device=sim.device)
    diagonal = sim.diagonal()
    return LayerAlignment(
        cos_true=float(diagonal.mean()),
        cos_random=float((sim.sum() - diagonal.sum()) / (n * (n - 1))),
        retrieval_en_x=float((sim.argmax(dim=1) == truth).double().mean()),
        retrieval_x_en=float((sim.argmax(dim=0) == truth).double().mean()),
    )


def distinct_pairs(pairs: Iterable["Pair"]) -> list["Pair"]:
    """Pairs in order, leaving out any whose English or target side (case-insensitively) was already
    seen: a repeated sentence would be its own in-batch negative (an unlearnable target) and would make
    retrieval ambiguous. Also drops the repeats that reverse and cross-lingual examples of one pair add."""
    seen_source: set[str] = set()
    seen_target: set[str] = set()
    out = []
    for p in pairs:
        s, t = p.source.casefold(), p.target.casefold()
        if s in seen_source or t in seen_target:
            continue
        seen_source.add(s)
        seen_target.add(t)
        out.append(p)
    return out


# ---------------------------------------------------------------------------------- running the model


def resolve_layer(layer: int, n_layers: int) -> int:
    """`align.layer` as an index into the L+1 hidden states (0 = embeddings, L = last; negative counts
    from the end, so −1 is L)."""
    index = layer + n_layers + 1 if layer < 0 else layer
    if not 0 <= index <= n_layers:
        raise UserError(
            f"align.layer is {layer}, but the model has {n_layers} layers, so hidden states 0..{n_layers} "
            f"(or −{n_layers + 1}..−1 from the end) exist.",
            f"Set align.layer between {-(n_layers + 1)} and {n_layers}; 0 is the embedding output, −1 the last layer.",
        )
    return index


@dataclass
class SentenceBatch:
    """Right-padded sentences; `pool_mask` marks each sentence's own tokens (no padding, no specials)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    pool_mask: torch.Tensor

    def to(self, device) -> "SentenceBatch":
        return SentenceBatch(self.input_ids.to(device), self.attention_mask.to(device), self.pool_mask.to(device))


def encode_sentences(tokenizer, texts: Sequence[str], max_length: int) -> SentenceBatch:
    """Tokenize bare sentences as the model sees text (with its special tokens, e.g. BOS), cut at
    `max_length`. A sentence made only of special tokens would pool nothing, so then they are pooled."""
    enc = tokenizer(
        list(texts), add_special_tokens=True, truncation=True, max_length=max_length,
        return_special_tokens_mask=True,
    )
    width = max(len(ids) for ids in enc["input_ids"])
    shape = (len(texts), width)
    input_ids = torch.full(shape, tokenizer.pad_token_id, dtype=torch.long)
    attention = torch.zeros(shape, dtype=torch.long)
    pool_mask = torch.zeros(shape, dtype=torch.bool)
    for row, (ids, special) in enumerate(zip(enc["input_ids"], enc["special_tokens_mask"])):
        n = len(ids)
        input_ids[row, :n] = torch.tensor(ids)
        attention[row, :n] = 1
        own = torch.tensor(special, dtype=torch.bool).logical_not()
        pool_mask[row, :n] = own if own.any() else True
    return SentenceBatch(input_ids, attention, pool_mask)


def _unwrapped(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel wrapper (accelerate's prepare), for introspection."""
    return getattr(model, "module", model)


def hidden_states(model: torch.nn.Module, batch: SentenceBatch, skip_logits: bool) -> tuple[torch.Tensor, ...]:
    """All L+1 hidden states [B, T, H] of a sentence batch. `skip_logits` projects only the last position
    onto the vocabulary (the logits are not needed here, and they are most of a small model's work)."""
    kwargs = {"logits_to_keep": 1} if skip_logits else {}
    out = model(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask,
        output_hidden_states=True, use_cache=False, **kwargs,
    )
    return out.hidden_states


@dataclass
class AlignmentLoss:
    """The contrastive term as `train_model`'s `extra_loss`: weight × InfoNCE(English → X) over the
    distinct translation pairs of the batch. A batch with fewer than two such pairs (e.g. only general
    tasks) has no negatives and contributes zero."""

    tokenizer: object
    layer: int
    pooling: Pooling
    temperature: float
    symmetric: bool
    weight: float
    max_length: int
    _skip_logits: bool | None = field(default=None, init=False, repr=False)

    def __call__(self, model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        device = batch.input_ids.device
        pairs = distinct_pairs(e.pair for e in batch.examples if e.pair is not None)
        if len(pairs) < 2:
            return torch.zeros((), device=device)
        return self.weight * self.contrastive(model, pairs, device)

    def contrastive(self, model: torch.nn.Module, pairs: Sequence["Pair"], device) -> torch.Tensor:
        """Unweighted InfoNCE of `pairs`: English and X sentences in one forward pass."""
        if self._skip_logits is None:
            self._skip_logits = accepts_logits_to_keep(_unwrapped(model))
        n = len(pairs)
        texts = [p.source for p in pairs] + [p.target for p in pairs]
        sentences = encode_sentences(self.tokenizer, texts, self.max_length).to(device)
        states = hidden_states(model, sentences, self._skip_logits)
        pooled = pool(states[resolve_layer(self.layer, len(states) - 1)], sentences.pool_mask, self.pooling)
        return info_nce(pooled[:n], pooled[n:], self.temperature, self.symmetric)


def alignment_loss(cfg: "PlannerConfig", tokenizer) -> ExtraLoss | None:
    """The `extra_loss` for `train_model` that `cfg` asks for: the contrastive term when
    `train.objective` is 'coit+align' with a positive `align.weight`, else None (nothing to add)."""
    a = cfg.align
    if cfg.train.objective != ALIGN_OBJECTIVE or a.weight == 0:
        return None
    return AlignmentLoss(
        tokenizer=tokenizer, layer=a.layer, pooling=a.pooling, temperature=a.temperature,
        symmetric=a.symmetric, weight=a.weight, max_length=cfg.model.context_length,
    )


# -------------------------------------------------------------------------------------------- analysis


@torch.inference_mode()
def layer_representations(
    model: torch.nn.Module, tokenizer, texts: Sequence[str], pooling: Pooling, max_length: int,
    batch_size: int = 64, precision: str = "fp32",
) -> torch.Tensor:
    """Pooled representations of `texts` at every layer: a float32 CPU tensor [L+1, N, H]."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    skip_logits = accepts_logits_to_keep(model)
    chunks = []
    try:
        for k in range(0, len(texts), batch_size):
            sentences = encode_sentences(tokenizer, texts[k : k + batch_size], max_length).to(device)
            with autocast(device, precision):
                states = hidden_states(model, sentences, skip_logits)
            chunks.append(torch.stack([pool(h.float(), sentences.pool_mask, pooling) for h in states]).cpu())
    finally:
        model.train(was_training)
    return torch.cat(chunks, dim=1)


@dataclass(frozen=True)
class AlignmentRow:
    """One row of `alignment.csv`: one stage × language × layer."""

    stage: str
    language: str
    layer: int
    cos_true: float
    cos_random: float
    retrieval_en_x: float
    retrieval_x_en: float


def alignment_rows(
    model: torch.nn.Module, tokenizer, pairs: Sequence["Pair"], language: str, stage: str,
    pooling: Pooling = "mean", max_length: int = 128, batch_size: int = 64, precision: str = "fp32",
) -> list[AlignmentRow]:
    """Per layer, the alignment of `model`'s representations of the distinct `pairs` (held-out ones)."""
    pairs = distinct_pairs(pairs)
    if len(pairs) < 2:
        raise UserError(
            f"Language {language}: the alignment analysis needs at least 2 distinct test pairs, got {len(pairs)}.",
            "Raise data.test_size (or --pairs) so there are translations to tell apart.",
        )
    texts = [p.source for p in pairs] + [p.target for p in pairs]
    reps = layer_representations(model, tokenizer, texts, pooling, max_length, batch_size, precision)
    n = len(pairs)
    return [
        AlignmentRow(stage, language, layer, **asdict(layer_alignment(reps[layer, :n], reps[layer, n:])))
        for layer in range(reps.shape[0])
    ]


def write_alignment(rows: Sequence[AlignmentRow], directory: str | Path, meta: dict | None = None) -> tuple[Path, Path]:
    """Write `alignment.csv` (columns `COLUMNS`) and `alignment.json` (the same rows under "rows", beside
    `meta`: how they were measured) into `directory`, each atomically. Returns both paths."""
    d = Path(directory)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(asdict(r) for r in rows)
    body = {**(meta or {}), "columns": list(COLUMNS), "rows": [asdict(r) for r in rows]}
    csv_path, json_path = d / ALIGNMENT_CSV, d / ALIGNMENT_JSON
    # Both or neither: a table beside another analysis's description would be read without a word.
    atomic_write_texts({csv_path: buf.getvalue(), json_path: json.dumps(body, indent=2, ensure_ascii=False) + "\n"})
    return csv_path, json_path


def read_alignment(path: str | Path) -> list[AlignmentRow]:
    """Read back an `alignment.csv` written by `write_alignment`."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return [
            AlignmentRow(r["stage"], r["language"], int(r["layer"]),
                         *(float(r[c]) for c in COLUMNS[3:]))
            for r in csv.DictReader(f)
        ]
