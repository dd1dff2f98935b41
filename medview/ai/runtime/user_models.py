"""Importing the user's own model: a `torch.export` program (.pt2, from torch.export.save)
or an ONNX file, with its card as a dict (the import dialog) or a JSON file.

The import is all or nothing. The file and its card go into a hidden staging folder in the
user's models folder; the model is loaded there (the .pt2 vetting and every load check
apply) and run on a test batch of the card's shape; only a model that fits its card —
input channels = context_slices, output channels = labels + background, finite outputs,
the same answer twice — is moved into its new version folder. Anything else is refused in
one sentence naming the file, and the staging folder is removed, so a refused import
leaves nothing behind.

Export tips the refusals point to: call model.eval() before exporting (an exported
program keeps the mode it was traced in); give torch.export.export a dynamic batch
dimension (or ONNX dynamic_axes), else MedView runs the fixed batch size chunk by chunk;
set the card's input_size when the program only takes one slice size."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from medview.ai.models import registry
from medview.ai.models.cards import CARD_FILE, ModelCard, card_from_dict
from medview.core.errors import InvalidInputError, MedviewError, UnsupportedInputError
from medview.io.workspace import atomic_write_bytes, atomic_write_text

FORMATS = {".pt2": "torch.export", ".onnx": "onnx"}
_TEST_SIZE = (64, 64)  # slice size of the test batch when neither card nor program fix one


def _card_data(card: dict[str, Any] | str | Path) -> tuple[dict[str, Any], str]:
    if isinstance(card, dict):
        return dict(card), "the model card"
    path = Path(card)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInputError(str(path), "does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(str(path), f"cannot be read ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            str(path), f"is not valid JSON (line {exc.lineno}: {exc.msg})"
        ) from exc
    if not isinstance(data, dict):
        raise InvalidInputError(str(path), "is not a JSON object")
    return data, str(path)


def _validate(model: Any, card: ModelCard) -> None:
    """Run the loaded model on a test batch of its card's shape; raise InvalidInputError
    (naming no file: the caller adds it) when it does not fit."""
    _, channels, height, width = model.input_shape
    if channels is not None and channels != card.in_channels:
        raise InvalidInputError(
            None,
            f"takes {channels} input channels but its card's "
            f"context_slices is {card.in_channels}; they must agree",
        )
    if (height, width) != (None, None) and card.input_size is None:
        raise InvalidInputError(
            None,
            f"only takes {height} x {width} slices; set the card's "
            f"input_size to [{height}, {width}]",
        )
    size = card.input_size or _TEST_SIZE
    batch = np.random.default_rng(0).random((2, card.in_channels, *size), dtype=np.float32)
    try:
        first, second = model.predict(batch), model.predict(batch)
    except MedviewError:
        raise
    except Exception as exc:
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise InvalidInputError(
            None, f"fails on a test batch of shape {batch.shape} ({line})"
        ) from exc
    if not np.isfinite(first).all():
        raise InvalidInputError(None, "gives NaN or infinite outputs on a test batch")
    if not np.allclose(first, second, atol=1e-5):
        raise InvalidInputError(
            None,
            "gives different answers for the same input; export it "
            "in eval mode (model.eval() before exporting)",
        )
    if not np.allclose(first.sum(axis=1), 1.0, atol=1e-3) or first.min() < -1e-6:
        raise InvalidInputError(
            None,
            "gives outputs that are not probabilities over its "
            "classes; if it ends without a softmax, set "
            "architecture_args outputs to 'logits'",
        )


def _move_into(staging: Path, folder: Path) -> None:
    for item in staging.iterdir():
        os.replace(item, folder / item.name)
    staging.rmdir()


def import_model(
    path: str | Path,
    card: dict[str, Any] | str | Path,
    name: str | None = None,
    version: str | None = None,
) -> registry.ModelEntry:
    """Import a .pt2 or .onnx model with its card as a new version in the user's models
    folder; name and version, when given, replace the card's. Returns the registered entry."""
    from medview.ai.runtime.loading import load_model, sha256_hex

    source = Path(path)
    kind = FORMATS.get(source.suffix.lower())
    if kind is None:
        raise UnsupportedInputError(
            str(source),
            "is not a torch.export program (.pt2) or an "
            "ONNX file (.onnx); TorchScript and pickled "
            "models are not imported",
        )
    try:
        payload = source.read_bytes()
    except FileNotFoundError as exc:
        raise InvalidInputError(str(source), "does not exist") from exc
    except OSError as exc:
        raise InvalidInputError(str(source), f"cannot be read ({exc.strerror})") from exc
    data, card_where = _card_data(card)
    weights_file = "model" + source.suffix.lower()
    data.update({k: v for k, v in (("name", name), ("version", version)) if v is not None})
    data.update(
        architecture=kind,
        weights_format=kind,
        weights_file=weights_file,
        weights_sha256=sha256_hex(payload),
        created=data.get("created") or datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    model_card = card_from_dict(data, card_where)

    def fill(staging: Path) -> None:
        atomic_write_bytes(staging / weights_file, payload)

    def validate(staging: Path, staged: ModelCard) -> None:
        # validated on the CPU: always there, and the same answer on every machine
        _validate(load_model(staging, "cpu", reuse=False), staged)

    return install_staged(fill, model_card, str(source), validate)


def install_staged(
    fill: Callable[[Path], None],
    card: ModelCard,
    where: str,
    validate: Callable[[Path, ModelCard], None],
) -> registry.ModelEntry:
    """Install a new user model version all or nothing: `fill(folder)` writes its files into
    a staging folder beside the user models, the card is written, `validate(folder, card)`
    checks the staged model, and only then is it moved into its new version folder. Every
    import (weights files, MONAI bundles, nnU-Net folders) goes through here, so none can
    overwrite a version or leave half a model behind."""
    try:
        registry.resolve(card.ref)
    except InvalidInputError:
        pass  # not installed yet: good
    else:
        raise InvalidInputError(
            where,
            f"cannot be imported as {card.ref}: that version exists, and versions are never "
            "overwritten; choose a new version number",
        )
    root = registry.user_models_dir()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=root))
    folder: Path | None = None
    try:
        fill(staging)
        atomic_write_text(staging / CARD_FILE, card.to_json() + "\n")
        try:
            validate(staging, card)
        except MedviewError as exc:  # name the user's file, not the staging copy
            raise type(exc)(where, exc.problem) from exc
        folder = registry.new_version_folder(card.name, card.version)
        _move_into(staging, folder)
    except BaseException:
        if folder is not None:  # the new, still incomplete version folder made above
            shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        name_dir = root / card.name
        if name_dir.is_dir() and not any(name_dir.iterdir()):
            name_dir.rmdir()  # a name folder this import made and left empty
    return registry.resolve(card.ref)
