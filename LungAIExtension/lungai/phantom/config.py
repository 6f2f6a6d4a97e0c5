"""Phantom settings: the acquisition (grid, slice thickness, contrast, dose) and the clinical preset."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional, Tuple

PRESETS: Dict[str, str] = {
    "healthy": "normal lungs",
    "covid-mild": "COVID-19 pneumonia, mild: a few small peripheral ground-glass opacities",
    "covid-moderate": "COVID-19 pneumonia, moderate: bilateral peripheral posterior ground glass, crazy paving, "
                      "some consolidation",
    "covid-severe": "COVID-19 pneumonia, severe: extensive bilateral ground glass and consolidation reaching the "
                    "chest wall and diaphragm",
    "bacterial": "bacterial lobar pneumonia: one lobe largely consolidated with air bronchograms",
    "pe": "pulmonary embolism: filling defects in main, lobar, segmental and subsegmental arteries "
          "(use contrast='ctpa' to see them)",
    "nodules": "small solid and part-solid lung nodules",
}

XRAY_PRESETS: Dict[str, str] = {
    "healthy": "normal chest radiograph",
    "bacterial": "lobar consolidation",
    "viral": "bilateral interstitial and ground-glass opacities",
}

CONTRASTS = ("none", "ctpa")
BREATHING = ("inspiration", "expiration")


@dataclass
class PhantomConfig:
    """Everything that defines one synthetic case; the same config always gives the same images.

    ``size`` and ``spacing`` are in ITK (i, j, k) order; the field of view is ``size * spacing``.
    ``slice_thickness`` (mm, 0.6 to 5 typical) defaults to the slice spacing. ``dose`` is the fraction of a
    normal-dose chest CT. The remaining fields tune the pathology and have sensible defaults per preset.
    """

    seed: int = 0
    size: Tuple[int, int, int] = (128, 128, 64)
    spacing: Tuple[float, float, float] = (2.5, 2.5, 5.0)
    slice_thickness: Optional[float] = None
    preset: str = "healthy"
    breathing: str = "inspiration"
    contrast: str = "none"
    dose: float = 1.0
    noise: bool = True
    blur: bool = True
    # pathology overrides (None: the preset decides)
    lesion_count: Optional[int] = None
    lesion_scale: float = 1.0
    emboli_levels: Optional[Tuple[str, ...]] = None
    occlusive_fraction: float = 0.35
    nodule_count: Optional[int] = None
    # acquisition details
    kernel: str = "standard"
    in_plane_psf_mm: float = 0.9
    scanner: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.size = tuple(int(s) for s in self.size)
        self.spacing = tuple(float(s) for s in self.spacing)
        if len(self.size) != 3 or len(self.spacing) != 3:
            raise ValueError("size and spacing need three values each (i, j, k)")
        if min(self.size) < 4 or max(self.size) > 2048:
            raise ValueError(f"size {self.size} must be between 4 and 2048 voxels per axis")
        if min(self.spacing) < 0.2 or max(self.spacing) > 20:
            raise ValueError(f"spacing {self.spacing} must be between 0.2 and 20 mm per axis")
        if self.preset not in PRESETS and self.preset not in XRAY_PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {sorted(set(PRESETS) | set(XRAY_PRESETS))}")
        if self.contrast not in CONTRASTS:
            raise ValueError(f"contrast must be one of {CONTRASTS}, got {self.contrast!r}")
        if self.breathing not in BREATHING:
            raise ValueError(f"breathing must be one of {BREATHING}, got {self.breathing!r}")
        if not 0.01 <= float(self.dose) <= 10:
            raise ValueError(f"dose must be between 0.01 and 10 (fraction of normal dose), got {self.dose}")
        if self.slice_thickness is not None and not 0.3 <= float(self.slice_thickness) <= 10:
            raise ValueError(f"slice_thickness must be between 0.3 and 10 mm, got {self.slice_thickness}")
        if self.emboli_levels is not None:
            bad = set(self.emboli_levels) - {"main", "lobar", "segmental", "subsegmental"}
            if bad:
                raise ValueError(f"unknown emboli levels {sorted(bad)}")
            self.emboli_levels = tuple(self.emboli_levels)

    @property
    def thickness(self) -> float:
        """Effective slice thickness in mm."""
        return float(self.slice_thickness) if self.slice_thickness else float(self.spacing[2])

    @property
    def fov_mm(self) -> Tuple[float, float, float]:
        return tuple(n * s for n, s in zip(self.size, self.spacing))

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)
