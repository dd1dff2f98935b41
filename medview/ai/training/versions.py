"""A finished fine-tune becomes a new model version: a new folder beside its parent's
(registry rules: never overwritten, never deleted), its card saying where it came from and
how it compares with its parent on the same validation studies.

Numbering: a fine-tune of 1.0 is 1.0.1, the next 1.0.2, and so on (the first free third
number above the parent's), so versions sort after their parent and the registry's
NAME:VERSION syntax needs nothing new. The new version is not activated: the reader compares
and chooses (registry.activate), and rolls back the same way."""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from medview.ai.models.cards import CARD_FILE, DISCLAIMER, ModelCard, card_from_dict
from medview.ai.models.registry import (
    _parse_ref,
    _read_active,
    activate,
    list_models,
    new_version_folder,
    resolve,
    version_key,
)
from medview.core.errors import InvalidInputError, ResourceLimitError, SettingError

# imported kinds whose version holds more than the weights (training.imported_versions)
IMPORTED_KINDS = ("nnunet", "monai.bundle-config")


def next_version(name: str, parent: str) -> str:
    """The first free 'a.b.n' above the parent's version, over bundled and user models."""
    a, b, c = version_key(parent)
    taken = {version_key(e.card.version) for e in list_models() if e.card.name == name}
    n = c + 1
    while (a, b, n) in taken:
        n += 1
    return f"{a}.{b}.{n}"


def check_new_version(name: str, version: str) -> None:
    """Refuse a chosen version number that is malformed or taken before the run, not after
    it (write_version refuses it too, but only once the training is spent)."""
    try:
        _parse_ref(f"{name}:{version}")
    except InvalidInputError:
        raise SettingError("version", version, "version_format") from None
    if any(
        e.card.name == name and version_key(e.card.version) == version_key(version)
        for e in list_models()
    ):
        raise SettingError("version", version, "version_taken", model=name)


def keep_active(name: str) -> None:
    """Pin the version that runs now before a new one appears, so the model a reader uses
    changes only when they activate one: without a choice the registry runs the newest
    bundled version, but a model the reader imported has none, and its newest is the
    fine-tune."""
    if name not in _read_active().get("models", {}):
        current = resolve(name)
        activate(current.card.name, current.card.version)


def training_source(data: str | Path) -> dict | None:
    """Where the studies came from when they are not the reader's own: the pacs.json that
    net.training_source writes beside studies fetched from a PACS (the node, the query and
    each study's SEG and image hashes); None for local studies."""
    path = Path(data) / "pacs.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def card_dict(
    parent: ModelCard, version: str, training: str, validation: dict, studies: str | Path = ""
) -> dict:
    """The new card: the parent's network, labels and preprocessing, new provenance; the
    studies' source (training_source) under provenance.training_source, never the
    parent's."""
    data = asdict(parent)
    data["provenance"].pop("training_source", None)
    source = training_source(studies) if studies else None
    if source is not None:
        data["provenance"]["training_source"] = source
    data["labels"] = [asdict(lab) for lab in parent.labels]
    data.update(
        version=version,
        parent_version=parent.version,
        training_data=training,
        validation=validation,
        weights_file="weights.safetensors",
        weights_format="safetensors",
        weights_sha256="",
        claims={},  # a publisher's own numbers describe the parent, not this fine-tune
        created=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        description=(
            f"{parent.name} {parent.version} fine-tuned on locally labelled "
            f"studies (see training_data and validation.fine_tune). "
            f"{DISCLAIMER}."
        ),
    )
    return data


def write_version(
    parent: ModelCard,
    version: str,
    model: Any,
    training: str,
    validation: dict,
    fp: tuple[str, float] | None = None,
    data: str | Path = "",
) -> Path:
    """Create the version folder (refused if it exists), weights first and the card last,
    so a folder is a version only once it is whole; a failed write leaves nothing. `fp`:
    a false-positive classifier refit on the new network's candidates (its JSON text and
    threshold), written instead of the parent's. `data`: the studies' folder (its
    pacs.json goes on the card)."""

    keep_active(parent.name)
    folder = new_version_folder(parent.name, version)
    try:
        card = card_dict(parent, version, training, validation, data)
        if fp is None:
            _copy_second_stage(parent, folder)
        else:
            _write_second_stage(card, folder, *fp)
        if parent.architecture in IMPORTED_KINDS:
            from medview.ai.training.imported_versions import write_imported

            write_imported(folder, model, card, parent)
        else:
            write_model(folder, model, card)
    except BaseException as exc:
        shutil.rmtree(folder, ignore_errors=True)  # ours, made just above: never a parent's
        # safetensors' error has no errno, only the OS's words ("os error 28")
        if getattr(exc, "errno", None) in (
            errno.ENOSPC,
            errno.EDQUOT,
        ) or f"os error {errno.ENOSPC})" in str(exc):
            raise ResourceLimitError(
                str(folder),
                "could not be written: the disk is full; "
                "free some space and run again with --resume "
                "(the trained weights wait in the work folder)",
            ) from OSError(errno.ENOSPC, str(exc))
        raise
    return folder


def _copy_second_stage(parent: ModelCard, folder: Path) -> None:
    """The parent's false-positive classifier goes with the card's postprocess it is named in
    (same file, same SHA-256), so the new version lists findings by the same rules; its
    validation numbers, measured after the fine-tune, say how well that still works."""
    post = parent.postprocess
    if post is not None and post.fp_classifier:
        shutil.copyfile(
            resolve(parent.ref).folder / post.fp_classifier, folder / post.fp_classifier
        )


def _write_second_stage(card: dict, folder: Path, text: str, threshold: float) -> None:
    """A refit false-positive classifier into the new folder, named in the card's
    postprocess with its SHA-256 and threshold (the parent's file is not copied)."""
    from medview.io.workspace import atomic_write_text

    post = card["postprocess"]
    post["fp_classifier"] = post.get("fp_classifier") or "fp_classifier.json"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / post["fp_classifier"], text)
    post["fp_classifier_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    post["fp_threshold"] = threshold


def write_model(folder: Path, model: Any, card: dict) -> Path:
    """Save weights and card into folder (created); returns the card's path."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / card["weights_file"]
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # one metadata key: safetensors writes several in a random order, and the file's
    # sha256 (in the card) should be the same whenever the tensors are
    save_file(state, str(weights), metadata={"model": f"{card['name']}:{card['version']}"})
    return write_card(folder, card)


def write_card(folder: Path, card: dict) -> Path:
    """The card last, with its weights file's SHA-256: the folder is a version once whole."""
    from medview.io.workspace import atomic_write_text

    weights = folder / card["weights_file"]
    card["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    card_from_dict(card, str(folder / CARD_FILE))  # refuse to write a card MedView rejects
    atomic_write_text(folder / CARD_FILE, json.dumps(card, indent=2) + "\n")
    for path in folder.iterdir():  # package data: readable by everyone who runs MedView
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder / CARD_FILE
