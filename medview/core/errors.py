"""The few exception types that cross layer boundaries.

Every error a user can see is one sentence that names the file, what is wrong and what to
do; `str(error)` is that sentence, ready for a message box or the CLI's stderr line.
"""

from __future__ import annotations


class MedviewError(Exception):
    """An expected failure caused by the input, with a message meant for the user."""

    def __init__(self, path: str | None, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class InvalidInputError(MedviewError):
    """The file or folder exists but is not something MedView can read."""


class UnsupportedInputError(MedviewError):
    """The input is valid but uses a feature MedView does not handle (e.g. a codec)."""


class ResourceLimitError(MedviewError):
    """Reading the input would need more memory or disk than is safe to give it."""
