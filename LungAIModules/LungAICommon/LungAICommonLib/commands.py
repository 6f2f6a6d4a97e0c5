"""The ``lungai`` subcommand argument lists the Slicer modules run (pure Python, checked against the real CLI
by the tests). Global options (``--device``, ``--json``, ``--progress``) are added by
:func:`LungAICommonLib.cli_runner.build_command`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Union

PathLike = Union[str, Path]

LUNG_METHODS = ["auto", "classic", "model", "lungmask", "totalsegmentator"]
LESION_METHODS = ["classic", "model"]
DENOISE_METHODS = ["nlm", "cnn"]
REVIEW_ACTIONS = ("submit", "approve", "send-back", "reopen")


def lungs(input_path: PathLike, output_folder: PathLike, method: str = "auto", model: str = "") -> List[str]:
    """Lungs, airways and zones (lobes too when a lobe model is installed); ``model`` is ``name[@version]``."""
    if method not in LUNG_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {LUNG_METHODS}")
    arguments = ["lungs", str(input_path), "-o", str(output_folder), "--method", method]
    return arguments + (["--model", model] if model else [])


def pneumonia_analyze(input_path: PathLike, output_folder: PathLike, method: str = "classic",
                      lungs_path: Optional[PathLike] = None, pdf: bool = True) -> List[str]:
    """Lesions, involvement, histogram and report (``report.pdf`` too unless ``pdf`` is False)."""
    if method not in LESION_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {LESION_METHODS}")
    arguments = ["pneumonia", "analyze", str(input_path), "-o", str(output_folder), "--method", method]
    arguments += ["--lungs", str(lungs_path)] if lungs_path else []
    return arguments + ([] if pdf else ["--no-pdf"])


def pneumonia_followup(earlier: PathLike, later: PathLike, output_folder: PathLike, method: str = "classic",
                       earlier_lungs: Optional[PathLike] = None, later_lungs: Optional[PathLike] = None) -> List[str]:
    if method not in LESION_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {LESION_METHODS}")
    arguments = ["pneumonia", "followup", str(earlier), str(later), "-o", str(output_folder), "--method", method]
    if earlier_lungs:
        arguments += ["--earlier-lungs", str(earlier_lungs)]
    if later_lungs:
        arguments += ["--later-lungs", str(later_lungs)]
    return arguments


def denoise(input_path: PathLike, output_path: PathLike, method: str, strength: float) -> List[str]:
    """``strength`` 0 keeps the input, 1 is the default filtering, up to 1.5."""
    if method not in DENOISE_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {DENOISE_METHODS}")
    if not 0.0 <= strength <= 1.5:
        raise ValueError(f"strength must be in [0, 1.5], got {strength}")
    return ["denoise", str(input_path), "-o", str(output_path), "--method", method, "--strength", f"{strength:g}"]


def simulate_dose(input_path: PathLike, output_path: PathLike, dose_fraction: float) -> List[str]:
    if not 0.01 <= dose_fraction < 1.0:
        raise ValueError(f"dose fraction must be in [0.01, 1), got {dose_fraction}")
    return ["simulate-dose", str(input_path), "-o", str(output_path), "--dose", f"{dose_fraction:g}"]


def embolism(input_path: PathLike, output_folder: PathLike, threshold: float = 0.5,
             lungs_path: Optional[PathLike] = None) -> List[str]:
    """Candidates above ``threshold`` (calibrated probability) are reported as emboli."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    arguments = ["embolism", str(input_path), "-o", str(output_folder), "--threshold", f"{threshold:g}"]
    return arguments + (["--lungs", str(lungs_path)] if lungs_path else [])


def xray(image_path: PathLike, output_folder: PathLike, model_version: str = "") -> List[str]:
    arguments = ["xray", str(image_path), "-o", str(output_folder)]
    return arguments + (["--model-version", model_version] if model_version else [])


def review_init(store: PathLike, task: str) -> List[str]:
    return ["review", "init", str(store), "--task", task]


def review_add(store: PathLike, images: List[PathLike], user: str) -> List[str]:
    return ["review", "add", str(store), *(str(i) for i in images), "--user", user]


def review_save(store: PathLike, case_id: str, labels: PathLike, annotator: str, seconds: float = 0.0,
                note: str = "") -> List[str]:
    arguments = ["review", "save", str(store), case_id, str(labels), "--annotator", annotator,
                 "--time-spent", f"{max(0.0, seconds):.0f}"]
    return arguments + (["--note", note] if note else [])


def review_status(action: str, store: PathLike, case_id: str, user: str, note: str = "") -> List[str]:
    """submit / approve / send-back / reopen (the last two need a note)."""
    if action not in REVIEW_ACTIONS:
        raise ValueError(f"unknown review action {action!r}; choose one of {REVIEW_ACTIONS}")
    if action in ("send-back", "reopen") and not note.strip():
        raise ValueError(f"'{action}' needs a note saying why")
    arguments = ["review", action, str(store), case_id, "--user", user]
    return arguments + (["--note", note] if note else [])


def review_propose(store: PathLike, case_ids: List[str], task: str, model: str = "", tta: bool = True) -> List[str]:
    """AI proposals (with flip-TTA uncertainty) for ``case_ids`` (all cases without one when empty); ``model``
    (``name[@version]``) selects a registered model, else the task's default method runs."""
    if task not in ("lungs", "lobes", "lesions"):
        raise ValueError(f"no AI proposals for the task {task!r}")
    method = "model" if model else ("classic" if task == "lesions" else "auto")
    arguments = ["review", "propose", str(store), *case_ids, "--method", method]
    if model:
        arguments += ["--model", model]
    return arguments + ([] if tta else ["--no-tta"])


def review_retrain(store: PathLike, model: str, epochs: int) -> List[str]:
    """Export the approved cases and train a new version of ``model`` (a registry name) on them."""
    return ["review", "retrain", str(store), "--model", model.split("@")[0], "--epochs", str(int(epochs))]
