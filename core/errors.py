"""The one exception type for user mistakes.

Anything a user can fix (a missing file, a bad value, an unknown language, a malformed table) is raised
as `UserError`; the CLI prints its message as one paragraph and exits with code 2, never a traceback.
Every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input. The message names the file/field/row and how to fix it."""

    exit_code = 2

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem} {fix}")
