"""Optional learned backends: the LungAI model registry, lungmask and TotalSegmentator.

None of them is required. Each is detected when asked for and fails with a :class:`LungAIError` saying what is
missing (package, model or weights) and how to get it.
"""

from __future__ import annotations

import importlib.util
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from lungai.errors import LungAIError
from lungai.image import Image
from lungai.labels import AIRWAYS, LEFT_LUNG, LOBE_LABELS, LUNG_LABELS, RIGHT_LUNG, RIGHT_LOBES, LEFT_LOBES
from lungai.progress import Progress, ensure
from lungai.provenance import Provenance

LUNG_TASK = "lungs"


@dataclass
class BackendOutput:
    labels: np.ndarray            # lungs label map on the input grid
    lobes: Optional[np.ndarray]   # lobe label map on the input grid, when the backend makes one
    provenance: Provenance


def lungs_from_lobes(lobes: np.ndarray) -> np.ndarray:
    out = np.zeros(lobes.shape, dtype=np.uint8)
    out[np.isin(lobes, RIGHT_LOBES)] = RIGHT_LUNG
    out[np.isin(lobes, LEFT_LOBES)] = LEFT_LUNG
    return out


def _registry_entry(model_name: Optional[str]):
    """The registry entry to run, or None when the registry module or a lungs model is absent."""
    try:
        from lungai.models import get_model, load_registry
    except ImportError:
        return None
    if model_name:
        return get_model(model_name)
    entries = [e for e in load_registry() if e.task == LUNG_TASK]
    if not entries:
        return None
    from lungai.models.registry import version_key

    return max(entries, key=lambda e: version_key(e.version))


def trusted_for_auto(entry) -> bool:
    """Whether "auto" may pick this model over the classic method without being asked.

    A model the site installed itself (user registry: e.g. fine-tuned on its own corrected cases) is; a shipped
    model is only when its registry entry says so (``training.auto_select: true``, set once it has been validated
    on real CT). A phantom-only model is never picked silently: it can be far worse than the classic method on
    real scans; ``--method model`` still runs it.
    """
    return entry.origin == "user" or bool((entry.training or {}).get("auto_select", False))


def model_available(model_name: Optional[str] = None, for_auto: bool = False) -> bool:
    """True when a lungs model is registered and its weights are on this machine (and, ``for_auto``, trusted
    for automatic use, see :func:`trusted_for_auto`)."""
    try:
        entry = _registry_entry(model_name)
    except LungAIError:
        return False
    if entry is None or (for_auto and not trusted_for_auto(entry)):
        return False
    from lungai.models import weights_path

    return weights_path(entry) is not None


def run_model(image: Image, model_name: Optional[str], device: str, progress: Optional[Progress]) -> BackendOutput:
    """Run the registry's lungs model; its label names say which values are lungs, airways or lobes."""
    entry = _registry_entry(model_name)
    if entry is None:
        raise LungAIError(f"model {model_name or 'for lungs'} not installed; see `lungai models list`")
    from lungai.models import run_inference

    result = run_inference(image, entry, device=device, progress=ensure(progress))
    raw = np.asarray(result.labels.array)
    by_name = {name: value for value, name in entry.labels.items()}
    labels = np.zeros(raw.shape, dtype=np.uint8)
    lobes = None
    lobe_names = [n for n in LOBE_LABELS.values() if n in by_name]
    if lobe_names:
        lobes = np.zeros(raw.shape, dtype=np.uint8)
        for value, name in LOBE_LABELS.items():
            if name in by_name:
                lobes[raw == by_name[name]] = value
        labels = lungs_from_lobes(lobes)
    for value, name in LUNG_LABELS.items():
        if name in by_name:
            labels[raw == by_name[name]] = value
    if not {"right_lung", "left_lung"} <= set(by_name) and not lobe_names:
        raise LungAIError(f"model {entry.id} labels {sorted(by_name)} name no right_lung/left_lung or lobes")
    return BackendOutput(labels, lobes, result.provenance)


def _require(package: str, install: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise LungAIError(f"the optional package {package!r} is not installed; install it with `{install}` "
                          "(it also needs its network weights), or use --method classic")


def run_lungmask(image: Image, device: str, progress: Optional[Progress]) -> BackendOutput:
    """lungmask R231 (right/left lungs) and LTRCLobes (lobes), when the package and its weights are present."""
    _require("lungmask", "pip install lungmask")
    progress = ensure(progress)
    from lungmask import LMInferer

    sitk_image = image.to_sitk()
    try:
        progress.update(0.05, "lungmask R231")
        lungs = np.asarray(LMInferer(modelname="R231", force_cpu=device == "cpu").apply(sitk_image))
        progress.update(0.5, "lungmask LTRCLobes")
        lobes = np.asarray(LMInferer(modelname="LTRCLobes", force_cpu=device == "cpu").apply(sitk_image))
    except Exception as exc:  # weights download or model failure inside lungmask
        raise LungAIError(f"lungmask could not run (are its weights available offline?): {exc}") from None
    labels = np.zeros(lungs.shape, dtype=np.uint8)
    labels[lungs == 1] = RIGHT_LUNG  # lungmask: 1 right, 2 left
    labels[lungs == 2] = LEFT_LUNG
    # LTRCLobes: 1 LUL, 2 LLL, 3 RUL, 4 RML, 5 RLL
    lobe_map = np.zeros(lobes.shape, dtype=np.uint8)
    for theirs, ours in {1: 4, 2: 5, 3: 1, 4: 2, 5: 3}.items():
        lobe_map[lobes == theirs] = ours
    return BackendOutput(labels, lobe_map, Provenance("lungs-lungmask", model_name="lungmask R231 + LTRCLobes"))


TOTALSEG_CLASSES: Dict[str, int] = {
    "lung_upper_lobe_right": 1, "lung_middle_lobe_right": 2, "lung_lower_lobe_right": 3,
    "lung_upper_lobe_left": 4, "lung_lower_lobe_left": 5}


def run_totalsegmentator(image: Image, device: str, progress: Optional[Progress]) -> BackendOutput:
    """TotalSegmentator (lobes and trachea), when the package and its weights are present."""
    _require("totalsegmentator", "pip install TotalSegmentator")
    progress = ensure(progress)
    import SimpleITK as sitk
    from totalsegmentator.python_api import totalsegmentator

    with tempfile.TemporaryDirectory(prefix="lungai-totalseg-") as tmp:
        source, out = Path(tmp) / "ct.nii.gz", Path(tmp) / "seg"
        sitk.WriteImage(image.to_sitk(), str(source))
        progress.update(0.05, "TotalSegmentator")
        try:
            totalsegmentator(str(source), str(out), roi_subset=list(TOTALSEG_CLASSES) + ["trachea"],
                             device="gpu" if device.startswith("cuda") else "cpu", quiet=True)
        except Exception as exc:  # missing weights, no network, version mismatch
            raise LungAIError(f"TotalSegmentator could not run (are its weights available offline?): {exc}") from None
        lobes = np.zeros(image.shape, dtype=np.uint8)
        for name, value in TOTALSEG_CLASSES.items():
            path = out / f"{name}.nii.gz"
            if path.exists():
                lobes[sitk.GetArrayFromImage(sitk.ReadImage(str(path))) > 0] = value
        labels = lungs_from_lobes(lobes)
        trachea = out / "trachea.nii.gz"
        if trachea.exists():
            labels[sitk.GetArrayFromImage(sitk.ReadImage(str(trachea))) > 0] = AIRWAYS
    return BackendOutput(labels, lobes, Provenance("lungs-totalsegmentator", model_name="TotalSegmentator"))
