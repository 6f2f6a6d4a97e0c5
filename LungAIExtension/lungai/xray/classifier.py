"""Classifying one chest radiograph: checks, calibrated class probabilities, Grad-CAM heat map, provenance."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import torch

from lungai.errors import InputError
from lungai.image import Image
from lungai.io import read_image, read_xray
from lungai.models.weights import sha256_of
from lungai.progress import Progress, ensure
from lungai.provenance import Provenance
from lungai.xray import plausibility
from lungai.xray.classes import CLASS_NAMES, CLASS_TITLES
from lungai.xray.heatmap import grad_cam, to_image_grid
from lungai.xray.network import XrayNet
from lungai.xray.preprocess import model_input, standardize, window_to_unit
from lungai.xray.weights import MODEL_NAME, load_weights_file, registry_network

METHOD = "chest radiograph classification (normal / bacterial / viral pneumonia) with a Grad-CAM heat map"


VOLUME_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd", ".nii", ".nii.gz")


def _from_volume_file(path: Path) -> Image:
    """A radiograph saved as a 2D (or one-slice 3D) NRRD/MHA/NIfTI, e.g. exported from Slicer; scaled to 0..1."""
    try:
        image = read_image(path, check="none")
    except ValueError as exc:  # multi-component (colour) images
        raise InputError(path, f"is not a grey-level radiograph ({exc})") from None
    if image.ndim == 3:
        if image.shape[0] != 1:
            raise InputError(path, f"is a 3D volume with {image.shape[0]} slices; a single 2D radiograph is needed "
                                   "(CT volumes go to `lungai lungs` or `lungai pneumonia`)")
        image = Image(image.array[0], image.spacing[:2], image.origin[:2], image.direction[:2, :2],
                      image.metadata)
    values = image.array.astype(np.float32)
    lo, hi = float(values.min()), float(values.max())
    unit = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    return image.like(unit, **dict(image.metadata, source=str(path), modality=""))


def load_chest_radiograph(path: Union[str, Path]) -> Image:
    """Read a PNG/JPEG/DICOM (or 2D NRRD/MHA/NIfTI) radiograph as 0..1 with bone bright; refuse colour pictures."""
    path = Path(path)
    if path.name.lower().endswith(VOLUME_SUFFIXES) and path.is_file():
        return _from_volume_file(path)
    image = read_xray(path)
    if image.metadata.get("modality", "") == "":
        plausibility.check_colour(path)
    return image


@dataclass
class XrayResult:
    """Outcome of :meth:`XrayClassifier.classify`; ``heatmap`` lies on the radiograph's own pixel grid."""

    probabilities: Dict[str, float]
    predicted: str
    heatmap: Optional[Image]
    radiograph: Image
    plausibility: plausibility.PlausibilityReport
    provenance: Provenance
    seconds: float

    @property
    def pneumonia_probability(self) -> float:
        return float(sum(v for k, v in self.probabilities.items() if k != "normal"))

    def to_dict(self) -> Dict[str, Any]:
        return {"predicted_class": self.predicted, "predicted_title": CLASS_TITLES[self.predicted],
                "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
                "pneumonia_probability": round(self.pneumonia_probability, 4),
                "heatmap_class": self.predicted if self.heatmap is not None else None,
                "image_size": list(self.radiograph.size), "pixel_spacing_mm": list(self.radiograph.spacing),
                "checks": self.plausibility.to_dict(), "seconds": round(self.seconds, 3),
                "provenance": self.provenance.to_dict(),
                "disclaimer": "Research use only, trained on paediatric radiographs; results support a reader, "
                              "they do not replace one."}


