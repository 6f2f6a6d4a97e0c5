"""Shared fixtures: the real data folder beside the project (skipped with a reason when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("LUNGAI_SHARED_DATA", REPO.parent / "shared" / "data"))
SLICER_API = Path(os.environ.get("LUNGAI_SLICER_API", REPO.parent / "shared" / "slicer-api"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the project on developer and CI "
                    "machines; set LUNGAI_SHARED_DATA to use another place)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
