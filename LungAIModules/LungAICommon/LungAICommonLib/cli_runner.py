"""Run the ``lungai`` command line as a background process (pure Python: no Slicer or Qt import).

The Slicer modules build a command with :func:`build_command`, start a :class:`CliJob` and call
:meth:`CliJob.poll` from a timer. The job reads the child's stdout and stderr on two threads, so polling never
blocks: stderr carries JSON progress lines (``{"progress": 0.4, "message": "..."}``) and error lines
(``lungai: error: ...``), stdout carries the final JSON result with its ``"outputs"`` map of files written.
"""

from __future__ import annotations

import enum
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

ProcessFactory = Callable[..., "subprocess.Popen[str]"]

ERROR_PREFIX = "lungai: error: "
CLI_MODULE = "lungai.cli"


def python_executable() -> str:
    """The interpreter that runs the CLI: Slicer's ``PythonSlicer`` when inside Slicer, else this Python."""
    found = shutil.which("PythonSlicer")
    if found:
        return found
    beside = Path(sys.executable).with_name("PythonSlicer.exe" if os.name == "nt" else "PythonSlicer")
    if beside.is_file():
        return str(beside)
    return sys.executable


def build_command(arguments: Sequence[Any], *, python: Optional[str] = None, device: str = "auto") -> List[str]:
    """``python -m lungai.cli --device D --json --progress json ARGUMENTS...`` as an argument list."""
    if not arguments:
        raise ValueError("a lungai subcommand is needed")
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    return [python or python_executable(), "-m", CLI_MODULE, "--device", device, "--json", "--progress", "json",
            *(str(a) for a in arguments)]


def process_environment(base: Optional[Mapping[str, str]] = None, package_root: Optional[Path] = None,
                        resources: Optional[Path] = None) -> Dict[str, str]:
    """Environment for the child: ``lungai`` importable, unbuffered UTF-8 output, resources located."""
    env = dict(os.environ if base is None else base)
    if package_root is None:
        package_root = _lungai_package_root()
    if package_root is not None:
        paths = [str(package_root)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    if resources is not None:
        env["LUNGAI_RESOURCES"] = str(resources)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _lungai_package_root() -> Optional[Path]:
    import importlib.util

    spec = importlib.util.find_spec("lungai")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).resolve().parent.parent


@dataclass(frozen=True)
class ProgressUpdate:
    fraction: float
    message: str


def parse_progress_line(line: str) -> Optional[ProgressUpdate]:
    """A progress update from one stderr line, or None when the line is not a progress record."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or "progress" not in record:
        return None
    try:
        fraction = float(record["progress"])
    except (TypeError, ValueError):
        return None
    if fraction != fraction:  # NaN
        return None
    return ProgressUpdate(min(max(fraction, 0.0), 1.0), str(record.get("message", "")))


def error_message(stderr_lines: Sequence[str], returncode: Optional[int]) -> str:
    """The message to show for a failed run: the CLI's ``lungai: error:`` line, else the last useful line."""
    lines = [line.rstrip() for line in stderr_lines if line.strip()]
    for line in reversed(lines):
        if line.startswith(ERROR_PREFIX):
            return line[len(ERROR_PREFIX):]
    for line in reversed(lines):
        if line.startswith("Error: "):  # click usage errors
            return line[len("Error: "):]
    for line in reversed(lines):
        if parse_progress_line(line) is None:
            return line.strip()
    return f"lungai stopped with exit code {returncode}"


class ResultError(ValueError):
    """The CLI's stdout did not hold the JSON result it should."""


