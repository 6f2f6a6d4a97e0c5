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


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for the module: with tiny tensors on a shared 2-core machine, more threads only spin
    against each other. The previous setting is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
