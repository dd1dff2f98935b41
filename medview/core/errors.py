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


class StoreFileProblem(Exception):
    """Why one of the reader's saved files cannot be used, as the end of a sentence ("it is
    not valid JSON: …"). `damaged`: nothing in it is usable, keep it aside; otherwise leave
    it as it is and save nothing over it (it could not be read now, or a newer MedView wrote
    it). Here, not in io, because the viewer's stores decide what to do about it and the
    viewer does not import io."""

    def __init__(self, reason: str, damaged: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.damaged = damaged
