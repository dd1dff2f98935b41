"""SlabControl: the thick-slab mode and thickness of a ViewerState as a combo box and a mm
box, two-way bound (the keys M, + and - of the views change the same state)."""

from __future__ import annotations

from PySide6 import QtWidgets

from medview.viewer import state as st
from medview.viewer.slab import MAX_SLAB_MM, SlabMode
from medview.viewer.state import ViewerState


class SlabControl(QtWidgets.QWidget):
    def __init__(self, state: ViewerState, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.mode_box = QtWidgets.QComboBox()
        for mode in SlabMode:
            self.mode_box.addItem(mode.value, mode)
        self.mode_box.setToolTip(
            "Thick slab: maximum (MIP), minimum (MinIP) or average of "
            "the slices around the crosshair, in every plane (key M)"
        )
        self.mm_box = QtWidgets.QDoubleSpinBox()
        self.mm_box.setRange(1.0, MAX_SLAB_MM)
        self.mm_box.setDecimals(1)
        self.mm_box.setSuffix(" mm")
        self.mm_box.setKeyboardTracking(False)
        self.mm_box.setToolTip("Slab thickness (keys + and -)")
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.mode_box, 1)
        layout.addWidget(self.mm_box, 1)
        self.mode_box.activated.connect(
            lambda i: self.state.set_slab(mode=self.mode_box.itemData(i))
        )
        self.mm_box.valueChanged.connect(lambda mm: self.state.set_slab(thickness_mm=mm))
        state.subscribe(self._on_state)
        self.destroyed.connect(lambda *_: state.unsubscribe(self._on_state))
        self._on_state(st.VOLUME)

    def _on_state(self, what: str) -> None:
        if what not in (st.SLAB, st.VOLUME):
            return
        slab, v = self.state.slab, self.state.volume
        self.setEnabled(v is not None and not v.is_colour)
        self.mode_box.setCurrentIndex(list(SlabMode).index(slab.mode))
        self.mm_box.blockSignals(True)
        self.mm_box.setValue(slab.thickness_mm)
        self.mm_box.blockSignals(False)
