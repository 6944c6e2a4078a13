"""A generic instruction-tuning loop on a list of `Example`s (one proxy run, or the final mixture).

Built on `accelerate`, so the same code trains on CPU, one GPU, or many GPUs under `accelerate launch` /
`torchrun` (DDP from `accelerator.prepare`, or FSDP2 sharding for final runs: `trainers.scale`).

- The recipe does not depend on the number of processes: `train.batch_size` is the GLOBAL batch. Each
  optimizer step takes one batch of one shared, seeded batch plan and splits it into world × accumulation
  micro-batches of `train.micro_batch_size` rows (`trainers.scale.batch_layout`); every micro-batch's
  loss is weighted by its share of the whole batch's response tokens, so the step's gradient is the
  one-process full-batch gradient, and the number of optimizer steps is the same on any number of processes.

- Loss: mean negative log-likelihood of the response tokens (+EOS) only. Logits are computed only at
  the positions that predict a response token (`logits_to_keep` with a boolean mask), which skips most of
  the vocabulary projection and softmax — the largest cost of a small model with an 8k vocabulary.
- Batching: length-grouped. Each epoch is shuffled, cut into mega-batches of 64 batches, each sorted by
  length and split into batches, whose order is shuffled again: little padding, still random.
- Schedule: AdamW, linear warmup then cosine decay to zero, gradient-norm clipping.
- Length: `epochs` over the examples (fixed-epochs protocol, fractional allowed) or `train.max_steps`
  optimizer steps (fixed-steps protocol).
- Determinism: the batch plan, the initialisation and any dropout derive from `seed`; on CPU, equal
  config, seed and thread count give bit-identical runs.
- `extra_loss(model, batch) -> scalar` is added to the instruction loss on every step (e.g. the
  contrastive alignment term); `batch.examples` carries each row's `Example` and so its translation pair.
- Divergence: a loss that becomes NaN or infinite stops the run with `TrainingDiverged`. Its weights are
  then NaN, and the model it would return still translates — badly (chrF ≈ 0) — so without the check a
  diverged run would be recorded, fitted and compared as if it were a result.
"""

from __future__ import annotations

import inspect
import math
import time
from pathlib import Path
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import Failure
from trainers.prompts import Example, PromptFormat
from trainers.scale import (
    agreed, all_finite, barrier_timeout, batch_layout, enable_gradient_checkpointing, micro_batches, shard,
    sum_over_processes,
)

if TYPE_CHECKING:
    from core.config import PlannerConfig

IGNORE = -100
MEGABATCH = 64  # batches per length-sorted group: bigger pads less, smaller shuffles more


