"""The fine-tune as a child process: `medview train --job FILE` under QProcess (`python -m
medview` from a Python install, the app itself when frozen: ui.child_command),
its stdout read as one JSON event per line, on the GUI thread through Qt's event loop (no
thread, no polling). A crash or an out-of-memory in training ends that process, never the
viewer (docs/architecture.md, "Threads and processes").

The child's idle OpenMP threads sleep rather than spin (OMP_WAIT_POLICY=PASSIVE), because
the viewer shares the cores with it: on this 2-core machine with one other busy process the
engine learnt from 52-62 samples/s against 31-33 with libgomp's default spinning, for 15%
less when nothing else runs (88 against 104; benchmarks/bench_train_speed.py). Headless
`medview train` keeps the default: there the machine is the run's.

Stop asks politely first (SIGTERM: the run saves a checkpoint and ends within a step) and
kills after a grace period, so a hung run cannot outlive the reader's patience."""

from __future__ import annotations

import json

from PySide6 import QtCore

from medview.ui.child_command import medview_argv

GRACE_MS = 10_000


class TrainingProcess(QtCore.QObject):
    event = QtCore.Signal(dict)  # each JSON line of the child's stdout
    log_line = QtCore.Signal(str)  # stderr, and stdout that is not JSON
    finished = QtCore.Signal(int, bool)  # exit code, whether it was killed

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.proc: QtCore.QProcess | None = None
        self._buffer = b""
        self._killed = False
        self._grace = QtCore.QTimer(self)
        self._grace.setSingleShot(True)
        self._grace.timeout.connect(self._kill)

    @property
    def running(self) -> bool:
        return (
            self.proc is not None and self.proc.state() != QtCore.QProcess.ProcessState.NotRunning
        )

    def start(self, args: list[str], env: dict[str, str] | None = None) -> None:
        """Run `medview train ARGS` in a child process."""
        if self.running:
            return
        proc = QtCore.QProcess(self)
        penv = QtCore.QProcessEnvironment.systemEnvironment()
        if not penv.contains("OMP_WAIT_POLICY"):  # the reader's own choice stands
            penv.insert("OMP_WAIT_POLICY", "PASSIVE")
        for k, v in (env or {}).items():
            penv.insert(k, v)
        proc.setProcessEnvironment(penv)
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._error)
        self.proc, self._buffer, self._killed = proc, b"", False
        program, *argv = medview_argv("train", *args)
        proc.start(program, argv)

    def stop(self, grace_ms: int = GRACE_MS) -> None:
        """SIGTERM now (the run checkpoints and ends), kill after `grace_ms`."""
        if not self.running:
            return
        self.proc.terminate()
        self._grace.start(grace_ms)

    def _kill(self) -> None:
        if self.running:
            self._killed = True
            self.proc.kill()

    def _read_stdout(self) -> None:
        self._buffer += bytes(self.proc.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            self._line(raw.decode("utf-8", "replace").strip())

    def _line(self, text: str) -> None:
        if not text:
            return
        try:
            event = json.loads(text)
        except ValueError:
            self.log_line.emit(text)
            return
        if isinstance(event, dict) and "event" in event:
            self.event.emit(event)
        else:
            self.log_line.emit(text)

    def _read_stderr(self) -> None:
        text = bytes(self.proc.readAllStandardError()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self.log_line.emit(line.rstrip())

    def _finished(self, code: int, status: QtCore.QProcess.ExitStatus) -> None:
        self._grace.stop()
        self._read_stdout()
        self._line(self._buffer.decode("utf-8", "replace").strip())
        self._buffer = b""
        self.finished.emit(int(code), self._killed)

    def _error(self, error: QtCore.QProcess.ProcessError) -> None:
        if error == QtCore.QProcess.ProcessError.FailedToStart:
            self.log_line.emit(f"could not start {' '.join(medview_argv('train'))}")
            self.finished.emit(-1, False)

    def shutdown(self) -> None:
        """At app close: stop, and do not leave a run behind."""
        if self.running:
            self.proc.terminate()
            if not self.proc.waitForFinished(3000):
                self.proc.kill()
                self.proc.waitForFinished(1000)
