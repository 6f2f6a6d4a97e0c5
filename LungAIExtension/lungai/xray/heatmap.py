"""Grad-CAM heat maps (Selvaraju et al. 2017) over the radiograph, and their overlay picture.

The gradients of the class logit with respect to the last convolutional stage weight its feature maps; the
positive part of the weighted sum, upsampled to the input and scaled to 0..1, shows where the network saw
that class. On this architecture (4 x 4 maps at 128 px) the map is coarse: it points at a region, not a lesion
outline.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
import torch
from monai.visualize import GradCAM

from lungai.io.atomic import atomic_output
from lungai.xray.network import XrayNet

# one GradCAM per network: each instance hooks the target layer for good, so it is made once and reused
_EXPLAINERS: "weakref.WeakKeyDictionary[XrayNet, GradCAM]" = weakref.WeakKeyDictionary()


def _explainer(network: XrayNet) -> GradCAM:
    if network not in _EXPLAINERS:
        _EXPLAINERS[network] = GradCAM(nn_module=network, target_layers=XrayNet.cam_layer,
                                       postprocessing=torch.relu)
    return _EXPLAINERS[network]


def grad_cam(network: XrayNet, x: torch.Tensor, class_index: int) -> np.ndarray:
    """Grad-CAM of ``class_index`` for one standardised input ``(1, 1, S, S)``: ``(S, S)`` in 0..1 (all zero
    when no region speaks for the class). MONAI's default post-processing is not used: it inverts the map."""
    network.eval()
    with torch.enable_grad():
        raw = _explainer(network)(x=x.detach().clone().requires_grad_(True), class_idx=int(class_index))
    heat = raw[0, 0].detach().cpu().numpy().astype(np.float32)
    peak = float(heat.max())
    return heat / peak if peak > 0 else np.zeros_like(heat)


def to_image_grid(heat: np.ndarray, shape: tuple) -> np.ndarray:
    """Resample a square heat map back onto the radiograph's ``(rows, columns)`` (undoing the squash)."""
    if heat.shape == tuple(shape):
        return heat.astype(np.float32)
    from skimage.transform import resize

    return np.clip(resize(heat, shape, order=1, anti_aliasing=False, preserve_range=True), 0, 1).astype(np.float32)


def overlay_rgb(radiograph: np.ndarray, heat: np.ndarray, opacity: float = 0.45, max_side: int = 1024) -> np.ndarray:
    """8-bit RGB picture: the radiograph in grey with the heat map in the 'jet' colour map blended on top.

    Blending is proportional to the heat, so regions without activation keep the plain radiograph.
    """
    from matplotlib import colormaps

    grey = np.asarray(radiograph, dtype=np.float32)
    scale = max(grey.shape) / max_side
    if scale > 1:
        shape = (int(round(grey.shape[0] / scale)), int(round(grey.shape[1] / scale)))
        grey, heat = to_image_grid(grey, shape), to_image_grid(heat, shape)
    colours = colormaps["jet"](np.clip(heat, 0, 1))[..., :3]
    alpha = (opacity * np.clip(heat, 0, 1))[..., None]
    rgb = (1 - alpha) * grey[..., None] + alpha * colours
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def write_overlay_png(rgb: np.ndarray, path: Path) -> Path:
    from PIL import Image as PILImage

    with atomic_output(path) as tmp:
        PILImage.fromarray(rgb, mode="RGB").save(tmp, format="PNG")
    return Path(path)

