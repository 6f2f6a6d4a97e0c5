"""Low-dose CT: calibrated dose simulation, classical (non-local means) and CNN denoising.

* :func:`lungai.denoise.dose.simulate_low_dose` - a normal-dose CT as it would look at a lower dose
  (projection-domain noise insertion through :mod:`lungai.ctsim`, calibrated on real full/quarter-dose pairs).
* :func:`denoise` - ``method="nlm"`` (non-local means, strength from the measured noise) or ``"cnn"``
  (RED-CNN-style residual encoder-decoder from the model registry), slice by slice, HU kept calibrated.
* Image quality measures are in :mod:`lungai.quality`.
"""

from __future__ import annotations

from typing import Optional, Tuple

from lungai.image import Image
from lungai.progress import Progress
from lungai.provenance import Provenance

METHODS = ("nlm", "cnn")


def denoise(image: Image, method: str = "cnn", strength: float = 1.0, device: str = "cpu",
            progress: Optional[Progress] = None, noise_std: Optional[float] = None) -> Tuple[Image, Provenance]:
    """Denoise a CT (HU) with ``method``; returns the image on the same grid and its provenance.

    ``noise_std`` (HU): the input's noise level, else measured per slice in flat soft tissue (NLM's filter
    strength, the CNN's noise-level input when its model has one).
    """
    if method == "nlm":
        from lungai.denoise.nlm import denoise_nlm

        out = denoise_nlm(image, strength=strength, noise_std=noise_std, progress=progress)
        params = {k: v for k, v in out.metadata.items() if k != "method"}
        return out, Provenance(method="non-local means (slice-wise, h from measured noise)", parameters=params)
    if method == "cnn":
        from lungai.denoise.cnn import denoise_cnn

        return denoise_cnn(image, strength=strength, device=device, progress=progress, noise_std=noise_std)
    raise ValueError(f"unknown denoising method {method!r}; choose one of {', '.join(METHODS)}")
