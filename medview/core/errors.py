"""The few exception types that cross layer boundaries.

Every error a user can see is one sentence that names the file, what is wrong and what to
do; `str(error)` is that sentence, ready for a message box or the CLI's stderr line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol


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


class SettingError(InvalidInputError, ValueError):
    """A setting of a fine-tune (a field of its job file) that no run can use, as data: each
    interface words it in its own terms (`medview train` names its flags, the Training panel
    its fields) with `sentence`, from the setting, its value, the kind of problem and its
    limits; the panel gets them from the error event as `to_dict()`. `str()` is the plain
    fact in the job file's names (for logs), without what to do, which is the interface's.

    A ValueError too: a bad flag or job file is a usage error wherever it is caught."""

    # kind -> the fact, from `n` (the setting as the interface names it), `v` (its value)
    # and the limits; what to do about it is the voice's `remedy`
    STATEMENTS: ClassVar[dict[str, str]] = {
        "type": "{n} {v!r}: takes a value like {like!r}",
        "choice": "{n} {v!r}: use one of {choices}",
        "range": "{n} {v:g}: {advice}",
        "step_size": "{n} {v} with {patch_name} {patch_size} is {pixels:.0f} million pixels "
        "a step, more than any memory holds; keep batch size x patch size² at "
        "most {max_pixels:.1f} million",
        "version_format": "{n} {v}: write a version number like 1.2.1",
        "version_taken": "{n} {v}: {model} already has version {v}; versions are never overwritten",
        "folder": "{problem}",
        "run_exists": "already holds a training run",
        "checkpoint_unreadable": "cannot be read as this run's checkpoint (it is damaged or "
        "was written for another model)",
        "base_mismatch": "was trained from {trained_from}, not {v}",
        "diverged": "the training loss became {loss} in epoch {epoch}, step {step}, so "
        "training stopped with nothing written",
        "workers_died": "a process preparing the studies ended abruptly (killed, or out of "
        "memory on a large study)",
        "unmapped": "of study {study} holds label {label}, which {model} does not know (it "
        "knows {known})",
        "unavailable": "{device_name} was requested but no {device_name} device is available",
        # (a warning: the run goes on)
        "mapping_unused": "{n} {v}={target}: no study has a label named {v!r}, so it changes "
        "nothing",
    }

    def __init__(
        self, setting: str, value: Any, kind: str, path: str | None = None, **limits: Any
    ) -> None:
        if kind not in self.STATEMENTS:
            raise KeyError(f"no such kind of setting error: {kind}")
        self.setting, self.value, self.kind, self.limits = setting, value, kind, limits
        super().__init__(path, self.statement(str))

    def statement(self, name: Callable[[str], str]) -> str:
        """The fact, naming settings with `name` (job-file field -> the interface's name)."""
        values = {**self.limits, "n": name(self.setting), "v": self.value}
        if self.kind == "choice":
            values["choices"] = ", ".join(self.limits["choices"])
        if self.kind == "step_size":
            values.update(
                patch_name=name("patch_size"),
                pixels=self.value * self.limits["patch_size"] ** 2 / 1e6,
                max_pixels=self.limits["max_pixels"] / 1e6,
            )
        return self.STATEMENTS[self.kind].format(**values)

    def sentence(self, voice: SettingVoice) -> str:
        """The whole sentence in one interface's words: the path, the fact, what to do."""
        remedy = voice.remedy(self)
        text = self.statement(voice.name) + (f"; {remedy}" if remedy else "")
        return f"{self.path}: {text}" if self.path else text

    def to_dict(self) -> dict[str, Any]:
        """What the error event carries (JSON), so another process can word it."""
        return {
            "setting": self.setting,
            "value": self.value,
            "kind": self.kind,
            "path": self.path,
            "limits": self.limits,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SettingError:
        """The error again from `to_dict()`; KeyError or TypeError when `data` is not one."""
        return cls(
            data["setting"], data["value"], data["kind"], data.get("path"), **data.get("limits", {})
        )

    def __reduce__(self) -> tuple:
        # across processes (the studies are prepared in workers): rebuilt from its data
        return SettingError.from_dict, (self.to_dict(),)


class SettingVoice(Protocol):
    """How one interface speaks of settings: their names, and what to do about a problem."""

    def name(self, setting: str) -> str: ...

    def remedy(self, error: SettingError) -> str: ...


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
