"""The models MedView can run: bundled ones shipped inside the package
(`medview/resources/models/<name>/<version>/`, package data so an install carries them) and
the user's own in `models/<name>/<version>/` of the data folder (io.saved), each a folder
with its card.

Torch-free on purpose: listing reads only the cards, so the models panel and
`medview models` answer at once. A damaged folder never hides the others; it is reported
as a problem in one sentence. Versions are never overwritten and never deleted: a fine-tuned
or imported model is always a new version folder, and which version runs is a choice kept
in `models/active.json` there (per model name, and per task for the default model)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from medview.ai.models.cards import _NAME, _VERSION, ModelCard, load_card
from medview.core.errors import InvalidInputError, MedviewError
from medview.io import saved
from medview.io.workspace import atomic_write_text


def resources_dir() -> Path:
    """Package data shipped with MedView (inside the package, so source checkouts, wheels
    and frozen builds all find it the same way)."""
    return Path(__file__).resolve().parents[2] / "resources"


def bundled_models_dir() -> Path:
    return resources_dir() / "models"


def user_models_dir() -> Path:
    return saved.models_dir()


@dataclass(frozen=True)
class ModelEntry:
    card: ModelCard
    folder: Path
    bundled: bool
    active: bool = False

    @property
    def ref(self) -> str:
        return self.card.ref


@dataclass
class ModelListing:
    models: list[ModelEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def version_key(version: str) -> tuple[int, int, int]:
    """'1' == '1.0' == '1.0.0' < '1.2' < '1.10'."""
    a, b, c = ([int(p) for p in version.split(".")] + [0, 0, 0])[:3]
    return a, b, c


def _scan_root(root: Path, bundled: bool, listing: ModelListing) -> list[ModelEntry]:
    found: list[ModelEntry] = []
    if not root.is_dir():
        return found
    for name_dir in sorted(root.iterdir()):
        if name_dir.name.startswith(".") or not name_dir.is_dir():
            continue  # staging folders of an import in progress, active.json, READMEs
        for folder in sorted(name_dir.iterdir()):
            if folder.name.startswith(".") or not folder.is_dir():
                continue
            try:
                card = load_card(folder)
            except MedviewError as exc:
                listing.problems.append(str(exc))
                continue
            if (card.name, card.version) != (name_dir.name, folder.name):
                listing.problems.append(
                    f"{folder}: holds the card of {card.ref}, which "
                    f"belongs in {card.name}/{card.version}; skipped"
                )
                continue
            found.append(ModelEntry(card, folder, bundled))
    return found


def _read_active(listing: ModelListing | None = None) -> dict:
    path = saved.active_models_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        if listing is not None:
            listing.problems.append(
                f"{path}: cannot be read ({exc}); the newest bundled "
                f"versions run until a version is activated again"
            )
        return {}
    if not isinstance(data, dict):
        return {}
    return {"models": dict(data.get("models") or {}), "tasks": dict(data.get("tasks") or {})}


def scan_models() -> ModelListing:
    """Every model version on disk, sorted by name then version, each marked active when it
    is the one `resolve(name)` gives; unreadable folders become problems."""
    listing = ModelListing()
    bundled = _scan_root(bundled_models_dir(), True, listing)
    taken = {(e.card.name, version_key(e.card.version)) for e in bundled}
    user = []
    for entry in _scan_root(user_models_dir(), False, listing):
        if (entry.card.name, version_key(entry.card.version)) in taken:
            listing.problems.append(f"{entry.folder}: repeats the bundled {entry.ref}; skipped")
        else:
            user.append(entry)
    entries = sorted(bundled + user, key=lambda e: (e.card.name, version_key(e.card.version)))
    chosen = _read_active(listing).get("models", {})
    for name in sorted({e.card.name for e in entries}):
        versions = [e for e in entries if e.card.name == name]
        wanted = chosen.get(name)
        active = next(
            (
                e
                for e in versions
                if wanted is not None and version_key(e.card.version) == version_key(str(wanted))
            ),
            None,
        )
        # no valid choice (none yet, or active.json damaged): the newest bundled version, so
        # a fine-tune nobody activated never starts running behind the reader's back
        fallback = next((e for e in reversed(versions) if e.bundled), versions[-1])
        if wanted is not None and active is None:
            listing.problems.append(
                f"{saved.active_models_file()}: names {name}:{wanted}"
                f", which is not installed; {fallback.ref} runs"
            )
        active = active or fallback
        i = entries.index(active)
        entries[i] = ModelEntry(active.card, active.folder, active.bundled, True)
    listing.models = entries
    return listing


def list_models() -> list[ModelEntry]:
    return scan_models().models


def _parse_ref(ref: str) -> tuple[str, str | None]:
    name, _, version = ref.strip().partition(":")
    if not _NAME.match(name) or (version and not _VERSION.match(version)):
        raise InvalidInputError(
            None,
            f"{ref!r} is not a model reference; write NAME or NAME:VERSION, e.g. lesion-seg:1.0",
        )
    return name, version or None


def resolve(ref: str) -> ModelEntry:
    """`name:version` exactly, or `name` alone: its active version (the one the user
    activated, else the newest bundled one, else the newest)."""
    name, version = _parse_ref(ref)
    entries = list_models()
    versions = [e for e in entries if e.card.name == name]
    if not versions:
        known = ", ".join(sorted({e.card.name for e in entries})) or "none"
        raise InvalidInputError(
            None, f"no model named {name!r} is installed (installed: {known}); see medview models"
        )
    if version is None:
        return next(e for e in versions if e.active)
    match = next((e for e in versions if version_key(e.card.version) == version_key(version)), None)
    if match is None:
        raise InvalidInputError(
            None,
            f"model {name!r} has no version {version} (versions: "
            f"{', '.join(e.card.version for e in versions)})",
        )
    return match


def activate(name: str, version: str) -> ModelEntry:
    """Make name:version the version that runs for its name, and the default model for its
    task; kept in active.json, written atomically."""
    entry = resolve(f"{name}:{version}")
    state = _read_active()
    models, tasks = state.get("models", {}), state.get("tasks", {})
    models[entry.card.name] = entry.card.version
    tasks[entry.card.task] = entry.card.name
    text = json.dumps({"models": models, "tasks": tasks}, indent=2, sort_keys=True)
    atomic_write_text(saved.active_models_file(), text + "\n")
    return ModelEntry(entry.card, entry.folder, entry.bundled, True)


def active_model(task: str) -> ModelEntry | None:
    """The model to offer first for a task: the one last activated for it, else the first
    bundled model of that task, else any; always at its active version."""
    entries = [e for e in list_models() if e.active and e.card.task == task]
    name = _read_active().get("tasks", {}).get(task)
    ordered = sorted(entries, key=lambda e: (e.card.name != name, not e.bundled, e.card.name))
    return ordered[0] if ordered else None


def new_version_folder(name: str, version: str) -> Path:
    """Create the empty user folder for a new version; refuses a version that exists, bundled
    or the user's, under any spelling ('1' and '1.0' are the same), so nothing is ever
    overwritten."""
    _parse_ref(f"{name}:{version}")
    for root in (bundled_models_dir(), user_models_dir()):
        existing = root / name
        if existing.is_dir() and any(
            version_key(p.name) == version_key(version)
            for p in existing.iterdir()
            if _VERSION.match(p.name)
        ):
            raise InvalidInputError(
                str(existing),
                f"already holds version {version} of "
                f"{name}; versions are never overwritten, "
                f"choose a new version number",
            )
    folder = user_models_dir() / name / version
    try:
        folder.mkdir(parents=True)
    except FileExistsError as exc:  # made by another import since the check above
        raise InvalidInputError(
            str(folder),
            "already exists; versions are never overwritten, choose a new version number",
        ) from exc
    return folder
