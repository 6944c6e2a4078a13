"""The journal file backend: optuna's, made safe against a record cut short.

optuna appends each batch of journal records with one `write` under a file lock. A write that fails midway
(a full disk, a file-size limit) or a machine that dies during it leaves an incomplete last line. optuna's
reader skips such a line while it is the last one; but the next append is glued onto it, the glued line is
no JSON, and a journal with a bad line before others cannot be replayed at all: every run of the sweep
would be lost, by the first worker that recorded anything after the fault.

So, under the same lock as optuna's appends (the same lock file: other machines' workers exclude us), an
append first cuts an incomplete last line (a record nobody has read, since readers skip it), and a failed
append cuts what it wrote and is a `Failure` naming the journal. Complete records are never touched, so
readers' offsets stay valid. A bad line before others (damage from outside) is `JournalDamaged`.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from core.files import write_failure

log = logging.getLogger(__name__)

_TAIL_CHUNK = 1 << 16


def whole_records_end(fd: int, size: int) -> int:
    """The offset just after the last newline of the first `size` bytes of file `fd` (0 if none)."""
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


class JournalDamaged(ValueError):
    """A journal line that is not a record, followed by others: the journal cannot be replayed."""


class TornTailSafeJournal(JournalFileBackend):
    """`JournalFileBackend` whose appends first cut an incomplete last record and undo themselves on failure."""

    def __init__(self, file_path: str):
        # Our own reference to the lock: the same kind and lock file optuna's default would use.
        self._append_lock = JournalFileSymlinkLock(file_path)
        self._path = file_path
        super().__init__(file_path, lock_obj=self._append_lock)

    def read_logs(self, log_number_from: int):
        try:
            yield from super().read_logs(log_number_from)
        except ValueError as err:  # a line of bad JSON, or one without its newline, before other lines
            raise JournalDamaged(f"{type(err).__name__}: {err}") from err

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = memoryview("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in logs).encode("utf-8"))
        self._append_lock.acquire()
        try:
            fd = os.open(self._path, os.O_RDWR)  # unbuffered: what reached the file is known exactly
            try:
                size = os.lseek(fd, 0, os.SEEK_END)
                keep = whole_records_end(fd, size)
                if keep != size:
                    log.warning("journal %s ended in an incomplete record (%d bytes, from a write that failed or "
                                "was cut short); removed it before appending", self._path, size - keep)
                    os.ftruncate(fd, keep)
                os.lseek(fd, keep, os.SEEK_SET)
                try:
                    while data:
                        data = data[os.write(fd, data):]
                    os.fsync(fd)
                except OSError as err:  # a full disk, a file-size limit
                    os.ftruncate(fd, keep)  # no half record left for the next append to glue onto
                    raise write_failure(self._path, err) from None
                except BaseException:
                    os.ftruncate(fd, keep)
                    raise
            finally:
                os.close(fd)
        finally:
            self._append_lock.release()
