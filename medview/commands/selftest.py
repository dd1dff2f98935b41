"""`medview --selftest`: prove that this installation works, headless, in a few seconds.

A wheel or a frozen bundle can miss a data file, a Qt plugin or a torch library and still
start; this walks the path a radiologist's first session takes through the real code: it
generates a small demo study in a temporary folder, loads it through the DICOM reader, draws
each plane through the viewer's SliceView offscreen, loads every bundled model and runs the
bundled segmentation models on the study, writes the result as a DICOM SEG and reads it back,
starts a child process the way the viewer starts a training run, and finds the OS keyring
backend that keeps PACS passwords.

One line per step with its time goes to stdout; the first failure ends the run with one
sentence on stderr and exit 1. Nothing is written outside the temporary folder, which is
removed at the end (the log file aside, as for every command). `packaging/build` runs it on
the frozen app, and tests/commands/test_selftest_wheel.py on an installed wheel."""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medview.commands import EXIT_BAD_INPUT, EXIT_OK

log = logging.getLogger(__name__)

DEMO_SLICES = 12  # enough for the 2.5D models' neighbours, ~1 s to generate
RENDER_SIZE = (256, 256)
MIN_GREYS = 8  # distinct colours a drawn slice shows at least; a blank view has one or two
CHILD_TIMEOUT_S = 120  # `medview --version` in a child: well under 5 s, unless very busy


class SelfTestFailure(Exception):
    """A step found the installation broken; its message is the sentence the user reads."""


@dataclass
class _Run:
    work: Path
    study: Any = None
    volume: Any = None
    series: Any = None
    results: list[Any] = field(default_factory=list)


def _demo(run: _Run) -> str:
    from medview.demo import generate_demo_study

    run.study = generate_demo_study(run.work / "demo", seed=0, slices=DEMO_SLICES)
    z, y, x = run.study.shape
    return f"{z} slices of {y} x {x}, {len(run.study.lesions)} lesion(s)"


def _load(run: _Run) -> str:
    from medview.io.open_volume import load_volume

    run.volume, run.series = load_volume([run.study.series_dir])
    if run.series is None or run.volume.shape != run.study.shape:
        raise SelfTestFailure(
            f"the demo series loaded as {run.volume.shape}, not the "
            f"{run.study.shape} that was written"
        )
    return f"{run.volume.metadata.modality} {run.volume.shape} {run.volume.array.dtype}"


def _decoders(run: _Run) -> str:
    """Compressed DICOM needs decoder plugins found at run time (pylibjpeg's entry points,
    pyjpegls): the first thing a frozen build loses without a word."""
    from pydicom.uid import (
        JPEG2000Lossless,
        JPEGBaseline8Bit,
        JPEGLosslessSV1,
        JPEGLSLossless,
        RLELossless,
    )

    from medview.io.dicom.pixel_codecs import decodable

    syntaxes = {
        "JPEG baseline": JPEGBaseline8Bit,
        "JPEG lossless": JPEGLosslessSV1,
        "JPEG-LS": JPEGLSLossless,
        "JPEG 2000": JPEG2000Lossless,
        "RLE": RLELossless,
    }
    missing = [name for name, uid in syntaxes.items() if not decodable(uid)]
    if missing:
        raise SelfTestFailure(
            f"no decoder for {', '.join(missing)} DICOM images; the "
            f"pixel codec plugins are missing from this installation"
        )
    return ", ".join(syntaxes)


