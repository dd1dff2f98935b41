"""Importing MONAI bundles made here with monai.bundle tooling (tests/ai/bundle_factory.py):
what runs without code, what needs consent (and that nothing runs before it), labels and
codes, provenance / licence / claims, bad bundles, and a run on a demo study."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from medview.ai.models.bundle_config import read_bundle
from medview.ai.runtime.bundle_import import CodeConsentRequired, import_bundle, label_code
from medview.core.errors import InvalidInputError, UnsupportedInputError
from tests.ai import bundle_factory as bf


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A 12-slice demo study and a tiny 3D U-Net trained 2 steps on it (one torch thread:
    the test machine's cores are shared)."""
    from medview.demo import generate_demo_study
    from medview.io.open_volume import load_volume

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    demo = generate_demo_study(tmp_path_factory.mktemp("demo"), seed=3, slices=12)
    volume, series = load_volume([demo.series_dir])
    net = bf.trained_unet([volume.array], steps=2)
    yield volume, series, net
    torch.set_num_threads(threads)


@pytest.fixture
def bundle(tmp_path, study):
    return bf.make_bundle(tmp_path / "tiny_bundle", study[2])


def test_a_literal_bundle_is_described_and_runs_without_code(bundle):
    plan = read_bundle(bundle)
    assert plan.runs_without_code, plan.needs_code + plan.unsupported
    assert plan.network == "UNet" and plan.network_args["channels"] == [4, 8]
    assert plan.volume3d == {
        "axcodes": "RAS",
        "spacing_mm": [1.5, 1.5, 2.0],
        "normalise": "range",
        "out_low": 0.0,
        "out_high": 1.0,
        "clip": True,
        "roi_size": [32, 32, 32],
        "sw_batch_size": 2,
        "overlap": 0.25,
        "blend": "gaussian",
    }
    assert plan.intensity == bf.HU
    assert plan.labels == [(1, "liver"), (2, "bone")]
    assert any("SlidingWindowInferer" in line for line in plan.description)


def test_import_records_card_provenance_licence_and_claims(bundle, kept_data_dir, study):
    entry = import_bundle(bundle)
    card = entry.card
    assert entry.ref == "tiny-ct-segmentation:0.2.1"
    assert card.architecture == "monai.UNet" and card.weights_format == "safetensors"
    assert not card.consent
    assert [(lab.value, lab.name, lab.code) for lab in card.labels] == [
        (1, "liver", ("SCT", "10200004", "Liver")),
        (2, "bone", ("99MEDVIEW", "label-2", "bone")),
    ]
    assert card.claims == {"mean_dice": 0.91} and card.validation == {}
    assert card.licence.startswith("MIT License")
    assert card.provenance["kind"] == "monai-bundle"
    assert card.provenance["source"] == "tiny_bundle"
    assert card.volume3d is not None and card.volume3d.roi_size == (32, 32, 32)
    weights = (bundle / "models" / "model.pt").read_bytes()
    import hashlib

    assert card.provenance["source_weights_sha256"] == hashlib.sha256(weights).hexdigest()
    assert sorted(p.name for p in entry.folder.iterdir()) == [
        "metadata.json",
        "weights.safetensors",
    ]


def test_imported_bundle_matches_monai_on_one_window(bundle, kept_data_dir, study):
    """MedView's network (built from the card, safetensors weights) gives what MONAI's own
    instantiation of the bundle gives (allowed here: the test made the bundle)."""
    from monai.bundle import ConfigParser

    from medview.ai.runtime.loading import load_model

    entry = import_bundle(bundle)
    ours = load_model(entry.folder, "cpu", reuse=False)
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    theirs = parser.get_parsed_content("network_def")
    theirs.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))
    x = torch.rand(1, 1, 32, 32, 32)
    with torch.no_grad():
        np.testing.assert_allclose(ours.forward(x).numpy(), theirs.eval()(x).numpy(), atol=1e-5)


def test_code_bundle_is_refused_and_nothing_runs(tmp_path, kept_data_dir, study):
    canary = tmp_path / "canary.txt"
    bundle = bf.code_bundle(tmp_path / "code_bundle", study[2], canary)
    with pytest.raises(CodeConsentRequired, match="Python expression") as info:
        import_bundle(bundle)
    assert str(bundle) in str(info.value) and "--allow-code" in str(info.value)
    assert not canary.exists()
    assert not (kept_data_dir / "models").exists() or not any(
        p for p in (kept_data_dir / "models").rglob("*") if p.is_file()
    )


def test_code_bundle_with_consent_runs_its_code_and_records_it(tmp_path, kept_data_dir, study):
    canary = tmp_path / "canary.txt"
    bundle = bf.code_bundle(tmp_path / "code_bundle", study[2], canary)
    entry = import_bundle(bundle, allow_code=True)
    assert canary.read_text() == "ran"  # consent given: the config's expression ran
    assert entry.card.consent["granted"] and "Python expression" in entry.card.consent["reasons"][0]
    assert entry.card.architecture == "monai.UNet"  # evaluated to an allow-listed network
    assert entry.card.architecture_args["channels"] == [4, 8]


