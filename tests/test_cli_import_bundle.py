"""`medview models import PATH` with MONAI bundles made by monai.bundle tooling: imported
and listed with the model's own claims kept apart, --describe says what would run, a bundle
whose config runs code is refused in one line (its canary unwritten) unless --allow-code."""

from __future__ import annotations

import json

import pytest

from medview.ai.models import registry
from medview.cli import main
from tests.ai import bundle_factory as bf


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: tmp_path / "no-bundled")
    return tmp_path


def run(capsys, tmp_path, *args):
    code = main(["--log-file", str(tmp_path / "log.txt"), *args])
    out, err = capsys.readouterr()
    return code, out, err


def net():
    from monai.networks.nets import UNet

    return UNet(**bf.NET_ARGS)


def test_import_list_and_claims(env, capsys):
    bundle = bf.make_bundle(env / "tiny_bundle", net())
    code, out, err = run(capsys, env, "models", "import", str(bundle))
    assert code == 0, err
    assert out.startswith("imported tiny-ct-segmentation:0.2.1 into ")
    code, out, _ = run(capsys, env, "models")
    assert "the model's own claims (not measured by MedView): mean_dice 0.91" in out
    assert "no validation results" in out
    code, out, _ = run(capsys, env, "models", "--json")
    model = json.loads(out)["models"][0]
    assert model["claims"] == {"mean_dice": 0.91} and model["validation"] == {}
    assert model["provenance"]["kind"] == "monai-bundle"
    assert model["runs_code_with_consent"] is False


def test_describe_says_what_would_run(env, capsys):
    bundle = bf.make_bundle(env / "tiny_bundle", net())
    code, out, _ = run(capsys, env, "models", "import", str(bundle), "--describe")
    assert code == 0
    assert "Spacingd: resampled to [1.5, 1.5, 2.0] mm" in out
    assert out.rstrip().endswith("MedView runs it without running code from it")
    assert not registry.user_models_dir().exists()


def test_code_bundle_refused_in_one_line_then_allowed(env, capsys):
    canary = env / "canary.txt"
    bundle = bf.code_bundle(env / "code_bundle", net(), canary)
    code, out, err = run(capsys, env, "models", "import", str(bundle))
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"medview: {bundle}: would run code")
    assert "--allow-code" in err and not canary.exists()
    code, out, err = run(capsys, env, "models", "import", str(bundle), "--allow-code")
    assert code == 0, err
    assert "your consent is recorded on its card" in out and canary.exists()


def test_pt2_without_card_is_one_line(env, capsys):
    path = env / "model.pt2"
    path.write_bytes(b"x")
    code, _, err = run(capsys, env, "models", "import", str(path))
    assert code != 0 and "needs its card (--card CARD.json)" in err
