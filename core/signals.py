"""Ctrl-C and termination for a parent process and its worker processes, delivered where they can be acted
on: the main thread, at a point where the interrupted work can still be recorded.

Python runs signal handlers in the main thread, but the kernel delivers a process-wide signal to any thread
that does not block it (library thread pools, a storage's heartbeat thread); the main thread's blocking call
(a run waiting in sleep or I/O) is then not interrupted, and the work goes on unrecorded. So worker
processes are started with STOP_SIGNALS blocked (`blocked_stop_signals`: every thread they start inherits
the mask) and only their main thread unblocks them (`unblock_stop_signals`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextmanager
def blocked_stop_signals() -> Iterator[None]:
    """Block STOP_SIGNALS in the calling thread for the block: threads and processes started inside
    inherit the mask. A signal arriving meanwhile stays pending and is delivered afterwards."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def unblock_stop_signals() -> None:
    """Let STOP_SIGNALS reach the calling thread (call it in the main thread only)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def interrupt_once() -> None:
    """In a worker process: the first stop signal raises KeyboardInterrupt, later ones are ignored. Ctrl-C
    reaches the whole process group and the parent then terminates its workers: the second signal must not
    cut short the recording of the first."""

    def handle(signum, frame):
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    for sig in STOP_SIGNALS:
        signal.signal(sig, handle)


@contextmanager
def interrupt_flag() -> Iterator[Callable[[], None]]:
    """Ctrl-C in a parent process, remembered: Python raises KeyboardInterrupt wherever the main thread is,
    and in a finalizer (a database connection collected mid-poll) it is printed as "ignored" and lost, so an
    interrupted child was reported as "stopped abnormally" (exit 1) instead of "interrupted" (130). The
    yielded `check()` raises it again at a safe point."""
    seen = False

    def handle(signum, frame):
        nonlocal seen
        seen = True
        raise KeyboardInterrupt

    def check() -> None:
        if seen:
            raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()  # only there may a handler be installed
    previous = signal.signal(signal.SIGINT, handle) if main else None
    try:
        yield check
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
