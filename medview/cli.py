"""The one entry point: the GUI launcher and every headless command.

`medview` and `medview PATH...` (anything that is not a command name) open the viewer;
`medview demo` opens it on the demo study (`--no-gui` prints it instead); `medview COMMAND`
runs a headless command.

Kept free of heavy imports (numpy, pydicom, SimpleITK, torch, Qt load inside the command that
needs them) so that `medview --help` answers at once. Every expected failure ends as one line
on stderr, `medview: <path>: <problem>`, exit 1; usage errors exit 2; tracebacks go to the
log file only."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

from medview import __version__
from medview.commands import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE

log = logging.getLogger("medview")

# The sub-commands: `medview NAME` runs one instead of opening NAME in the viewer. Named here
# so that a viewer launch does not build the whole parser first (0.02 s of CPU before its
# preview read can start, issue 19); tests/test_cli.py checks they are the parser's.
COMMANDS = (
    "info",
    "convert",
    "demo",
    "snapshot",
    "infer",
    "models",
    "desktop-entry",
    "train",
    "pacs",
)


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other failure (argparse prints its whole usage
    first); sub-command parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}; see {self.prog} --help\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="medview",
        description="MedView: a CT and MR viewer with AI assistance. Not a medical device.",
    )
    p.add_argument("--version", action="version", version=f"medview {__version__}")
    p.add_argument("--log-file", help="where to write the log (default: the user log folder)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    p.add_argument(
        "--selftest",
        action="store_true",
        help="check this installation headless (demo study, load, render, AI, "
        "DICOM SEG) and exit 0, or 1 naming what failed",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser(
        "info",
        help="list the studies and series found (headers only)",
        description="List every study and series under the given paths: "
        "folders, files, DICOMDIRs, zip archives.",
    )
    info.add_argument("paths", nargs="+", metavar="PATH")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.add_argument(
        "--show-phi", action="store_true", help="include patient name and ID (hidden by default)"
    )

    conv = sub.add_parser(
        "convert",
        help="write a series as NIfTI, NRRD, MHA or .npy",
        description="Load one series and write it by OUT's suffix: .nii, "
        ".nii.gz, .nrrd, .mha, .mhd or .npy (modality values "
        "in slice, row, col order).",
    )
    conv.add_argument("path", metavar="PATH")
    conv.add_argument("out", metavar="OUT")
    conv.add_argument(
        "--series", metavar="UID", help="the series to convert when PATH holds several"
    )

    demo = sub.add_parser(
        "demo",
        help="generate the synthetic demo CT study and show it",
        description="Generate the synthetic chest-abdomen CT with known "
        "lesions (deterministic from the seed).",
    )
    demo.add_argument("--out", metavar="DIR", help="folder to write (default: user data folder)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--site",
        choices=("a", "b", "c"),
        default="a",
        help="scanner: a soft kernel 1.5 mm, b contrast sharp kernel 2 mm, "
        "c low dose smooth kernel 3 mm",
    )
    demo.add_argument("--slices", type=int)
    demo.add_argument("--thickness", type=float, metavar="MM")
    demo.add_argument("--noise", type=float, metavar="HU")
    demo.add_argument("--lesions", type=int, metavar="N")
    demo.add_argument("--no-lesions", action="store_true")
    demo.add_argument(
        "--follow-up-months",
        type=float,
        metavar="N",
        help="instead the same patient N months later: moved on the table, "
        "lesions grown by known factors, one gone, one new (truth in "
        "lesions.json 'follow_up'); the viewer offers the baseline as its prior",
    )
    demo.add_argument(
        "--json", action="store_true", help="print the study info as JSON (implies --no-gui)"
    )
    demo.add_argument(
        "--no-gui",
        action="store_true",
        help="print what MedView finds in the study instead of opening it",
    )

    snap = sub.add_parser(
        "snapshot",
        help="draw one view to PNG without a display",
        description="Draw one slice of a study to a PNG exactly as the "
        "viewer shows it (corner text, orientation letters, "
        "scale bar), with no display needed.",
    )
    snap.add_argument(
        "path",
        metavar="PATH",
        help="DICOM folder, file, zip or DICOMDIR, or a NIfTI / NRRD / MHA file",
    )
    snap.add_argument("--out", required=True, metavar="FILE.png", help="the PNG to write")
    snap.add_argument(
        "--plane",
        metavar="PLANE",
        help="axial, coronal or sagittal (default: the plane of acquisition)",
    )
    snap.add_argument(
        "--slice",
        metavar="N",
        help="image number, 1-based as in the corner text 'Im N/total' (default: the middle)",
    )
    snap.add_argument(
        "--window",
        metavar="PRESET|W/L",
        help="a CT preset (lung, mediastinum, bone, brain, subdural, stroke, "
        "abdomen, liver) or WIDTH/LEVEL, e.g. 1500/-600 (default: the "
        "file's window, else the modality's)",
    )
    snap.add_argument(
        "--size", default="512x512", metavar="WxH", help="image size in pixels (default 512x512)"
    )
    snap.add_argument("--series", metavar="UID", help="the series to draw when PATH holds several")
    snap.add_argument(
        "--no-overlays",
        action="store_true",
        help="leave out corner text, orientation letters and scale bar",
    )

    infer = sub.add_parser(
        "infer",
        help="run an AI segmentation model on a study, headless",
        description="Run a segmentation model on one series and write a "
        "DICOM SEG (DICOM input), the label map and "
        "probabilities as NIfTI, and findings.json into DIR. "
        "AI assistance — not a diagnosis.",
    )
    infer.add_argument(
        "path",
        metavar="PATH",
        help="DICOM folder, file, zip or DICOMDIR, or a NIfTI / NRRD / MHA file",
    )
    infer.add_argument(
        "--model",
        metavar="NAME[:VERSION]",
        help="an installed model (see medview models) or a model folder "
        "(default: the active version of the only model that fits the "
        "study's modality)",
    )
    infer.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="folder for the results: new, empty, or an earlier infer output",
    )
    infer.add_argument("--series", metavar="UID", help="the series when PATH holds several")
    infer.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    infer.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        metavar="P",
        help="probability a voxel needs to count as a finding (default 0.5)",
    )
    infer.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation (flips): slower, adds an uncertainty map",
    )

    models = sub.add_parser(
        "models",
        help="list the AI models and versions, activate or import one",
        description="List every installed AI model version (bundled and "
        "your own) with its task and validation results.",
    )
    models.add_argument("--json", action="store_true", help="print one JSON object")
    models_sub = models.add_subparsers(dest="models_command", metavar="ACTION")
    activate = models_sub.add_parser(
        "activate",
        help="choose the version that runs",
        description="Make NAME:VERSION the version that runs "
        "for NAME and the default for its task.",
    )
    activate.add_argument("ref", metavar="NAME:VERSION")
    imp = models_sub.add_parser(
        "import",
        help=(
            "add a model: .pt2 / .onnx with its card, a MONAI bundle, an nnU-Net v2 folder, "
            "or totalsegmentator[:TASK[:MODE]] (TotalSegmentator's weights on this machine)"
        ),
        description="Import a torch.export program (.pt2) or an "
        "ONNX file with its card (JSON), a MONAI bundle "
        "(folder or zip in the Model Zoo layout) or an "
        "nnU-Net v2 model folder as a new version; a "
        "model that does not fit its card is refused.",
    )
    imp.add_argument("path", metavar="PATH")
    imp.add_argument("--card", metavar="CARD.json", help="the card of a .pt2 or .onnx file")
    imp.add_argument(
        "--allow-code",
        action="store_true",
        help="consent to run code that comes with a MONAI bundle (a TorchScript "
        "model, expressions or classes in its config); recorded on the card",
    )
    imp.add_argument(
        "--describe",
        action="store_true",
        help="only say what a MONAI bundle would run; import nothing",
    )
    imp.add_argument("--name", help="the model name (default: the card's)")
    imp.add_argument("--version", help="the new version (default: the card's)")
    entry = sub.add_parser(
        "desktop-entry",
        help="add MedView to the desktop's application menu (Linux)",
        description="Write a desktop entry and icon under XDG_DATA_HOME "
        "(~/.local/share) that start this installation; "
        "--remove takes them back.",
    )
    entry.add_argument("--remove", action="store_true", help="remove the entry and icon")
    from medview.commands.pacs import add_parser as add_pacs_parser
    from medview.commands.train import add_parser as add_train_parser

    add_train_parser(sub)
    add_pacs_parser(sub)
    p.set_defaults(commands=tuple(sub.choices))
    return p


def _gui_args(argv: list[str]) -> argparse.Namespace | None:
    """The options and paths of `medview [--log-file F] [-v] [PATH...]`, which opens the
    viewer; None when argv names a command or asks for help or the version."""
    if any(a in ("-h", "--help", "--version") for a in argv):
        return None
    gui = argparse.ArgumentParser(prog="medview", add_help=False)
    gui.add_argument("--log-file")
    gui.add_argument("-v", "--verbose", action="store_true")
    gui.add_argument("paths", nargs="*")
    args, unknown = gui.parse_known_args(argv)
    if unknown or (args.paths and args.paths[0] in COMMANDS):
        return None
    return args


def _setup_logging(log_file: str | None, verbose: bool) -> str:
    if log_file is None:
        from platformdirs import user_log_dir

        folder = user_log_dir("medview", appauthor=False)
        log_file = os.path.join(folder, "medview.log")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log_file, encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    from medview.core.log_privacy import ScrubbingFormatter
    from medview.io import saved

    # every record, MedView's and other libraries' (pydicom quotes raw values), tracebacks
    # too, is scrubbed of paths outside the opened folders and of quoted values
    handler.setFormatter(
        ScrubbingFormatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s", data_folder=str(saved.root())
        )
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    return log_file


def _note_opened(args: argparse.Namespace) -> None:
    """The files and folders named on the command line: paths inside them reach the log
    relative to them (core/log_privacy.py)."""
    from medview.core.log_privacy import note_opened

    for name in ("paths", "path", "out", "data", "job", "card"):
        value = getattr(args, name, None)
        for path in value if isinstance(value, list) else [value]:
            if isinstance(path, str):
                note_opened(path)


def _err(message: str) -> None:
    print(f"medview: {message}", file=sys.stderr)


# Headless commands that leave nothing behind to run: called from the entry points (argv
# None: the process ends when main returns) they end the process at once, output and log
# flushed, instead of tearing down the interpreter's ~600 modules one by one, as mypy does
# after a run: 0.075 s of `medview convert`'s 1.3 s of CPU (medians of 10, issue 19).
QUICK_EXIT = ("info", "convert")


def _exit_now(status: int) -> NoReturn:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that went away
            stream.flush()
    os._exit(status)


def main(argv: Sequence[str] | None = None) -> int:
    owns_process = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    gui = _gui_args(argv)
    if gui is not None:
        return _open_viewer(gui)
    parser = _parser()
    args = parser.parse_args(argv)
    _note_opened(args)
    log_file = _setup_logging(args.log_file, args.verbose)
    said = _CountingStderr(sys.stderr)
    sys.stderr = said
    try:
        status = _guarded(lambda: _run_command(parser, args), log_file)
    finally:
        sys.stderr = said.stream
    if status != EXIT_OK and not said.written:
        # every failure is told in one line, even one a command forgot to word
        _err(f"{args.command or 'medview'} failed (exit {status}); details in {log_file}")
    if owns_process and args.command in QUICK_EXIT and threading.active_count() == 1:
        _exit_now(status)
    return status


class _CountingStderr:
    """sys.stderr while a command runs, noting whether the command said anything there."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.written = stream, False

    def write(self, text: str) -> int:
        self.written = self.written or bool(text)
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _open_viewer(args: argparse.Namespace) -> int:
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        commands = ", ".join(COMMANDS)
        _err(
            f"{missing[0]}: no such file or folder, and not a command ({commands}); "
            f"see medview --help"
        )
        return EXIT_USAGE
    _note_opened(args)
    log_file = _setup_logging(args.log_file, args.verbose)

    def run() -> int:
        from medview.app import run_gui

        return run_gui(args.paths)

    return _guarded(run, log_file)


