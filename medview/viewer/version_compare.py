"""Two versions of a model on one study, without Qt: what the comparison view draws and lists.

- `version_layers`: each side shows its own version's findings mask in the card's label
  colours, and may outline the other version's mask in that version's colour, so a region
  only one version found stands out in either view. The outline layer shares the other
  side's label map (no copy); each layer names its model (`made_by`), so every view says
  which version drew it and that it is not a diagnosis.
- `differences`: the findings of each version that the other version's mask does not touch
  at all — what a reader checks first after a fine-tune (a lesion the new version now finds,
  or a false positive it dropped).
- `LinkedStates`: two ViewerStates of the same volume that keep slice, crosshair, window
  and invert, overlay and crosshair toggles in step, whichever one the reader moves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medview.core.findings import Finding
from medview.viewer import state as st
from medview.viewer.layers import OverlayLayer
from medview.viewer.state import ViewerState

SIDES = ("A", "B")
# outlines of a version drawn in the other side's view: apart from the bundled cards' label
# colours (orange nodules, cyan liver lesions) and from each other
VERSION_COLOURS: tuple[tuple[int, int, int], ...] = ((90, 230, 90), (240, 80, 240))
OWN_OPACITY = 0.45


@dataclass(frozen=True)
class OnlyIn:
    """A finding of one version (`side`: 0 = A, 1 = B) that the other one does not have."""

    side: int
    finding: Finding

    def describe(self) -> str:
        f = self.finding
        first, last = f.slice_range
        images = f"image {first + 1}" if first == last else f"images {first + 1}–{last + 1}"
        return (
            f"only {SIDES[self.side]}: {f.label_name}, "
            f"{f.longest_axial_diameter_mm:.1f} mm, {images}"
        )


def touches(finding: Finding, own_map: np.ndarray, other_map: np.ndarray) -> bool:
    """Whether the other version's mask (any label) overlaps this finding's voxels, taken
    as this version's voxels of the finding's label inside its bounding box."""
    (k0, r0, c0), (k1, r1, c1) = finding.bbox_index
    box = (slice(k0, k1 + 1), slice(r0, r1 + 1), slice(c0, c1 + 1))
    return bool(np.any((own_map[box] == finding.label_value) & (other_map[box] != 0)))


def differences(findings: Sequence[Sequence[Finding]], maps: Sequence[np.ndarray]) -> list[OnlyIn]:
    """The findings of A the B mask misses, then those of B the A mask misses."""
    out: list[OnlyIn] = []
    for side in (0, 1):
        own, other = maps[side], maps[1 - side]
        out += [OnlyIn(side, f) for f in findings[side] if not touches(f, own, other)]
    return out


def version_layers(
    ref: str, colours: dict[int, tuple[int, ...]], label_map: np.ndarray, side: int
) -> tuple[OverlayLayer, OverlayLayer]:
    """(the version's own mask, filled in its label colours; the same mask as an outline in
    its version colour, for the other side's view)."""
    own = OverlayLayer(
        f"AI {ref} — findings ({SIDES[side]})",
        label_map,
        opacity=OWN_OPACITY,
        label_colours=dict(colours),
        made_by=ref,
    )
    outline = OverlayLayer(
        f"AI {ref} — outline ({SIDES[side]})",
        label_map,
        opacity=1.0,
        label_colours={v: VERSION_COLOURS[side] for v in colours},
        outline=True,
        made_by=ref,
    )
    return own, outline


class LinkedStates:
    """Keeps the states in step: a change in one is copied to the others, once."""

    def __init__(self, states: Sequence[ViewerState]) -> None:
        self.states = list(states)
        self._copying = False
        self._listeners = [lambda what, s=s: self._follow(s, what) for s in self.states]
        for state, listener in zip(self.states, self._listeners, strict=True):
            state.subscribe(listener)

    def close(self) -> None:
        for state, listener in zip(self.states, self._listeners, strict=True):
            state.unsubscribe(listener)

    def _follow(self, source: ViewerState, what: str) -> None:
        if self._copying or source.volume is None:
            return
        self._copying = True
        try:
            for other in self.states:
                if other is source or other.volume is None:
                    continue
                if what == st.CURSOR:
                    other.set_cursor_index(source.cursor_ijk)
                elif what == st.WINDOW:
                    if other.invert != source.invert:
                        other.toggle_invert()
                    w = source.window
                    if w != other.window:
                        other.set_window(w.center, w.width, w.name)
                elif what == st.DISPLAY:
                    if other.show_overlays != source.show_overlays:
                        other.toggle_overlays()
                    other.set_crosshair_linked(source.crosshair_linked)
        finally:
            self._copying = False
