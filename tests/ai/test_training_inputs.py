"""Bad inputs to a fine-tune end in one sentence and leave nothing damaged: no labelled
studies, a label map off its image's grid, labels the model does not know (and their
mapping), a disk that fills up while a checkpoint is written."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from medview.ai.training import engine as training
from medview.ai.training import job as train_job
from medview.ai.training.data import find_studies, split_by_patient
from medview.commands.setting_words import sentence
from medview.core.errors import InvalidInputError, ResourceLimitError, SettingError
from tests.ai.test_training import run, tiny_job
from tests.ai.train_fixtures import install_base, make_studies, make_study


@pytest.fixture(autouse=True)
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    torch.set_num_threads(1)
    install_base(tmp_path / "data")


def _job(tmp_path: Path, studies: Path) -> training.Job:
    return training.Job(
        data=str(studies),
        base="tiny",
        work=str(tmp_path / "work"),
        settings=training.Settings(
            epochs=1, batch_size=2, patch_size=32, patches_per_study=2, threads=1
        ),
    )


def test_no_labelled_studies(tmp_path: Path) -> None:
    (tmp_path / "empty" / "just-a-folder").mkdir(parents=True)
    with pytest.raises(InvalidInputError, match="holds no labelled studies"):
        run(_job(tmp_path, tmp_path / "empty"))


def test_one_patient_cannot_be_split(tmp_path: Path) -> None:
    make_studies(tmp_path / "one", 1)
    with pytest.raises(InvalidInputError, match="1 training and 0 validation"):
        run(_job(tmp_path, tmp_path / "one"))


def test_label_map_off_its_image_grid_names_the_study(tmp_path: Path) -> None:
    make_studies(tmp_path / "s", 2)
    shifted = np.diag([2.0, 0.7, 0.7, 1.0])
    shifted[:3, 3] = (0.0, 5.0, 0.0)
    make_study(tmp_path / "s" / "study-03", 9, labels_affine=shifted)
    with pytest.raises(InvalidInputError, match=r"study-03.*5\.0 mm away from its image"):
        run(_job(tmp_path, tmp_path / "s"))


def test_unknown_label_is_refused_then_mapped(tmp_path: Path) -> None:
    make_studies(tmp_path / "s", 2)
    make_study(tmp_path / "s" / "study-03", 9, extra_label=7)
    job = _job(tmp_path, tmp_path / "s")
    with pytest.raises(
        SettingError,
        match=r"study-03 holds label 7, which tiny:1.0 does "
        r"not know",
    ) as err:
        run(job)  # (the studies are prepared in worker processes: the data comes back whole)
    assert (err.value.setting, err.value.value, err.value.kind) == ("mapping", "7", "unmapped")
    assert sentence(err.value).endswith('; map it, e.g. --map 7="lung nodule" or --map 7=ignore')
    job.mapping = {"7": "liver lesion", "tumor": "ignore"}  # the second a typo of nothing
    done, events = run(job)
    assert done is not None
    (warning,) = [e for e in events if e["event"] == "warning"]
    said = sentence(SettingError.from_dict(warning["setting"]))  # as `medview train` says it
    assert said == "--map tumor=ignore: no study has a label named 'tumor', so it changes nothing"


def test_split_keeps_a_patient_on_one_side(tmp_path: Path) -> None:
    studies = find_studies(make_studies(tmp_path / "s", 4))
    same = [
        s.__class__(**{**s.__dict__, "patient": "p1" if i < 2 else s.patient})
        for i, s in enumerate(studies)
    ]
    split = split_by_patient(same, 0.5, seed=3)
    sides = [("train" if s.key in split["train"] else "val") for s in same[:2]]
    assert sides[0] == sides[1]
    assert split == split_by_patient(same, 0.5, seed=3)


def test_disk_full_while_checkpointing_keeps_the_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = tiny_job(tmp_path, epochs=3)
    real = train_job.atomic_write_bytes
    writes = {"n": 0}

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def full_disk(path: Path, data: bytes) -> None:
        """The second checkpoint's temp file fills the disk (its fsync fails), inside the
        real atomic write, so its clean-up runs too."""
        if path.name == training.CHECKPOINT:
            writes["n"] += 1
            if writes["n"] == 2:
                with monkeypatch.context() as m:
                    m.setattr(os, "fsync", no_space)
                    real(path, data)
                return
        real(path, data)

    monkeypatch.setattr(train_job, "atomic_write_bytes", full_disk)
    with pytest.raises(
        ResourceLimitError,
        match=r"the disk is full\. The previous checkpoint "
        r"is intact",
    ):
        run(job)
    ck = torch.load(Path(job.work) / training.CHECKPOINT, weights_only=True)
    assert ck["epoch"] == 1
    assert not [p for p in Path(job.work).iterdir() if p.name.endswith(".tmp")]
    assert not (tmp_path / "data" / "models" / "tiny" / "1.0.1").exists()


def _done_study(tmp_path: Path, name: str = "Tumour") -> np.ndarray:
    """A DICOM series labelled in the workspace (segments 'lung nodule' and `name`) and
    marked done, as the annotation tools leave it."""
    from medview.core.labels import LabelMap
    from medview.io.dicom.index import scan
    from medview.io.labels.store import DONE, LabelSource, LabelStore
    from tests.dicom_factory import write_ct_series

    write_ct_series(
        tmp_path / "ct",
        n=12,
        rows=48,
        cols=48,
        spacing=(0.7, 0.7),
        pixel_fn=lambda k, r, c: np.full((r, c), 1064, np.int16),
    )
    (series,) = scan([tmp_path / "ct"]).series
    store = LabelStore(series.key)
    store.start(LabelSource.from_series(series))
    lm = LabelMap.empty((12, 48, 48), series.key)
    lm.add_segment("lung nodule")
    lm.add_segment(name)
    lm.array[3:6, 10:15, 10:15] = 1
    lm.array[6:9, 30:36, 30:36] = 2
    store.save(lm, clean=True)
    store.set_status(DONE, "reader")
    return lm.array


def test_workspace_done_studies_are_found_matched_by_name_and_mapped(tmp_path: Path) -> None:
    from medview.ai.models import registry
    from medview.ai.training.data import find_studies, label_counts, prepare_study

    labels = _done_study(tmp_path)
    (study,) = find_studies("workspace")
    assert study.segments == {1: "lung nodule", 2: "Tumour"} and study.name == "ct"
    counts, voxel_ml = label_counts(study)  # what the panel lists: 0.7 x 0.7 x 2.5 mm voxels
    assert counts == {1: 75, 2: 108} and voxel_ml == pytest.approx(0.7 * 0.7 * 2.5 / 1000)
    card = registry.resolve("tiny").card
    with pytest.raises(
        SettingError,
        match=r"ct holds label 2 \(Tumour\), which tiny:1.0 "
        r"does not know",
    ) as err:
        prepare_study(study, card, tmp_path / "cache")
    assert "; map it, e.g. --map Tumour=" in sentence(err.value)
    prepared = prepare_study(study, card, tmp_path / "cache", {"tumour": "liver lesion"})
    assert prepared.counts == {1: int((labels == 1).sum()), 2: int((labels == 2).sum())}
    assert np.array_equal(np.asarray(prepared.labels), labels)


def test_a_lesion_on_a_missing_slice_is_refused(tmp_path: Path) -> None:
    """A missing file loads as a blank slice; labels there would teach a lesion on flat grey
    (the run trained on it without a word)."""
    from medview.ai.models import registry
    from medview.ai.training.data import prepare_study
    from medview.core.volume import Volume
    from medview.io.image_files import write_volume
    from medview.io.open_volume import load_volume
    from tests.dicom_factory import write_ct_series

    card = registry.resolve("tiny").card
    write_ct_series(tmp_path / "s" / "one" / "series", n=12, rows=48, cols=48, drop=(5,))
    volume, series = load_volume([tmp_path / "s" / "one" / "series"])
    assert series is not None and series.slices[5] is None
    labels = np.zeros(volume.shape, np.uint8)
    labels[2, 10:14, 10:14] = 1
    write_volume(Volume(labels, volume.affine), tmp_path / "s" / "one" / "labels.nii.gz")
    (study,) = find_studies(tmp_path / "s" / "one")
    assert prepare_study(study, card, tmp_path / "cache").counts == {1: 16}
    labels[5, 20:24, 20:24] = 2
    write_volume(Volume(labels, volume.affine), tmp_path / "s" / "one" / "labels.nii.gz")
    with pytest.raises(
        InvalidInputError,
        match=r"one has no image for slice 6 \(a missing "
        r"file\) where its label map marks a lesion",
    ):
        prepare_study(study, card, tmp_path / "cache")


def test_the_cache_follows_a_replaced_image_and_drops_old_mistakes(tmp_path: Path) -> None:
    """Only the label map's change was noticed: a replaced image (or a restored missing
    slice) kept training on the old cached pixels."""
    from medview.ai.models import registry
    from medview.ai.training.data import prepare_study
    from medview.core.volume import Volume
    from medview.io.image_files import read_image, write_volume

    card = registry.resolve("tiny").card
    folder = make_study(tmp_path / "s" / "one", 1)
    (study,) = find_studies(folder)
    first = prepare_study(study, card, tmp_path / "cache")
    (first.folder / "mined-x.npy").write_bytes(b"old")
    image = read_image(folder / "image.nii.gz")
    write_volume(Volume(np.full(image.shape, 77, np.int16), image.affine), folder / "image.nii.gz")
    again = prepare_study(study, card, tmp_path / "cache")
    assert np.all(np.asarray(again.image) == 77)
    assert not (again.folder / "mined-x.npy").exists()


def test_a_card_label_name_maps_the_value_of_an_unnamed_study(tmp_path: Path) -> None:
    """--map "lung nodule=ignore" on NIfTI labels (no names) was silently a no-op."""
    from medview.ai.models import registry
    from medview.ai.training.data import label_mapping

    card = registry.resolve("tiny").card
    (study,) = find_studies(make_study(tmp_path / "s" / "one", 1))
    assert label_mapping(study, [1, 2], card, {"Lung nodule": "ignore"}) == {1: 0, 2: 2}
    named = study.__class__(**{**study.__dict__, "segments": {1: "liver lesion"}})
    assert label_mapping(named, [1], card, {"lung nodule": "ignore"}) == {1: 2}


def test_a_full_disk_while_caching_a_study_is_one_sentence_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was an internal error (numpy's OSError) that left a temp file on the full disk."""
    from medview.ai.models import registry
    from medview.ai.training.data import prepare_study

    card = registry.resolve("tiny").card
    (study,) = find_studies(make_study(tmp_path / "s" / "one", 1))

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(
        ResourceLimitError,
        match=r"image.npy: could not be written: the disk "
        r"is full.*free some space and run again$",
    ):
        prepare_study(study, card, tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_a_full_disk_when_the_job_file_is_written_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = tiny_job(tmp_path, epochs=1)
    run(job)  # the studies are cached: the next run writes the job file first

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(
        ResourceLimitError,
        match=r"job.json: could not be written: the disk "
        r"is full",
    ):
        run(tiny_job(tmp_path, epochs=1, work="work2"))


def test_a_study_folders_segment_table_names_its_values(tmp_path: Path) -> None:
    """A label map with a segment table beside it (a reader's export; a SEG brought from the
    PACS for training) is matched by name: value 1 named 'liver lesion' teaches the model's
    liver lesion (2), not its lung nodule (1); without the table the values are the model's."""
    from medview.ai.models import registry
    from medview.ai.training.data import label_mapping
    from medview.core.labels import segment_for
    from medview.io.labels.files import write_segment_table

    card = registry.resolve("tiny").card
    folder = make_study(tmp_path / "s" / "one", 1)
    (plain,) = find_studies(folder)
    assert plain.segments == {} and label_mapping(plain, [1], card) == {1: 1}
    write_segment_table(folder / "labels.nii.gz", {1: segment_for(1, "liver lesion")})
    (named,) = find_studies(folder)
    assert named.segments == {1: "liver lesion"}
    assert label_mapping(named, [1], card) == {1: 2}
