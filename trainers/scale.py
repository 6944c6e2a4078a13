"""What a run needs at 7B scale, kept out of the training loop: how a global batch is split over processes
and micro-batches, gradient checkpointing, FSDP2 sharding, and the collectives the loop uses.

- Global batch: `train.batch_size` rows per optimizer step, whatever the number of processes. A step's
  batch is cut into world × accumulation micro-batches of `train.micro_batch_size` rows (default: the
  whole per-process share, no accumulation). A batch size that does not split so is refused, never
  rounded: rounding would change the recipe the proxy curves were measured with.
- Sharding (`final.sharding: fsdp`): torch's FSDP2 `fully_shard` on every decoder layer (the model's
  `_no_split_modules`, as accelerate's transformer-based auto-wrap picks them), then on the whole model.
  It is called directly rather than through accelerate's FullyShardedDataParallelPlugin because
  accelerate 1.16 enables FSDP only on accelerator devices (on CPU it silently falls back to DDP), while
  torch's FSDP2 also runs on CPU with gloo — so the one code path that runs on GPUs is the one tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable, Sequence

import torch

from core.errors import UserError


@dataclass(frozen=True)
class Layout:
    """How one optimizer step's global batch is split: `world` processes × `accumulation` micro-batches
    of `micro_batch_size` rows each."""

    world: int
    accumulation: int
    micro_batch_size: int


def batch_layout(batch_size: int, world: int, micro_batch_size: int | None) -> Layout:
    """The split of a global batch of `batch_size` over `world` processes; UserError when it does not divide."""
    per_process, rest = divmod(batch_size, world)
    if rest or per_process == 0:
        raise UserError(
            f"train.batch_size ({batch_size}) is the global batch of one optimizer step and must split evenly "
            f"over the {world} processes of this launch.",
            f"Set train.batch_size to a multiple of {world}, or launch a number of processes that divides it.",
        )
    micro = micro_batch_size or per_process
    if per_process % micro:
        raise UserError(
            f"train.batch_size ({batch_size}) over {world} process(es) is {per_process} rows each, which "
            f"train.micro_batch_size ({micro}) does not divide: batch_size must be a multiple of processes × "
            "micro_batch_size.",
            f"Set train.micro_batch_size to a divisor of {per_process} (or null for no accumulation).",
        )
    return Layout(world, per_process // micro, micro)


def micro_batches(rows: Sequence[int], layout: Layout, rank: int) -> list[list[int]]:
    """Process `rank`'s micro-batches of one global batch, in order (always `layout.accumulation` of them).

    The batch (length-sorted by the batch plan) is cut into world × accumulation contiguous parts of
    near-equal size; part j is the (j // world)-th micro-batch of process j % world, so the processes of
    one accumulation step get rows of similar lengths. A short last batch of an epoch gives smaller parts,
    possibly empty ones."""
    parts = layout.world * layout.accumulation
    size, extra = divmod(len(rows), parts)
    bounds = [0]
    for j in range(parts):
        bounds.append(bounds[-1] + size + (1 if j < extra else 0))
    return [list(rows[bounds[j]:bounds[j + 1]]) for j in range(rank, parts, layout.world)]


def barrier_timeout(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def agreed(flag: torch.Tensor) -> torch.Tensor:
    """A boolean that is true only if it is true on every process (one collective)."""
    if not _distributed():
        return flag
    value = flag.to(torch.int32).reshape(1)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MIN)
    return value[0].bool()


def _local(t: torch.Tensor) -> torch.Tensor:
    """This process's part of a (possibly sharded, DTensor) parameter."""
    return t.to_local() if hasattr(t, "to_local") else t


def all_finite(params: Iterable[torch.Tensor], device: torch.device) -> torch.Tensor:
    """Whether every weight, on every process (each checks its own shards), is finite."""
    ok = torch.ones((), dtype=torch.bool, device=device)
    for p in params:
        ok &= torch.isfinite(_local(p.detach())).all().to(device)
    return agreed(ok)


def sum_over_processes(values: torch.Tensor, world: int) -> torch.Tensor:
    """`values` summed over the processes of a launch (each holds its share of every step's loss)."""
    if world == 1 or not _distributed():
        return values
    total = values.clone()
    torch.distributed.all_reduce(total)
    return total


def enable_gradient_checkpointing(model: torch.nn.Module) -> None:
    """Recompute activations in the backward pass instead of keeping them (`train.gradient_checkpointing`,
    the model's gradient/activation_checkpointing_enable): memory for time, the same gradients.
    Non-reentrant checkpointing (torch's recommended one). With LoRA
    the frozen embeddings' output gets requires_grad, so a checkpointed block always has a grad input."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not getattr(base, "supports_gradient_checkpointing", False):
        raise UserError(f"train.gradient_checkpointing: {type(base).__name__} does not support it.",
                        "Set train.gradient_checkpointing to false.")
    kwargs = {"use_reentrant": False}
    if hasattr(base, "activation_checkpointing_enable"):  # transformers 5 renamed it (the old name warns)
        base.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if base is not model:
        base.enable_input_require_grads()


def shard(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Shard a full fine-tune with FSDP2 over the launch's processes (in place; returns the model).
    Each decoder layer is one unit (gathered for its forward and backward, then freed), the rest (embeddings,
    final norm, tied head) one root unit."""
    from torch.distributed.fsdp import fully_shard

    if hasattr(model, "get_base_model"):
        raise UserError("final.sharding 'fsdp' shards a full fine-tune, but model.lora is set: the adapters of a "
                        "LoRA run are small, and data parallelism (final.sharding: none) trains them.",
                        "Set final.sharding to none, or drop model.lora.")
    names = set(getattr(model, "_no_split_modules", None) or ())
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise UserError(f"final.sharding 'fsdp': {type(model).__name__} names no decoder layer class "
                        "(_no_split_modules) to shard by.", "Set final.sharding to none.")
    model.to(device)
    for layer in layers:
        fully_shard(layer)
    fully_shard(model)
    return model


def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's weights on the CPU: gathered on rank 0 from an FSDP-sharded model (every process
    must call it; the others get {}), else the model's own state dict."""
    from torch.distributed.fsdp import FSDPModule

    if not isinstance(model, FSDPModule):
        return model.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
