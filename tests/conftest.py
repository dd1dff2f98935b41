"""Test-wide settings: Qt runs offscreen, logs stay inside the test's temporary folders."""

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def kept_data_dir(tmp_path, monkeypatch):
    """A fresh MEDVIEW_DATA_DIR and no AI result kept from another test (torch imported
    only by the tests that ask for this)."""
    from medview.ai.runtime.inference import clear_kept

    data = tmp_path / "data"
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(data))
    clear_kept()
    yield data
    clear_kept()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A 24-slice demo study (seed 3) shared by a module's tests (a module may define its own
    `demo` instead)."""
    from medview.demo import generate_demo_study

    return generate_demo_study(tmp_path_factory.mktemp("demo"), seed=3, slices=24)
