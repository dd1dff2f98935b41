"""The one error a network operation raises: a sentence naming the node and what went wrong
(down, refused our AE title, timed out, malformed answer), ready for the CLI's stderr line or
a message box."""

from __future__ import annotations

from medview.core.errors import MedviewError


class NetworkError(MedviewError):
    """A remote node could not do what was asked; `str()` is the sentence for the reader."""

    def __init__(self, node: str, problem: str) -> None:
        super().__init__(node, problem)


class DiskFullError(MedviewError):
    """The storage folder has no room left; what arrived before stays."""
