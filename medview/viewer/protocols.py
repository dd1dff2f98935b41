"""Hanging protocols: the screen a study opens with — layout, focused plane, window, tool,
panels and slab — chosen by rules on modality, body part and series description, as reading
stations do (Horos, the vendors' "hanging protocols").

A rule matches when the study's modality equals its modality (or the rule leaves it empty)
and its words are found in the study and series descriptions: body part words in either
(MedView's volume carries no BodyPartExamined, and descriptions name the region: "CT chest",
"Thorax routine"), the series words in the series description. The most specific match wins
(more fields given), then the reader's own over the defaults, then the order listed. The
reader's protocols live in saved.protocols_file() as JSON, read and written through a
StoreFile (io.series_files.protocols_file); a broken file is one sentence and the defaults
still apply."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from medview.core.errors import StoreFileProblem
from medview.core.volume import VolumeMetadata
from medview.core.windowing import CT_PRESETS
from medview.viewer.slab import SlabMode
from medview.viewer.store_file import StoreFile

LAYOUT_NAMES = ("1", "1x3", "2x2", "3d")
PLANES = ("axial", "coronal", "sagittal")


@dataclass(frozen=True)
class HangingProtocol:
    name: str  # "CT chest"
    modality: str = ""  # "" = any
    body_part: str = ""  # a word of the study or series description ("chest"); "" = any
    series_words: str = ""  # a word of the series description ("lung"); "" = any
    layout: str = "1x3"
    plane: str = "axial"  # the focused view (the one a single view shows)
    window: str = ""  # a CT preset name, or "" for the file's window
    tool: str = ""  # a measuring tool name, "" = window/level
    panels: tuple[str, ...] = ()  # dock titles shown (others left as they are)
    slab_mode: str = SlabMode.OFF.value
    slab_mm: float = 10.0
    own: bool = field(default=True, compare=False)  # the reader's (False: a default)

    def score(self, md: VolumeMetadata) -> int:
        """0: no match; else 1 + the number of fields that matched."""
        if self.modality and self.modality.upper() != md.modality.upper():
            return 0
        text = f"{md.study_description} {md.series_description}".lower()
        if self.body_part and self.body_part.lower() not in text:
            return 0
        if self.series_words and self.series_words.lower() not in md.series_description.lower():
            return 0
        return 1 + sum(bool(x) for x in (self.modality, self.body_part, self.series_words))


DEFAULTS = (
    HangingProtocol(
        "CT chest", "CT", "chest", layout="1x3", plane="axial", window="Lung", own=False
    ),
    HangingProtocol(
        "CT thorax", "CT", "thorax", layout="1x3", plane="axial", window="Lung", own=False
    ),
    HangingProtocol(
        "CT abdomen", "CT", "abdomen", layout="1x3", plane="axial", window="Abdomen", own=False
    ),
)


def choose(protocols: list[HangingProtocol], md: VolumeMetadata) -> HangingProtocol | None:
    """The protocol a study with metadata `md` opens with, or None."""
    best = None
    best_key = (0, False)
    for p in [*protocols, *DEFAULTS]:
        key = (p.score(md), p.own)
        if key[0] and key > best_key:
            best, best_key = p, key
    return best


def check(p: HangingProtocol) -> None:
    """ValueError with one sentence for a protocol no screen can show."""
    presets = {w.name for w in CT_PRESETS}
    if not p.name.strip():
        raise ValueError("a hanging protocol needs a name")
    if p.layout not in LAYOUT_NAMES:
        raise ValueError(
            f"protocol {p.name!r}: layout must be one of "
            f"{', '.join(LAYOUT_NAMES)}, not {p.layout!r}"
        )
    if p.plane not in PLANES:
        raise ValueError(f"protocol {p.name!r}: plane must be one of {', '.join(PLANES)}")
    if p.window and p.window not in presets:
        raise ValueError(
            f"protocol {p.name!r}: window {p.window!r} is not a preset "
            f"({', '.join(sorted(presets))})"
        )
    if p.slab_mode not in {m.value for m in SlabMode}:
        raise ValueError(f"protocol {p.name!r}: slab mode {p.slab_mode!r} is unknown")


FORMAT, VERSION = "medview-hanging-protocols", 1


def load(file: StoreFile) -> list[HangingProtocol]:
    """The reader's protocols; [] when none were saved. ValueError, one sentence naming the
    file, for a file that is not a list of protocols (the defaults then apply)."""
    try:
        doc = file.read(FORMAT, VERSION, "hanging protocols")
    except StoreFileProblem as exc:
        raise ValueError(
            f"{file.name} is not a list of hanging protocols: {exc.reason}; the defaults apply"
        ) from None
    if doc is None:
        return []
    names = {f.name for f in fields(HangingProtocol)} - {"own"}
    try:
        out = []
        for item in doc["protocols"]:
            values = {k: v for k, v in item.items() if k in names}
            values["panels"] = tuple(values.get("panels", ()))
            p = HangingProtocol(**values)
            check(p)
            out.append(p)
        return out
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"{file.name} is not a list of hanging protocols ({exc}); the defaults apply"
        ) from None


def save(
    file: StoreFile, protocols: list[HangingProtocol], new: HangingProtocol
) -> list[HangingProtocol]:
    """`new` added to (or replacing the one of its name in) the reader's protocols, the file
    replaced whole (StoreFile.write: a crash leaves the old or the new)."""
    check(new)
    kept = [p for p in protocols if p.name != new.name] + [new]
    items = []
    for p in kept:
        d = asdict(p)
        d.pop("own")
        d["panels"] = list(p.panels)
        items.append(d)
    file.write({"format": FORMAT, "version": VERSION, "protocols": items})
    return kept


def protocol_name(md: VolumeMetadata) -> str:
    """What "Save as protocol for ..." offers: the modality and the region the descriptions
    name ("CT chest"), else the modality and the series description."""
    text = f"{md.study_description} {md.series_description}".lower()
    for word in ("chest", "thorax", "abdomen", "pelvis", "head", "brain", "spine", "neck"):
        if word in text:
            return f"{md.modality} {word}".strip()
    return f"{md.modality} {md.series_description}".strip() or "this study"


def body_part_of(name: str, md: VolumeMetadata) -> str:
    """The body part word of a protocol name made by protocol_name, or ''."""
    word = name.split()[-1].lower() if name.split() else ""
    text = f"{md.study_description} {md.series_description}".lower()
    return word if word and word in text else ""
