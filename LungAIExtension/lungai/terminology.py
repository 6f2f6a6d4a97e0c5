"""Standard segment definitions: label value, name, colour and DICOM/SNOMED terminology for every structure.

Names and colours are what Slicer shows; the terminology follows Slicer's ``TerminologyEntry`` tag (category,
type, optional type modifier and anatomic region with modifier), so segments open with the right coded meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

GENERAL_ANATOMY = "Segmentation category and type - 3D Slicer General Anatomy list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"

ANATOMICAL_STRUCTURE = ("SCT", "123037004", "Anatomical Structure")
MORPHOLOGICALLY_ALTERED = ("SCT", "49755003", "Morphologically Altered Structure")
RIGHT = ("SCT", "24028007", "Right")
LEFT = ("SCT", "7771000", "Left")
LUNG = ("SCT", "39607008", "Lung")

Code = Tuple[str, str, str]


@dataclass(frozen=True)
class StructureDef:
    """One kind of segment: its display name, colour (0..1 RGB) and coded terminology."""

    key: str
    name: str
    color: Tuple[float, float, float]
    category: Code
    type: Code
    type_modifier: Optional[Code] = None
    region: Optional[Code] = None
    region_modifier: Optional[Code] = None

    def terminology(self) -> Dict[str, object]:
        """The slicerio terminology dictionary of this structure."""
        entry: Dict[str, object] = {"contextName": GENERAL_ANATOMY, "category": list(self.category),
                                    "type": list(self.type)}
        if self.type_modifier:
            entry["typeModifier"] = list(self.type_modifier)
        if self.region:
            entry["anatomicContextName"] = ANATOMIC_CONTEXT
            entry["anatomicRegion"] = list(self.region)
            if self.region_modifier:
                entry["anatomicRegionModifier"] = list(self.region_modifier)
        return entry


def _anat(key: str, name: str, color, code: Code, modifier: Optional[Code] = None) -> StructureDef:
    return StructureDef(key, name, color, ANATOMICAL_STRUCTURE, code, modifier)


def _finding(key: str, name: str, color, code: Code, modifier: Optional[Code] = None) -> StructureDef:
    return StructureDef(key, name, color, MORPHOLOGICALLY_ALTERED, code, None, LUNG, modifier)


STRUCTURES: Dict[str, StructureDef] = {s.key: s for s in [
    _anat("right_lung", "right lung", (0.50, 0.68, 0.50), LUNG, RIGHT),
    _anat("left_lung", "left lung", (0.40, 0.55, 0.80), LUNG, LEFT),
    _anat("airways", "airways", (0.76, 0.94, 0.96), ("SCT", "89187006", "Airway structure")),
    _anat("trachea", "trachea", (0.71, 0.89, 0.96), ("SCT", "44567001", "Trachea")),
    _anat("right_upper_lobe", "right upper lobe", (0.69, 0.48, 0.40), ("SCT", "45653009", "Upper lobe of lung"), RIGHT),
    _anat("right_middle_lobe", "right middle lobe", (0.44, 0.73, 0.35),
          ("SCT", "72481006", "Middle lobe of right lung")),
    _anat("right_lower_lobe", "right lower lobe", (0.65, 0.43, 0.73), ("SCT", "90572001", "Lower lobe of lung"), RIGHT),
    _anat("left_upper_lobe", "left upper lobe", (0.98, 0.78, 0.35), ("SCT", "45653009", "Upper lobe of lung"), LEFT),
    _anat("left_lower_lobe", "left lower lobe", (0.33, 0.64, 0.80), ("SCT", "90572001", "Lower lobe of lung"), LEFT),
    _anat("pulmonary_artery", "pulmonary artery", (0.00, 0.59, 0.85), ("SCT", "81040000", "Pulmonary artery")),
    _anat("heart", "heart", (0.81, 0.38, 0.33), ("SCT", "80891009", "Heart")),
    _anat("aorta", "aorta", (0.88, 0.30, 0.25), ("SCT", "15825003", "Aorta")),
    _finding("ground_glass", "ground-glass opacity", (1.00, 0.85, 0.20),
             ("SCT", "50196008", "Ground glass opacity")),
    _finding("consolidation", "consolidation", (0.86, 0.24, 0.16), ("SCT", "95436008", "Lung consolidation")),
    _finding("lesion", "lung lesion", (0.95, 0.55, 0.15), ("SCT", "52988006", "Lesion")),
    _finding("nodule", "lung nodule", (0.90, 0.40, 0.70), ("SCT", "27925004", "Nodule")),
    StructureDef("embolus", "pulmonary embolus", (0.95, 0.10, 0.55), MORPHOLOGICALLY_ALTERED,
                 ("SCT", "59282003", "Pulmonary embolism"), None, ("SCT", "81040000", "Pulmonary artery")),
]}

# Zones: upper/middle/lower third per side, each split ventral/dorsal. Colours shade the lung colour.
ZONE_NAMES = [f"{side} {level} {part}" for side in ("right", "left") for level in ("upper", "middle", "lower")
              for part in ("ventral", "dorsal")]


def structure(key: str) -> StructureDef:
    try:
        return STRUCTURES[key]
    except KeyError:
        raise KeyError(f"unknown structure {key!r}; known: {sorted(STRUCTURES)}") from None
