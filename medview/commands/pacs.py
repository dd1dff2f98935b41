"""`medview pacs echo|find|get|send|listen`: the PACS from the command line.

NODE is a saved node's name, `dicom://AE@host:port` or a DICOMweb URL (`https://host/dicom-
web`). A DICOMweb password or token comes from the keyring or MEDVIEW_PACS_SECRET. Every
failure (node down, refused AE title, timeout, malformed answer, unknown node) is one line on
stderr and exit 1. Patient names and IDs are printed only with --show-phi, as in `info`."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from medview.commands import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE
from medview.core.errors import InvalidInputError


def add_parser(sub: Any) -> None:
    """The `pacs` sub-command and its actions (cli.py calls this)."""
    p = sub.add_parser(
        "pacs",
        help="query, retrieve from and send to a PACS (DIMSE or "
        "DICOMweb); receive as a storage SCP",
        description="Talk to a PACS. NODE is a saved node's name, "
        "dicom://AE@host:port, or a DICOMweb base URL.",
    )
    acts = p.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)
    e = acts.add_parser("echo", help="check the node answers (C-ECHO or a QIDO-RS search)")
    e.add_argument("node", metavar="NODE")
    f = acts.add_parser("find", help="search the node's studies (C-FIND or QIDO-RS)")
    f.add_argument("node", metavar="NODE")
    f.add_argument("--patient-id", default="", metavar="ID")
    f.add_argument("--name", default="", metavar="N", help="patient name; * wildcards")
    f.add_argument(
        "--date", default="", metavar="FROM-TO", help="YYYYMMDD-YYYYMMDD; either side may be empty"
    )
    f.add_argument("--modality", default="", metavar="M")
    f.add_argument("--accession", default="", metavar="A")
    f.add_argument("--description", default="", metavar="TEXT")
    f.add_argument("--json", action="store_true", help="print one JSON object")
    f.add_argument(
        "--show-phi", action="store_true", help="include patient name and ID (hidden by default)"
    )
    g = acts.add_parser(
        "get", help="retrieve a study (C-GET, C-MOVE or WADO-RS); a partial one is resumed"
    )
    g.add_argument("node", metavar="NODE")
    g.add_argument("study", metavar="STUDY_UID")
    g.add_argument("--series", metavar="UID", help="only this series")
    g.add_argument(
        "--out",
        metavar="DIR",
        help="store here instead of MedView's received folder (files under STUDY/SERIES/)",
    )
    g.add_argument(
        "--move",
        action="store_true",
        help="C-MOVE to our storage port instead of C-GET (DIMSE nodes)",
    )
    s = acts.add_parser("send", help="send DICOM files (C-STORE or STOW-RS): images, SEG, SR")
    s.add_argument("node", metavar="NODE")
    s.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    li = acts.add_parser("listen", help="receive studies as a storage SCP until Ctrl-C")
    li.add_argument(
        "--port", type=int, default=None, metavar="P", help="the port to listen on (default 11112)"
    )
    li.add_argument("--ae", default="MEDVIEW", metavar="AE", help="our AE title")
    li.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="AE",
        help="a calling AE title to accept (default: the saved DIMSE nodes')",
    )
    li.add_argument("--any-ae", action="store_true", help="accept any calling AE title")
    li.add_argument("--max-associations", type=int, default=4, metavar="N")


def _secret() -> str | None:
    return os.environ.get("MEDVIEW_PACS_SECRET") or None


def run_pacs(args: Any) -> int:
    from medview.net.nodes import resolve_node

    action = args.pacs_command
    if action == "listen":
        return _listen(args)
    node = resolve_node(args.node)
    if node.kind == "dicomweb" and node.insecure:
        print(f"medview: warning: {node.name}: TLS is not verified for this node", file=sys.stderr)
    if action == "echo":
        return _echo(node)
    if action == "find":
        return _find(node, args)
    if action == "get":
        return _get(node, args)
    if action == "send":
        return _send(node, args.paths)
    return EXIT_USAGE


def _echo(node: Any) -> int:
    from medview.net import dimse, web

    took = dimse.echo(node) if node.kind == "dimse" else web.echo(node, _secret())
    print(f"{node.name}: answered in {took * 1000:.0f} ms")
    return EXIT_OK


def _find(node: Any, args: Any) -> int:
    from medview.net import dimse, web
    from medview.net.query import StudyQuery, parse_date_range

    lo, hi = parse_date_range(args.date) if args.date else ("", "")
    q = StudyQuery(
        patient_id=args.patient_id,
        name=args.name,
        date_from=lo,
        date_to=hi,
        modality=args.modality,
        accession=args.accession,
        description=args.description,
    )
    rows = (
        dimse.find_studies(node, q)
        if node.kind == "dimse"
        else web.find_studies(node, q, _secret())
    )
    if args.json:
        print(
            json.dumps(
                {"node": node.name, "studies": [r.public(args.show_phi) for r in rows]}, indent=1
            )
        )
        return EXIT_OK
    for r in rows:
        who = f"{r.patient_name} ({r.patient_id})  " if args.show_phi else ""
        print(
            f"{r.study_uid}  {r.date or '-':8}  {'/'.join(r.modalities) or '-':6} "
            f"{r.instance_count if r.instance_count is not None else '?':>5} images  "
            f"{who}{r.description}"
        )
    print(f"{len(rows)} studies on {node.name}", file=sys.stderr)
    return EXIT_OK


def _get(node: Any, args: Any) -> int:
    import dataclasses

    from medview.commands.info import terminal_progress
    from medview.core.jobs import CancelToken, JobContext
    from medview.net.retrieve import retrieve
    from medview.net.studydb import StudyDB

    if args.move:
        if node.kind != "dimse":
            raise InvalidInputError(None, f"{node.name}: --move needs a DIMSE node")
        node = dataclasses.replace(node, retrieve="move")
    root = Path(args.out) if args.out else None
    db = StudyDB()
    result = retrieve(
        node,
        args.study,
        JobContext(CancelToken(), progress=terminal_progress),
        series_uid=args.series,
        db=db,
        root=root,
        secret=_secret(),
    )
    print(
        f"{result.fetched} instances retrieved, {result.already_here} already here: {result.folder}"
    )
    return EXIT_OK


def _dicom_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            files.append(p)
        else:
            raise InvalidInputError(str(p), "no such file or folder")
    from pydicom.misc import is_dicom

    dicom = [f for f in files if is_dicom(f)]
    if not dicom:
        raise InvalidInputError(paths[0], "holds no DICOM files to send")
    return dicom


def infer_report(folder: Path, out: Path) -> Path | None:
    """The SR of a `medview infer` output folder (findings.json beside seg.dcm), written to
    `out`; None when it found nothing to report. The infer folder itself is not touched."""
    from medview.core.findings import Finding
    from medview.io.dicom.index import scan
    from medview.io.dicom.sr import write_measurement_report

    where = str(folder / "findings.json")
    try:
        doc = json.loads((folder / "findings.json").read_text(encoding="utf-8"))
        findings = [Finding.from_dict(f, where) for f in doc["findings"]]
        source, series_uid = str(doc["input"]), str(doc["series_instance_uid"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InvalidInputError(where, f"is not a findings file of medview infer ({err})") from None
    if not findings:
        return None
    series = [s for s in scan([source]).series if s.series_instance_uid == series_uid]
    if not series:
        raise InvalidInputError(
            source,
            "no longer holds the series the findings were made on; the report needs its images",
        )
    files = [Path(str(f.source)) for f in series[0].slices if f is not None]
    if not all(f.is_file() for f in files):
        raise InvalidInputError(
            source, "holds its images in an archive; extract them to send a report"
        )
    return write_measurement_report(findings, files, folder / "seg.dcm", out)


def _send(node: Any, paths: list[str]) -> int:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="medview-sr-") as tmp:
        extra = []
        for p in map(Path, paths):
            if (p / "findings.json").is_file() and (p / "seg.dcm").is_file():
                sr = infer_report(p, Path(tmp) / f"sr-{len(extra)}.dcm")
                extra += [sr] if sr else []
        return _send_files(node, _dicom_files(paths) + extra)


def _send_files(node: Any, files: list[Path]) -> int:
    from medview.net import dimse, web

    if node.kind == "dimse":
        sent = dimse.send(node, files)
    else:
        sent = web.send(node, files, secret=_secret())
    print(f"{sent} instances sent to {node.name}")
    return EXIT_OK


def _listen(args: Any) -> int:
    from medview.net.nodes import DEFAULT_OUR_PORT, load_nodes
    from medview.net.scp import StorageSCP
    from medview.net.storage import received_dir
    from medview.net.studydb import StudyDB

    allowed: list[str] | None = list(args.allow)
    if args.any_ae:
        allowed = None
    elif not allowed:
        allowed = [n.called_ae for n in load_nodes() if n.kind == "dimse"]
        if not allowed:
            raise InvalidInputError(
                None,
                "no calling AE title is allowed: save a DIMSE node, give --allow AE, or --any-ae",
            )
    db = StudyDB()
    if db.notice:
        print(f"medview: {db.notice}", file=sys.stderr)
    count = [0]
    lock = threading.Lock()

    def stored(path: Path) -> None:
        db.add_file(path, "received")
        with lock:
            count[0] += 1
            print(f"received {count[0]} instances", file=sys.stderr, flush=True)

    port = args.port or DEFAULT_OUR_PORT
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    with StorageSCP(
        received_dir(),
        ae_title=args.ae,
        port=port,
        allowed_aes=allowed,
        max_associations=args.max_associations,
        on_stored=stored,
    ) as scp:
        who = "any AE title" if allowed is None else ", ".join(allowed)
        print(
            f"listening as {args.ae} on port {scp.port}, accepting {who}; Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )
        done.wait()
    print(f"stopped; {count[0]} instances received", file=sys.stderr)
    return EXIT_OK if not scp.received.refused else EXIT_BAD_INPUT
