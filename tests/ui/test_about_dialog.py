"""Help > About MedView: version, not-a-medical-device wording, licences with installed
versions, and the bundled models' cards."""

import json
from importlib import metadata

from PySide6 import QtCore, QtWidgets

from medview import __version__
from medview.ai.models.registry import bundled_models_dir
from medview.ui.about_dialog import AboutDialog, components, licences_file


def test_every_runtime_dependency_has_a_licence_row():
    """A dependency added to pyproject.toml without a row would ship unlisted."""
    listed = {
        r["distribution"].lower()
        for r in json.loads(licences_file().read_text(encoding="utf-8"))["components"]
    }
    for req in metadata.requires("medview") or []:
        if "extra ==" in req:
            continue
        name = req.split(";")[0].split("[")[0]
        for sep in "<>=!~ ":
            name = name.split(sep)[0]
        assert name.lower() in listed, f"{name} has no row in {licences_file()}"


def test_versions_come_from_the_installed_metadata():
    rows = {c.distribution: c for c in components()}
    assert rows["torch"].version == metadata.version("torch")
    assert rows["PySide6-Essentials"].licence.startswith("LGPL-3.0")
    assert all(c.licence and c.name for c in rows.values())


def test_dialog_shows_version_warning_licences_and_model_cards(qtbot, tmp_path):
    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    text = dialog.summary.text()
    assert __version__ in text
    assert "not a medical device" in text and "not a diagnosis" in text
    assert "LGPL" in text

    table = dialog.licences
    cells = {(table.item(r, 0).text(), table.item(r, 2).text()) for r in range(table.rowCount())}
    for name, licence in (
        ("Qt for Python (PySide6) and Qt 6", "LGPL-3.0-only"),
        ("PyTorch", "BSD-3-Clause"),
        ("pydicom", "MIT"),
        ("MONAI", "Apache-2.0"),
        ("SimpleITK (ITK)", "Apache-2.0"),
    ):
        assert (name, licence) in cells

    models = dialog.models.toPlainText()
    for card in sorted(bundled_models_dir().glob("*/*/metadata.json")):
        data = json.loads(card.read_text(encoding="utf-8"))
        assert f"{data['name']} {data['version']}" in models
    assert "Training data:" in models and "Validation" in models
    assert "sensitivity ge 6mm" in models  # a headline number of the lesion model
    # every bundled card's numbers from development seeds are shown apart, labelled
    assert models.count("Development numbers (not held out; demo seeds 1001-1010)") == len(
        list(bundled_models_dir().glob("*/*/metadata.json"))
    )

    # a real click on the Models tab, then Close
    bar = dialog.tabs.tabBar()
    qtbot.mouseClick(bar, QtCore.Qt.MouseButton.LeftButton, pos=bar.tabRect(1).center())
    assert dialog.tabs.currentWidget() is dialog.models
    dialog.grab().save(str(tmp_path / "about.png"))
    close = dialog.findChild(QtWidgets.QDialogButtonBox).button(
        QtWidgets.QDialogButtonBox.StandardButton.Close
    )
    qtbot.mouseClick(close, QtCore.Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