def _guarded(run: Callable[[], int], log_file: str) -> int:
    """Run a command; expected failures become one line on stderr, the rest go to the log."""
    from medview.commands.setting_words import sentence
    from medview.core.errors import MedviewError
    from medview.core.jobs import JobCancelled

    try:
        return run()
    except MedviewError as exc:
        log.debug("command failed", exc_info=True)
        _err(sentence(exc))  # a refused setting in the command line's words (its flag)
        return EXIT_BAD_INPUT
    except (JobCancelled, KeyboardInterrupt):
        _err("cancelled")
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # the reader of our output went away (`medview info | head`): not an error to
        # report; point stdout at /dev/null so Python's exit flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        log.exception("internal error")
        _err(f"internal error ({type(exc).__name__}: {exc}); details in {log_file}")
        return EXIT_BAD_INPUT


def _run_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.selftest:
        from medview.commands.selftest import run_selftest

        return run_selftest()
    if args.command == "info":
        from medview.commands.info import run_info

        return run_info(args.paths, as_json=args.json, show_phi=args.show_phi)
    if args.command == "convert":
        from medview.commands.convert import run_convert, writable_suffix

        if not writable_suffix(args.out):
            parser.error(
                f"{args.out}: MedView writes .nii, .nii.gz, .nrrd, .mha, .mhd "
                f"or .npy; choose one of those suffixes"
            )
        return run_convert(args.path, args.out, args.series)
    if args.command == "demo":
        from medview.commands.demo import run_demo

        return run_demo(args)
    if args.command == "snapshot":
        from medview.commands.snapshot import run_snapshot

        return run_snapshot(
            args.path,
            args.out,
            plane=args.plane,
            slice_number=args.slice,
            window=args.window,
            size=args.size,
            series=args.series,
            overlays=not args.no_overlays,
        )
    if args.command == "infer":
        from medview.commands.infer import run_infer

        if not 0.0 < args.threshold <= 1.0:
            parser.error(f"--threshold {args.threshold:g}: use a probability above 0 and at most 1")
        return run_infer(
            args.path,
            args.model,
            args.out,
            series_key=args.series,
            device=args.device,
            threshold=args.threshold,
            tta=args.tta,
        )
    if args.command == "train":
        from medview.commands.train import run_train

        return run_train(args)
    if args.command == "models":
        from medview.commands.models import run_models

        return run_models(args)
    if args.command == "pacs":
        from medview.commands.pacs import run_pacs

        return run_pacs(args)
    if args.command == "desktop-entry":
        from medview.commands.desktop_entry import run_desktop_entry

        return run_desktop_entry(remove=args.remove)
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


def gui_main() -> int:
    """Desktop-launcher entry point (gui-scripts): the viewer, on the paths given if any."""
    return main(sys.argv[1:])
