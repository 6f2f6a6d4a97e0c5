"""Exceptions raised by lungai; every input problem names the file and what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union


class LungAIError(Exception):
    """Base class of all errors lungai raises on purpose."""


class InputError(LungAIError):
    """An input file or image that cannot be used, with the path and the specific problem."""

    def __init__(self, path: Optional[Union[str, Path]], problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class Cancelled(LungAIError):
    """The user cancelled a running job."""

    def __init__(self, message: str = "cancelled by the user"):
        super().__init__(message)
