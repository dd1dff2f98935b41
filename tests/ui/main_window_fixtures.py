"""Shared set-up for the main-window tests: an isolated data folder, a shown MainWindow,
synthetic series, and a load made slow on purpose (to see the first slice, cancel, or
supersede a load while it runs)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dicom_factory import write_ct_series

from medview.ui.main_window import MainWindow
from medview.ui.settings import Settings

LOAD_TIMEOUT_MS = 15_000


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "medview-data"
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(folder))
    return folder


def make_window(qtbot, size: tuple[int, int] | None = None) -> MainWindow:
    """A shown MainWindow on the saved settings (a restart when there are some)."""
    window = MainWindow(Settings())
    qtbot.addWidget(window)
    if size:
        window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def window(qtbot, data_dir) -> MainWindow:
    return make_window(qtbot, (1200, 800))


@pytest.fixture
def two_series(tmp_path):
    """A study folder with two CT series: (folder, written A, written B)."""
    folder = tmp_path / "study"
    a = write_ct_series(
        folder / "a", n=8, label="a", series_number=1, extra={"SeriesDescription": "Chest 1 mm"}
    )
    b = write_ct_series(
        folder / "b",
        n=6,
        rows=20,
        cols=28,
        label="b",
        series_number=2,
        extra={"SeriesDescription": "Abdomen 2 mm"},
    )
    return folder, a, b


def open_and_wait(qtbot, window: MainWindow, paths: list[str]) -> None:
    """Open paths and wait until the first series is on screen."""
    with qtbot.waitSignal(
        window.image_shown, timeout=LOAD_TIMEOUT_MS, check_params_cb=lambda kind: kind == "volume"
    ):
        window.open_paths(paths)


def slow_loading(monkeypatch, seconds_per_slice: float = 0.05) -> None:
    """Every slice of every load takes this long after it lands (cancel still works)."""
    import medview.io.dicom.volume as dv

    real = dv.load_series

    def slow(series, progress=None, cancel=None, on_slice=None, first_index=None):
        def on_each(i, image):
            if on_slice is not None:
                on_slice(i, image)
            time.sleep(seconds_per_slice)

        return real(
            series, progress=progress, cancel=cancel, on_slice=on_each, first_index=first_index
        )

    monkeypatch.setattr(dv, "load_series", slow)