@dataclass(frozen=True)
class Encoded:
    """Token ids of one example; `n_prompt` leading tokens carry no loss."""

    input_ids: tuple[int, ...]
    n_prompt: int

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class Batch:
    """A right-padded batch. `labels` is `IGNORE` on prompt and padding positions."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    examples: list[Example] = field(default_factory=list)

    def to(self, device) -> "Batch":
        return Batch(
            self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device), self.examples
        )

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum())


ExtraLoss = Callable[[torch.nn.Module, Batch], torch.Tensor]
# Steps between looks at the device (the progress bar's loss, the divergence flag): each look waits for
# it, so not every step.
LOOK_EVERY_STEPS = 10


class TrainingDiverged(Failure):
    """The training loss became NaN or infinite: the run has no result (a sweep records it as failed)."""

    def __init__(self, description: str, step: int, steps: int, learning_rate: float):
        super().__init__(
            f"{description}: training diverged (the loss or the weights became NaN or infinite) by step {step} "
            f"of {steps} at learning rate {learning_rate:g}; the run has no result.",
            "Lower train.learning_rate or train.max_grad_norm, or use model.precision fp32, and run again.")


@dataclass
class TrainStats:
    steps: int
    epochs: float
    examples: int  # training examples (one epoch) after dropping those with no response token left
    truncated: int  # examples cut at the context length
    tokens: int  # non-padding tokens processed by this process, over all steps
    padded_tokens: int  # tokens including padding (the work actually done)
    response_tokens: int  # tokens that carried loss
    seconds: float
    final_loss: float  # mean instruction loss over the last 10% of steps
    losses: list[float] = field(default_factory=list)  # instruction loss per step
    extra_losses: list[float] = field(default_factory=list)  # extra_loss per step (when given)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def zero_shot_stats() -> TrainStats:
    """The statistics of a run that trains on nothing (the zero-shot point): no step, no token, no time."""
    return TrainStats(steps=0, epochs=0.0, examples=0, truncated=0, tokens=0, padded_tokens=0, response_tokens=0,
                      seconds=0.0, final_loss=float("nan"))


# ------------------------------------------------------------------------------------------- encoding


def encode_examples(
    tokenizer, examples: Sequence[Example], max_length: int, prompts: PromptFormat | None = None
) -> tuple[list[Encoded | None], int]:
    """Tokenize prompts (in the `prompts` format; default the instruction one) and responses separately —
    exactly what the model sees when it generates from the prompt — end each response with the format's
    end token (EOS, or the chat template's end of turn), and cut at `max_length`. Returns one `Encoded`
    per example — None when the prompt alone fills the context — and how many were truncated."""
    prompts = prompts or PromptFormat(tokenizer)
    prompt_ids = prompts.prompt_ids(examples)
    responses = tokenizer([e.response for e in examples], add_special_tokens=False)["input_ids"]
    end = prompts.end_id
    out: list[Encoded | None] = []
    truncated = 0
    for p, r in zip(prompt_ids, responses):
        ids = list(p) + list(r) + [end]
        if len(ids) > max_length:
            truncated += 1
            ids = ids[:max_length]
        out.append(Encoded(tuple(ids), len(p)) if len(ids) > len(p) else None)
    return out, truncated


def collate(encoded: Sequence[Encoded], examples: Sequence[Example], pad_id: int) -> Batch:
    width = max(len(e) for e in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE, dtype=torch.long)
    for row, enc in enumerate(encoded):
        n = len(enc)
        input_ids[row, :n] = torch.tensor(enc.input_ids)
        attention[row, :n] = 1
        labels[row, enc.n_prompt : n] = input_ids[row, enc.n_prompt : n]
    return Batch(input_ids, attention, labels, list(examples))


# ------------------------------------------------------------------------------------------- batching


def length_grouped_epoch(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """One epoch of batches (indices into `lengths`): random, but each batch holds similar lengths."""
    order = rng.permutation(len(lengths))
    group = batch_size * MEGABATCH
    batches: list[list[int]] = []
    for start in range(0, len(order), group):
        mega = sorted(order[start : start + group].tolist(), key=lambda i: -lengths[i])
        batches.extend(mega[k : k + batch_size] for k in range(0, len(mega), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def steps_for(n_examples: int, batch_size: int, epochs: float, max_steps: int | None) -> int:
    """Optimizer steps of a run: `max_steps` (fixed-steps protocol), or enough for `epochs` passes when
    each step takes one global batch of `batch_size` (fixed-epochs protocol) — on any number of processes."""
    if max_steps is not None:
        return max_steps
    return max(1, math.ceil(epochs * math.ceil(n_examples / batch_size)))


def batch_plan(lengths: Sequence[int], batch_size: int, total_batches: int, seed: int) -> list[list[int]]:
    """The first `total_batches` batches of an endless sequence of reshuffled epochs."""
    plan: list[list[int]] = []
    epoch = 0
    while len(plan) < total_batches:
        plan.extend(length_grouped_epoch(lengths, batch_size, np.random.default_rng([seed, epoch])))
        epoch += 1
    return plan[:total_batches]


# ----------------------------------------------------------------------------------------------- loss


def accepts_logits_to_keep(model: torch.nn.Module) -> bool:
    """Whether the (unwrapped, possibly peft-wrapped) model's forward can skip unneeded logits with a
    per-row boolean mask (transformers 5 models; older ones take only a count or 1-D positions)."""
    from transformers import modeling_utils

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return hasattr(modeling_utils, "slice_logits_to_keep") and "logits_to_keep" in inspect.signature(
        base.forward
    ).parameters


def response_nll(model: torch.nn.Module, batch: Batch, logits_to_keep: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed NLL of the response tokens and their count (teacher forcing).

    Position t predicts token t+1, so the logits needed are those at positions whose next label is a
    response token; only those are projected onto the vocabulary.
    """
    targets = batch.labels[:, 1:]
    needed = targets != IGNORE
    keep = F.pad(needed, (0, 1), value=False)  # back to the full width; the last position predicts nothing
    if logits_to_keep:
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, logits_to_keep=keep, use_cache=False)
        logits = out.logits
    else:
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
        logits = out.logits[keep]
    nll = F.cross_entropy(logits.float(), targets[needed], reduction="sum")
    return nll, needed.sum()


