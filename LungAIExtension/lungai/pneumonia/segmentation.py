"""Pneumonia lesion segmentation inside the lungs: ground-glass opacity (1) and consolidation (2).

``classic`` needs no weights. Inside the (hole-filled) lung mask it keeps the voxels whose lightly smoothed
density lies in the ground-glass or consolidation range, and removes what plain threshold tools count wrongly:

* vessels, as a tree: structures denser than ``vessel_core_hu`` that a ball of ``dense_opening_mm`` does not
  fit in (thin vessels, bronchial walls; at least ``vessel_min_mm3``, so noise specks in ground glass are not; with
  ``thick_across_mask_edge`` the ball may reach across the mask's edge into ground-glass density outside it, where
  the mask cuts a lesion to a thin band) are suppressed with a ``vessel_margin_mm`` margin for their
  partial-volume rims. Thicker vessels are rebuilt from their centre lines (multi-scale Frangi vesselness over
  ``vessel_scales_mm`` on the coarse vessel grid, see :mod:`.vessels`; a centre counts only where the dense
  structure goes on along the tube's axis) as balls of the local radius grown by a partial-volume shell of
  ``vessel_margin_mm`` plus ``vessel_shell_fraction`` of the radius (a centre deeper than the largest scale lies in
  a mass a vessel runs into, not on a tube); from there the dense structure of at least ``hilum_hu`` (vessel
  density, not ground glass) is followed to the lung's edge within ``hilum_mm`` of it (a vessel leaving the lung
  at the hilum is no tube where it merges with the mediastinum);
* remaining thin structures, by an opening of the candidates with an axial disc of ``opening_mm`` radius (what it
  shaved off the border of a lesion that survives the rejections below, within the disc's radius of it, is given
  back: ``restore_shaved_border``), and
  sheets parallel to the slices (lung bases and apices next to the diaphragm and chest wall) by a cranio-caudal
  line opening of ``opening_z_mm`` radius where the slices are thin enough to resolve it;
* airway walls, by excluding a ``airway_wall_mm`` shell around the airway mask of the lung segmentation; the
  partial-volume rim (``organ_top_rim_mm``) of organ tops bulging into the lung (diaphragm dome, heart; see
  :func:`.regions.fill_lungs`); and the lung's ``lung_rim_voxels`` outermost voxels per slice, where no lesion
  starts (a lesion found inside extends into them at the end).

Vessels enclosed by a lesion (within ``enclosed_vessel_mm``) count as lesion. Single-slice plates, small
heterogeneous remnants beside the suppressed vessels, small tubes and bulges on thin structures (specks on a faint
vessel or bronchial wall, ``thin_reach_mm``, ``thin_max_ratio``) are then rejected component by component
(:mod:`.components`). From the lesions that hold a ball of ``regrow_from_mm`` the mask grows back up to
``lesion_regrow_mm`` through the suppressed vessel zone (hysteresis: vessels and shells inside a lesion are
lesion), and each lesion grows up to ``edge_reach_mm`` to its half-contrast edge (:mod:`.edges`). Chest-wall
sheets (consolidation-dense, within ``sheet_depth_mm`` of the mask's outer surface, ``sheet_contact`` of their
shell on soft tissue outside it) are removed, and so are components less than ``min_contrast_hu`` denser than the
lung around them (dependent lung, breathing haze; before the edge growth) and floor sheets (``floor_fraction`` within
``floor_height_mm`` above the lung's floor on the diaphragm, density ramping up towards it: the dome in partial
volume and breathing blur). Each lesion voxel is ground glass below ``consolidation_hu[0]`` and
consolidation from there up; voxels within ``consolidation_rim_mm`` of consolidation (its partial-volume rim) are
consolidation too.
``model`` runs a registered lesion model (:mod:`lungai.models`, task ``lesions``) and keeps its output inside the
lungs; the model's label values must be those of :data:`lungai.labels.LESION_LABELS`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional, Tuple

import cc3d
import numpy as np
from scipy import ndimage as ndi

from lungai.errors import LungAIError
from lungai.image import Image
from lungai.labels import AIRWAYS, CONSOLIDATION, GROUND_GLASS
from lungai.pneumonia.components import (bulges_on_thin_structures, chest_wall_sheets, floor_sheets,
                                         reject_false_components)
from lungai.pneumonia.edges import faint_components, faint_parts_beside_dense, grow_to_half_contrast
from lungai.pneumonia.regions import LungRegions, PatientAxes, bounding_box
from lungai.pneumonia.vessels import (bin_average, bounded_across_axis, continues_along_axis, expand_blocks,
                                      shrink_factors, tube_zone, vesselness)
from lungai.progress import Progress, ensure
from lungai.provenance import Provenance

@dataclass
class ClassicParams:
    """Parameters of the weight-free lesion method (HU and mm)."""

    ground_glass_hu: Tuple[float, float] = (-720.0, -300.0)
    consolidation_hu: Tuple[float, float] = (-300.0, 200.0)
    smoothing_mm: float = 0.7
    opening_mm: float = 2.0
    opening_z_mm: float = 1.0
    restore_shaved_border: bool = True
    vessel_core_hu: float = -500.0
    dense_opening_mm: float = 3.0
    thick_across_mask_edge: bool = True
    vessel_margin_mm: float = 1.5
    vessel_min_mm3: float = 30.0
    enclosed_vessel_mm: float = 6.0
    vessel_grid_mm: float = 2.0
    vessel_scales_mm: Tuple[float, ...] = (2.0, 3.0, 4.5, 6.0)
    vessel_shell_fraction: float = 0.5
    lesion_regrow_mm: float = 4.0
    regrow_from_mm: float = 10.0
    hilum_mm: float = 6.0
    hilum_hu: float = -300.0
    vessel_threshold: float = 0.35
    vessel_threshold_wide: float = 0.5
    vessel_wide_mm: float = 5.5
    vessel_bounded: bool = True
    airway_wall_mm: float = 3.0
    organ_top_rim_mm: float = 4.0
    lung_rim_voxels: int = 1
    consolidation_rim_mm: float = 1.0
    keep_single_slice: bool = False
    remnant_max_mm3: float = 700.0
    remnant_hu_std: float = 150.0
    remnant_vessel_fraction: float = 0.6
    remnant_near_mm: float = 3.6
    max_elongation: float = 2.7
    thin_reach_mm: float = 7.5
    thin_max_ratio: float = 1.25
    edge_reach_mm: float = 2.0
    edge_background_mm: float = 8.0
    sheet_depth_mm: float = 7.0
    sheet_contact: float = 0.45
    sheet_soft_tissue_hu: float = -100.0
    min_contrast_hu: float = 85.0
    faint_beside_hu: float = 300.0
    floor_height_mm: float = 10.0
    floor_fraction: float = 0.9
    floor_ramp_hu_per_mm: float = 5.0
    floor_tissue_hu: float = -500.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LesionSegmentation:
    """Lesion class label map on the CT grid (0 none, 1 ground glass, 2 consolidation) and how it was made."""

    labels: np.ndarray
    provenance: Provenance
    vessels: Optional[np.ndarray] = field(default=None, repr=False)  # suppressed vessel voxels (classic only)


def ellipsoid(mm: float, spacing_kji, in_plane_axis: Optional[int] = None) -> np.ndarray:
    """Structuring element approximating a ball of ``mm`` radius on a grid of ``spacing_kji``.

    With ``in_plane_axis`` it is a flat disc across that array axis (one slice thick).
    """
    radius = [0.0 if axis == in_plane_axis else mm / s for axis, s in enumerate(spacing_kji)]
    radius = [max(r, 1.0) if r >= 0.5 else r for r in radius]  # at least one voxel once it reaches half of one
    half = [int(np.floor(r)) for r in radius]
    grid = np.mgrid[tuple(slice(-h, h + 1) for h in half)]
    return sum((g / max(r, 1e-6)) ** 2 for g, r in zip(grid, radius)) <= 1.0 + 1e-9


def morphology(operation, mask: np.ndarray, mm: float, spacing_kji,
               in_plane_axis: Optional[int] = None) -> np.ndarray:
    """Binary ``ndi.binary_opening``/``binary_dilation`` with a ball of ``mm``, computed on the mask's box only."""
    structure = ellipsoid(mm, spacing_kji, in_plane_axis)
    if structure.size == 1 or not mask.any():
        return mask
    margin = max(structure.shape) // 2 + 1
    box = bounding_box(mask, margin)
    out = np.zeros_like(mask, dtype=bool)
    out[box] = operation(mask[box], structure)
    return out


