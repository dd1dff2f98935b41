"""Fine-tuning an imported MONAI bundle with `medview train` (docs/imported-models.md): 3D
windows of its own grid, a new safetensors version under the same runner config with the
fine-tune card (parent, data hashes, settings, cross-validated numbers with intervals), which
loads, runs and differs from its parent; and a reader's label the model lacks is one
sentence. (The nnU-Net model's fine-tune is in test_nnunet_models.py, beside its fixture.)"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from tests.ai import bundle_factory as bf
from tests.ai.imported_studies import labelled_studies, labelled_study

pytest.importorskip("monai")

FAST = ["--epochs", "1", "--patches-per-study", "2", "--threads", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """Three 12-slice demo studies and the factory's tiny 3D U-Net trained 2 steps."""
    from medview.demo import generate_demo_study
    from medview.io.open_volume import load_volume

    root = tmp_path_factory.mktemp("demo3d")
    dirs = [generate_demo_study(root / f"d{i}", seed=i, slices=12).series_dir for i in (1, 2, 3)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    volume, _ = load_volume([dirs[0]])
    yield dirs, bf.trained_unet([volume.array], steps=2)
    torch.set_num_threads(threads)


@pytest.fixture
def imported(tmp_path, series, kept_data_dir):
    from medview.ai.runtime.bundle_import import import_bundle

    return import_bundle(bf.make_bundle(tmp_path / "bundle", series[1]))


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_cli_fine_tunes_a_monai_bundle_into_a_new_version(imported, series, tmp_path, capsys):
    from safetensors.torch import load_file

    from medview.ai.models import registry
    from medview.ai.runtime.inference import segment
    from medview.ai.runtime.loading import load_model
    from medview.ai.training.data import find_studies, prepare_study
    from medview.ai.training.grid_studies import study_volume
    from medview.cli import main
    from medview.io.image_files import read_image

    studies = labelled_studies(tmp_path / "studies", series[0])
    work = tmp_path / "work"
    code = main(
        ["train", "--data", str(studies), "--base", imported.card.name, *FAST, "--out", str(work)]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    got = _events(out.out)
    done = got[-1]
    assert done["event"] == "done", got[-3:]
    assert any(e["event"] == "step" or e["event"] == "epoch" for e in got)
    new = registry.resolve(done["version"])
    card, parent = new.card, imported.card
    assert card.parent_version == parent.version and card.name == parent.name
    assert card.architecture == parent.architecture == "monai.UNet"
    assert card.volume3d == parent.volume3d and card.weights_format == "safetensors"
    assert card.claims == {} and parent.claims  # the publisher's numbers are the parent's
    ft = card.validation["fine_tune"]
    assert ft["parent"] == parent.ref and ft["settings"]["epochs"] == 1
    assert len(ft["train_hash"]) == 16 and len(ft["train_studies"]) == 3
    cv = ft["cross_validation"]
    assert cv["studies"] == 3 and cv["folds"] == 2
    assert set(cv["intervals"]["dice_mean"]) == {"parent", "new"}
    assert "3D windows of 32x32x32 model voxels" in card.training_data
    # the version loads, runs through the 3D runner and is not its parent
    before = load_file(str(imported.folder / parent.weights_file))
    after = load_file(str(new.folder / card.weights_file))
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    prepared = prepare_study(find_studies(studies)[0], card, tmp_path / "cache")
    image = read_image(studies / "study-01" / "image.nii.gz")
    assert np.allclose(prepared.affine, image.affine)  # the cache keeps the study's grid
    result = segment(study_volume(prepared), load_model(new.folder, "cpu"), reuse=False)
    assert result.codes.shape == prepared.image.shape
    # listed beside its parent, not activated
    assert registry.resolve(parent.name).card.version == parent.version


def test_a_label_the_model_lacks_is_one_sentence(imported, series, tmp_path, capsys):
    from medview.cli import main

    studies = tmp_path / "studies"
    labelled_study(series[0][0], studies / "a")
    labelled_study(series[0][1], studies / "b", extra_label=3)
    code = main(["train", "--data", str(studies), "--base", imported.card.name, *FAST])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "3" in err and "liver" in err and imported.card.ref in err, err


def test_windows_centre_on_labels_and_map_study_points(imported, series, tmp_path):
    """The sampler's positives hold labelled voxels; study points land on the grid."""
    from medview.ai.training.data import find_studies, prepare_study
    from medview.ai.training.grid_studies import on_model_grid
    from medview.ai.training.volume_task import WindowSampler

    labelled_study(series[0][0], tmp_path / "s" / "a")
    st = prepare_study(find_studies(tmp_path / "s")[0], imported.card, tmp_path / "cache")
    grid = on_model_grid(st, imported.card, None)
    assert grid.image.shape == grid.labels.shape and grid.labels.max() == 2
    # a labelled study voxel lands on the same label on the grid (nearest neighbour)
    vox = np.argwhere(np.asarray(st.labels) == 2)[:50]
    on = grid.to_grid(vox)
    ok = np.all((on >= 0) & (on < grid.labels.shape), axis=1)
    assert ok.mean() > 0.9 and np.mean(grid.labels[tuple(on[ok].T)] == 2) > 0.5
    rng = np.random.default_rng(0)
    always = WindowSampler([grid], (32, 32, 32), 1.0)
    never = WindowSampler([grid], (32, 32, 32), 0.0)
    hit = np.mean([always.window(rng)[2].any() for _ in range(20)])
    assert hit == 1.0 and hit >= np.mean([never.window(rng)[2].any() for _ in range(20)])
    # a study without labels (a validation fold may hold none) still gives windows
    blank = dataclasses.replace(grid, labels=np.zeros_like(grid.labels))
    assert not WindowSampler([blank], (32, 32, 32), 1.0).window(rng)[2].any()