def response_nll_rows(model: torch.nn.Module, batch: Batch, logits_to_keep: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of `batch`: the summed NLL of its response tokens and their count (teacher forcing), for
    statistics over sentences (a test set's sampling error). Same logits as `response_nll`."""
    targets = batch.labels[:, 1:]
    needed = targets != IGNORE
    keep = F.pad(needed, (0, 1), value=False)
    if logits_to_keep:
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, logits_to_keep=keep,
                       use_cache=False).logits
    else:
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits[keep]
    token_nll = F.cross_entropy(logits.float(), targets[needed], reduction="none")
    rows = needed.nonzero()[:, 0]  # row-major, the order of both the kept logits and targets[needed]
    per_row = torch.zeros(needed.shape[0], dtype=torch.float64, device=token_nll.device)
    per_row.index_add_(0, rows, token_nll.double())
    return per_row, needed.sum(dim=1)


def _has_accelerator_device() -> bool:
    if hasattr(torch, "accelerator"):  # torch ≥ 2.6: CUDA, XPU, MPS, ...
        return torch.accelerator.is_available()
    return torch.cuda.is_available()


def distributed_state(timeout_minutes: float | None = None):
    """accelerate's process state. The first call of a process initialises the process group (under a
    multi-process launch), with `timeout_minutes` as the limit of every collective and barrier."""
    from accelerate import PartialState

    kwargs = {"timeout": barrier_timeout(timeout_minutes)} if timeout_minutes else {}  # ignored once initialised
    return PartialState(cpu=not _has_accelerator_device(), **kwargs)


def is_main_process() -> bool:
    """True in a single-process run, and on rank 0 of a multi-process launch."""
    return distributed_state().is_main_process


def wait_for_everyone() -> None:
    """Every process of a multi-process launch waits here for the others (within the process group's
    timeout, `final.barrier_timeout_minutes`); a no-op in a single process."""
    distributed_state().wait_for_everyone()


def default_device() -> torch.device:
    """The device a single-process run trains on (what accelerate picks): the first GPU, else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 matmuls natively (faster than fp32), not by emulation."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return any(check() for check in checks if check is not None)
    return False


def resolve_precision(precision: str, device: torch.device | None = None) -> str:
    """`model.precision` with 'auto' decided for the device: bf16 where it is native, else fp32."""
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device or default_device()) else "fp32"


def autocast(device: torch.device, precision: str):
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def compile_enabled(model_cfg, device: torch.device) -> bool:
    """`model.compile`, by default on a GPU only: on CPU compiling cost more than it saved for proxy runs
    (benchmarks/train_throughput.py), and a run is too short to repay the compilation."""
    return model_cfg.compile if model_cfg.compile is not None else device.type == "cuda"


# ----------------------------------------------------------------------------------------------- loop


def _optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW; weight decay only on matrices (not norms, biases)."""
    decay, no_decay = [], []
    for p in {id(p): p for p in model.parameters() if p.requires_grad}.values():
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8)


