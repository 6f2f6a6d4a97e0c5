"""A per-case lock file that works on local and shared (network) drives: exclusive create, with stale detection."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from lungai.errors import LungAIError


class LockTimeout(LungAIError):
    """Another annotator holds the case lock for longer than we were willing to wait."""


class CaseLock:
    """``with CaseLock(path, owner):`` holds ``path`` exclusively; waits up to ``timeout`` seconds.

    A lock older than ``stale_after`` seconds (a crashed writer) is broken and taken over.
    """

    def __init__(self, path: Path, owner: str, timeout: float = 30.0, stale_after: float = 600.0,
                 poll: float = 0.05):
        self.path, self.owner = Path(path), owner
        self.timeout, self.stale_after, self.poll = timeout, stale_after, poll
        self._held = False

    def _holder(self) -> str:
        try:
            return json.loads(self.path.read_text()).get("owner", "?")
        except (OSError, ValueError):
            return "?"

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        info = json.dumps({"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(),
                           "since": time.time()})
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    age = time.time() - self.path.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age > self.stale_after:
                    self.path.unlink(missing_ok=True)
                    continue
                if time.monotonic() > deadline:
                    raise LockTimeout(f"{self.path.parent.name}: locked by {self._holder()} for {age:.0f} s; "
                                      "try again when they have saved") from None
                time.sleep(self.poll)
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(info)
            self._held = True
            return

    def release(self) -> None:
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False

    def __enter__(self) -> "CaseLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
