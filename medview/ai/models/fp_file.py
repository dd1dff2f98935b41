"""The false-positive classifier file a model card names (cards.Postprocess), checked with
the standard library alone: the registry lists models without importing numpy or torch, and
a card whose classifier is missing, changed, truncated or made for other features must be
refused as the card is read, in one sentence. ai.fp_reduction parses the checked bytes into
trees when findings are first made."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from medview.core.errors import InvalidInputError

FORMAT = "medview.fp-trees"
# per-region features, in this order; a classifier file must list exactly these names
FEATURES = (
    "log_voxels",
    "slices",
    "peak_probability",
    "mean_probability",
    "core_fraction",
    "mean_hu",
    "std_hu",
    "shell_mean_hu",
    "shell_std_hu",
    "inplane_extent_mm",
    "z_extent_mm",
    "fill_fraction",
    "largest_slice_fraction",
    "far_shell_mean_hu",
    "row_position",
    "col_position",
    "beyond_dense_max",
    "beyond_dense_min",
)
_VERIFIED: dict[str, tuple[bytes, str]] = {}  # sha256 -> (bytes, where they were read)


def parse_header(data: bytes, where: str, n_labels: int) -> dict:
    """The file's JSON object, when it is a classifier of this format, for these features
    and with one ensemble per label."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(where, "is truncated or damaged (not complete JSON)") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise InvalidInputError(where, f"is not a {FORMAT} false-positive classifier")
    if obj.get("features") != list(FEATURES):
        raise InvalidInputError(
            where, "was made for other region features than this MedView computes; refused"
        )
    labels = obj.get("labels")
    if not isinstance(labels, list) or len(labels) != n_labels:
        raise InvalidInputError(
            where,
            f"holds {len(labels) if isinstance(labels, list) else 0}"
            f" label ensembles for a model of {n_labels} labels",
        )
    return obj


def check_file(path: Path, sha256: str, n_labels: int) -> None:
    """Read the file, check it against the card's SHA-256 and its header, and keep its
    bytes for verified()."""
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise InvalidInputError(
            where, "is missing; the model's card names it as its false-positive classifier"
        ) from exc
    except OSError as exc:
        raise InvalidInputError(where, f"cannot be read ({exc.strerror or exc})") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256.lower():
        raise InvalidInputError(
            where,
            "does not match the fp_classifier_sha256 in its card "
            "(changed, truncated or damaged); refused",
        )
    if digest not in _VERIFIED:
        parse_header(data, where, n_labels)
        _VERIFIED[digest] = (data, where)


def verified(sha256: str) -> tuple[bytes, str] | None:
    """(bytes, where) of a file check_file accepted, by its SHA-256."""
    return _VERIFIED.get(sha256.lower())
