"""Errors raised for problems in the user's input or configuration.

Every :class:`AbkitInputError` says *where* the problem is (file, column, row or
value) and *what to do*; the CLI prints its message and exits with code 2.
"""

from __future__ import annotations


class AbkitInputError(ValueError):
    """Bad input data or configuration: the user can fix it, abkit cannot."""

    def __init__(
        self,
        problem: str,
        *,
        source: str | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.problem = problem
        self.source = source
        self.column = column
        self.hint = hint
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = []
        if self.source:
            where.append(f"in {self.source}")
        if self.column:
            where.append(f"column '{self.column}'")
        text = (" ".join(where) + ": " if where else "") + self.problem
        if self.hint:
            text += f" {self.hint}"
        return text


class ConfigError(AbkitInputError):
    """A configuration key is unknown, missing or of the wrong type."""
