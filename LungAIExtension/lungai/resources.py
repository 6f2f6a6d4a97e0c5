"""Locating the extension's shared ``Resources/`` folder (model registry, weights, terminology).

Order: ``$LUNGAI_RESOURCES``; the repository layout (``<repo>/Resources`` beside ``LungAIExtension/``, which an
editable install and the Slicer build both keep); a ``resources`` folder installed inside the package.
"""

from __future__ import annotations

import os
from pathlib import Path


def resources_dir() -> Path:
    env = os.environ.get("LUNGAI_RESOURCES")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent
    candidates += [here.parent.parent / "Resources", here / "resources"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("LungAI Resources folder not found; set LUNGAI_RESOURCES to the extension's "
                            f"Resources directory (looked in {', '.join(str(c) for c in candidates)})")


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
