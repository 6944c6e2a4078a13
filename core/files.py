"""Atomic file writes: the one way every stage writes its outputs.

Readers (a second worker, `planner status`, a report rendered mid-sweep) must see either the old file or
the new one, never half of one. Each write goes to a uniquely named temporary file beside the target,
is flushed to disk, and is renamed over it; a failed write leaves no temporary file behind. Unique names
matter because several workers may write the same file (runs.csv) at once.

A write the system refuses (a full disk, a file-size limit, a read-only file system) is a `Failure` naming
the file, not a traceback: the previous version of the file is still whole, and the message says so.

A symbolic link is written through (its target gets the new content; the link stays a link), a file that
existed keeps its permission bits and a new one gets the umask's (not the temporary file's private 0600),
and something that is not a regular file — a FIFO, a device such as /dev/null, a socket — is never
replaced: renaming over it would, for /dev/null run as root, break the machine.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from core.errors import Failure, UserError


def write_failure(path: str | Path, err: OSError) -> Failure:
    """The one-paragraph failure of a write the system refused (disk full, file-size limit, read-only)."""
    why = err.strerror or str(err) or type(err).__name__
    kept = "its previous version is kept" if Path(path).exists() else "nothing was written"
    return Failure(f"Could not write {path}: {why}; {kept}.",
                   "Free disk space (or fix the permissions or limits of that directory) and run the command "
                   "again: finished work is kept.")


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask can only be read by setting it, which is not thread-safe


def write_target(path: str | Path) -> Path:
    """Where a write to `path` lands: through any symbolic links to the file they name. Something there
    that is neither a regular file nor absent (a FIFO, a device, a socket) is refused (UserError)."""
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    try:
        mode = path.stat().st_mode
    except OSError:  # absent, or not reachable: the write itself reports what is wrong
        return path
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a directory gets its own message from the caller
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise UserError(f"{path} is {kind}, not a regular file: the planner writes its outputs to regular files "
                        "and does not replace it.", "Pass a file path.")
    return path


def _mode_for(path: Path) -> int:
    """The permission bits the written file gets: the existing file's, else what the umask gives a new one."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_UMASK


@contextmanager
def _staged(path: Path, binary: bool) -> Iterator[tuple[IO, str]]:
    """A new temporary file beside `path` (flushed to disk on leaving), removed if the block fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as f:
            yield f, tmp
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_file(path: str | Path, binary: bool = False) -> Iterator[IO]:
    """Write a file atomically by streaming into the yielded file object (e.g. `torch.save(body, f)`);
    renamed over `path` only when the block succeeds. Refused writes raise `write_failure`."""
    path = write_target(path)
    try:
        with _staged(path, binary) as (f, tmp):
            yield f
        try:
            os.replace(tmp, path)
        except OSError:  # e.g. the target is a directory: the staged file must not stay behind
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise write_failure(path, err) from None


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8, line endings kept as given) to `path` atomically; creates parent directories."""
    with atomic_file(path) as f:
        f.write(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically; creates parent directories."""
    with atomic_file(path, binary=True) as f:
        f.write(data)
    return Path(path)


def write_csv_atomic(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Render the table in memory, then write it atomically: readers see the old or the new file, never
    half of one, and a row that does not fit the columns leaves the old file untouched."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    atomic_write_text(path, buf.getvalue())


def atomic_write_texts(files: Mapping[str | Path, str]) -> list[Path]:
    """Write files that belong together (a table and its summary) all or none: every temporary file is
    written first; then they are renamed over their targets, each target's previous version kept aside (a
    hard link, or a copy) until the last rename succeeded, and put back if one fails (a target that became
    a directory, an I/O error)."""
    staged: list[tuple[Path, str]] = []
    kept: list[tuple[Path, str | None]] = []  # (target, its previous version's backup or None), renamed so far
    try:
        for path, text in files.items():
            path = write_target(path)
            try:
                with _staged(path, binary=False) as (f, tmp):
                    f.write(text)
            except OSError as err:
                raise write_failure(path, err) from None
            staged.append((path, tmp))
        for path, tmp in staged:
            backup = None
            try:
                backup = _keep_aside(path, tmp + ".old")
                os.replace(tmp, path)
            except OSError as err:
                if backup:
                    Path(backup).unlink(missing_ok=True)
                _put_back(kept)
                raise write_failure(path, err) from None
            kept.append((path, backup))
    finally:
        for _, tmp in staged:
            Path(tmp).unlink(missing_ok=True)
        for _, backup in kept:
            if backup:
                Path(backup).unlink(missing_ok=True)
    return [Path(p) for p in files]  # as given: a link written through is still named by its link


def _keep_aside(path: Path, backup: str) -> str | None:
    """A second name for `path`'s current content (None if it has none yet)."""
    if not path.is_file():
        return None
    try:
        os.link(path, backup)  # no copy: the rename gives `path` a new file and the backup keeps the old one
    except OSError:
        shutil.copy2(path, backup)
    return backup


def _put_back(renamed: list[tuple[Path, str | None]]) -> None:
    """Undo the renames done so far: each target gets its previous version back, or goes if it had none."""
    for path, backup in reversed(renamed):
        if backup:
            os.replace(backup, path)
        else:
            path.unlink(missing_ok=True)
    renamed.clear()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def not_a_file(path: Path) -> str:
    """Why an input path that is not a readable file cannot be read, for a message: "<path> …"."""
    if path.is_dir():
        return "is a directory, not a file"
    return "is not a regular file (a device, FIFO or socket)" if path.exists() else "does not exist"


def check_output_dir(path: str | Path, what: str) -> Path:
    """Refuse, before any work, an output directory that cannot be created because it, or a directory
    above it, is an existing file (UserError naming both)."""
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UserError(f"{what} {path} cannot be a directory: {existing} is a file.",
                        "Choose another directory, or move the file away.")
    return path


def check_output_file(path: str | Path, what: str, inputs: Iterable[str | Path] = ()) -> Path:
    """Refuse, before any work, an output file that cannot be written: no file name, an existing
    directory, a FIFO, device or socket, a path below a file, a directory this user may not write in, or
    one of the command's own `inputs` (UserError naming it)."""
    given, path = str(path), Path(path)
    if path.name in ("", ".", ".."):
        raise UserError(f"{what} {given!r} names no file.", "Pass a path that ends in a file name.")
    for source in inputs:
        if _same_file(path, Path(source)):
            raise UserError(f"{what} {path} is also an input of this command ({source}): writing it would destroy "
                            "what is being read.", "Pass another output path.")
    try:
        path = write_target(path)  # a directory passes through, and is refused just below
    except UserError as err:
        raise UserError(f"{what}: {err.problem}", err.fix) from None
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


CACHE_ENV = "PLANNER_CACHE_DIR"


def cache_root() -> Path:
    """Where trained tokenizers and converted checkpoints are cached: $PLANNER_CACHE_DIR, else
    ~/.cache/coit-planner."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "coit-planner"
