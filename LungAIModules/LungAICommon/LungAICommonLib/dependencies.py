"""Python packages the ``lungai`` core needs inside Slicer, checked and installed on first use, never at import.

:func:`missing_requirements` is pure Python (tested outside Slicer); :func:`ensure_dependencies` asks the user and
installs with Slicer's pip (torch through the PyTorch extension's ``PyTorchUtils`` when that is installed, so the
right CUDA or CPU build is chosen).
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Callable, Dict, List, Optional

# import name -> pip requirement (kept in step with LungAIExtension/pyproject.toml)
REQUIREMENTS: Dict[str, str] = {
    "torch": "torch>=2.2",
    "monai": "monai>=1.3",
    "SimpleITK": "SimpleITK>=2.3",
    "numpy": "numpy>=1.24",
    "scipy": "scipy>=1.10",
    "skimage": "scikit-image>=0.21",
    "cc3d": "connected-components-3d>=3.12",
    "slicerio": "slicerio>=1.1",
    "pydicom": "pydicom>=2.4",
    "nrrd": "pynrrd>=1.0",
    "click": "click>=8.1",
    "tqdm": "tqdm>=4.66",
    "matplotlib": "matplotlib>=3.7",
    "jsonschema": "jsonschema>=4.18",
    "PIL": "pillow>=10",
}

TORCH_REQUIREMENT = REQUIREMENTS["torch"]


def missing_requirements(find_spec: Callable[[str], Optional[object]] = importlib.util.find_spec) -> List[str]:
    """pip requirements of the packages that cannot be imported (in ``REQUIREMENTS`` order)."""
    missing = []
    for module, requirement in REQUIREMENTS.items():
        try:
            found = find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(requirement)
    return missing


def model_installed(name: str) -> bool:
    """True when the registry lists model ``name`` (``name@version``) and its weights verify."""
    try:
        from lungai.models import verify_weights
        from lungai.models.registry import get_model

        return verify_weights(get_model(name)).state == "ok"
    except Exception:  # not registered, no weights, or lungai's model packages missing
        return False


def install_message(requirements: List[str]) -> str:
    return ("LungAI needs these Python packages, which are not installed in Slicer yet:\n\n  "
            + "\n  ".join(requirements)
            + "\n\nInstall them now? This downloads them from the Python Package Index and can take several "
              "minutes (PyTorch is large). Slicer may need a restart afterwards.")


def ensure_dependencies(find_spec: Callable[[str], Optional[object]] = importlib.util.find_spec) -> bool:
    """True when every package is importable, installing missing ones after the user agreed (in Slicer)."""
    missing = missing_requirements(find_spec)
    if not missing:
        return True
    import slicer

    if not slicer.util.confirmOkCancelDisplay(install_message(missing), windowTitle="LungAI: install packages"):
        logging.info("LungAI: installation of %s declined", ", ".join(missing))
        return False
    if TORCH_REQUIREMENT in missing:
        _install_torch()
        missing.remove(TORCH_REQUIREMENT)
    if missing:
        with slicer.util.tryWithErrorDisplay("Installing LungAI's Python packages failed.", waitCursor=True):
            # a list goes to pip unchanged, in the requirements-only pip_install of 5.8/5.10 and in 5.12+
            slicer.util.pip_install(list(missing))
    importlib.invalidate_caches()
    still = missing_requirements(find_spec)
    if still:
        slicer.util.errorDisplay("These packages could not be installed: " + ", ".join(still))
    return not still


def _install_torch() -> None:
    import slicer

    try:
        import PyTorchUtils  # the PyTorch extension picks the CUDA or CPU build for this computer
    except ImportError:
        PyTorchUtils = None
    if PyTorchUtils is not None:
        logic = PyTorchUtils.PyTorchUtilsLogic()
        if not logic.torchInstalled():
            logic.installTorch(askConfirmation=False, torchVersionRequirement=TORCH_REQUIREMENT[len("torch"):])
        return
    with slicer.util.tryWithErrorDisplay("Installing PyTorch failed.", waitCursor=True):
        slicer.util.pip_install([TORCH_REQUIREMENT])
