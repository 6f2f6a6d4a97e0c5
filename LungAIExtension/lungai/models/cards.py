"""Model cards: the markdown page that says what a model is, what it was trained on and how well it does."""

from __future__ import annotations

from typing import Any, Dict, List

from lungai.models.registry import ModelEntry


def _table(header: List[str], rows: List[List[Any]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value).replace("|", "/")


def render_card(entry: ModelEntry, result: Any, data: Dict[str, Any]) -> str:
    """Markdown model card from the registry entry, the training result and the data description."""
    lines = [f"# Model card: {entry.name} {entry.version}", ""]
    if entry.description:
        lines += [entry.description, ""]
    lines += ["Research use only. Results support a reader; they do not replace one.", "", "## Model", ""]
    lines += _table(["field", "value"], [
        ["task", entry.task], ["architecture", f"{entry.architecture['name']} {entry.architecture.get('params', {})}"],
        ["input", f"{entry.spatial_dims}D, {entry.in_channels} channel(s), orientation {entry.orientation}"],
        ["spacing (mm, i j k)", entry.spacing if entry.spacing else "input spacing"],
        ["patch size (voxels, i j k)", entry.patch_size if entry.patch_size else "whole image"],
        ["intensity normalisation", entry.normalization], ["output", entry.output],
        ["labels", ", ".join(f"{k} {v}" for k, v in sorted(entry.labels.items()))],
        ["weights", f"{entry.weights['file']} ({entry.weights['size']} bytes)"],
        ["SHA256", f"`{entry.weights['sha256']}`"], ["licence", entry.license],
        ["parent model", entry.parent or "none (trained from scratch)"]])
    lines += ["", "## Training data", ""]
    if data.get("description"):
        lines += [str(data["description"]), ""]
    known = [["data set", data.get("name", "")], ["source", data.get("source", "")],
             ["training cases", data.get("cases_train", "")], ["validation cases", data.get("cases_val", "")],
             ["data licence", data.get("licence", "")]]
    lines += _table(["field", "value"], [row for row in known if row[1] not in ("", None)])
    extra = {k: v for k, v in data.items()
             if k not in ("description", "name", "source", "cases_train", "cases_val", "licence", "evaluations", "limitations")}
    if extra:
        lines += [""] + _table(["detail", "value"], [[k, v] for k, v in extra.items()])
    metric = result.metric_name
    lines += ["", "## Training run", ""]
    lines += _table(["field", "value"], [
        ["validation metric", f"{metric} ({'higher' if result.higher_is_better else 'lower'} is better)"],
        ["best validation " + metric, result.best_metric], ["best epoch", result.best_epoch],
        ["epochs run", f"{result.epochs_run}{' (early stop)' if result.stopped_early else ''}"],
        ["training time", f"{result.seconds:.0f} s"], ["seed", result.config.get("seed")],
        ["learning rate / batch size", f"{result.config.get('lr')} / {result.config.get('batch_size')}"],
        ["hardware", ", ".join(f"{k} {v}" for k, v in result.hardware.items())]])
    lines += ["", "### Validation metric per epoch", ""]
    lines += _table(["epoch", "train loss", f"val {metric}"],
                    [[h["epoch"], h["train_loss"], h[f"val_{metric}"]] for h in result.history])
    evaluations = data.get("evaluations") or {}
    if evaluations:
        lines += ["", "## Evaluation on other data", ""]
        for title, figures in evaluations.items():
            lines += [f"**{title}**", ""]
            if isinstance(figures, dict):
                lines += _table(["metric", "value"], [[k, v] for k, v in figures.items()])
            else:
                lines += [str(figures)]
            lines += [""]
    if data.get("limitations"):
        lines += ["", "## Limitations", "", str(data["limitations"])]
    return "\n".join(lines).rstrip() + "\n"


def card_from_entry(entry: ModelEntry) -> str:
    """Re-render the card of a published entry from the training record the registry keeps (after editing
    e.g. its limitations or adding an evaluation)."""
    from lungai.models.training import TrainResult

    t = entry.training
    metric = t["metric"]
    result = TrainResult(
        history=[{"epoch": e, "train_loss": loss, f"val_{metric}": value} for e, loss, value in t["history"]],
        best_metric=t["best_metric"], best_epoch=t["best_epoch"], epochs_run=t["epochs_run"],
        stopped_early=t["stopped_early"], seconds=t["seconds"], hardware=t["hardware"], metric_name=metric,
        higher_is_better=t["config"].get("higher_is_better", True), config=t["config"])
    return render_card(entry, result, t["data"])