def test_torchscript_needs_consent_and_the_card_records_it(tmp_path, kept_data_dir, study):
    bundle = bf.make_bundle(tmp_path / "ts_bundle", study[2], torchscript=True)
    with pytest.raises(CodeConsentRequired, match="TorchScript"):
        import_bundle(bundle)
    entry = import_bundle(bundle, allow_code=True, name="tiny-ts", version="1.0")
    assert entry.card.architecture == "torchscript" and entry.card.consent["granted"]
    data = json.loads((entry.folder / "metadata.json").read_text())
    data["consent"] = {}
    (entry.folder / "metadata.json").write_text(json.dumps(data))
    from medview.ai.models.cards import load_card

    with pytest.raises(InvalidInputError, match="records no consent"):
        load_card(entry.folder)


def test_unknown_network_class_needs_consent(tmp_path, kept_data_dir, study):
    config = bf.inference({"_target_": "scripts.net.MyNet", "channels": 4})
    bundle = bf.make_bundle(tmp_path / "custom", study[2], config)
    with pytest.raises(CodeConsentRequired, match=r"scripts\.net\.MyNet"):
        import_bundle(bundle)


def test_zip_bundle_imports_and_a_zip_slip_is_refused(bundle, tmp_path, kept_data_dir):
    archive = tmp_path / "tiny.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in bundle.rglob("*"):
            z.write(path, Path("tiny_bundle") / path.relative_to(bundle))
    assert import_bundle(archive, version="3.0").ref == "tiny-ct-segmentation:3.0"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../outside.txt", "x")
    with pytest.raises(InvalidInputError, match="outside the bundle"):
        import_bundle(evil)
    assert not (tmp_path.parent / "outside.txt").exists()


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        (lambda b: (b / "models" / "model.pt").unlink(), UnsupportedInputError, "no models/"),
        (
            lambda b: (b / "configs" / "inference.json").unlink(),
            InvalidInputError,
            "no inference.json",
        ),
        (
            lambda b: (b / "configs" / "metadata.json").write_text("{"),
            InvalidInputError,
            "not valid JSON",
        ),
        (
            lambda b: (b / "models" / "model.pt").write_bytes(b"garbage"),
            InvalidInputError,
            "not plain weights",
        ),
        (lambda b: shutil.rmtree(b / "configs"), InvalidInputError, "not a MONAI bundle"),
    ],
)
def test_bad_bundles_are_one_sentence(bundle, kept_data_dir, change, error, words):
    change(bundle)
    with pytest.raises(error, match=words) as info:
        import_bundle(bundle)
    assert str(bundle) in str(info.value) and "\n" not in str(info.value)


def test_sigmoid_bundle_is_unsupported_even_with_consent(tmp_path, kept_data_dir, study):
    config = bf.inference()
    config["postprocessing"]["transforms"][0] = {
        "_target_": "Activationsd",
        "keys": "pred",
        "sigmoid": True,
    }
    bundle = bf.make_bundle(tmp_path / "sig", study[2], config)
    with pytest.raises(UnsupportedInputError, match="sigmoid"):
        import_bundle(bundle, allow_code=True)


def test_yaml_config_is_read(bundle, kept_data_dir):
    yaml = pytest.importorskip("yaml")
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    (bundle / "configs" / "inference.json").unlink()
    (bundle / "configs" / "inference.yaml").write_text(yaml.safe_dump(config))
    assert read_bundle(bundle).runs_without_code


def test_runs_on_a_demo_study_and_exports_seg(bundle, kept_data_dir, study, tmp_path):
    from medview.core.jobs import CancelToken, JobContext
    from medview.io.dicom.seg import read_seg, write_seg
    from medview.jobs.inference import infer_job
    from tests.job_driver import drive

    volume, series, _ = study
    entry = import_bundle(bundle)
    result, _ = drive(
        infer_job(volume, entry.ref, JobContext(CancelToken()), device="cpu", threshold=0.5)
    )
    assert result.card.ref == entry.ref and result.segmentation.shape == volume.shape
    labels = result.label_map()
    assert labels.any() and set(np.unique(labels).tolist()) <= {0, 1, 2}
    out = tmp_path / "seg.dcm"
    write_seg(labels, series, result.card, out)
    back = read_seg(out, series)
    assert back.algorithm == ("tiny-ct-segmentation", "0.2.1")
    present = sorted(set(np.unique(labels).tolist()) - {0})
    assert sorted(back.segment_labels.values()) == sorted(["liver", "bone"])
    numbers = {v: k for k, v in back.segment_labels.items()}
    for value, name in ((1, "liver"), (2, "bone")):
        if value in present:
            np.testing.assert_array_equal(back.label_map == numbers[name], labels == value)


def test_label_codes():
    assert label_code("Spleen", 1) == ("SCT", "78961009", "Spleen")
    assert label_code("left kidney", 3) == ("SCT", "64033007", "Kidney")
    assert label_code("pancreas", 7) == ("99MEDVIEW", "label-7", "pancreas")
