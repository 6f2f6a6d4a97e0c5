"""Writing phantom cases to disk (NIfTI image and truth, Slicer segmentations, JSON facts) and cohorts."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from lungai.image import Image
from lungai.io import Segment, write_image, write_json, write_segmentation
from lungai.labels import LESION_LABELS, LOBE_LABELS, LUNG_LABELS, segments_for
from lungai.phantom.config import PRESETS, PhantomConfig
from lungai.phantom.ct import PhantomCase, make_phantom
from lungai.progress import Progress, ensure
from lungai.provenance import Provenance

PathLike = Union[str, Path]


def _segmentations(case: PhantomCase) -> Dict[str, tuple]:
    segs = {"lungs": (case.truth["lungs"], segments_for(LUNG_LABELS)),
            "lobes": (case.truth["lobes"], segments_for(LOBE_LABELS)),
            "vessels": (_vessel_classes(case), [Segment.from_structure(1, "pulmonary_artery"),
                                                Segment(2, "pulmonary vein", (0.35, 0.45, 0.95))])}
    if case.info.get("lesions"):
        segs["lesion_class"] = (case.truth["lesion_class"], segments_for(LESION_LABELS))
    if case.info.get("emboli"):
        segs["emboli"] = (case.truth["emboli"], [Segment.from_structure(e["id"], "embolus",
                                                                        f"embolus {e['id']} ({e['level']})")
                                                 for e in case.info["emboli"]])
    return segs


def _vessel_classes(case: PhantomCase) -> Image:
    vessels, arteries = case.truth["vessels"].array, case.truth["arteries"].array
    out = (vessels > 0).astype("uint8") * 2
    out[arteries > 0] = 1
    return case.truth["vessels"].like(out)


def save_case(case: PhantomCase, outdir: PathLike, include_clean: bool = False) -> Dict[str, Path]:
    """Write ``ct.nii.gz`` (int16 HU), ``truth/<name>.nii.gz``, ``truth/<name>.seg.nrrd`` and ``truth.json``.

    ``include_clean`` also writes the noise-free image as ``ct_clean.nii.gz``. Returns name -> path.
    """
    outdir = Path(outdir)
    prov = Provenance(method="lungai.phantom", parameters={"seed": case.info.get("seed"),
                                                          "preset": case.info.get("preset")})
    header = prov.header_fields()
    # the CT as a scanner stores it: HU rounded to int16 (half the size of float32; the noise does not compress)
    ct16 = case.ct.like(np.clip(np.rint(case.ct.array), -32768, 32767).astype(np.int16), **case.ct.metadata)
    outputs: Dict[str, Path] = {"ct": write_image(ct16, outdir / "ct.nii.gz", metadata=header)}
    if include_clean:
        outputs["ct_clean"] = write_image(case.clean_ct, outdir / "ct_clean.nii.gz", metadata=header)
    for name, image in case.truth.items():
        outputs[f"truth_{name}"] = write_image(image, outdir / "truth" / f"{name}.nii.gz", metadata=header)
    for name, (labels, segments) in _segmentations(case).items():
        outputs[f"seg_{name}"] = write_segmentation(labels, segments, outdir / "truth" / f"{name}.seg.nrrd",
                                                    metadata=header)
    outputs["truth_json"] = write_json(dict(case.info, provenance=prov.to_dict()), outdir / "truth.json")
    return outputs


def make_cohort(outdir: PathLike, n: int, presets: Optional[Sequence[str]] = None, seed: int = 0,
                progress: Optional[Progress] = None, **cfg_overrides) -> Path:
    """Write ``n`` cases cycling through ``presets`` (all CT presets by default) and ``cohort.json``.

    Case ``i`` uses seed ``seed + i``; ``cfg_overrides`` go to every :class:`PhantomConfig` (``pe`` cases are
    CT pulmonary angiograms unless ``contrast`` is given).
    """
    progress = ensure(progress)
    presets = list(presets or PRESETS)
    unknown = [p for p in presets if p not in PRESETS]
    if unknown or n < 1:
        raise ValueError(f"need n >= 1 and CT presets from {sorted(PRESETS)} (got {unknown or n})")
    outdir = Path(outdir)
    cases: List[Dict] = []
    for i in range(n):
        preset = presets[i % len(presets)]
        phase = {"contrast": "ctpa"} if preset == "pe" and "contrast" not in cfg_overrides else {}
        cfg = PhantomConfig(**{**cfg_overrides, **phase, "seed": seed + i, "preset": preset})
        case = make_phantom(cfg, progress.span(i / n, (i + 0.9) / n))
        case_id = f"case_{i:03d}_{preset}"
        save_case(case, outdir / case_id)
        cases.append({"case_id": case_id, "preset": preset, "seed": cfg.seed, "path": case_id,
                      "lung_volume_ml": case.info["lung_volume_ml"]["total"], "lesions": len(case.info["lesions"]),
                      "emboli": len(case.info["emboli"]),
                      "involvement_percent": case.info["involvement_percent"]["total"]["any"]})
        progress.update((i + 1) / n, f"case {i + 1}/{n}")
    path = write_json({"n": n, "seed": seed, "presets": presets, "overrides": cfg_overrides, "cases": cases},
                      outdir / "cohort.json")
    return path
