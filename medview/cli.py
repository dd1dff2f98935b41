"""The one entry point: the GUI launcher and every headless command.

Kept free of heavy imports (numpy, pydicom, SimpleITK, torch, Qt load inside the command that
needs them) so that `medview --help` answers at once. Every expected failure ends as one line
on stderr, `medview: <path>: <problem>`, exit 1; usage errors exit 2; tracebacks go to the
log file only."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from medview import __version__

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("medview")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="medview",
        description="MedView: a CT and MR viewer with AI assistance. Not a medical device.",
    )
    p.add_argument("--version", action="version", version=f"medview {__version__}")
    p.add_argument("--log-file", help="where to write the log (default: the user log folder)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser("info", help="list the studies and series found (headers only)",
                          description="List every study and series under the given paths: "
                                      "folders, files, DICOMDIRs, zip archives.")
    info.add_argument("paths", nargs="+", metavar="PATH")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.add_argument("--show-phi", action="store_true",
                      help="include patient name and ID (hidden by default)")

    conv = sub.add_parser("convert", help="write a series as NIfTI, NRRD, MHA or .npy",
                          description="Load one series and write it by OUT's suffix: .nii, "
                                      ".nii.gz, .nrrd, .mha, .mhd or .npy (modality values "
                                      "in slice, row, col order).")
    conv.add_argument("path", metavar="PATH")
    conv.add_argument("out", metavar="OUT")
    conv.add_argument("--series", metavar="UID",
                      help="the series to convert when PATH holds several")

    demo = sub.add_parser("demo", help="generate the synthetic demo CT study and show it",
                          description="Generate the synthetic chest-abdomen CT with known "
                                      "lesions (deterministic from the seed).")
    demo.add_argument("--out", metavar="DIR", help="folder to write (default: user data "
                                                   "folder)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--site", choices=("a", "b"), default="a")
    demo.add_argument("--slices", type=int)
    demo.add_argument("--thickness", type=float, metavar="MM")
    demo.add_argument("--noise", type=float, metavar="HU")
    demo.add_argument("--lesions", type=int, metavar="N")
    demo.add_argument("--no-lesions", action="store_true")
    demo.add_argument("--json", action="store_true", help="print the study info as JSON")

    snap = sub.add_parser("snapshot", help="draw one view to PNG without a display",
                          description="Draw one slice of a study to a PNG exactly as the "
                                      "viewer shows it (corner text, orientation letters, "
                                      "scale bar), with no display needed.")
    snap.add_argument("path", metavar="PATH", help="DICOM folder, file, zip or DICOMDIR, "
                                                   "or a NIfTI / NRRD / MHA file")
    snap.add_argument("--out", required=True, metavar="FILE.png", help="the PNG to write")
    snap.add_argument("--plane", metavar="PLANE", help="axial, coronal or sagittal "
                                                       "(default: the plane of acquisition)")
    snap.add_argument("--slice", metavar="N", help="image number, 1-based as in the corner "
                                                   "text 'Im N/total' (default: the middle)")
    snap.add_argument("--window", metavar="PRESET|W/L",
                      help="a CT preset (lung, mediastinum, bone, brain, subdural, stroke, "
                           "abdomen, liver) or WIDTH/LEVEL, e.g. 1500/-600 (default: the "
                           "file's window, else the modality's)")
    snap.add_argument("--size", default="512x512", metavar="WxH",
                      help="image size in pixels (default 512x512)")
    snap.add_argument("--series", metavar="UID", help="the series to draw when PATH holds "
                                                      "several")
    snap.add_argument("--no-overlays", action="store_true",
                      help="leave out corner text, orientation letters and scale bar")
    return p


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
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    return log_file


def _err(message: str) -> None:
    print(f"medview: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    log_file = _setup_logging(args.log_file, args.verbose)
    from medview.core.errors import MedviewError
    from medview.core.jobs import JobCancelled

    try:
        if args.command == "info":
            from medview.commands.info import run_info
            return run_info(args.paths, as_json=args.json, show_phi=args.show_phi)
        if args.command == "convert":
            from medview.commands.convert import run_convert, writable_suffix
            if not writable_suffix(args.out):
                parser.error(f"{args.out}: MedView writes .nii, .nii.gz, .nrrd, .mha, .mhd "
                             f"or .npy; choose one of those suffixes")
            return run_convert(args.path, args.out, args.series)
        if args.command == "demo":
            from medview.commands.demo import run_demo
            return run_demo(args)
        if args.command == "snapshot":
            from medview.commands.snapshot import run_snapshot
            return run_snapshot(args.path, args.out, plane=args.plane, slice_number=args.slice,
                                window=args.window, size=args.size, series=args.series,
                                overlays=not args.no_overlays)
    except MedviewError as exc:
        log.debug("command failed", exc_info=True)
        _err(str(exc))
        return EXIT_BAD_INPUT
    except (JobCancelled, KeyboardInterrupt):
        _err("cancelled")
        return EXIT_BAD_INPUT
    except Exception as exc:
        log.exception("internal error")
        _err(f"internal error ({type(exc).__name__}: {exc}); details in {log_file}")
        return EXIT_BAD_INPUT
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


def gui_main() -> int:
    """Desktop-launcher entry point (gui-scripts): the viewer arrives with the viewer issue;
    until then it opens the demo study headless."""
    return main(sys.argv[1:] or ["demo"])
