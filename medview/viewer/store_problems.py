"""What a per-series store (measurements, decisions on AI findings) does when its file is not
what it should be: one sentence for the reader, and never a silent loss.

A damaged file is moved aside (StoreFile.keep_aside) and the series opens without it; a file
this session must not overwrite (a newer MedView's, another series', one that cannot be moved
aside) is left as it is and nothing is saved over it; a file with some unreadable entries is
copied aside before a save can drop them. The stores differ only in their words."""

from __future__ import annotations

from typing import Any

from medview.viewer.store_file import StoreFile


class StoreProblems:
    """Mixin for the stores: sets `message` and `_writable`; each returns the entries the
    store should show."""

    FILE_NOUN = ""  # "The <noun> file ..."
    NOT_SAVED = ""  # what a left file means for this session, e.g. "changes made now ..."
    WITHOUT = ""  # what the reader misses when the file was moved aside
    message: str
    _writable: bool

    def _leave(self, what: str) -> list[Any]:
        """A file this session must not overwrite: leave it, say so, save nothing."""
        self._writable = False
        self.message = f"{what}; it is left as it is and {self.NOT_SAVED}."
        return []

    def _damaged(self, file: StoreFile, reason: str) -> list[Any]:
        try:
            aside = file.keep_aside(move=True)
        except OSError as err:
            return self._leave(
                f"The {self.FILE_NOUN} file {file.where} is damaged ({reason}) "
                f"and could not be moved aside ({err.strerror or err})"
            )
        self.message = (
            f"The {self.FILE_NOUN} file {file.name} is damaged ({reason}); it "
            f"was kept as {aside} and {self.WITHOUT}."
        )
        return []

    def _partly_read(
        self, file: StoreFile, good: list[Any], problems: list[str], total: int, items: str
    ) -> list[Any]:
        """`good` of `total` entries (`items`, e.g. "measurements") could be read: the file
        as it was is copied aside first, since the next save writes only the good ones."""
        if not problems:
            return good
        what = (
            f"{len(problems)} of the {total} {items} saved for this series could not be "
            f"read ({problems[0]})"
        )
        try:
            aside = file.keep_aside(move=False)
        except OSError as err:
            return (
                self._leave(
                    f"{what}, and {file.where} could not be copied aside ({err.strerror or err})"
                )
                + good
            )
        self.message = f"{what}; the others are shown, and the file as it was is kept as {aside}."
        return good
