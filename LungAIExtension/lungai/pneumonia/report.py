"""The pneumonia report: key overlays, histograms, tables, the per-patient call, method and provenance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional

from lungai.labels import CONSOLIDATION, GROUND_GLASS
from lungai.report.document import Report
from lungai.report.figures import best_slices, lines_png, overlay_png
from lungai.terminology import structure

if TYPE_CHECKING:
    from lungai.pneumonia.analysis import AnalysisResult
    from lungai.pneumonia.histogram import DensityHistogram

LESION_COLORS = {GROUND_GLASS: structure("ground_glass").color, CONSOLIDATION: structure("consolidation").color}
LESION_NAMES = {GROUND_GLASS: "ground-glass opacity", CONSOLIDATION: "consolidation"}

METHOD_TEXT = {
    "classic": ("Weight-free method: inside the lung mask (holes filled slice by slice, airway walls excluded), "
                "voxels whose lightly smoothed density lies from {ggo_lo:.0f} to {cons_lo:.0f} HU are ground glass "
                "and from {cons_lo:.0f} to {cons_hi:.0f} HU consolidation. Thin dense structures (vessels, "
                "bronchial walls) with their partial-volume rims, and thick tubular structures found by Hessian "
                "vesselness, are suppressed so that vessels are not counted as disease; a {opening:.1f} mm "
                "opening removes remaining thin structures."),
    "model": "Trained lesion model from the LungAI model registry (see provenance), restricted to the lung mask.",
}


def histogram_png(hist: "DensityHistogram") -> bytes:
    centres = 0.5 * (hist.edges[:-1] + hist.edges[1:])
    series = {f"{name} (MLD {hist.indices[name]['mld']:.0f} HU)" if hist.indices[name]["mld"] is not None
              else name: hist.percent(name) for name in ("right lung", "left lung")}
    return lines_png(centres, series, "density (HU)", "% of lung voxels", "Lung density histograms",
                     colors=["#2e7d32", "#1565c0"], vlines=[(-950, "-950"), (-700, "GGO"), (-300, "cons.")])


def _lesion_overlays(result: "AnalysisResult", report: Report) -> None:
    image, labels = result.image, result.labels
    lung = result.regions.lung_mask
    for plane, count in (("axial", 3), ("coronal", 1)):
        for index in best_slices(labels > 0, image, plane, count):
            report.figure(overlay_png(image, labels, LESION_COLORS, LESION_NAMES, plane, index,
                                      title=f"{plane} slice {index}", outline=lung),
                          caption=f"{plane.capitalize()} slice {index}: ground glass (yellow) and consolidation "
                                  "(red) over the CT in lung window; blue line: lung boundary.")


def analysis_report(result: "AnalysisResult", histogram_figure: Optional[bytes] = None) -> Report:
    s = result.summary()
    source = result.image.metadata.get("source") or "in-memory image"
    report = Report("LungAI pneumonia analysis", f"Image: {source}  |  created {result.provenance.created}")
    report.statement()
    report.heading("Summary")
    call = result.call
    report.paragraph(f"Per-patient call: {s['call'].upper()} (rule: {call.to_dict()['rule']}).",
                     css_class=f"call-{s['call']}")
    report.key_values({"lesions": s["lesion_count"], "lesion volume (ml)": s["lesion_volume_ml"],
                       "ground glass (ml)": s["ground_glass_ml"], "consolidation (ml)": s["consolidation_ml"],
                       "% opacity (both lungs)": s["percent_opacity"],
                       "% high opacity (consolidation)": s["percent_high_opacity"],
                       f"severity score ({s['severity_basis']})": f"{s['severity_score']} / {s['severity_max']}"})
    if result.involvement.severity_basis == "zones":
        report.paragraph("No lobes were available, so the severity score is zone-based: 6 zones (upper, middle "
                         "and lower third of each lung), 0 to 5 each, total 0 to 30.")
    report.heading("Key images")
    _lesion_overlays(result, report)
    report.heading("Involvement")
    columns = ["region", "volume_ml", "ground_glass_ml", "consolidation_ml", "percent_ground_glass",
               "percent_consolidation", "percent_involved"]
    report.table([r.to_dict() for r in result.involvement.lungs], columns, "Lungs")
    if result.involvement.lobes:
        report.table([r.to_dict() for r in result.involvement.lobes], columns, "Lobes")
    report.table([r.to_dict() for r in result.involvement.zones], columns, "Zones")
    report.table([{"region": k, "points": v} for k, v in result.involvement.severity_scores.items()],
                 ["region", "points"], "Severity score: 0 none, 1 <5 %, 2 5-<25 %, 3 25-<50 %, 4 50-<75 %, 5 >=75 %")
    report.heading("Lesions")
    if result.lesions:
        report.table([les.to_dict() for les in result.lesions[:60]],
                      ["id", "type", "volume_ml", "side", "zone", "lobe", "mean_hu", "largest_diameter_mm"],
                      f"{len(result.lesions)} lesions of at least {result.parameters['min_size_mm']} mm "
                      "(equivalent diameter), largest first" + (" (first 60 shown; all in lesions.csv)"
                                                                if len(result.lesions) > 60 else ""))
    else:
        report.paragraph(f"No lesion of at least {result.parameters['min_size_mm']} mm was found.")
    report.heading("Per-slice findings")
    runs = [r.to_dict() for r in call.deciding_runs]
    if runs:
        report.table(runs, ["quadrant", "first_slice", "last_slice", "slices"],
                     "Runs of consecutive involved slices that decided the positive call")
    counts = {q: len(v) for q, v in call.involved.items()}
    report.key_values({f"slices with lesions, {q}": n for q, n in counts.items()})
    report.heading("Lung density")
    if histogram_figure is not None:
        report.figure(histogram_figure, "HU histograms of the right and left lung (% of each lung's voxels).")
    report.table([{"lung": name, **{k: v for k, v in idx.items()}} for name, idx in result.histogram.indices.items()],
                 ["lung", "volume_ml", "mld", "perc15", "laa950"],
                 "MLD: mean lung density (HU); perc15: 15th percentile density (HU); laa950: % below -950 HU")
    report.heading("Method and provenance")
    _method(report, result.provenance.to_dict(), result.parameters["method"])
    if result.lung_provenance:
        report.key_values({"lung segmentation": result.lung_provenance.get("method"),
                           "lung model": result.lung_provenance.get("model_name") or "none"})
    report.statement()
    return report


def _method(report: Report, provenance: Dict, method: str) -> None:
    params = provenance.get("parameters", {})
    if method == "classic":
        ggo = params.get("ground_glass_hu", (-720, -300))
        cons = params.get("consolidation_hu", (-300, 200))
        report.paragraph(METHOD_TEXT["classic"].format(ggo_lo=ggo[0], cons_lo=cons[0], cons_hi=cons[1],
                                                       opening=params.get("opening_mm", 2.0)))
    else:
        report.paragraph(METHOD_TEXT["model"])
    report.key_values({k: v for k, v in provenance.items() if k != "parameters" and v is not None})
    report.key_values({f"parameter {k}": v for k, v in params.items()})



def followup_report(result) -> Report:
    """Report of a :class:`lungai.pneumonia.followup.FollowupResult`."""
    from lungai.pneumonia.followup import CHANGE_COLORS, CHANGE_NAMES

    earlier, later = result.earlier, result.later
    report = Report("LungAI pneumonia follow-up",
                    f"Earlier: {earlier.image.metadata.get('source') or 'image 1'}  |  "
                    f"later: {later.image.metadata.get('source') or 'image 2'}")
    report.statement()
    report.heading("Summary")
    e, l_ = earlier.summary(), later.summary()
    counts = result.counts()
    report.table([{"": "earlier", **e}, {"": "later", **l_}],
                 ["", "lesion_count", "lesion_volume_ml", "percent_opacity", "percent_high_opacity", "severity_score",
                  "call"], "Both scans")
    report.key_values({f"lesions {status}": n for status, n in counts.items()})
    reg = result.registration
    report.paragraph(f"Registration (affine, lung-mask driven): lung overlap (Dice) {reg.lung_dice_before:.3f} "
                     f"before and {reg.lung_dice_after:.3f} after.")
    report.heading("Change overlay")
    image = earlier.image
    for index in best_slices(result.change_map > 0, image, "axial", 2):
        report.figure(overlay_png(image, result.change_map, CHANGE_COLORS, CHANGE_NAMES, "axial", index,
                                  title=f"earlier scan, axial slice {index}", outline=earlier.regions.lung_mask),
                      "Change on the earlier scan: red new or progressed, green resolved or regressed, "
                      "yellow persistent.")
        report.figure(overlay_png(result.later_ct_on_earlier, result.later_labels_on_earlier, LESION_COLORS,
                                  LESION_NAMES, "axial", index, title=f"later scan registered, slice {index}"),
                      "Later scan registered to the earlier one, with its lesions.")
    index = best_slices(result.change_map > 0, image, "coronal", 1)[0]
    report.figure(overlay_png(image, result.change_map, CHANGE_COLORS, CHANGE_NAMES, "coronal", index,
                              title=f"earlier scan, coronal slice {index}", outline=earlier.regions.lung_mask),
                  "Coronal view of the change overlay.")
    report.heading("Changes per lung and zone")
    report.table([c.to_dict() for c in result.changes],
                 ["region", "earlier_lesion_ml", "later_lesion_ml", "change_ml", "earlier_percent", "later_percent",
                  "change_points", "earlier_mld", "later_mld"],
                 "Lesion volume (ml), involvement (%) and mean lung density (HU) in the earlier scan's regions")
    report.heading("Lesions")
    report.table([c.to_dict() for c in result.lesion_changes[:80]],
                 ["status", "earlier_ids", "later_ids", "earlier_ml", "later_ml", "change_ml", "side", "zone"],
                 "Matched lesions (ids as in each scan's lesion table)")
    report.heading("Method and provenance")
    report.paragraph("Both scans are analysed with the same method; the later scan is registered to the earlier "
                     "one with an affine transform fitted to the lung masks; lesions overlapping after "
                     f"registration or with centroids within {result.parameters['match_mm']} mm are matched; a "
                     "matched lesion has grown (shrunk) when its volume changed by a factor of at least 1.25.")
    _method(report, earlier.provenance.to_dict(), earlier.parameters["method"])
    report.statement()
    return report