class XrayClassifier:
    """A loaded classifier network with what identifies it in provenance."""

    def __init__(self, network: XrayNet, model_name: str, model_version: str, weights_sha256: str,
                 device: str = "cpu"):
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.model_name, self.model_version, self.weights_sha256 = model_name, model_version, weights_sha256

    @classmethod
    def from_registry(cls, version: Optional[str] = None, device: str = "cpu") -> "XrayClassifier":
        """The newest (or given) registered ``xray-pneumonia`` model with verified weights."""
        network, entry = registry_network(version, device)
        return cls(network, entry.name, entry.version, entry.sha256, device)

    @classmethod
    def from_file(cls, path: Union[str, Path], device: str = "cpu") -> "XrayClassifier":
        """A user-supplied ``xray-resnet`` weights file (state dict)."""
        path = Path(path)
        return cls(load_weights_file(path), f"{MODEL_NAME} (user weights {path.name})", "user",
                   sha256_of(path), device)

    @property
    def input_size(self) -> int:
        return self.network.config.input_size

    def _reference_layout(self) -> Optional[np.ndarray]:
        layout = self.network.layout.detach().cpu().numpy()
        return layout if float(np.abs(layout).sum()) > 0 else None

    def classify(self, image: Image, *, heatmap: bool = True, progress: Optional[Progress] = None) -> XrayResult:
        """Check the radiograph, then predict calibrated class probabilities and the predicted class's heat map."""
        progress = ensure(progress)
        started = time.perf_counter()
        source = image.metadata.get("source")
        progress.update(0.05, "checking the radiograph")
        plausibility.check_pixels(image, source)
        report = plausibility.PlausibilityReport()
        reference = self._reference_layout()
        if reference is not None:
            report.layout_correlation = round(plausibility.check_layout(image, reference, source), 4)
        else:
            report.warnings.append("these weights carry no reference layout: the chest-radiograph layout check "
                                   "was skipped")
        progress.update(0.2, "classifying")
        x = standardize(torch.from_numpy(model_input(image, self.input_size))[None, None]).to(self.device)
        with torch.inference_mode():
            features = self.network.features(x)
            logits = self.network.head(features) / self.network.temperature
            probabilities = torch.softmax(logits.float(), dim=1)[0].cpu().numpy()
            distance = float(self.network.feature_distance(features)[0])
        limit = float(self.network.feature_limit)
        if np.isfinite(limit):
            report.feature_distance, report.feature_limit = round(distance, 3), round(limit, 3)
            if distance > limit:
                report.warnings.append(
                    f"the image is unlike the training radiographs (feature distance {distance:.1f} > {limit:.1f}): "
                    "the probabilities may not be reliable (adult film, unusual projection or processing?)")
        predicted = int(np.argmax(probabilities))
        cam_image = None
        if heatmap:
            progress.update(0.5, "computing the Grad-CAM heat map")
            cam = to_image_grid(grad_cam(self.network, x, predicted), image.shape)
            cam_image = image.like(cam / cam.max() if cam.max() > 0 else cam)
        provenance = Provenance(
            method=METHOD, model_name=self.model_name, model_version=self.model_version,
            weights_sha256=self.weights_sha256,
            parameters={"input_size": self.input_size, "temperature": round(float(self.network.temperature), 4),
                        "heatmap": "Grad-CAM of the predicted class at " + XrayNet.cam_layer if heatmap else None,
                        "device": self.device.type, "source": source})
        result = XrayResult({name: float(p) for name, p in zip(CLASS_NAMES, probabilities)}, CLASS_NAMES[predicted],
                            cam_image, image.like(window_to_unit(image.array)), report, provenance,
                            time.perf_counter() - started)
        provenance.parameters["seconds"] = round(result.seconds, 3)
        progress.update(1.0, f"{CLASS_TITLES[result.predicted]} ({probabilities[predicted]:.0%})")
        return result


def classify_file(path: Union[str, Path], classifier: XrayClassifier, *, heatmap: bool = True,
                  progress: Optional[Progress] = None) -> XrayResult:
    """Read, check and classify one radiograph file."""
    progress = ensure(progress)
    progress.update(0.0, "reading the radiograph")
    image = load_chest_radiograph(path)
    if image.ndim != 2:
        raise InputError(path, "is not a single 2D radiograph")
    return classifier.classify(image, heatmap=heatmap, progress=progress.span(0.1, 1.0))
