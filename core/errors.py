"""The exception types the CLI reports without a traceback.

Anything a user can fix (a missing file, a bad value, an unknown language, a malformed table) is raised
as `UserError`; the CLI prints its message as one paragraph and exits with code 2, never a traceback.
A fault of the surroundings (a full disk, a damaged storage, a run that diverged) is a `Failure`: one
paragraph, exit code 1. Every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class Reported(Exception):
    """An error the CLI prints as one paragraph, the problem then its fix, and exits with `exit_code`."""

    exit_code = 1

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem} {fix}")


class UserError(Reported, ValueError):
    """A mistake in the user's input. The message names the file/field/row and how to fix it.

    It is a `ValueError` too: the math and I/O libraries (fits/, planner/allocation/, trainers/) raise it
    for bad values, and a caller that uses them as a library catches it as the ValueError it is; only the
    CLI gives it its exit code 2 and one-paragraph form."""

    exit_code = 2


class Failure(Reported):
    """Something other than the user's input failed: a full disk, a storage that cannot be read, a training
    run that diverged. Not a bug either, so no traceback: the CLI prints the message as one paragraph (what
    failed, what was kept, how to go on) and exits with code 1."""

    exit_code = 1


def first_line(err: BaseException) -> str:
    """An error's first line, for one-paragraph messages (SQLAlchemy and the Hub append detail below it)."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
