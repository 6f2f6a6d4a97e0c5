"""Progress reporting and cancellation shared by every long-running lungai job.

Core functions take ``progress: Optional[Progress]``. They call ``progress.update(fraction, message)`` now
and then; ``update`` raises :class:`lungai.errors.Cancelled` once ``cancel()`` was called, so a job stops at
its next step. ``progress.span(a, b)`` gives a child that maps its own 0..1 onto ``a..b`` of the parent, so
nested steps report one monotonic overall fraction.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

from lungai.errors import Cancelled

Callback = Callable[[float, str], None]


class Progress:
    """Fraction-done reporter with a cooperative cancel flag (thread safe)."""

    def __init__(self, callback: Optional[Callback] = None, *, _event: Optional[threading.Event] = None,
                 _range: tuple = (0.0, 1.0)):
        self._callback = callback
        self._event = _event or threading.Event()
        self._range = _range

    def update(self, fraction: float, message: str = "") -> None:
        """Report ``fraction`` (0..1) of this span done; raise ``Cancelled`` if cancel was requested."""
        self.check()
        a, b = self._range
        overall = a + (b - a) * min(max(float(fraction), 0.0), 1.0)
        if self._callback is not None:
            self._callback(overall, message)

    def check(self) -> None:
        """Raise ``Cancelled`` if cancel was requested."""
        if self._event.is_set():
            raise Cancelled()

    def cancel(self) -> None:
        """Ask the job to stop at its next ``update``/``check``."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def span(self, start: float, end: float) -> "Progress":
        """A child reporter covering ``start..end`` of this one; cancelling either cancels both."""
        a, b = self._range
        return Progress(self._callback, _event=self._event, _range=(a + (b - a) * start, a + (b - a) * end))


def ensure(progress: Optional[Progress]) -> Progress:
    """The given reporter, or a silent one."""
    return progress if progress is not None else Progress()