def _distinct_colours(image: Any) -> int:
    """Distinct pixel values on a 32 x 32 grid over the image (QImage.pixel, so this
    module needs no Qt import of its own)."""
    w, h = image.width(), image.height()
    return len({image.pixel(x * w // 32, y * h // 32) for y in range(32) for x in range(32)})


def _render(run: _Run) -> str:
    from medview.ui.snapshot import ensure_app, render_view
    from medview.viewer.planes import Plane, plane_map

    drawn = []
    for plane in Plane:
        n = plane_map(run.volume.affine, run.volume.shape, plane).n_slices
        image = render_view(run.volume, plane, n // 2, size=RENDER_SIZE)
        greys = _distinct_colours(image)
        if greys < MIN_GREYS:
            raise SelfTestFailure(
                f"the {plane.value} view came out blank ({greys} colour(s)); Qt cannot draw here"
            )
        drawn.append(plane.value)
    platform = ensure_app().platformName()
    return f"{', '.join(drawn)} at {RENDER_SIZE[0]} x {RENDER_SIZE[1]} (Qt {platform})"


def _models(run: _Run) -> str:
    from medview.ai.models.registry import bundled_models_dir, scan_models
    from medview.ai.runtime.device import choose_device
    from medview.ai.runtime.loading import load_model

    listing = scan_models()
    bundled = [e for e in listing.models if e.bundled]
    if not bundled:
        raise SelfTestFailure(
            f"no bundled model was found in {bundled_models_dir()}"
            + (f" ({listing.problems[0]})" if listing.problems else "")
        )
    device = choose_device("auto")
    for entry in bundled:
        load_model(entry.folder, device)
    return f"{', '.join(e.ref for e in bundled)} on {device}"


def _infer(run: _Run) -> str:
    from medview.ai.models.registry import scan_models
    from medview.core.jobs import CancelToken, JobContext
    from medview.jobs.inference import infer_job

    seg_models = [e for e in scan_models().models if e.bundled and e.card.task == "segmentation"]
    if not seg_models:
        raise SelfTestFailure("no bundled segmentation model to run")
    notes = []
    for entry in seg_models:
        job = infer_job(
            run.volume, entry.folder, JobContext(CancelToken()), series_key=run.series.key
        )
        try:
            while True:
                next(job)
        except StopIteration as stop:
            result = stop.value
        run.results.append(result)
        voxels = int((result.label_map() > 0).sum())
        notes.append(f"{entry.ref}: {len(result.findings)} finding(s), {voxels} voxel(s)")
    return "; ".join(notes)


def _seg(run: _Run) -> str:
    import numpy as np

    from medview.io.dicom.seg import read_seg, write_seg

    notes = []
    for result in run.results:
        card = result.card
        label_map = result.label_map()
        if not label_map.any():
            # a SEG needs a segment to hold; the ground truth stands in for a model that
            # found nothing on these few slices, so the writer and reader still run
            from medview.io.image_files import read_image

            truth = read_image(run.study.labels_path).array
            label_map = np.where(
                np.isin(truth, [lab.value for lab in card.labels]), truth, 0
            ).astype(np.uint8)
        path = run.work / f"{card.name}-{card.version}.seg.dcm"
        write_seg(label_map, run.series, card, path)
        back = read_seg(path, run.series)
        lut = np.zeros(256, np.uint8)
        for number, lab in enumerate(card.labels, 1):
            lut[lab.value] = number
        if not np.array_equal(back.label_map, lut[label_map]):
            raise SelfTestFailure(
                f"the DICOM SEG of {card.ref} read back differently from what was written"
            )
        notes.append(
            f"{card.ref}: {path.stat().st_size // 1024} KiB, "
            f"{int(np.count_nonzero(label_map))} voxel(s) read back equal"
        )
    return "; ".join(notes)


def _child(run: _Run) -> str:
    """The viewer starts its training run as a child process (ui.child_command); a frozen
    app whose sys.executable takes no `-m` fails there and nowhere else, so start one."""
    import subprocess

    import medview
    from medview.ui.child_command import medview_argv

    argv = medview_argv("--version")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SelfTestFailure(
            f"a child process ({' '.join(argv)}) could not be started: {exc}"
        ) from exc
    expected = f"medview {medview.__version__}"
    if done.returncode != 0 or done.stdout.strip() != expected:
        raise SelfTestFailure(
            f"a child process ({' '.join(argv)}) answered "
            f"{(done.stdout + done.stderr).strip()[:200]!r}, exit "
            f"{done.returncode}, not {expected!r}"
        )
    return " ".join(argv[1:])


def _keyring(run: _Run) -> str:
    """PACS passwords and tokens live in the OS keyring; keyring finds its backends through
    entry points, so a bundle without keyring's metadata or backend modules would start and
    silently keep no secret. Whether a keyring service runs here is only reported: a
    headless build machine has none."""
    from medview.net.credentials import installed_backend, keyring_available

    name = installed_backend()
    running = "in use" if keyring_available() else "no keyring service running here"
    return f"{name} backend ({running})"


STEPS: tuple[tuple[str, Callable[[_Run], str]], ...] = (
    ("demo study", _demo),
    ("load", _load),
    ("decoders", _decoders),
    ("render planes", _render),
    ("bundled models", _models),
    ("inference", _infer),
    ("DICOM SEG", _seg),
    ("child process", _child),
    ("keyring", _keyring),
)


def run_selftest() -> int:
    """Run every step; 0 when all pass, 1 at the first that fails."""
    import medview
    from medview.core.errors import MedviewError

    frozen = ", frozen" if getattr(sys, "frozen", False) else ""
    print(
        f"MedView {medview.__version__} self-test (Python {sys.version.split()[0]}{frozen}, "
        f"{Path(medview.__file__).parent})",
        flush=True,
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medview-selftest-") as tmp:
        run = _Run(Path(tmp))
        for name, step in STEPS:
            t0 = time.perf_counter()
            try:
                detail = step(run)
            except SelfTestFailure as exc:
                return _failed(name, str(exc))
            except MedviewError as exc:
                return _failed(name, str(exc))
            except Exception as exc:  # the self-test's job is to say what broke
                log.exception("self-test step %s failed", name)
                return _failed(name, f"{type(exc).__name__}: {exc}")
            print(f"ok   {name:15s} {time.perf_counter() - t0:6.2f} s  {detail}", flush=True)
    print(f"self-test passed in {time.perf_counter() - started:.1f} s", flush=True)
    return EXIT_OK


def _failed(step: str, sentence: str) -> int:
    print(f"FAIL {step}", flush=True)
    print(f"medview: self-test failed at '{step}': {sentence}", file=sys.stderr)
    return EXIT_BAD_INPUT
