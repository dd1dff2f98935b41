"""`medview train`: fine-tune a model on labelled studies and write a new model version.

Made to be a child process (the training panel runs it, docs/architecture.md): every line on
stdout is one JSON object (start, prepare, epoch, step, checkpoint, evaluate, done, stopped,
error; an error refusing a setting also carries it as data, `setting`, which the panel
words with its fields: core.errors.SettingError), stderr carries only the usual one-line
failure, a refused setting named by its flag (commands.setting_words). SIGTERM or SIGINT
asks the run to stop: it saves a checkpoint where it is and ends within a step; `--resume`
continues it.

A run is described by a job file (data, base model, settings, split by patient, label
mapping), written into the work folder when the run starts, so the panel and the command
line can edit and rerun the same job; flags given beside --job override its fields. The
run also keeps run.json there (state, checkpoint epoch, curves, last error) and holds
run.lock while it lives (ai.train_runs), so the panel offers a stopped, failed or
interrupted run after a restart and no two processes train one folder."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import sys
from typing import Any

from medview.commands import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE
from medview.commands.setting_words import OWN_FLAGS, sentence
from medview.core.errors import SettingError

log = logging.getLogger("medview.train")

# what to try, by the kind of failure, for the error event
_TRY = {
    "memory": "use a smaller --batch-size or --patch-size, or --device cpu",
    "ResourceLimitError": "free disk space, then run again with --resume",
    "default": "check the data and the job file; `medview models` lists the base models",
}


def add_parser(sub: Any) -> None:
    """The `train` sub-command's options (cli.py calls this)."""
    p = sub.add_parser(
        "train",
        help="fine-tune a model on labelled studies (new version)",
        description="Fine-tune a model on labelled studies and write a new "
        "model version beside it (never overwriting one). Prints "
        "one JSON object per line of progress.",
    )
    p.add_argument(
        "--data",
        metavar="FOLDER",
        help="a folder of labelled studies (each a "
        "series folder and labels.nii.gz), or "
        "pacs://NODE[?query]: the studies on "
        "the PACS with labels marked done",
    )
    p.add_argument(
        "--base",
        metavar="NAME[:VERSION]",
        help="the model to start from (default version: the active)",
    )
    p.add_argument(
        "--job",
        metavar="FILE",
        help="a job file (the panel writes one; a run keeps its own in its work folder)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in the work folder from its last checkpoint",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="work folder for the job, checkpoints and "
        "run record, new or empty (default: a new "
        "folder in MedView's data folder, training/)",
    )
    p.add_argument(
        "--new-version",
        metavar="VERSION",
        help="the new version number (default: the parent's plus .1, e.g. 1.0.1)",
    )
    p.add_argument("--epochs", type=int)
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--lr", type=float, metavar="RATE")
    p.add_argument("--batch-size", type=int, metavar="N")
    p.add_argument("--patch-size", type=int, metavar="PX")
    p.add_argument("--patches-per-study", type=int, metavar="N")
    p.add_argument("--patience", type=int, metavar="EPOCHS")
    p.add_argument("--val-fraction", type=float, metavar="F")
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int, metavar="N")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="any other training setting of the job file, e.g. --set distill=0 "
        "--set l2sp=10 --set replay_studies=4",
    )
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="SRC=DST",
        help="send a study label (value or name) to a model label, or to ignore",
    )


def build_job(args: Any) -> Any:
    from medview.ai.training.job import Job

    if args.job:
        job = Job.load(args.job)
    elif args.data and args.base:
        job = Job(data=args.data, base=args.base)
    else:
        return None
    job.data = args.data or job.data
    if str(job.data).startswith("pacs://"):  # the department's PACS (net.training_source)
        from medview.net.training_source import fetch_training_data

        job.data = str(fetch_training_data(str(job.data)))
    job.base = args.base or job.base
    job.work = args.out or job.work
    job.version = args.new_version or job.version
    for name in OWN_FLAGS:
        value = getattr(args, name)
        if value is not None:
            setattr(job.settings, name, value)
    if args.no_augment:
        job.settings.augment = False
    if args.no_amp:
        job.settings.amp = False
    for item in args.set:
        job.settings.assign(item)
    for item in args.map:
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ValueError(f'--map {item}: write SOURCE=TARGET, e.g. 3="liver lesion"')
        job.mapping[src.strip()] = dst.strip()
    job.settings.check()
    return job


