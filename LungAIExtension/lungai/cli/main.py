"""Entry point of the ``lungai`` command: a group whose subcommands load lazily from their own modules."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Dict, List, Optional

import click

import lungai
from lungai.cli.common import RunSettings
from lungai.errors import Cancelled, InputError, LungAIError

# subcommand -> (module, attribute, one-line help). Modules that are not present are not listed.
COMMANDS: Dict[str, tuple] = {
    "demo": ("lungai.cli.demo", "demo", "Run the main analysis on the built-in synthetic chest CT."),
    "info": ("lungai.cli.io_cmds", "info", "Show an image's geometry and check it as a chest CT."),
    "convert": ("lungai.cli.io_cmds", "convert", "Convert a CT (file or DICOM folder) to NIfTI, NRRD or MHA."),
    "phantom": ("lungai.cli.phantom", "phantom", "Make synthetic chest CTs and X-rays with exact ground truth."),
    "lungs": ("lungai.cli.lungs", "lungs", "Segment right and left lung, airways, zones and lobes."),
    "pneumonia": ("lungai.cli.pneumonia", "pneumonia", "Pneumonia lesions, involvement, histograms, follow-up, report."),
    "denoise": ("lungai.cli.denoise", "denoise", "Denoise a low-dose CT."),
    "simulate-dose": ("lungai.cli.denoise", "simulate_dose", "Simulate a lower-dose CT from a normal-dose one."),
    "embolism": ("lungai.cli.embolism", "embolism", "Detect pulmonary emboli on a CT pulmonary angiogram."),
    "xray": ("lungai.cli.xray", "xray", "Classify a chest radiograph: normal, bacterial or viral pneumonia."),
    "models": ("lungai.cli.models", "models", "List, download, import, verify and train models."),
    "review": ("lungai.cli.review", "review", "The review and training loop: cases, corrections, export, retrain."),
}


def _available() -> List[str]:
    return [name for name, (module, _, _) in COMMANDS.items() if importlib.util.find_spec(module) is not None]


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand runs (fast ``--help`` and start-up)."""

    def list_commands(self, ctx: click.Context) -> List[str]:
        return _available()

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        if name not in COMMANDS or name not in _available():
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(lungai.__version__, prog_name="lungai")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where models run; auto takes a CUDA GPU when there is one.")
@click.option("--json", "json_output", is_flag=True, help="Print results as JSON on stdout (for scripts).")
@click.option("--progress", type=click.Choice(["bar", "json", "none"]), default="bar", show_default=True,
              help="Progress display on stderr: a bar, JSON lines (for Slicer and other front ends), or none.")
@click.pass_context
def cli(ctx: click.Context, device: str, json_output: bool, progress: str) -> None:
    """LungAI: lung CT and chest X-ray AI for the people who read and annotate chest scans.

    Input CTs may be NIfTI, NRRD, MHA or a DICOM series folder. Outputs open in 3D Slicer
    (segmentations as .seg.nrrd with named, coloured segments). Results support a reader; they do not
    replace one.
    """
    ctx.obj = RunSettings(device=device, json_output=json_output, progress=progress)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; input problems exit 2, cancellation 130, other LungAI errors 1."""
    try:
        code = cli.main(args=argv, prog_name="lungai", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("lungai: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except InputError as exc:
        click.echo(f"lungai: error: {exc}", err=True)
        return 2
    except Cancelled as exc:
        click.echo(f"lungai: {exc}", err=True)
        return 130
    except LungAIError as exc:
        click.echo(f"lungai: error: {exc}", err=True)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
