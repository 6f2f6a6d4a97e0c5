"""Shared command-line plumbing: run settings, progress display, JSON output and error exits."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, Optional

import click

from lungai.progress import Progress


@dataclass
class RunSettings:
    """Options given before the subcommand (``lungai --device cuda --json lungs ...``)."""

    device: str = "cpu"
    json_output: bool = False
    progress: str = "bar"  # bar | json | none


def settings() -> RunSettings:
    ctx = click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, RunSettings):
        root.obj = RunSettings()
    return root.obj


def resolve_device(name: str) -> str:
    """``auto`` picks CUDA when torch sees a GPU; ``cuda`` without one is a clear error."""
    if name == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if name == "cuda":
        raise click.UsageError("--device cuda was asked for, but torch sees no CUDA GPU on this machine")
    return "cpu"


class _Reporter:
    def __init__(self, mode: str, label: str):
        self.mode, self.label, self._bar = mode, label, None
        if mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=1000, desc=label, unit="‰", file=sys.stderr, leave=False,
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")

    def __call__(self, fraction: float, message: str) -> None:
        if self.mode == "json":
            sys.stderr.write(json.dumps({"progress": round(fraction, 4), "message": message}) + "\n")
            sys.stderr.flush()
        elif self._bar is not None:
            self._bar.n = int(round(fraction * 1000))
            self._bar.set_postfix_str(message[:40], refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class progress_reporter:
    """Context manager giving a :class:`Progress` shown as a bar, JSON lines on stderr, or nothing."""

    def __init__(self, label: str):
        self._reporter = _Reporter(settings().progress, label)

    def __enter__(self) -> Progress:
        return Progress(self._reporter)

    def __exit__(self, *exc: Any) -> None:
        self._reporter.close()


def emit(result: Any, human: Optional[str] = None) -> None:
    """Print a result: JSON on stdout with ``--json``, else the human summary."""
    from lungai.io.writers import to_json_text

    if settings().json_output:
        click.echo(to_json_text(result))
    elif human:
        click.echo(human)
