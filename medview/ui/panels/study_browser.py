"""StudyBrowser: patient / study / series tree of what a scan found, as the study lists of
Horos, RadiAnt and Weasis show it — modality, description, image count and a thumbnail per
series, a warning sign on series whose geometry or files need a look (the messages in the
tooltip). Double-click or Enter loads a series; image files (NIfTI, NRRD, MHA) opened
directly get rows of their own.

Once a series is open, the earlier studies of its patient are marked as priors (viewer.priors)
and offered for comparison: the "Compare with prior" button below the tree (the selected
prior, else the newest) and a right-click on a prior's rows ask for it with `compare_requested`.

Patient names are shown (this is the reader's own screen) but never logged."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from medview.core.series import ScanResult, SeriesInfo, StudyInfo
from medview.ui.view_grid import native_image
from medview.viewer.growth import days_between
from medview.viewer.priors import Prior, priors_of

THUMB_PX = 64
COLUMNS = ("Series", "Mod.", "Images", "")
WARNING_PX = 16
KEY_ROLE = QtCore.Qt.ItemDataRole.UserRole
STUDY_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1  # a study row's StudyInstanceUID
PRIOR_COLOUR = QtGui.QColor("#e0b050")


def patient_text(name: str, patient_id: str) -> str:
    """ "DOE^JOHN^A" -> "DOE, JOHN A" (DICOM PN: family^given^middle^prefix^suffix)."""
    parts = [p for p in name.split("=")[0].split("^") if p]
    shown = parts[0] + (", " + " ".join(parts[1:]) if len(parts) > 1 else "") if parts else ""
    shown = shown or "(no name)"
    return f"{shown}  [{patient_id}]" if patient_id else shown


def _date(d: str) -> str:
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d


def _study_text(study: StudyInfo) -> str:
    text = "  ".join(t for t in (_date(study.study_date), study.description) if t)
    return text or "(study without date or description)"


class StudyBrowser(QtWidgets.QWidget):
    activated = QtCore.Signal(object)  # SeriesInfo, or the path (str) of an image file
    compare_requested = QtCore.Signal(object)  # SeriesInfo of a prior, beside the open one

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setIconSize(QtCore.QSize(THUMB_PX, THUMB_PX))
        self.tree.setUniformRowHeights(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setAllColumnsShowFocus(True)
        self.tree.setWordWrap(True)  # series descriptions are long; rows have thumbnail height
        self.tree.setIndentation(14)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemActivated.connect(self._on_item_activated)
        self.tree.setContextMenuPolicy(QtCore.Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._on_context_menu)
        self.tree.currentItemChanged.connect(lambda *_: self._update_compare_button())
        self.compare_button = QtWidgets.QPushButton("Compare with prior")
        self.compare_button.setToolTip(
            "Put a prior study of this patient beside the open one, scrolled together, "
            "with the growth of each finding"
        )
        self.compare_button.clicked.connect(self._compare_chosen)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree)
        layout.addWidget(self.compare_button)
        self._series: dict[str, SeriesInfo] = {}
        self._items: dict[str, QtWidgets.QTreeWidgetItem] = {}
        self._studies: dict[str, tuple[StudyInfo, QtWidgets.QTreeWidgetItem]] = {}
        self.priors: list[Prior] = []  # of the open series, newest first
        self._thumbs: dict[str, QtGui.QIcon] = {}
        # a pixmap icon is never scaled up to the thumbnail size the tree asks of every column
        self._warning_icon = QtGui.QIcon(
            self.style()
            .standardIcon(QtWidgets.QStyle.StandardPixmap.SP_MessageBoxWarning)
            .pixmap(WARNING_PX)
        )

    # -- content
    def clear(self) -> None:
        self.tree.clear()
        self._series.clear()
        self._items.clear()
        self._studies.clear()
        self.priors = []
        self._update_compare_button()

    def set_contents(self, result: ScanResult | None, image_files: list[str]) -> None:
        """Show a scan's studies (grouped by patient) and image files, replacing what was
        there; thumbnails already made for a series are kept."""
        self.clear()
        by_patient: dict[tuple[str, str], list[StudyInfo]] = {}
        for study in result.studies if result else []:
            key = (study.patient.name, study.patient.id)
            by_patient.setdefault(key, []).append(study)
        for (name, pid), studies in by_patient.items():
            p_item = QtWidgets.QTreeWidgetItem([patient_text(name, pid)])
            self.tree.addTopLevelItem(p_item)
            p_item.setFirstColumnSpanned(True)
            for study in studies:
                self._add_study(p_item, study)
        if image_files:
            f_item = QtWidgets.QTreeWidgetItem(["Image files"])
            self.tree.addTopLevelItem(f_item)
            f_item.setFirstColumnSpanned(True)
            for path in image_files:
                item = QtWidgets.QTreeWidgetItem([QtCore.QFileInfo(path).fileName(), "", ""])
                item.setToolTip(0, path)
                item.setData(0, KEY_ROLE, path)
                f_item.addChild(item)
                self._items[path] = item
        self.tree.expandAll()

    def _add_study(self, parent: QtWidgets.QTreeWidgetItem, study: StudyInfo) -> None:
        text = _study_text(study)
        modalities = sorted({s.modality for s in study.series if s.modality})
        n_images = sum(len(s.frames) for s in study.series)
        s_item = QtWidgets.QTreeWidgetItem([text])
        s_item.setToolTip(
            0, f"{text}\n{'/'.join(modalities)}: {len(study.series)} series, {n_images} images"
        )
        s_item.setData(0, STUDY_ROLE, study.study_instance_uid)
        self._studies[study.study_instance_uid] = (study, s_item)
        parent.addChild(s_item)
        s_item.setFirstColumnSpanned(True)
        for series in study.series:
            self._add_series(s_item, series)

    def _add_series(self, parent: QtWidgets.QTreeWidgetItem, series: SeriesInfo) -> None:
        number = f"{series.series_number}: " if series.series_number is not None else ""
        label = number + (series.description or "(no description)")
        if series.stack_label:
            label += f" ({series.stack_label})"
        item = QtWidgets.QTreeWidgetItem([label, series.modality, str(len(series.frames)), ""])
        item.setData(0, KEY_ROLE, series.key)
        rows, cols = series.rows, series.cols
        tip = f"{label}\n{len(series.slices)} x {rows} x {cols}"
        if series.warnings:
            item.setIcon(3, self._warning_icon)
            item.setText(3, str(len(series.warnings)))
            tip += "\n\nWarnings:\n" + "\n".join(f"• {w.message}" for w in series.warnings)
        for col in range(len(COLUMNS)):
            item.setToolTip(col, tip)
        if series.key in self._thumbs:
            item.setIcon(0, self._thumbs[series.key])
        parent.addChild(item)
        self._series[series.key] = series
        self._items[series.key] = item

    # -- thumbnails
    def has_thumbnail(self, key: str) -> bool:
        return key in self._thumbs

    def set_thumbnail(self, key: str, image: np.ndarray) -> None:
        """A series' middle slice (uint8, array order) as its icon, turned and scaled to
        the physical aspect its view will have."""
        series = self._series.get(key)
        if series is None:
            return
        img, (row_mm, col_mm) = native_image(series, image)
        img = np.ascontiguousarray(img)
        h, w = img.shape[:2]
        fmt = (
            QtGui.QImage.Format.Format_RGB888
            if img.ndim == 3
            else QtGui.QImage.Format.Format_Grayscale8
        )
        qimg = QtGui.QImage(img.data, w, h, img.strides[0], fmt).copy()
        scale = THUMB_PX / max(h * row_mm, w * col_mm)
        qimg = qimg.scaled(
            max(1, round(w * col_mm * scale)),
            max(1, round(h * row_mm * scale)),
            QtCore.Qt.AspectRatioMode.IgnoreAspectRatio,
            QtCore.Qt.TransformationMode.SmoothTransformation,
        )
        icon = QtGui.QIcon(QtGui.QPixmap.fromImage(qimg))
        self._thumbs[key] = icon
        self._items[key].setIcon(0, icon)

    # -- selection
    def series(self, key: str) -> SeriesInfo | None:
        return self._series.get(key)

    def item(self, key: str) -> QtWidgets.QTreeWidgetItem | None:
        return self._items.get(key)

    def mark_open(self, key: str) -> None:
        """Select (and bold) the row of what the views show."""
        for k, item in self._items.items():
            font = item.font(0)
            font.setBold(k == key)
            item.setFont(0, font)
        shown = self._items.get(key)
        if shown is not None:
            self.tree.setCurrentItem(shown)
        self._mark_priors(self._series.get(key))

    # -- priors
    def _mark_priors(self, open_series: SeriesInfo | None) -> None:
        """Mark the open series' priors (and unmark what was marked for another)."""
        studies = [study for study, _item in self._studies.values()]
        self.priors = priors_of(open_series, studies) if open_series else []
        prior_uids = {p.study.study_instance_uid for p in self.priors}
        for uid, (study, item) in self._studies.items():
            text = _study_text(study)
            brush = self.tree.palette().text()
            if uid in prior_uids and open_series is not None:
                days = days_between(study.study_date, open_series.study_date)
                text = f"Prior, {days:.0f} days earlier: {text}" if days else f"Prior: {text}"
                brush = QtGui.QBrush(PRIOR_COLOUR)
            item.setText(0, text)
            item.setForeground(0, brush)
        self._update_compare_button()

    def prior_for(self, item: QtWidgets.QTreeWidgetItem | None) -> SeriesInfo | None:
        """The series to compare for a row of a prior: a series row itself, a study row its
        chosen series; None for any other row."""
        while item is not None:
            uid = item.data(0, STUDY_ROLE)
            if uid is not None:
                return next(
                    (p.series for p in self.priors if p.study.study_instance_uid == uid), None
                )
            key = item.data(0, KEY_ROLE)
            series = self._series.get(key) if key is not None else None
            if series is not None and any(
                p.study.study_instance_uid == series.study_instance_uid for p in self.priors
            ):
                return series
            item = item.parent()
        return None

    def _chosen_prior(self) -> SeriesInfo | None:
        chosen = self.prior_for(self.tree.currentItem())
        return chosen or (self.priors[0].series if self.priors else None)

    def _update_compare_button(self) -> None:
        chosen = self._chosen_prior()
        self.compare_button.setEnabled(chosen is not None)
        self.compare_button.setText(
            f"Compare with prior of {_date(chosen.study_date)}"
            if chosen is not None
            else "Compare with prior (none of this patient here)"
        )

    def _compare_chosen(self) -> None:
        chosen = self._chosen_prior()
        if chosen is not None:
            self.compare_requested.emit(chosen)

    def context_menu(self, item: QtWidgets.QTreeWidgetItem | None) -> QtWidgets.QMenu | None:
        """The right-click menu of a prior's row; None for other rows."""
        series = self.prior_for(item)
        if series is None:
            return None
        menu = QtWidgets.QMenu(self)
        action = menu.addAction(f"Compare with the open study ({_date(series.study_date)})")
        action.triggered.connect(lambda _=False: self.compare_requested.emit(series))
        return menu

    def _on_context_menu(self, pos: QtCore.QPoint) -> None:
        menu = self.context_menu(self.tree.itemAt(pos))
        if menu is not None:
            menu.exec(self.tree.viewport().mapToGlobal(pos))
            menu.deleteLater()

    def _on_item_activated(self, item: QtWidgets.QTreeWidgetItem, _column: int) -> None:
        key = item.data(0, KEY_ROLE)
        if key is None:
            return
        self.activated.emit(self._series.get(key, key))
