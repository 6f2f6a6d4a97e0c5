"""Keep ITK's, GDCM's and MetaIO's console chatter off the user's terminal.

ITK prints warnings (for example "Non uniform sampling or missing slices detected") and some of its file formats
print straight to the C++ standard error stream. lungai turns the facts that matter into :class:`InputError`
messages itself, so this chatter is switched off (warnings) or captured (raw stderr) and only shown as the
detail of an error when a read fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from typing import Iterator, List, Sequence

import SimpleITK as sitk


_REDIRECT = threading.Lock()


def silence_itk_warnings() -> None:
    """Stop ITK from printing warnings to the console (process wide; errors still raise)."""
    sitk.ProcessObject.SetGlobalWarningDisplay(False)


@contextlib.contextmanager
def captured_stderr() -> Iterator[List[str]]:
    """Redirect the process's file descriptor 2 while the block runs; the yielded list receives what was written.

    Does nothing (the yielded list stays empty) when the process has no descriptor 2 (some embedded
    interpreters) or while another thread is capturing, so concurrent readers never lose the real stderr.
    """
    lines: List[str] = []
    if not _REDIRECT.acquire(blocking=False):  # nesting dup2 across threads would lose the real fd 2
        yield lines
        return
    try:
        with _fd2_into(lines):
            yield lines
    finally:
        _REDIRECT.release()


@contextlib.contextmanager
def _fd2_into(lines: List[str]) -> Iterator[None]:
    fd = 2  # C++ std::cerr writes here whatever Python's sys.stderr is
    try:
        saved = os.dup(fd)
    except OSError:
        yield
        return
    if sys.stderr is not None:
        sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            lines.extend(line.strip() for line in sink.read().decode("utf-8", "replace").splitlines()
                         if line.strip())


def itk_error_detail(exc: BaseException, extra: Sequence[str] = ()) -> str:
    """The informative last lines of an ITK exception and captured console text, without source-file noise."""
    useful = []
    for line in [*str(exc).splitlines(), *extra]:
        line = line.strip()
        if not line or line.startswith("Exception thrown in") or ".cxx:" in line or ".hxx:" in line:
            continue
        if "ERROR:" in line:
            line = line.split("ERROR:", 1)[1].strip()
            line = line.split("):", 1)[1].strip() if "):" in line else line
        if line.startswith("Reason:") and "No such file" in line:
            continue  # MetaIO's errno is stale after a short read
        useful.append(line)
    return "; ".join(useful[-2:])[:240] if useful else type(exc).__name__
