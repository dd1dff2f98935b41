"""AboutDialog (Help > About MedView): the version, what MedView is not, the licences of the
parts it is built on and ships, and the card of every bundled AI model.

A radiologist, a hospital's IT and a regulator read this box: it must say plainly that
MedView is not a medical device and that AI output is assistance, not a diagnosis; it must
name every bundled part with the version actually installed (read from the installed
metadata at run time, so a rebuilt bundle never shows stale numbers) and its licence (the
LGPL of Qt asks for that); and it must show how well each bundled model did and on what
data it was trained, so no one mistakes a demonstration model for a validated one.

The list of parts is data (resources/licenses/third_party.json), shared with the bundle's
LICENSE-THIRD-PARTY file (packaging/third_party_licenses.py)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from medview import __version__
from medview.ai.models.card_numbers import development, development_title
from medview.ai.models.cards import DISCLAIMER
from medview.ai.models.registry import ModelEntry, resources_dir, scan_models

NOT_A_DEVICE = (
    "MedView is not a medical device. It is not cleared or approved for "
    "diagnosis; do not use it as the sole basis of a clinical decision. AI "
    "output is assistance, not a diagnosis: a radiologist reviews every finding."
)
LGPL_NOTE = (
    "Qt for Python (PySide6) and Qt are used under the GNU LGPL v3: you may replace "
    "the Qt and PySide6 libraries of this installation with your own build "
    "(in the desktop app, the files in its PySide6 folder)."
)


@dataclass(frozen=True)
class Component:
    distribution: str
    name: str
    licence: str
    url: str
    version: str  # as installed, "not installed" when absent


def licences_file() -> Path:
    return resources_dir() / "licenses" / "third_party.json"


def components() -> list[Component]:
    """The parts MedView ships, with the versions installed here."""
    from importlib import metadata  # 20 ms of imports: not at start-up

    rows = json.loads(licences_file().read_text(encoding="utf-8"))["components"]
    out = []
    for row in rows:
        try:
            version = metadata.version(row["distribution"])  # SimpleITK is not imported
        except metadata.PackageNotFoundError:
            version = "not installed"
        out.append(Component(row["distribution"], row["name"], row["licence"], row["url"], version))
    return out


def about_text() -> str:
    """The first tab: version, the not-a-medical-device wording and MedView's own licence."""
    return (
        f"<h2>MedView {__version__}</h2>"
        "<p>A desktop viewer for CT and MR studies with AI assistance.</p>"
        f"<p style='color:#ffb040'><b>{html.escape(NOT_A_DEVICE)}</b></p>"
        "<p>MedView is free software under the Apache License 2.0. The parts it is "
        "built on keep their own licences (the Licences tab; the full texts are in "
        "LICENSE-THIRD-PARTY.txt beside the desktop app).</p>"
        f"<p>{html.escape(LGPL_NOTE)}</p>"
    )


def _metric(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None  # lists of missed lesions and the like belong to the card file
    return f"{value:.4g}"


def _rows(values: dict) -> str:
    metrics = [(k, _metric(v)) for k, v in values.items()]
    return "".join(
        f"<tr><td>{html.escape(k.replace('_', ' '))}</td><td align='right'>{v}</td></tr>"
        for k, v in metrics
        if v is not None
    )


def model_card_html(entry: ModelEntry) -> str:
    """One model's card: what it does, its labels, validation numbers (held-out, and apart
    from them, labelled, its development numbers) and training data."""
    card = entry.card
    esc = html.escape
    rows = _rows(card.validation)
    dev = development(card.validation)
    measured = card.validation.get("measured")
    measured = f": {esc(measured)}" if isinstance(measured, str) else ""
    development_html = (
        f"<p><b>{esc(development_title(card.validation))}</b>: {esc(str(dev.get('note', '')))}"
        f"</p><table cellspacing='0' cellpadding='2'>{_rows(dev)}</table>"
        if dev
        else ""
    )
    labels = ", ".join(f"{lab.value} {esc(lab.name)}" for lab in card.labels)
    origin = "bundled with MedView" if entry.bundled else "added on this computer"
    return (
        f"<h3>{esc(card.name)} {esc(card.version)}</h3>"
        f"<p>{esc(card.task)} model for {esc(card.modality)}, {origin}; "
        f"{esc(card.architecture)}; created {esc(card.created or 'unknown')}.</p>"
        f"<p>{esc(card.description)}</p>"
        f"<p><b>Labels:</b> {labels}</p>"
        f"<p><b>Validation</b> (held-out data){measured}"
        f"</p><table cellspacing='0' cellpadding='2'>{rows}</table>{development_html}"
        f"<p><b>Training data:</b> {esc(card.training_data)}</p>"
        f"<p><i>{esc(DISCLAIMER)}</i></p>"
    )


class AboutDialog(QtWidgets.QDialog):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About MedView")
        self.resize(720, 560)
        icon = QtGui.QIcon(str(resources_dir() / "icons" / "medview.png"))
        self.setWindowIcon(icon)

        header = QtWidgets.QLabel()
        header.setPixmap(icon.pixmap(64, 64))
        self.summary = QtWidgets.QLabel(about_text())
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(QtCore.Qt.TextFormat.RichText)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(header, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.summary, 1)

        self.tabs = QtWidgets.QTabWidget()
        self.licences = self._licence_table()
        self.tabs.addTab(self.licences, "Licences")
        self.models = QtWidgets.QTextBrowser()
        self.models.setOpenLinks(False)
        self.models.setHtml(self._models_html())
        self.tabs.addTab(self.models, "AI models")

        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(buttons)

    def _licence_table(self) -> QtWidgets.QTableWidget:
        rows = components()
        table = QtWidgets.QTableWidget(len(rows), 3)
        table.setHorizontalHeaderLabels(["Component", "Version", "Licence"])
        for i, c in enumerate(rows):
            for j, text in enumerate((c.name, c.version, c.licence)):
                item = QtWidgets.QTableWidgetItem(text)
                item.setToolTip(c.url)
                table.setItem(i, j, item)
        table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().hide()
        table.horizontalHeader().setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        table.resizeColumnsToContents()
        return table

    def _models_html(self) -> str:
        listing = scan_models()
        cards = [model_card_html(e) for e in listing.models if e.bundled]
        if not cards:
            return "<p>No bundled model was found in this installation.</p>"
        return "<hr>".join(cards)
