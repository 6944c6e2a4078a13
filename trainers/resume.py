"""Mid-training checkpoints of a long (final) run, so a killed run resumes where it stopped.

A checkpoint is one file written atomically (a temporary file, then a rename: a kill mid-write leaves the
previous checkpoint whole). It holds everything the rest of the run depends on: the trainable weights
(every weight of a full fine-tune; only the adapters of a LoRA run — the frozen base is rebuilt exactly
from its own checkpoint), the optimizer and learning-rate schedule, the random-number states and the
position in the precomputed batch plan, plus the counters the run reports. It is read back with
`torch.load(weights_only=True)`, which refuses anything but tensors and plain containers, so a tampered
file cannot run code. The `key` ties it to one run (the launcher's run identity and the batch plan):
a checkpoint of any other run is ignored, never resumed.

Same machine, same key → the resumed run takes exactly the steps the uninterrupted one would have, with
the same weights, optimizer moments and random draws, so its metrics are identical
(tests/test_resume.py kills a `planner launch` with SIGKILL and checks this).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.files import atomic_file

FORMAT = 1


@dataclass
class Progress:
    """The loop's counters at a step boundary (what TrainStats reports at the end)."""

    step: int = 0  # steps done
    tokens: int = 0
    padded: int = 0
    response_tokens: int = 0
    seen: int = 0
    seconds: float = 0.0  # training time spent before this process started
    losses: list[float] = field(default_factory=list)
    extras: list[float] = field(default_factory=list)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_rest": [int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": _python_state(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _python_state(state) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    pos, has_gauss, cached = state["numpy_rest"]
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), int(pos), int(has_gauss), cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().to("cpu", copy=True) for name, p in model.named_parameters() if p.requires_grad}


def save(path: Path, key: str, model, optimizer, scheduler, progress: Progress) -> None:
    """Write the checkpoint atomically (temporary file in the same directory, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "format": FORMAT,
        "key": key,
        "weights": trainable_state(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": _rng_state(),
        "progress": {**progress.__dict__},
    }
    with atomic_file(path, binary=True) as f:  # a refused write leaves no half checkpoint beside the last one
        torch.save(body, f)


def load(path: Path, key: str) -> dict | None:
    """The checkpoint at `path` if it belongs to this run (same key and format), else None. An unreadable
    file (truncated by a full disk, another version) is ignored: the run starts over."""
    if not path.is_file():
        return None
    try:
        body = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 — any unreadable checkpoint means "start over", never a crash
        return None
    if not isinstance(body, dict) or body.get("format") != FORMAT or body.get("key") != key:
        return None
    return body


def restore(body: dict, model, optimizer, scheduler) -> Progress:
    """Put a loaded checkpoint back into the run; returns the counters to continue from."""
    params = dict(model.named_parameters())
    mismatched = set(body["weights"]) ^ {n for n, p in params.items() if p.requires_grad}
    if mismatched:
        raise ValueError(f"checkpoint does not match the model (parameters {sorted(mismatched)[:3]}…)")
    with torch.no_grad():
        for name, value in body["weights"].items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))
    optimizer.load_state_dict(body["optimizer"])
    scheduler.load_state_dict(body["scheduler"])
    _set_rng_state(body["rng"])
    return Progress(**body["progress"])


def remove(path: Path) -> None:
    """Drop the checkpoint once the run's result is saved (it is no longer needed to resume)."""
    path.unlink(missing_ok=True)
