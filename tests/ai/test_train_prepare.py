"""A fine-tune prepares its studies in several processes (train_prepare): the cache they
write is the one a single process writes, an error in one study arrives as the sentence it
would have been (its path, its problem, a full disk still a full disk), and a stop or an
error ends the other workers at once."""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from medview.ai.models import registry
from medview.ai.training.data import find_studies, prepare_study
from medview.ai.training.prepare import _call, _raise, run_each, worker_count
from medview.commands.setting_words import sentence
from medview.core.errors import InvalidInputError, ResourceLimitError, SettingError
from tests.ai.train_fixtures import _affine, install_base, make_studies, make_study


@pytest.fixture
def card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    install_base(tmp_path / "data")
    return registry.resolve("tiny").card


def _cache(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.npy"))}


def test_two_workers_cache_what_one_process_caches(tmp_path: Path, card) -> None:
    studies = find_studies(make_studies(tmp_path / "studies", 4))
    seen: list[tuple[int, int]] = []
    run_each(
        partial(prepare_study, card=card, cache=tmp_path / "two"),
        studies,
        2,
        lambda k, n: seen.append((k, n)),
    )
    run_each(
        partial(prepare_study, card=card, cache=tmp_path / "one"), studies, 1, lambda k, n: None
    )
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    two, one = _cache(tmp_path / "two"), _cache(tmp_path / "one")
    assert len(one) == 8 and two == one
    st = prepare_study(studies[0], card, tmp_path / "two")  # and it reads as a cache hit
    assert np.asarray(st.labels).any()
    assert not multiprocessing.active_children()


def test_a_bad_study_in_a_worker_is_its_own_sentence(tmp_path: Path, card) -> None:
    root = make_studies(tmp_path / "studies", 3)
    make_study(root / "study-09", 9, labels_affine=_affine((2.0, 0.9, 0.9)))
    studies = find_studies(root)
    with pytest.raises(InvalidInputError) as inline:
        run_each(
            partial(prepare_study, card=card, cache=tmp_path / "a"), studies, 1, lambda k, n: None
        )
    with pytest.raises(InvalidInputError) as pooled:
        run_each(
            partial(prepare_study, card=card, cache=tmp_path / "b"), studies, 2, lambda k, n: None
        )
    assert str(pooled.value) == str(inline.value) and "study-09" in str(pooled.value)
    assert pooled.value.path == inline.value.path
    assert not multiprocessing.active_children()


def _slow(marker: Path) -> None:
    time.sleep(0.5)
    marker.write_text("done")


def test_a_stop_ends_the_workers_at_once(tmp_path: Path) -> None:
    """Stopped after the first item: the workers are ended, not left to finish the queue."""
    items = [tmp_path / f"item-{i}" for i in range(8)]

    class Stop(Exception):
        pass

    def stop_after_one(k: int, n: int) -> None:
        if k == 1:
            raise Stop

    with pytest.raises(Stop):
        run_each(_slow, items, 2, stop_after_one)
    assert not multiprocessing.active_children()
    time.sleep(1.0)  # what a worker left running would still finish meanwhile
    assert 1 <= sum(p.exists() for p in items) < len(items)


def _long(marker: Path) -> None:
    time.sleep(5)
    marker.write_text("done")


def test_a_stop_is_read_while_the_workers_are_busy(tmp_path: Path) -> None:
    """It was read only as a study ended: up to a study's time (6 s a rehearsal study)."""
    items = [tmp_path / f"item-{i}" for i in range(4)]
    asked = {"n": 0}

    class Stop(Exception):
        pass

    def check() -> None:
        asked["n"] += 1
        if asked["n"] >= 2:
            raise Stop

    with pytest.raises(Stop):
        run_each(_long, items, 2, lambda k, n: None, check)
    assert not multiprocessing.active_children()
    assert not any(p.exists() for p in items)  # no study had ended when it stopped


def _killed_at_two(item: int) -> None:
    if item == 2:  # as the out-of-memory killer ends a worker
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.2)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_a_worker_killed_is_one_sentence_not_a_hang() -> None:
    """multiprocessing.Pool waited forever for the study of a worker the kernel killed."""
    with pytest.raises(
        SettingError,
        match=r"a process preparing the studies ended "
        r"abruptly",
    ) as err:
        run_each(_killed_at_two, list(range(6)), 2, lambda k, n: None)
    assert (err.value.setting, err.value.kind) == ("threads", "workers_died")
    assert "; run again with --threads 1, which prepares one" in sentence(err.value)
    assert not multiprocessing.active_children()


def _full(_item: object) -> None:
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as exc:
        raise ResourceLimitError("/cache/x.npy", "could not be written: the disk is full") from exc


def test_a_full_disk_in_a_worker_is_still_a_full_disk() -> None:
    from medview.commands.train import _kind

    parts = _call((_full, None))
    assert parts is not None
    with pytest.raises(ResourceLimitError) as got:
        _raise(*parts)
    assert got.value.path == "/cache/x.npy" and _kind(got.value) == "disk"


def test_workers_are_bounded_by_cores_and_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    from medview.ai.training import prepare as tp

    monkeypatch.setattr(tp, "physical_memory_bytes", lambda: 64 * tp.GIB)
    assert (worker_count(1), worker_count(8), worker_count(64)) == (1, 8, 16)
    monkeypatch.setattr(tp, "physical_memory_bytes", lambda: 2 * tp.GIB)
    assert worker_count(8) == 1


def test_a_run_on_two_threads_prepares_in_two_processes(tmp_path: Path, card) -> None:
    from medview.ai.training.engine import Job, Settings, Trainer

    make_studies(tmp_path / "studies", 4)
    s = Settings(epochs=1, batch_size=4, patch_size=32, patches_per_study=8, threads=2)
    job = Job(data=str(tmp_path / "studies"), base="tiny", settings=s, work=str(tmp_path / "work"))
    events: list[dict] = []
    done = Trainer(job, events.append, lambda: False).run()
    assert done is not None and done["version"] == "tiny:1.0.1"
    assert [(e["index"], e["of"]) for e in events if e["event"] == "prepare"] == [
        (1, 4),
        (2, 4),
        (3, 4),
        (4, 4),
    ]
    assert len(list((tmp_path / "data" / "training" / "cache").glob("*/meta.json"))) == 4
    assert not multiprocessing.active_children()