def _error_event(exc: BaseException, **fields: Any) -> dict:
    """The error event: the sentence in the command line's words, and a refused setting's
    data (SettingError.to_dict) for the panel to word in its own."""
    event = {"event": "error", "message": sentence(exc), **fields}
    if isinstance(exc, SettingError):
        event["setting"] = exc.to_dict()
    return event


def _print(event: dict) -> None:
    print(json.dumps(event), flush=True)


def _what_to_try(exc: BaseException, resumable: bool = True) -> str:
    from medview.ai.runtime.device import is_out_of_memory

    if is_out_of_memory(exc):
        return _TRY["memory"]
    advice = _TRY.get(type(exc).__name__, _TRY["default"])
    return advice if resumable else advice.replace(" with --resume", "")


def _kind(exc: BaseException) -> str:
    """A MedviewError's `kind` in the error event ("disk" when the disk filled up), so the
    panel words what to try in its own terms (memory and internal errors have their own)."""
    cause = exc.__cause__
    full = isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT)
    return "disk" if full else "input"


def run_train(args: Any) -> int:
    from medview.core.errors import MedviewError

    try:
        job = build_job(args)
    except (ValueError, MedviewError) as exc:  # a flag, or the job file: the panel reads it
        _print(
            _error_event(
                exc, kind="input", path=getattr(exc, "path", None), **{"try": _TRY["default"]}
            )
        )
        print(f"medview: {sentence(exc)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ValueError) else EXIT_BAD_INPUT
    if job is None:
        print("medview: train needs --data FOLDER and --base NAME, or --job FILE", file=sys.stderr)
        return EXIT_USAGE
    stop = {"asked": False}

    def ask_stop(signum: int, frame: Any) -> None:
        stop["asked"] = True

    old = {s: signal.signal(s, ask_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    from medview.ai.training.checks import claim_work
    from medview.ai.training.runs import RunRecord

    record: RunRecord | None = None
    trainer = None

    def emit(event: dict) -> None:
        if isinstance(event.get("setting"), dict):  # (a warning about one) in our words
            event = {**event, "message": sentence(SettingError.from_dict(event["setting"]))}
        if record is not None:  # first: a reader gone (closed pipe) must not cost the record
            record.event(event)
        try:
            _print(event)
        except BrokenPipeError:  # the reader is gone (the app closed or crashed, `| head`):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # a stop, saved
            stop["asked"] = True  # where it is (it ended as an internal error, unsaved)

    try:
        from medview.ai.training.engine import Trainer

        trainer = Trainer(job, emit, lambda: stop["asked"], resume=args.resume)
        if os.environ.get("RANK", "0") == "0":  # torchrun: the first process reports
            claim_work(trainer.work, args.resume)
            record = RunRecord(trainer.work)  # run.json and run.lock: the panel finds it
            record.open()
        trainer.run()
        return EXIT_OK
    except MedviewError as exc:
        from medview.ai.training.engine import CHECKPOINT

        # a disk that filled before the first checkpoint leaves nothing to resume
        resumable = trainer is not None and (trainer.work / CHECKPOINT).exists()
        emit(
            _error_event(
                exc,
                kind=_kind(exc),
                path=exc.path,
                resumable=resumable,
                **{"try": _what_to_try(exc, resumable)},
            )
        )
        print(f"medview: {sentence(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:
        from medview.ai.runtime.device import is_out_of_memory

        if not is_out_of_memory(exc):
            emit(
                {
                    "event": "error",
                    "kind": "internal",
                    "message": f"internal error ({type(exc).__name__}: {exc})",
                    "try": "see the log file",
                }
            )
            raise  # cli's guard logs it and prints one line
        message = f"the device ran out of memory ({str(exc).splitlines()[0][:120]})"
        emit({"event": "error", "kind": "memory", "message": message, "try": _TRY["memory"]})
        print(f"medview: {message}; {_TRY['memory']}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        if record is not None:
            record.close()
            from medview.ai.training.runs import forget_unsaved

            forget_unsaved(trainer.work)  # ended before its first checkpoint: nothing to keep
        for s, handler in old.items():
            signal.signal(s, handler)