def segment_lesions_classic(image: Image, regions: LungRegions, params: Optional[ClassicParams] = None,
                            progress: Optional[Progress] = None) -> LesionSegmentation:
    """Weight-free ground-glass / consolidation segmentation (see the module docstring)."""
    p = params or ClassicParams()
    progress = ensure(progress)
    lung = regions.lung_mask
    labels = np.zeros(image.shape, dtype=np.uint8)
    vessels_full = np.zeros(image.shape, dtype=bool)
    provenance = Provenance(method="pneumonia-lesions-classic", parameters=p.to_dict())
    if not lung.any():
        return LesionSegmentation(labels, provenance, vessels_full)
    box = bounding_box(lung, margin=2)
    spacing = tuple(reversed(image.spacing))  # k, j, i
    axes = PatientAxes.of(image)
    lung = lung[box]
    progress.update(0.05, "smoothing")
    hu = image.array[box].astype(np.float32)
    sigma = [p.smoothing_mm / s for s in spacing]
    smooth = ndi.gaussian_filter(hu, sigma) if p.smoothing_mm > 0 else hu
    airways = regions.lungs[box] == AIRWAYS
    airway_walls = lung & morphology(ndi.binary_dilation, airways, p.airway_wall_mm, spacing)
    region = lung & ~airway_walls
    # the lung's outermost voxels in each slice mix lung with the chest wall, mediastinum and diaphragm (see the
    # lesion test below)
    cross = ndi.generate_binary_structure(3, 1)
    cross[tuple([0, 2] if a == axes.axial else slice(None) for a in range(3))] = False
    rim = np.zeros_like(lung)
    if p.lung_rim_voxels > 0:
        rim = region & ~ndi.binary_erosion(lung, cross, iterations=p.lung_rim_voxels, border_value=1)
    factors = shrink_factors(spacing, p.vessel_grid_mm)
    coarse_spacing = [s * f for s, f in zip(spacing, factors)]
    if regions.organ_tops is not None and regions.organ_tops[box].any():
        # the lung around an organ top bulging up into it (diaphragm dome, heart) is its partial-volume rim
        # (on the coarse vessel grid: a ball of several millimetres at sub-millimetre voxels would cost seconds)
        region &= ~expand_blocks(morphology(ndi.binary_dilation, bin_average(regions.organ_tops[box], factors) > 0,
                                            p.organ_top_rim_mm, coarse_spacing), factors, lung.shape)

    progress.update(0.2, "density ranges")
    lo, hi = p.ground_glass_hu[0], p.consolidation_hu[1]
    candidates = region & (smooth >= lo) & (smooth <= hi)
    dense = candidates & (smooth >= p.vessel_core_hu)
    progress.update(0.3, "thin dense structures")
    # the ball test runs on the coarse vessel grid (fast for large balls); dense voxels next to a thick
    # structure belong to it (its rounded corners), the rest are thin structures
    coarse_dense = bin_average(dense, factors) >= 0.5
    thick_test = dense
    if p.thick_across_mask_edge:
        # where the lung mask cuts through ground glass the opacity goes on outside it, and the ball may fit across
        # the mask's edge (a lesion cut to a thin band by the mask is no thin structure); soft tissue, the airways
        # and the organ tops left out of the mask do not count (the dome's partial volume that this lets through
        # is a floor sheet, see :func:`.components.floor_sheets`)
        thick_test = dense | (~lung & ~airways & (smooth >= p.vessel_core_hu) & (smooth < p.consolidation_hu[0]))
        if regions.organ_tops is not None:
            thick_test &= ~regions.organ_tops[box]
    coarse_thick = morphology(ndi.binary_opening, bin_average(thick_test, factors) >= 0.5, p.dense_opening_mm,
                              coarse_spacing)
    progress.update(0.45, "vessel suppression")
    thick_zone = expand_blocks(morphology(ndi.binary_dilation, coarse_thick, p.vessel_margin_mm, coarse_spacing),
                               factors, dense.shape)
    # thin structures big enough to be vessels (noise specks inside ground glass are not)
    thin = cc3d.dust(dense & ~thick_zone, threshold=max(1, int(p.vessel_min_mm3 / float(np.prod(spacing)))),
                     connectivity=26)
    vessels = morphology(ndi.binary_dilation, thin, p.vessel_margin_mm, spacing) & ~thick_zone
    vessels |= _vessel_tree(smooth, coarse_dense, lung, spacing, p)
    vessels &= candidates
    progress.update(0.6, "removing thin structures")
    axial = axes.axial
    before_opening = candidates & ~vessels & ~rim
    lesions = morphology(ndi.binary_opening, before_opening, p.opening_mm, spacing, axial)
    lesions &= _line_opening(lesions, axial, int(p.opening_z_mm // spacing[axial]))
    progress.update(0.75, "vessels inside lesions")
    closed = morphology(ndi.binary_closing, bin_average(lesions, factors) >= 0.25, p.enclosed_vessel_mm,
                        coarse_spacing)
    bridged = vessels & expand_blocks(closed, factors, lesions.shape)
    if p.min_contrast_hu > 0 and p.faint_beside_hu > 0 and bridged.any():
        # the enclosed vessels can join dependent lung to a mass beside it: such a part is tested on its own
        before = lesions
        lesions = faint_parts_beside_dense(lesions, bridged, smooth, region & ~vessels & ~rim, spacing,
                                           p.min_contrast_hu, p.faint_beside_hu, p.edge_reach_mm,
                                           p.edge_background_mm)
        if not np.array_equal(lesions, before):
            closed = morphology(ndi.binary_closing, bin_average(lesions, factors) >= 0.25, p.enclosed_vessel_mm,
                                coarse_spacing)
            bridged = vessels & expand_blocks(closed, factors, lesions.shape)
    lesions |= bridged
    progress.update(0.85, "rejecting plates and vessel remnants")
    # on the coarse vessel grid: a 3.6 mm ball at sub-millimetre voxels would cost seconds
    near_vessels = expand_blocks(morphology(ndi.binary_dilation, bin_average(vessels, factors) > 0,
                                            p.remnant_near_mm, coarse_spacing), factors, vessels.shape)
    lesions = reject_false_components(lesions, hu, near_vessels, spacing, axial, p.keep_single_slice,
                                      p.remnant_max_mm3, p.remnant_hu_std, p.remnant_vessel_fraction,
                                      p.max_elongation)
    if p.thin_max_ratio > 0:
        # a thin structure goes on into the airway-wall shell too: there it is the bronchial wall itself
        walls = airway_walls & (smooth >= lo) & (smooth <= hi) & ~vessels
        lesions = bulges_on_thin_structures(lesions, before_opening | walls, spacing, p.remnant_max_mm3,
                                            p.thin_reach_mm, p.thin_max_ratio)
    if p.restore_shaved_border and lesions.any():
        # the opening shaved the ragged border of every lesion as well as the thin structures: what it removed
        # within its own radius of a lesion that survived the rejections is that lesion's border (noise makes a
        # faint lesion's outline ragged); thin structures apart from the lesions stay removed
        lesions |= before_opening & morphology(ndi.binary_dilation, lesions, p.opening_mm, spacing, axial)
    # hysteresis: from the lesions that survived and hold a ball of ``regrow_from_mm``, grow back into the
    # suppressed vessel zone (up to ``lesion_regrow_mm`` through it): vessels and their shells inside or along a
    # lesion are lesion; small remnants beside vessels do not creep along them
    cores = morphology(ndi.binary_opening, bin_average(lesions, factors) >= 0.5, p.regrow_from_mm / 2.0,
                       coarse_spacing)
    if p.lesion_regrow_mm > 0 and cores.any():
        coarse_lesions = bin_average(lesions, factors) > 0
        labelled, _ = ndi.label(coarse_lesions, ndi.generate_binary_structure(3, 3))
        seeds = np.isin(labelled, np.unique(labelled[cores])) & coarse_lesions
        steps = max(1, int(np.ceil(p.lesion_regrow_mm / min(coarse_spacing))))
        grown = ndi.binary_dilation(seeds, ndi.generate_binary_structure(3, 1), iterations=steps,
                                    mask=seeds | (bin_average(vessels, factors) > 0))
        # grown on the coarse grid, the zone can reach a vessel across a gap of fine voxels outside it: only what
        # stays connected to a lesion is lesion (a vessel beside a lesion is no lesion of its own)
        regrown = lesions | (vessels & expand_blocks(grown, factors, lesions.shape))
        parts = cc3d.connected_components(regrown, connectivity=26)
        lesions = regrown & np.isin(parts, np.unique(parts[lesions]))
    if p.min_contrast_hu > 0 and lesions.any():
        # an opacity stands out from the lung around it; dependent lung and breathing haze do not
        lesions = faint_components(lesions, smooth, region & ~vessels & ~rim, spacing, p.min_contrast_hu,
                                   p.edge_reach_mm, p.edge_background_mm)
    # the blurred border of a faint lesion, below the ground-glass threshold, is lesion down to half contrast
    lesions = grow_to_half_contrast(lesions, smooth, region & ~vessels & ~rim, spacing, p.ground_glass_hu[0],
                                    p.edge_reach_mm, p.edge_background_mm)
    if rim.any() and lesions.any():
        in_rim = rim & candidates
        lesions |= in_rim & ndi.binary_dilation(lesions, cross, iterations=p.lung_rim_voxels, mask=in_rim | lesions)
    if p.sheet_contact < 1.0 and lesions.any():
        lesions = chest_wall_sheets(lesions, smooth, lung, spacing, p.consolidation_hu[0], p.sheet_depth_mm,
                                    p.sheet_contact, p.sheet_soft_tissue_hu)
    if p.floor_height_mm > 0 and lesions.any():
        lesions = floor_sheets(lesions, smooth, lung, spacing, axes.axial, axes.superior_sign, p.floor_height_mm,
                               p.floor_fraction, p.floor_ramp_hu_per_mm, p.floor_tissue_hu)
    progress.update(0.9, "classifying")
    solid = lesions & (smooth >= p.consolidation_hu[0])
    # the partial-volume rim of a consolidation is consolidation, not a ground-glass halo
    solid |= lesions & morphology(ndi.binary_dilation, solid, p.consolidation_rim_mm, spacing)
    cls = np.where(solid, CONSOLIDATION, GROUND_GLASS).astype(np.uint8)
    labels[box] = np.where(lesions, cls, 0)
    vessels_full[box] = vessels & region
    progress.update(1.0, "lesions segmented")
    return LesionSegmentation(labels, provenance, vessels_full)


def _line_opening(mask: np.ndarray, axis: int, radius: int) -> np.ndarray:
    """Opening with a line of ``2 * radius + 1`` voxels along ``axis``: removes sheets thinner than that."""
    if radius < 1:
        return mask
    shape = [1, 1, 1]
    shape[axis] = 2 * radius + 1
    return ndi.binary_opening(mask, structure=np.ones(shape, dtype=bool))


def _vessel_tree(smooth: np.ndarray, coarse_dense: np.ndarray, lung: np.ndarray, spacing,
                 p: ClassicParams) -> np.ndarray:
    """The zone of the vessel tree and its partial-volume shell (see :func:`.vessels.tube_zone`).

    Centre lines are found by Frangi vesselness on the coarse vessel grid at every dense voxel; the radius at each
    centre-line voxel is its distance to the edge of the dense structure there. Rebuilding the tubes from their
    centre lines covers bifurcations and the thick hilar vessels, but not a dense lesion a vessel runs into.
    """
    factors = shrink_factors(spacing, p.vessel_grid_mm)
    coarse_spacing = [s * f for s, f in zip(spacing, factors)]
    if not coarse_dense.any():
        return np.zeros(smooth.shape, dtype=bool)
    score, axes = vesselness(bin_average(smooth, factors), coarse_spacing, p.vessel_scales_mm, coarse_dense,
                             with_axes=True)
    half_voxel = 0.5 * min(coarse_spacing)
    depth = ndi.distance_transform_edt(coarse_dense, sampling=coarse_spacing)
    # at large scales two nearby blobs can look like a tube: keep centres whose structure goes on along the axis
    # beyond the largest radius next to them (a centre found on the coarse grid may lie a voxel off the centre line)
    widest = np.maximum(ndi.maximum_filter(depth, size=3) - half_voxel, half_voxel)
    centres = continues_along_axis(score >= p.vessel_threshold, axes, widest, coarse_dense, coarse_spacing)
    # a tube is no wider than the largest scale that measures it: a centre deeper inside the dense structure lies in
    # a mass (a tumour, a consolidation) that a vessel runs into, not on a vessel's centre line
    centres &= depth - half_voxel <= max(p.vessel_scales_mm)
    if p.vessel_bounded:
        centres = bounded_across_axis(centres, axes, widest, coarse_dense, coarse_spacing)
    # a vessel 11 mm or more across stands out from the lung around it and scores high; a tube that wide and
    # weak is the dense core of a consolidation (the lesion's ground glass lowers its contrast), not a vessel
    centres &= (score >= p.vessel_threshold_wide) | (widest < p.vessel_wide_mm)
    if not centres.any():
        return np.zeros(smooth.shape, dtype=bool)
    zone = tube_zone(centres, np.maximum(depth - half_voxel, half_voxel), coarse_spacing, p.vessel_shell_fraction,
                     p.vessel_margin_mm, p.vessel_scales_mm)
    # where a vessel leaves the lung at the hilum it merges with the mediastinum and is no tube any more: follow
    # the dense structure on from the rebuilt tubes to the lung's edge
    edge = ndi.distance_transform_edt(bin_average(lung, factors) >= 0.5, sampling=coarse_spacing) <= p.hilum_mm
    steps = max(1, int(np.ceil(p.hilum_mm / min(coarse_spacing))))
    # ... through vessel-dense voxels only: ground glass beside a vessel near the lung's edge is lesion, and where
    # the lung mask cuts through a lesion its edge is no hilum
    edge &= bin_average(smooth, factors) >= p.hilum_hu
    ends = ndi.binary_dilation(zone & coarse_dense, ndi.generate_binary_structure(3, 3), iterations=steps,
                               mask=coarse_dense & edge)
    zone |= morphology(ndi.binary_dilation, ends & ~zone, p.vessel_margin_mm, coarse_spacing)
    return expand_blocks(zone, factors, smooth.shape)


def lesion_model_entry(model_name: Optional[str] = None, dims: Optional[int] = None):
    """The registry entry of the lesion model for a ``dims``-dimensional image.

    ``model_name`` (``name[@version]``) is taken as asked (a 2D model runs slice by slice on a volume; a 3D model
    cannot run on a 2D image). Without it: the newest model whose task is ``lesions`` and whose ``spatial_dims``
    equals ``dims``, so a 2D slice model is never picked for a CT volume, nor a 3D model for a slice.
    """
    from lungai import models

    if model_name:
        entry = models.get_model(model_name)
        if dims is not None and entry.spatial_dims > dims:
            raise LungAIError(f"model {entry.id} is {entry.spatial_dims}D and cannot segment a {dims}D image")
        return entry
    entries = [e for e in models.load_registry() if e.task == "lesions"]
    matching = [e for e in entries if dims is None or e.spatial_dims == dims]
    if not matching:
        others = ", ".join(sorted({f"{e.name} ({e.spatial_dims}D)" for e in entries}))
        raise LungAIError(f"no lesion model is registered for {dims}D images (task 'lesions', spatial_dims {dims})"
                          + (f"; registered: {others}, choose one with --model" if others else "")
                          + "; or use --method classic, or import one with `lungai models import`")
    return max(matching, key=lambda e: (e.created or "", models.registry.version_key(e.version)))


def segment_lesions_model(image: Image, regions: LungRegions, device: str = "cpu",
                          progress: Optional[Progress] = None, model_name: Optional[str] = None) -> LesionSegmentation:
    """Lesion classes by the registered lesion model (see :func:`lesion_model_entry`), kept inside the lungs."""
    from lungai import models

    entry = lesion_model_entry(model_name, image.ndim)
    if {entry.labels.get(GROUND_GLASS), entry.labels.get(CONSOLIDATION)} != {"ground_glass", "consolidation"}:
        raise LungAIError(f"model {entry.id} labels {entry.labels} are not {GROUND_GLASS} ground_glass and "
                          f"{CONSOLIDATION} consolidation; it is not a lesion class model")
    result = models.run_inference(image, entry, device=device, progress=ensure(progress))
    if result.labels is None:
        raise LungAIError(f"model {entry.name} gives no label map (output {entry.output!r}); it is not a lesion "
                          "segmentation model")
    predicted = np.asarray(result.labels.array)
    labels = np.where(regions.lung_mask, predicted, 0).astype(np.uint8)
    labels[labels > CONSOLIDATION] = 0
    return LesionSegmentation(labels, result.provenance)


def segment_lesions(image: Image, regions: LungRegions, method: str = "classic", device: str = "cpu",
                    params: Optional[ClassicParams] = None, progress: Optional[Progress] = None,
                    model_name: Optional[str] = None) -> LesionSegmentation:
    """Dispatch to the ``classic`` (weight-free) or ``model`` lesion method."""
    if method == "classic":
        return segment_lesions_classic(image, regions, params, progress)
    if method == "model":
        return segment_lesions_model(image, regions, device, progress, model_name)
    raise ValueError(f"unknown lesion method {method!r} (classic or model)")
