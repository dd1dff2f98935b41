"""nnU-Net v2 models made here with nnU-Net's own planning, preprocessing and checkpoint
writer (tests/ai/nnunet_factory.py): import (API and CLI), labels and codes, a run through
nnUNetPredictor on the study's grid, the checkpoint read without running code, and the one
sentence without the extra."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from medview.core.errors import InvalidInputError, UnsupportedInputError

pytest.importorskip("nnunetv2")


@pytest.fixture(scope="module")
def nnunet_folder(tmp_path_factory):
    """Two tiny demo studies (12 slices, downsampled 8x in-plane by the factory) planned
    and preprocessed by nnU-Net, and its checkpoint of the initialised network."""
    from medview.demo import generate_demo_study
    from tests.ai.nnunet_factory import build

    root = tmp_path_factory.mktemp("nnunet")
    series = [generate_demo_study(root / f"demo{i}", seed=i, slices=12).series_dir for i in (1, 2)]
    return build(root / "work", series), series


@pytest.fixture
def small_study(nnunet_folder):
    from medview.core.volume import Volume
    from medview.io.open_volume import load_volume

    volume, _ = load_volume([nnunet_folder[1][0]])
    affine = volume.affine @ np.diag([1.0, 8.0, 8.0, 1.0])
    return Volume(volume.array[:, ::8, ::8].copy(), affine, volume.metadata)


def test_import_and_run_through_nnunets_predictor(nnunet_folder, small_study, kept_data_dir):
    from medview.ai.runtime.inference import segment
    from medview.ai.runtime.loading import load_model
    from medview.ai.runtime.nnunet_models import import_nnunet

    folder, _ = nnunet_folder
    entry = import_nnunet(folder)
    card = entry.card
    assert entry.ref == "dataset517-tinydemo:1.0"
    assert [(lab.value, lab.name, lab.code[:2]) for lab in card.labels] == [
        (1, "liver", ("SCT", "10200004")),
        (2, "bone", ("99MEDVIEW", "label-2")),
    ]
    assert card.licence == "CC-BY-4.0 (MedView tests)" and card.claims == {}
    assert card.provenance["kind"] == "nnunet-v2" and card.provenance["folds"] == ["0"]
    assert sorted(p.name for p in entry.folder.iterdir()) == [
        "checkpoint_fold0.pth",
        "dataset.json",
        "metadata.json",
        "plans.json",
    ]
    torch.set_num_threads(1)
    model = load_model(entry.folder, "cpu", reuse=False)
    progress = []
    result = segment(small_study, model, reuse=False, progress=progress.append)
    assert result.shape == small_study.shape
    # the same probabilities nnU-Net gives for the array on its own
    _, probs = model.predictor.predict_single_npy_array(
        small_study.array.astype(np.float32)[None],
        {"spacing": list(small_study.spacing_mm)},
        None,
        None,
        True,
    )
    # where one label is clearly the most probable, MedView keeps nnU-Net's probability
    fg = probs[1:]
    top2 = np.sort(fg, axis=0)[-2:]
    clear = top2[1] - top2[0] > 0.02
    for value in (1, 2):
        mine = clear & (np.argmax(fg, axis=0) == value - 1)
        assert mine.sum() > 100
        got = result.probability(value)[mine] / 255.0
        assert np.abs(got - probs[value][mine]).max() < 0.02
    assert any("window" in p.message for p in progress)


def test_checkpoint_with_code_is_refused(nnunet_folder, tmp_path, kept_data_dir):
    import shutil

    from medview.ai.runtime.nnunet_models import import_nnunet

    folder = tmp_path / "model"
    shutil.copytree(nnunet_folder[0], folder)
    canary = tmp_path / "canary"

    class Evil:
        def __reduce__(self):
            return (open, (str(canary), "w"))

    torch.save({"network_weights": {}, "x": Evil()}, folder / "fold_0" / "checkpoint_final.pth")
    with pytest.raises(InvalidInputError, match="without running code"):
        import_nnunet(folder)
    assert not canary.exists()


def test_bad_folders_are_one_sentence(nnunet_folder, tmp_path, kept_data_dir):
    import shutil

    from medview.ai.runtime.nnunet_models import import_nnunet

    folder = tmp_path / "model"
    shutil.copytree(nnunet_folder[0], folder)
    plans = json.loads((folder / "plans.json").read_text())
    for conf in plans["configurations"].values():
        if "architecture" in conf:
            conf["architecture"]["network_class_name"] = "os.system"
    (folder / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(UnsupportedInputError, match="dynamic_network_architectures"):
        import_nnunet(folder)
    shutil.rmtree(folder / "fold_0")
    with pytest.raises(InvalidInputError, match="no fold_N"):
        import_nnunet(folder)


def test_cli_imports_an_nnunet_folder(nnunet_folder, kept_data_dir, capsys):
    from medview.cli import main

    folder, _ = nnunet_folder
    code = main(
        [
            "--log-file",
            str(kept_data_dir.parent / "log.txt"),
            "models",
            "import",
            str(folder),
            "--name",
            "tiny-nnunet",
            "--version",
            "2.0",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("imported tiny-nnunet:2.0 into ")


def test_without_the_extra_one_sentence_says_what_to_install(
    nnunet_folder, kept_data_dir, monkeypatch, capsys
):
    from medview.cli import main

    monkeypatch.setitem(sys.modules, "nnunetv2", None)
    code = main(
        [
            "--log-file",
            str(kept_data_dir.parent / "log.txt"),
            "models",
            "import",
            str(nnunet_folder[0]),
        ]
    )
    _, err = capsys.readouterr()
    assert code != 0
    assert err.strip().count("\n") == 0
    assert "pip install 'medview[nnunet]'" in err


def test_focus_slab_first_then_nnunets_whole_result(nnunet_folder, small_study, kept_data_dir):
    """With a focus, nnU-Net's predictor runs first on a crop around it (at least one patch
    deep): its middle slices arrive before any other slice is computed; then the whole
    study fills every slice."""
    from medview.ai.runtime.inference import segment
    from medview.ai.runtime.loading import load_model
    from medview.ai.runtime.nnunet_models import focus_slab, import_nnunet
    from medview.core.volume import Volume

    torch.set_num_threads(1)
    model = load_model(import_nnunet(nnunet_folder[0]).folder, "cpu", reuse=False)
    deep = Volume(np.concatenate([small_study.array] * 3), small_study.affine, small_study.metadata)
    slab = focus_slab(model, deep, 30)
    assert slab is not None
    (run0, run1), (keep0, keep1) = slab
    assert (keep0, keep1) == (22, 36) and run1 - run0 >= model.patch_slices(deep.spacing_mm)
    assert focus_slab(model, small_study, 6) is None  # the crop would be the whole study
    seen = []

    def partial(result, span):
        seen.append((span, bool(result.codes[:keep0].any()), bool(result.codes[keep0:].any())))

    result = segment(deep, model, reuse=False, focus=30, on_partial=partial)
    assert seen == [((22, 36), False, True)]  # the slab, nothing before it yet
    assert result.codes[:keep0].any()


def test_totalsegmentator_task_imports_from_its_weights_folder(
    nnunet_folder, kept_data_dir, tmp_path, monkeypatch, capsys
):
    """TotalSegmentator's task 'body' from a weights folder laid out as TotalSegmentator
    keeps it (the tests' nnU-Net model in its place): imported with TotalSegmentator's
    label names and where it came from; nothing is downloaded."""
    import shutil

    from medview.ai.models import registry
    from medview.cli import main

    pytest.importorskip("totalsegmentator")
    home = tmp_path / "totalseg"
    results = home / "nnunet" / "results" / "Dataset299_body_1559subj"
    shutil.copytree(nnunet_folder[0], results / "nnUNetTrainer__nnUNetPlans__3d_fullres")
    monkeypatch.setenv("TOTALSEG_HOME_DIR", str(home))
    monkeypatch.delenv("TOTALSEG_WEIGHTS_PATH", raising=False)
    log = str(kept_data_dir.parent / "log.txt")
    code = main(["--log-file", log, "models", "import", "totalsegmentator:body"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("imported totalsegmentator-body:2.0.0 into ")
    card = registry.resolve("totalsegmentator-body:2.0.0").card
    assert [(lab.value, lab.name) for lab in card.labels] == [
        (1, "body_trunc"),
        (2, "body_extremities"),
    ]
    assert card.provenance["kind"] == "totalsegmentator"
    assert (card.provenance["task"], card.provenance["dataset_id"]) == ("body", 299)


def test_fine_tune_writes_a_new_nnunet_checkpoint(
    nnunet_folder, kept_data_dir, tmp_path, monkeypatch
):
    """The training engine on the imported model (docs/imported-models.md): 3D windows
    preprocessed by nnU-Net's own preprocessor, a new version holding one checkpoint in
    nnU-Net's format (read back with weights_only=True) beside the parent's plans, whose
    network differs from the parent's, loads and runs; its card compares it with the parent
    on the study it did not train on."""
    from medview.ai.models import registry
    from medview.ai.runtime.loading import load_model
    from medview.ai.runtime.nnunet_models import import_nnunet, read_checkpoint
    from medview.ai.training import volume_task
    from medview.ai.training.engine import Job, Settings, Trainer
    from tests.ai.imported_studies import labelled_studies

    torch.set_num_threads(1)
    monkeypatch.setattr(volume_task, "QUICK_WINDOWS", 1)  # each is a full network pass
    parent = import_nnunet(nnunet_folder[0])
    studies = labelled_studies(tmp_path / "studies", nnunet_folder[1])
    settings = Settings(epochs=1, patches_per_study=1, threads=1, device="cpu", folds=1)
    # one step, no teacher pass, no mining run: the test's time goes to the checks
    settings.distill, settings.mined_fraction = 0.0, 0.0
    done = Trainer(Job(str(studies), parent.ref, settings), lambda e: None, lambda: False).run()
    assert done is not None
    new = registry.resolve(done["version"])
    assert sorted(p.name for p in new.folder.iterdir()) == [
        "checkpoint_fold0.pth",
        "dataset.json",
        "metadata.json",
        "plans.json",
    ]
    card = new.card
    assert card.architecture == "nnunet" and card.parent_version == parent.card.version
    assert list(card.architecture_args["folds"]) == ["0"]
    ft = card.validation["fine_tune"]
    assert ft["parent"] == parent.ref and len(ft["val_studies"]) == 1
    assert set(ft["val_studies"]).isdisjoint(ft["train_studies"])
    assert card.validation["studies"] == ft["parent_metrics"]["studies"] == 1
    mine = read_checkpoint((new.folder / card.weights_file).read_bytes(), "new")
    old = read_checkpoint((parent.folder / parent.card.weights_file).read_bytes(), "parent")
    assert mine["trainer_name"] == old["trainer_name"] and mine["init_args"] == old["init_args"]
    weights, before = mine["network_weights"], old["network_weights"]
    assert weights.keys() == before.keys()
    assert any(not torch.equal(weights[k], before[k]) for k in before)
    # loaded as any version (the checkpoint read with weights_only=True), its network runs
    # (the card's numbers above came from nnU-Net's predictor with these weights)
    model = load_model(new.folder, "cpu", reuse=False)
    net = model.predictor.network
    assert all(torch.equal(net.state_dict()[k], weights[k]) for k in weights)
    patch = model.predictor.configuration_manager.patch_size
    with torch.inference_mode():
        out = net(torch.zeros((1, 1, *patch)))
    assert out.shape[1] == len(card.labels) + 1 and torch.isfinite(out).all()
