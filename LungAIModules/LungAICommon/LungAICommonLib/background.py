"""Run ``lungai`` commands in the background of Slicer: a QTimer polls the :class:`CliJob`, so the GUI never
freezes; progress goes to a progress bar and a status label, Cancel kills the whole process tree."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

import qt
import slicer

from LungAICommonLib.cli_runner import (CliJob, JobState, ProcessFactory, ProgressUpdate, build_command,
                                        process_environment)

SuccessCallback = Callable[[Dict[str, Any], Dict[str, Path]], None]
FailureCallback = Callable[[str], None]


def lungaiResourcesDir() -> Optional[Path]:
    try:
        from lungai.resources import resources_dir
    except ImportError:
        return None
    try:
        return resources_dir()
    except FileNotFoundError:
        return None


DEVICE_SETTING = "LungAI/Device"


def deviceSetting() -> str:
    """``auto`` unless the user chose cpu or cuda in the LungAI settings."""
    value = str(slicer.util.settingsValue(DEVICE_SETTING, "auto"))
    return value if value in ("auto", "cpu", "cuda") else "auto"


class BackgroundCliRunner:
    """Runs one ``lungai`` command at a time for a module panel.

    ``progressBar`` (QProgressBar), ``statusLabel`` (QLabel) and ``busyWidgets`` (disabled while running) are
    optional; ``cancelButton`` is enabled while a job runs and cancels it. ``processFactory`` is handed to
    :class:`CliJob` (``subprocess.Popen`` by default) so tests can inject their own.
    """

    def __init__(self, progressBar: Any = None, statusLabel: Any = None, cancelButton: Any = None,
                 busyWidgets: Sequence[Any] = (), pollIntervalMs: int = 150,
                 processFactory: ProcessFactory = subprocess.Popen) -> None:
        self.progressBar = progressBar
        self.statusLabel = statusLabel
        self.cancelButton = cancelButton
        self.busyWidgets = list(busyWidgets)
        self.processFactory = processFactory
        self.job: Optional[CliJob] = None
        self._onSuccess: Optional[SuccessCallback] = None
        self._onDone: Optional[Callable[[], None]] = None
        self._onFailure: Optional[FailureCallback] = None
        self._label = ""
        self.timer = qt.QTimer()
        self.timer.setInterval(pollIntervalMs)
        self.timer.connect("timeout()", self._poll)
        if cancelButton is not None:
            cancelButton.enabled = False
            cancelButton.connect("clicked(bool)", lambda checked=False: self.cancel())

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.state is JobState.RUNNING

    def start(self, arguments: Sequence[Any], onSuccess: Optional[SuccessCallback] = None,
              onFailure: Optional[FailureCallback] = None, label: str = "LungAI", device: Optional[str] = None,
              onDone: Optional[Callable[[], None]] = None) -> CliJob:
        """Start ``lungai ARGUMENTS`` (global options added); callbacks run on the GUI thread when it ends.

        On success ``onSuccess(result, outputs)`` loads the results, then ``onDone()`` (typically the panel's
        GUI update) runs; it is skipped when loading fails, which is shown as an error.
        """
        if self.running:
            raise RuntimeError("a LungAI computation is already running in this module; wait or cancel it")
        command = build_command(arguments, device=device or deviceSetting())
        env = process_environment(resources=lungaiResourcesDir())
        logging.info("LungAI: running %s", subprocess.list2cmdline(command))
        self.job = CliJob(command, env=env, process_factory=self.processFactory)
        self._onSuccess, self._onDone, self._onFailure, self._label = onSuccess, onDone, onFailure, label
        self.job.start()
        self._setBusy(True)
        self._showProgress(ProgressUpdate(0.0, "starting"))
        self.timer.start()
        return self.job

    def cancel(self) -> None:
        if self.running:
            self._setStatus(f"{self._label}: cancelling...")
            self.job.cancel()

    def waitForCompletion(self, timeoutSeconds: float = 600.0) -> JobState:
        """Process Qt events until the job ends (used by self-tests; the GUI does not call this)."""
        deadline = qt.QElapsedTimer()
        deadline.start()
        while self.job is not None and not self.job.finished:
            slicer.app.processEvents()
            if deadline.elapsed() > timeoutSeconds * 1000:
                self.cancel()
            time.sleep(0.02)
        return self.job.state if self.job is not None else JobState.NOT_STARTED

    # -- internals ----------------------------------------------------------------------------------------
    def _poll(self) -> None:
        job = self.job
        if job is None:
            self.timer.stop()
            return
        updates = job.poll()
        if updates:
            self._showProgress(updates[-1])
        if not job.finished:
            return
        self.timer.stop()
        self._setBusy(False)
        if job.state is JobState.SUCCEEDED:
            self._showProgress(ProgressUpdate(1.0, "done"))
            self._call(self._succeeded, job, self._onSuccess, self._onDone)  # a callback may start the next job
        elif job.state is JobState.CANCELLED:
            self._setStatus(f"{self._label}: cancelled")
        else:
            self._setStatus(f"{self._label} failed: {job.error}")
            logging.error("LungAI: %s failed (exit %s): %s\n%s", self._label, job.returncode, job.error,
                          "\n".join(job.stderr_lines[-40:]))
            if self._onFailure is not None:
                self._call(self._onFailure, job.error)
            else:
                slicer.util.errorDisplay(f"{self._label} failed:\n\n{job.error}", windowTitle="LungAI",
                                         detailedText="\n".join(job.stderr_lines[-200:]))

    @staticmethod
    def _succeeded(job: CliJob, onSuccess: Optional[SuccessCallback], onDone: Optional[Callable[[], None]]) -> None:
        if onSuccess is not None:
            onSuccess(job.result, job.outputs)
        if onDone is not None:
            onDone()

    def _call(self, callback: Optional[Callable[..., None]], *args: Any) -> None:
        if callback is None:
            return
        with slicer.util.tryWithErrorDisplay(f"{self._label}: loading the results failed.", waitCursor=True):
            callback(*args)

    def _showProgress(self, update: ProgressUpdate) -> None:
        if self.progressBar is not None:
            self.progressBar.setValue(int(round(update.fraction * 100)))
        self._setStatus(f"{self._label}: {update.message}" if update.message else self._label)

    def _setStatus(self, text: str) -> None:
        if self.statusLabel is not None:
            self.statusLabel.text = text
        slicer.util.showStatusMessage(text, 3000)

    def _setBusy(self, busy: bool) -> None:
        for widget in self.busyWidgets:
            widget.enabled = not busy
        if self.cancelButton is not None:
            self.cancelButton.enabled = busy
        if self.progressBar is not None:
            self.progressBar.visible = True