def train_model(
    cfg: "PlannerConfig",
    model: torch.nn.Module,
    tokenizer,
    examples: Sequence[Example],
    seed: int,
    epochs: float | None = None,
    progress: bool = True,
    extra_loss: ExtraLoss | None = None,
    description: str = "train",
    checkpoint: Path | None = None,
    checkpoint_key: str = "",
    checkpoint_every: int | None = None,
    sharding: str = "none",
) -> TrainStats:
    """Train `model` in place on `examples` with the config's `train` settings; `epochs` overrides
    `train.epochs` (the final run sets its own). Returns what happened, per step. `sharding` 'fsdp' shards
    a full fine-tune over the processes of a multi-process launch (`final.sharding`); the model then stays
    sharded, and every process must take part in each later forward pass (evaluation included).

    With `checkpoint` (a file) and `checkpoint_every` steps, the run saves its whole state there
    (`trainers.resume`) and, if a checkpoint of the same run (`checkpoint_key`) is already there, resumes
    from it: the result is the uninterrupted run's, step for step."""
    from trainers import resume
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm
    from transformers import get_cosine_schedule_with_warmup

    tc = cfg.train
    set_seed(seed)
    encoded, truncated = encode_examples(
        tokenizer, examples, cfg.model.context_length, PromptFormat.from_config(cfg, tokenizer)
    )
    kept = [i for i, e in enumerate(encoded) if e is not None]
    if not kept:
        raise ValueError("no example has a response token within the context length")
    lengths = [len(encoded[i]) for i in kept]

    # Without an accelerator device, say so: accelerate then runs a torchrun / `accelerate launch` job
    # as CPU data parallelism (gloo) instead of N unrelated single-process runs.
    distributed_state(cfg.final.barrier_timeout_minutes)  # first: the process group gets its timeout
    accelerator = Accelerator(cpu=not _has_accelerator_device())
    world, rank = accelerator.num_processes, accelerator.process_index
    layout = batch_layout(tc.batch_size, world, tc.micro_batch_size)
    steps = steps_for(len(kept), tc.batch_size, tc.epochs if epochs is None else epochs, tc.max_steps)
    # One global plan of `steps` batches, the same on every process; each process takes its micro-batches
    # of every batch (`micro_batches`), so the processes together cover the requested epochs once.
    plan = batch_plan(lengths, tc.batch_size, steps, seed)
    # Response tokens each example contributes to the loss (what `response_nll` counts for its row).
    targets = [len(e) - max(e.n_prompt, 1) if e is not None else 0 for e in encoded]

    model.train()
    if tc.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    sharded = sharding == "fsdp" and world > 1
    if sharded:  # parameters become shards: the optimizer is built on them, and no DDP wrapper is added
        model = shard(model, accelerator.device)
        optimizer = _optimizer(model, tc.learning_rate, tc.weight_decay)
    else:
        optimizer = _optimizer(model, tc.learning_rate, tc.weight_decay)
        model, optimizer = accelerator.prepare(model, optimizer)
    scheduler = get_cosine_schedule_with_warmup(optimizer, math.ceil(tc.warmup_ratio * steps), steps)
    use_keep = accepts_logits_to_keep(accelerator.unwrap_model(model))
    params = [p for p in model.parameters() if p.requires_grad]
    forward = model
    if compile_enabled(cfg.model, accelerator.device):
        # Only the training forward is compiled (shapes vary with the batch: dynamic); evaluation
        # generates with the plain module. Whatever dynamo cannot compile runs eagerly, so `auto` on a
        # new device can cost speed but never the run.
        import torch._dynamo as dynamo  # (a plain `import torch._dynamo` would make `torch` local here)

        dynamo.config.suppress_errors = True
        forward = torch.compile(model, dynamic=True)
    precision = resolve_precision(cfg.model.precision, accelerator.device)

    # Checkpoints are a single-process feature: under a multi-process launch every rank would race on
    # one file, and such runs are restarted whole.
    saving = checkpoint is not None and bool(checkpoint_every) and world == 1
    key = f"{checkpoint_key}:{steps}:{seed}:{len(kept)}:{sum(lengths)}"
    done = resume.Progress()
    if saving:
        body = resume.load(checkpoint, key)
        if body is not None:
            done = resume.restore(body, accelerator.unwrap_model(model), optimizer, scheduler)
    # On the device, as the new steps' losses are (stacked together at the end).
    losses: list[torch.Tensor] = [torch.tensor(v, device=accelerator.device) for v in done.losses]
    extras: list[torch.Tensor] = [torch.tensor(v, device=accelerator.device) for v in done.extras]
    tokens, padded, response_tokens, seen = done.tokens, done.padded, done.response_tokens, done.seen
    bar = tqdm(total=steps, initial=done.step, desc=description + (f" (resumed at step {done.step})" if done.step else ""),
               unit="step", disable=not (progress and accelerator.is_local_main_process))
    start = time.perf_counter() - done.seconds
    finite = torch.ones((), dtype=torch.bool, device=accelerator.device)  # every loss so far was finite
    # One micro-batch of the whole batch in one process: the loss is exactly the batch's mean (the
    # recipe before accumulation existed, bit for bit); otherwise each micro-batch's summed loss is
    # divided by the whole global batch's response tokens.
    whole = world == 1 and layout.accumulation == 1
    # The batch plan is fixed, so a resumed run takes exactly the steps left after the checkpoint.
    for step, rows in enumerate(plan[done.step:], start=done.step):
        seen += len(rows)
        n_targets = sum(targets[kept[r]] for r in rows)
        mine = micro_batches(rows, layout, rank)
        step_loss = step_extra = None
        for a, part in enumerate(mine):
            # A short last batch of an epoch can leave a process without rows: it still runs (a real row
            # at weight 0) so that every process takes part in the gradient's reduction.
            weight = 1.0 if part else 0.0
            idx = [kept[r] for r in (part or rows[:1])]
            batch = collate([encoded[i] for i in idx], [examples[i] for i in idx], tokenizer.pad_token_id)
            if part:  # counted on the host before the copy: the loop never waits on the device for bookkeeping
                tokens += batch.n_tokens
                padded += batch.input_ids.numel()
                response_tokens += int((batch.labels != IGNORE).sum())
            batch = batch.to(accelerator.device)
            # Gradients are reduced across processes once per step, on its last micro-batch (DDP).
            syncing = a == len(mine) - 1 or sharded or world == 1
            with (nullcontext() if syncing else accelerator.no_sync(model)), autocast(accelerator.device, precision):
                nll, count = response_nll(forward, batch, use_keep)
                if whole:
                    loss = nll / count
                else:  # its share of the global batch's mean; DDP/FSDP average over processes, hence × world
                    loss = nll * (weight * world / max(n_targets, 1))
                total = loss
                if extra_loss is not None:
                    aux = extra_loss(model, batch)  # a mean over its rows: weighted by the rows' share
                    share = weight * len(idx) / len(rows)
                    total = total + (aux if whole else aux * (share * world))
                    step_extra = _add(step_extra, aux.detach() if whole else aux.detach() * share)
            finite &= torch.isfinite(total.detach())  # on the device: no wait here
            accelerator.backward(total)
            step_loss = _add(step_loss, loss.detach() if whole else loss.detach() / world)
        if sharded:
            torch.nn.utils.clip_grad_norm_(params, tc.max_grad_norm)
        else:
            accelerator.clip_grad_norm_(params, tc.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

        losses.append(step_loss)
        if step_extra is not None:
            extras.append(step_extra)
        bar.update()
        looking = step % LOOK_EVERY_STEPS == 0 or step == steps - 1
        saving_now = saving and (step + 1) % checkpoint_every == 0 and step + 1 < steps
        if world > 1 and looking:  # one process's NaN stops them all, at the same step
            finite = agreed(finite)
        if (looking or saving_now) and not bool(finite):
            bar.close()  # never save or return a diverged model
            raise TrainingDiverged(description, step + 1, steps, tc.learning_rate)
        if looking:
            elapsed = time.perf_counter() - start
            shown = sum_over_processes(step_loss, world)  # the whole batch's loss, not this process's share
            bar.set_postfix(loss=f"{shown.item():.3f}", tok_s=f"{tokens / max(elapsed, 1e-9):,.0f}")
        if saving_now:
            resume.save(checkpoint, key, accelerator.unwrap_model(model), optimizer, scheduler, resume.Progress(
                step=step + 1, tokens=tokens, padded=padded, response_tokens=response_tokens, seen=seen,
                seconds=time.perf_counter() - start, losses=[float(v) for v in losses],
                extras=[float(v) for v in extras]))
    bar.close()
    seconds = time.perf_counter() - start
    # The last update can break the weights after the last loss was computed (one step of a huge rate).
    if not bool(all_finite(params, accelerator.device)):
        raise TrainingDiverged(description, steps, steps, tc.learning_rate)

    accelerator.unwrap_model(model).eval()
    # Each process holds its share of every step's loss: the run's curve is their sum.
    history = sum_over_processes(torch.stack(losses).float(), world).cpu().tolist()
    extra_history = sum_over_processes(torch.stack(extras).float(), world).cpu().tolist() if extras else []
    tail = history[-max(1, len(history) // 10) :]
    return TrainStats(
        steps=steps,
        epochs=seen / len(kept),
        examples=len(kept),
        truncated=truncated,
        tokens=tokens,
        padded_tokens=padded,
        response_tokens=response_tokens,
        seconds=seconds,
        final_loss=float(np.mean(tail)),
        losses=history,
        extra_losses=extra_history,
    )


def _add(total: torch.Tensor | None, value: torch.Tensor) -> torch.Tensor:
    return value if total is None else total + value


def iterate_batches(
    tokenizer, examples: Sequence[Example], batch_size: int, max_length: int, prompts: PromptFormat | None = None
) -> Iterator[Batch]:
    """Length-sorted batches in a fixed order, for scoring (teacher-forced loss). An example whose prompt
    alone fills the context has nothing to score and is left out."""
    encoded, _ = encode_examples(tokenizer, examples, max_length, prompts)
    order = sorted((i for i, e in enumerate(encoded) if e is not None), key=lambda i: len(encoded[i]))
    for k in range(0, len(order), batch_size):
        idx = order[k : k + batch_size]
        yield collate([encoded[i] for i in idx], [examples[i] for i in idx], tokenizer.pad_token_id)
