"""Every shipped model loads in a fresh interpreter, whatever package defines its architecture."""

from __future__ import annotations

import subprocess
import sys

CODE = """
from lungai.models import load_registry, load_network
for entry in load_registry():
    load_network(entry, "cpu")
    print(entry.id)
"""


def test_shipped_models_load_without_importing_their_packages_first() -> None:
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    from lungai.models import load_registry

    loaded = set(result.stdout.split())
    assert loaded == {entry.id for entry in load_registry()}
    assert {"xray-pneumonia", "denoise-redcnn", "lungs-unet", "embolism-candidates"} <= {i.split("@")[0] for i in loaded}


def test_cli_exit_code_of_a_command_is_kept(tmp_path) -> None:
    from lungai.cli.main import main

    assert main(["review", "next", str(tmp_path / "no-store")]) == 2
