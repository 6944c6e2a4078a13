"""Atomic file writes: the one way every stage writes its outputs.

Readers (a second worker, `planner status`, a report rendered mid-sweep) must see either the old file or
the new one, never half of one. Each write goes to a uniquely named temporary file beside the target,
is flushed to disk, and is renamed over it; a failed write leaves no temporary file behind. Unique names
matter because several workers may write the same file (runs.csv) at once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8, line endings kept as given) to `path` atomically; creates parent directories."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