def parse_result(stdout_text: str) -> Dict[str, Any]:
    """The final JSON object printed on stdout (any text printed before it is ignored)."""
    text = stdout_text.strip()
    if not text:
        return {}
    decoder = json.JSONDecoder()
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n" and text[i + 1:i + 2] == "{"]
    for start in starts:
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if text[end:].strip() == "" and isinstance(value, dict):
            return value
    raise ResultError(f"lungai printed no JSON result; its output ends with: {text[-300:]!r}")


def output_paths(result: Mapping[str, Any]) -> Dict[str, Path]:
    """The ``"outputs"`` map of a result as paths (empty when the command wrote no files)."""
    outputs = result.get("outputs") or {}
    if not isinstance(outputs, Mapping):
        raise ResultError(f"'outputs' should map names to paths, got {type(outputs).__name__}")
    return {str(name): Path(str(path)) for name, path in outputs.items()}


class JobState(enum.Enum):
    NOT_STARTED = "not started"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


EXIT_CANCELLED = 130


@dataclass
class CliJob:
    """One run of a command line in a child process, read without blocking and cancellable.

    ``process_factory`` makes the process (``subprocess.Popen`` by default); it is called with the argument list
    and Popen keyword arguments, so tests and callers may inject their own.
    """

    command: Sequence[str]
    env: Optional[Mapping[str, str]] = None
    cwd: Optional[str] = None
    process_factory: ProcessFactory = subprocess.Popen
    state: JobState = JobState.NOT_STARTED
    result: Dict[str, Any] = field(default_factory=dict)
    error: str = ""
    stderr_lines: List[str] = field(default_factory=list)
    last_progress: ProgressUpdate = ProgressUpdate(0.0, "")
    returncode: Optional[int] = None

    def __post_init__(self) -> None:
        self._process: Any = None
        self._lines: "queue.Queue[tuple]" = queue.Queue()
        self._stdout: List[str] = []
        self._readers: List[threading.Thread] = []
        self._cancel_requested = False

    # -- life cycle ---------------------------------------------------------------------------------------
    def start(self) -> "CliJob":
        if self.state is not JobState.NOT_STARTED:
            raise RuntimeError(f"this job was already started ({self.state.value})")
        kwargs: Dict[str, Any] = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                      text=True, encoding="utf-8", errors="replace", bufsize=1,
                                      env=dict(self.env) if self.env is not None else None, cwd=self.cwd)
        if os.name == "nt":
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0) | getattr(
                subprocess, "CREATE_NO_WINDOW", 0)
        else:
            kwargs["start_new_session"] = True  # its own process group, so cancel reaches its children too
        self._process = self.process_factory(list(self.command), **kwargs)
        self.state = JobState.RUNNING
        for name, stream in (("stdout", self._process.stdout), ("stderr", self._process.stderr)):
            reader = threading.Thread(target=self._read, args=(name, stream), daemon=True)
            reader.start()
            self._readers.append(reader)
        return self

    def _read(self, name: str, stream: Any) -> None:
        if stream is None:
            return
        for line in iter(stream.readline, ""):
            self._lines.put((name, line))
        stream.close()

    @property
    def pid(self) -> Optional[int]:
        return getattr(self._process, "pid", None)

    @property
    def finished(self) -> bool:
        return self.state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)

    def poll(self) -> List[ProgressUpdate]:
        """Take what the child printed so far; returns the new progress updates. Never blocks."""
        updates = self._drain()
        if self.state is JobState.RUNNING and self._process.poll() is not None:
            for reader in self._readers:
                reader.join(timeout=2.0)
            updates += self._drain()
            self._finish(self._process.returncode)
        return updates

    def wait(self, timeout: Optional[float] = None) -> JobState:
        """Block until the job ends (for scripts and tests; the GUI polls instead)."""
        if self.state is JobState.RUNNING:
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return self.state
            self.poll()
        return self.state

    def cancel(self) -> None:
        """Stop the child and everything it started; the job ends as CANCELLED."""
        if self.state is not JobState.RUNNING:
            return
        self._cancel_requested = True
        kill_process_tree(self._process)

    # -- internals ----------------------------------------------------------------------------------------
    def _drain(self) -> List[ProgressUpdate]:
        updates = []
        while True:
            try:
                name, line = self._lines.get_nowait()
            except queue.Empty:
                return updates
            if name == "stdout":
                self._stdout.append(line)
                continue
            update = parse_progress_line(line)
            if update is not None:
                self.last_progress = update
                updates.append(update)
            else:
                self.stderr_lines.append(line.rstrip("\n"))

    def _finish(self, returncode: int) -> None:
        self.returncode = returncode
        if self._cancel_requested:
            self.state, self.error = JobState.CANCELLED, "cancelled"
        elif returncode != 0:
            self.state = JobState.CANCELLED if returncode == EXIT_CANCELLED else JobState.FAILED
            self.error = error_message(self.stderr_lines, returncode)
        else:
            try:
                self.result = parse_result("".join(self._stdout))
                self.state = JobState.SUCCEEDED
            except ResultError as exc:
                self.state, self.error = JobState.FAILED, str(exc)

    @property
    def outputs(self) -> Dict[str, Path]:
        return output_paths(self.result)


def kill_process_tree(process: Any) -> None:
    """Terminate a process started by :class:`CliJob` together with its children."""
    if process.poll() is not None:
        return
    if os.name == "nt":
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True, check=False)
    else:
        try:
            group = os.getpgid(process.pid)
            if group != os.getpgrp():  # never our own group, should a factory not have made a new session
                os.killpg(group, signal.SIGKILL)
        except OSError:
            pass
    if process.poll() is None:
        process.kill()
