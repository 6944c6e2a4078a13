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

from core.errors import UserError


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


def check_output_dir(path: str | Path, what: str) -> Path:
    """Refuse, before any work, an output directory that cannot be created because it, or a directory
    above it, is an existing file (UserError naming both)."""
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UserError(f"{what} {path} cannot be a directory: {existing} is a file.",
                        "Choose another directory, or move the file away.")
    return path


def check_output_file(path: str | Path, what: str) -> Path:
    """Refuse, before any work, an output file that cannot be written: no file name, an existing
    directory, a path below a file, or a directory this user may not write in (UserError naming it)."""
    given, path = str(path), Path(path)
    if path.name in ("", ".", ".."):
        raise UserError(f"{what} {given!r} names no file.", "Pass a path that ends in a file name.")
    if path.is_dir():
        raise UserError(f"{what} {path} is an existing directory.", "Pass a file path (inside it, or elsewhere).")
    existing = next(p for p in path.parents if p.exists())  # "." or "/" at the latest
    if not existing.is_dir():
        raise UserError(f"{what} {path} cannot be written: {existing} is a file, not a directory.",
                        "Choose another path, or move that file away.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path} cannot be written: {existing} is not a directory you may write in.",
                        "Choose another directory, or change its permissions.")
    return path
