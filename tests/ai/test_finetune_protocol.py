"""benchmarks/finetune_protocol.py's rules (issue 15): development and test seeds are
disjoint, a test run may not reuse a seed range a recorded test run used, nor run shrunk
studies or changed settings; the goals are judged from the draws' numbers."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fp():  # the script, imported as a module
    spec = importlib.util.spec_from_file_location(
        "finetune_protocol", ROOT / "benchmarks" / "finetune_protocol.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_development_and_test_seeds_never_meet(fp) -> None:
    for site in ("b", "c"):
        dev = fp.run_range(fp.DEV_BASE, site, 50)
        test = fp.run_range(fp.TEST_BASE, site, 3)
        assert dev[1] < fp.TEST_BASE <= test[0]
        assert dev[0] > 56 + 1010 + 3012  # above the bundled model's and bench_finetune's
    block = fp.seed_block(fp.DEV_BASE, "b", 2)
    assert block == fp.DEV_BASE + 2 * fp.BLOCK
    assert fp.run_range(fp.DEV_BASE, "c", 1)[0] != fp.run_range(fp.DEV_BASE, "b", 1)[0]


def test_a_test_range_used_by_a_recorded_test_run_is_refused(fp) -> None:
    runs = [
        {"kind": "development", "seed_range": [200000, 202999]},
        {"kind": "test", "seed_range": [200000, 202999], "date": "2026-12-07"},
    ]
    with pytest.raises(fp.Refused, match=r"overlap 200000-202999.*--test-base 203000"):
        fp.check_test_range(fp.run_range(fp.TEST_BASE, "b", 3), runs)
    fp.check_test_range(fp.run_range(203000, "b", 3), runs)  # fresh seeds: allowed
    fp.check_test_range(fp.run_range(fp.TEST_BASE, "c", 3), runs)  # site C's own block
    with pytest.raises(fp.Refused, match="below are development seeds"):
        fp.check_test_range(fp.run_range(fp.DEV_BASE, "b", 3), [])


def test_a_test_run_takes_the_protocols_sizes(fp) -> None:
    def args(**kw: object) -> argparse.Namespace:
        return argparse.Namespace(**{"slices": None, "draws": 3, "test_n": 5, "test_a": 3, **kw})

    fp.check_test_size(args())
    for shrunk in ({"slices": 40}, {"draws": 2}, {"test_n": 4}, {"test_a": 2}):
        with pytest.raises(fp.Refused, match="full-size studies"):
            fp.check_test_size(args(**shrunk))


def _draw(gain_site: float, gain_a: float, fp_change: float, seconds: float) -> dict:
    def side(p: float, change: float, fps: float) -> dict:
        return {
            "parent": {"dice_mean": p, "sensitivity_ge_6mm": 0.8, "false_positives_per_study": 2.0},
            "new": {
                "dice_mean": p + change,
                "sensitivity_ge_6mm": 0.8,
                "false_positives_per_study": 2.0 + fps,
            },
        }

    return {
        "draw": 0,
        "train_seeds": [1],
        "fine_tune_s": seconds,
        "b": side(0.6, gain_site, fp_change),
        "a": side(0.9, gain_a, 0.0),
    }


def test_goals_are_judged_on_every_draw(fp) -> None:
    good = [_draw(0.12, -0.01, -0.5, 500), _draw(0.11, 0.0, 0.0, 550), _draw(0.13, -0.02, -1, 590)]
    assert all(ok for _, ok in fp.goals(good, "b"))
    one_weak = [_draw(0.25, 0.0, 0.0, 500), _draw(0.02, 0.0, 0.0, 500), _draw(0.2, 0, 0, 500)]
    met = dict(fp.goals(one_weak, "b"))
    assert [ok for ok in met.values()] == [True, False, True, True, True]  # 0.02 < 0.03
    worse = fp.goals([_draw(0.15, -0.05, 1.0, 700)] * 3, "b")
    assert [ok for _, ok in worse] == [True, True, False, False, False]
    assert "lowest +0.020" in list(met)[1]
    assert "0.600->0.620" in fp.table(one_weak, "b")


def test_the_script_refuses_a_shrunk_test_run_in_one_line(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            "python",
            str(ROOT / "benchmarks" / "finetune_protocol.py"),
            "--test",
            "--slices",
            "20",
            "--work",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "full-size studies" in out.stderr
    out = subprocess.run(
        [
            "python",
            str(ROOT / "benchmarks" / "finetune_protocol.py"),
            "--test",
            "--set",
            "folds=3",
            "--work",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "drop --set" in out.stderr
    assert not (tmp_path / "data").exists()  # refused before any work
    recorded = (
        json.loads((ROOT / "benchmarks" / "results" / "finetune_protocol.json").read_text())
        if (ROOT / "benchmarks" / "results" / "finetune_protocol.json").exists()
        else {"runs": []}
    )
    assert all("seed_range" in r and r["kind"] in ("development", "test") for r in recorded["runs"])
