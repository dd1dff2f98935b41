"""`medview --selftest`: every step passes on a working installation, and a broken one
ends in one sentence naming the step, exit 1."""

import pytest

from medview.cli import main
from medview.commands import selftest


@pytest.fixture(autouse=True)
def own_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return ["--log-file", str(tmp_path / "medview.log"), "--selftest"]


def test_selftest_passes_and_prints_one_timed_line_per_step(own_folders, capsys):
    assert main(own_folders) == 0
    out = capsys.readouterr().out.splitlines()
    steps = [line for line in out if line.startswith("ok ")]
    assert [line[5:20].strip() for line in steps] == [name for name, _ in selftest.STEPS]
    assert all(" s  " in line for line in steps)
    assert "lesion-seg" in "\n".join(out)
    assert out[-1].startswith("self-test passed in")


def test_missing_bundled_models_fail_in_one_sentence(own_folders, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("medview.ai.models.registry.bundled_models_dir", lambda: tmp_path / "none")
    monkeypatch.setattr(selftest, "STEPS", (("bundled models", selftest._models),))
    assert main(own_folders) == 1
    captured = capsys.readouterr()
    assert "FAIL bundled models" in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "no bundled model was found" in err[0]
    assert "Traceback" not in captured.err


def test_a_blank_view_fails_the_render_step(own_folders, monkeypatch, capsys):
    from PySide6 import QtGui

    def blank(*args, **kwargs):
        image = QtGui.QImage(64, 64, QtGui.QImage.Format.Format_RGB32)
        image.fill(QtGui.QColor("black"))
        return image

    monkeypatch.setattr("medview.ui.snapshot.render_view", blank)
    steps = dict(selftest.STEPS)
    monkeypatch.setattr(
        selftest,
        "STEPS",
        tuple((name, steps[name]) for name in ("demo study", "load", "render planes")),
    )
    assert main(own_folders) == 1
    err = capsys.readouterr().err
    assert "self-test failed at 'render planes'" in err and "blank" in err


def test_an_unexpected_error_is_named_not_dumped(own_folders, monkeypatch, capsys):
    def broken(run):
        raise OSError("disk full")

    monkeypatch.setattr(selftest, "STEPS", (("demo study", broken),))
    assert main(own_folders) == 1
    err = capsys.readouterr().err
    assert "'demo study': OSError: disk full" in err and "Traceback" not in err


def test_a_bundle_without_keyring_backends_fails_in_one_sentence(own_folders, monkeypatch, capsys):
    """keyring finds its backends through entry points: a frozen app without keyring's
    metadata starts, then keeps no PACS password. Here the entry points are gone."""
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [])
    monkeypatch.setattr(selftest, "STEPS", (("keyring", selftest._keyring),))
    assert main(own_folders) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "backend is not installed" in err[0]
    assert "passwords of PACS nodes could not be kept" in err[0]


def test_a_keyring_backend_missing_its_library_is_named(own_folders, monkeypatch, capsys):
    from medview.net import credentials

    name, needs = credentials.PLATFORM_BACKENDS["other"]
    backends = {k: (name, (*needs, "medview_no_such_dbus_library")) for k in ("win32", "darwin")}
    backends["other"] = backends["win32"]
    monkeypatch.setattr(credentials, "PLATFORM_BACKENDS", backends)
    monkeypatch.setattr(selftest, "STEPS", (("keyring", selftest._keyring),))
    assert main(own_folders) == 1
    err = capsys.readouterr().err
    assert f"keyring's {name} backend cannot load medview_no_such_dbus_library" in err
