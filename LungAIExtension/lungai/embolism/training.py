"""Training the candidate scorer on a phantom CTPA cohort with the project's training engine.

    python -m lungai.embolism.training --cohort /tmp/pe-cohort --train 18 --val 6 --extra 48 --negatives 3 --publish
    python -m lungai.embolism.training --cohort /tmp/pe-fine --size 320,320,224 --spacing 1,1,1.25 --publish

Cases are split by patient (seed): the first ``train`` positive cases, the ``extra`` positive cases after the
validation block and half the negatives fit the network; the ``val`` positive cases in between and the other
negatives pick the best epoch and fit the Platt calibration (so that adding training cases keeps the validation
cases); the test cases of ``Testing/benchmarks/eval_embolism.py`` are never seen here.
The level prior is the likelihood ratio of the artery level for emboli against all candidates. The cohort's
voxel grid is the scorer's working grid: 1.6 x 1.6 x 2.0 mm publishes ``embolism-candidates``, 1.0 x 1.0 x 1.25 mm
(thin-slice CTPA) ``embolism-candidates-fine``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from lungai.embolism.arteries import LEVEL_CODE, LEVELS
from lungai.embolism.candidates import CANDIDATE_RULES, FEATURES, PATCH_CHANNELS, candidate_patches, patch_shape
from lungai.embolism.cohort import COHORT_SIZE, COHORT_SPACING, CohortCase, cohort
from lungai.embolism.detect import features_for_training
from lungai.embolism.evaluation import CaseTable, case_table
from lungai.embolism.marks import candidate_gaps, merge_groups
from lungai.embolism.scorer import (FINE_MODEL_NAME, MODEL_NAME, EmbolusEnsemble, EmbolusMLP, EmbolusPatchNet,
                                    Scorer, score)
from lungai.embolism.volume import COARSE_GRID, FINE_GRID
from lungai.errors import InputError
from lungai.models.training import TrainConfig, Trainer, publish_model, seed_everything
from lungai.resources import resource_path

PRIOR_COLUMN = FEATURES.index("log_level_prior")
SCORER_NAMES = {COARSE_GRID: MODEL_NAME, FINE_GRID: FINE_MODEL_NAME}  # working grid -> registry scorer


#: candidate rules of the shipped scorers, so that their training command reproduces them (``--rules 2`` trains on
#: the newer rules, see ``lungai.embolism.candidates.CANDIDATE_RULES``)
SHIPPED_RULES = 1


def case_grid(case: CohortCase) -> Tuple[float, float]:
    """The working grid (in-plane mm, slice mm) of a phantom case: its own voxel grid (axial, ITK z = slices)."""
    return (round(float(case.ct.spacing[0]), 4), round(float(case.ct.spacing[2]), 4))


def extract(case: CohortCase, cache: Path, grid: Optional[Tuple[float, float]] = None,
            rules: int = CANDIDATE_RULES, gaps: bool = False,
            context: Optional[Dict[str, object]] = None) -> Dict[str, np.ndarray]:
    """Candidate features and patches, their match to the truth and tree level volumes of one case (cached).

    The working ``grid`` is the case's own unless given; on another grid (a thin-slice case scored by the coarse
    scorer, as ``lungai embolism`` would without the fine one) the candidates are matched with the truth on the
    case's grid, mapped back by nearest neighbour. ``rules`` are the candidate rules (each has its own cache
    file; rules 1 keep the names of the caches made before the rules were versioned). ``gaps`` asks for the
    distances between neighbouring candidates and their voxel overlap with each embolus (for merged marks, see
    ``lungai.embolism.marks``; a cache without them is extracted again). ``context``, when given, receives the
    work volume, trunk, tree and candidates of a fresh extraction (for traces).
    """
    own = grid is None or tuple(grid) == case_grid(case)
    grid = case_grid(case) if own else tuple(grid)
    tag = "" if rules == 1 else f".r{rules}"
    path = cache / (f"{case.name}{tag}.features.npz" if own
                    else f"{case.name}.on{grid[0]:g}x{grid[1]:g}{tag}.features.npz")
    if path.is_file():
        with np.load(path) as z:
            if "patches" in z.files and (not gaps or "gaps" in z.files):  # else: extract again
                return {k: z[k] for k in z.files}
    started = time.perf_counter()
    try:
        vol, trunk, tree, cands = features_for_training(case.ct, grid=grid, rules=rules)
    except InputError as exc:  # a detector failure on a phantom CTPA: every embolus of the case is missed
        return _failed(case, grid, str(exc), time.perf_counter() - started)
    seconds = time.perf_counter() - started
    if own:
        labels, emboli = cands.labels, vol.reorientation.to_canonical(case.emboli)
    else:
        labels, emboli = vol.to_image(cands.labels).array, case.emboli
    if context is not None:
        context.update(vol=vol, trunk=trunk, tree=tree, cands=cands)
    table = case_table(case.name, labels, np.zeros(cands.count), emboli, case.records)
    level_ml = np.asarray([np.count_nonzero(tree.level == LEVEL_CODE[name]) * vol.voxel_mm3 / 1000.0
                           for name in LEVELS])
    out = {"features": cands.features, "patches": candidate_patches(vol, trunk, tree, cands), "hit": table.hit,
           "covers": table.covers, "iou": table.iou, "iou_id": table.iou_id, "voxels": table.voxels,
           "inside_truth": table.inside_truth, "truth_voxels": table.truth_voxels,
           "truth_ids": np.asarray([r["id"] for r in case.records], dtype=int), "level_ml": level_ml,
           "levels": np.asarray(cands.level, dtype="U16"),
           "truth_levels": np.asarray([r["level"] for r in case.records], dtype="U16"), "seconds": seconds}
    if own:  # merged marks are measured on the working grid of the case
        m = int(emboli.max()) + 1
        sel = (labels > 0) & (emboli > 0)
        out["gaps"] = candidate_gaps(labels, vol.spacing)
        out["truth_sizes"] = np.bincount(emboli.ravel(), minlength=m)[1:]
        out["inter"] = np.bincount(labels[sel].astype(np.int64) * m + emboli[sel],
                                   minlength=(cands.count + 1) * m).reshape(cands.count + 1, m)[1:, 1:]
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **out)
    tmp.replace(path)
    return out


def _grid_patch_shape(grid: Tuple[float, float]) -> Tuple[int, int, int]:
    """Canonical [S, P, L] patch shape of the scorer on the working ``grid`` (in-plane mm, slice mm)."""
    in_plane, slices = grid
    return patch_shape((slices, in_plane, in_plane))


def _failed(case: CohortCase, grid: Tuple[float, float], message: str, seconds: float) -> Dict[str, np.ndarray]:
    """The table of a case whose detection failed on the working ``grid`` (no candidates: every embolus missed)."""
    empty_i = np.zeros(0, dtype=int)
    return {"features": np.zeros((0, len(FEATURES)), np.float32),
            "patches": np.zeros((0, len(PATCH_CHANNELS)) + _grid_patch_shape(grid), np.float16), "hit": empty_i,
            "covers": np.zeros((0, len(case.records)), bool), "iou": np.zeros(0),
            "iou_id": empty_i, "voxels": empty_i, "inside_truth": empty_i,
            "truth_voxels": int(np.count_nonzero(case.emboli)),
            "truth_ids": np.asarray([r["id"] for r in case.records], dtype=int), "level_ml": np.zeros(len(LEVELS)),
            "levels": np.zeros(0, dtype="U16"),
            "truth_levels": np.asarray([r["level"] for r in case.records], dtype="U16"), "seconds": seconds,
            "failed": message}


def scored_table(name: str, extracted: Dict[str, np.ndarray], network: Scorer, merge_mm: float = 0.0,
                 lead_only: bool = False) -> CaseTable:
    """The evaluation table of an extracted case, scored by ``network`` (its own level prior); with ``merge_mm``
    candidates that close are one mark (extracted with ``gaps``), counted once (see ``merged_table``)."""
    x = np.array(extracted["features"], dtype=np.float32)
    prior = network.prior()
    if len(x):
        x[:, PRIOR_COLUMN] = np.log([max(prior[str(lv)], 1e-3) for lv in extracted["levels"]])
    if merge_mm > 0:
        return merged_table(name, extracted, score(network, x, extracted["patches"]), merge_mm, lead_only)
    return CaseTable(name=name, scores=score(network, x, extracted["patches"]), hit=extracted["hit"], iou=extracted["iou"],
                     iou_id=extracted["iou_id"], voxels=extracted["voxels"], inside_truth=extracted["inside_truth"],
                     truth_levels={int(i): str(lv) for i, lv in zip(extracted["truth_ids"],
                                                                     extracted["truth_levels"])},
                     truth_voxels=int(extracted["truth_voxels"]),
                     covers=extracted.get("covers"))  # caches before multi-embolus hits: primary hit only


def merged_table(name: str, extracted: Dict[str, np.ndarray], scores: np.ndarray, merge_mm: float,
                 lead_only: bool = False) -> CaseTable:
    """The evaluation table of a case whose candidates within ``merge_mm`` of each other are merged into one mark
    (the highest score of its pieces, reaching every embolus any piece reaches, IoU of the union); ``lead_only``
    counts only the emboli that the mark's most confident piece reaches (the strict reading)."""
    n = len(scores)
    groups = merge_groups(n, np.asarray(extracted["gaps"], float), merge_mm)
    g = int(groups.max()) + 1 if n else 0
    best = np.full(g, -np.inf)
    np.maximum.at(best, groups, scores)
    covers = np.zeros((g, extracted["covers"].shape[1]), bool)
    if lead_only:
        for k in np.argsort(scores, kind="stable"):  # the most confident piece of each group is written last
            covers[groups[k]] = extracted["covers"][k]
    else:
        np.logical_or.at(covers, groups, extracted["covers"])
    inter = np.zeros((g, extracted["inter"].shape[1]))
    np.add.at(inter, groups, extracted["inter"])
    voxels = np.bincount(groups, weights=extracted["voxels"], minlength=g).astype(int)
    union = voxels[:, None] + np.asarray(extracted["truth_sizes"], float)[None, :] - inter
    ious = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    iou_id = ious.argmax(axis=1) + 1 if ious.shape[1] else np.zeros(g, int)
    hit = np.where(covers.any(axis=1), covers.argmax(axis=1) + 1, 0) if covers.shape[1] else np.zeros(g, int)
    truth_ids = [int(i) for i in extracted["truth_ids"]]
    return CaseTable(name=name, scores=best, hit=hit,
                     iou=ious.max(axis=1, initial=0.0), iou_id=iou_id, voxels=voxels,
                     inside_truth=inter.sum(axis=1).astype(int),
                     truth_levels={i: str(lv) for i, lv in zip(truth_ids, extracted["truth_levels"])},
                     truth_voxels=int(extracted["truth_voxels"]), covers=covers)


def level_prior(tables: Sequence[Dict[str, np.ndarray]]) -> Dict[str, float]:
    """How much likelier a candidate at each artery level is an embolus than an average candidate.

    The ratio P(level | embolus) / P(level | candidate) over the training candidates (add-one smoothed): the
    spatial distribution of emboli over the tree relative to where candidates arise.
    """
    hits = {name: 1.0 for name in LEVELS}
    seen = {name: 1.0 for name in LEVELS}
    for t in tables:
        for name, h in zip(t["levels"], t["hit"]):
            seen[str(name)] += 1
            hits[str(name)] += float(h > 0)
    n_hits, n_seen = sum(hits.values()), sum(seen.values())
    return {name: round((hits[name] / n_hits) / (seen[name] / n_seen), 4) for name in LEVELS}


def _arrays(tables: Sequence[Dict[str, np.ndarray]], prior: Dict[str, float]) -> Tuple[torch.Tensor, ...]:
    """Features (prior column from ``prior``), patches (float16) and hit labels of all candidates."""
    xs, ps, ys = [], [], []
    for t in tables:
        x = np.array(t["features"], dtype=np.float32)
        if len(x):
            x[:, PRIOR_COLUMN] = np.log([max(prior[str(lv)], 1e-3) for lv in t["levels"]])
        xs.append(x)
        ps.append(t["patches"])
        ys.append((t["hit"] > 0).astype(np.float32))
    return (torch.as_tensor(np.concatenate(xs)), torch.as_tensor(np.concatenate(ps)),
            torch.as_tensor(np.concatenate(ys)))


class AugmentedBatches:
    """Loader of balanced, augmented training batches ``((features, patches), labels)``.

    Each epoch draws ``samples`` candidates with replacement so that about ``positive_fraction`` are emboli
    (hard negatives are plentiful, emboli are few), and flips every batch's patches along random axes and
    swaps their in-plane axes at random (the working grid is isotropic in-plane): an embolus looks the same
    in any vessel direction.
    """

    def __init__(self, x: torch.Tensor, patches: torch.Tensor, y: torch.Tensor, batch_size: int = 64,
                 samples: int = 2048, positive_fraction: float = 0.25, seed: int = 0):
        self.x, self.patches, self.y = x, patches, y
        self.batch_size, self.samples = batch_size, samples
        n_pos = max(float(y.sum()), 1.0)
        ratio = (len(y) - n_pos) / n_pos * positive_fraction / (1.0 - positive_fraction)
        self.weights = torch.where(y > 0, ratio, 1.0).double()
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.samples // self.batch_size

    def __iter__(self):
        for _ in range(len(self)):
            idx = torch.multinomial(self.weights, self.batch_size, replacement=True, generator=self.gen)
            p = self.patches[idx].float()
            flips = [d for d in (2, 3, 4) if torch.rand(1, generator=self.gen).item() < 0.5]
            if flips:
                p = torch.flip(p, flips)
            if torch.rand(1, generator=self.gen).item() < 0.5:
                p = p.transpose(3, 4)
            yield (self.x[idx], p.contiguous()), self.y[idx]


def _predict(network: EmbolusMLP, inputs, batch: int = 256) -> torch.Tensor:
    """Logits in chunks (a whole validation set of patches at once would need gigabytes)."""
    x, p = inputs
    return torch.cat([network((x[i:i + batch], p[i:i + batch].float())) for i in range(0, len(x), batch)])


def _average_precision(logits: torch.Tensor, targets: torch.Tensor) -> float:
    order = torch.argsort(logits, descending=True)
    y = targets[order]
    if y.sum() == 0:
        return 0.0
    hits = torch.cumsum(y, 0)
    precision = hits / torch.arange(1, len(y) + 1)
    return float((precision * y).sum() / y.sum())


def _calibrate(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Platt scaling: a, b minimising the log-loss of sigmoid(a * logit + b)."""
    ab = torch.tensor([1.0, 0.0], requires_grad=True)
    opt = torch.optim.LBFGS([ab], max_iter=200)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def closure():
        opt.zero_grad()
        loss = loss_fn(ab[0] * logits + ab[1], targets) + 1e-3 * (ab[0] - 1) ** 2
        loss.backward()
        return loss

    opt.step(closure)
    return ab.detach()


def train(train_tables: List[Dict[str, np.ndarray]], val_tables: List[Dict[str, np.ndarray]], seed: int = 0,
          epochs: int = 40, checkpoint_dir=None, hidden: int = 16, width: int = 8):
    """Fit the patch scorer (``width`` 0: the feature MLP alone); returns (network, TrainResult, facts)."""
    prior = level_prior(train_tables)
    x_tr, p_tr, y_tr = _arrays(train_tables, prior)
    x_va, p_va, y_va = _arrays(val_tables, prior)
    seed_everything(seed)
    net = EmbolusPatchNet(len(FEATURES), hidden=hidden, width=width) if width else EmbolusMLP(len(FEATURES), hidden)
    net.mean.copy_(x_tr.mean(0))
    net.std.copy_(x_tr.std(0).clamp_min(1e-3))
    net.low.copy_(x_tr.min(0).values)
    net.high.copy_(x_tr.max(0).values)
    net.level_prior.copy_(torch.tensor([prior[name] for name in LEVELS]))
    if width:
        bce = torch.nn.BCEWithLogitsLoss()  # the batches are balanced; the calibration below fixes the base rate
        train_loader = AugmentedBatches(x_tr, p_tr, y_tr, seed=seed)
        val_inputs, predict = (x_va, p_va), _predict
    else:
        bce = torch.nn.BCEWithLogitsLoss(pos_weight=(y_tr == 0).sum() / y_tr.sum().clamp_min(1.0))
        train_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_tr, y_tr), batch_size=64,
                                                   shuffle=True, generator=torch.Generator().manual_seed(seed))
        val_inputs, predict = x_va, None
    config = TrainConfig(max_epochs=epochs, batch_size=64, lr=2e-3, seed=seed, patience=12, weight_decay=1e-3,
                         metric_name="average_precision", checkpoint_dir=checkpoint_dir, resume=False)
    trainer = Trainer(net, lambda out, y: bce(out, y), _average_precision, config, predict_fn=predict,
                      log=lambda message: print(message, flush=True))
    result = trainer.fit(train_loader, [(val_inputs, y_va)])
    net.eval()
    with torch.no_grad():
        val_logits = predict(net, val_inputs) if predict else net(val_inputs)
    net.calibration.copy_(_calibrate(val_logits, y_va))
    facts = {"level_prior": prior, "train_candidates": int(len(y_tr)), "train_positive": int(y_tr.sum()),
             "val_candidates": int(len(y_va)), "val_positive": int(y_va.sum()),
             "calibration": [round(float(v), 4) for v in net.calibration]}
    return net, result, facts


def train_ensemble(train_tables: List[Dict[str, np.ndarray]], val_tables: List[Dict[str, np.ndarray]],
                   members: int, seed: int = 0, epochs: int = 40, hidden: int = 16, width: int = 8):
    """Patch scorers trained with seeds ``seed .. seed + members - 1``, averaged; (ensemble, TrainResult, facts).

    The result is the first member's history with the ensemble's validation average precision as its metric.
    """
    nets, results, member_facts = [], [], []
    for k in range(members):
        net, result, facts = train(train_tables, val_tables, seed=seed + k, epochs=epochs, hidden=hidden,
                                   width=width)
        nets.append(net)
        results.append(result)
        member_facts.append({"seed": seed + k, "best_average_precision": round(result.best_metric, 4),
                             "epoch": result.best_epoch, "calibration": facts["calibration"]})
    ensemble = EmbolusEnsemble(nets).eval()
    x_va, p_va, y_va = _arrays(val_tables, ensemble.prior())
    with torch.no_grad():
        probs = torch.as_tensor(score(ensemble, x_va.numpy(), p_va.numpy()))
    val_ap = _average_precision(probs, y_va)
    result = dataclasses.replace(results[0], best_metric=val_ap, seconds=round(sum(r.seconds for r in results), 1))
    facts = {k: v for k, v in facts.items() if k != "calibration"}
    facts.update(members=member_facts, ensemble_val_average_precision=round(val_ap, 4))
    return ensemble, result, facts


def split_cases(positives: Sequence, negatives: Sequence, n_train: int, n_val: int) -> Dict[str, list]:
    """Training and validation cases (in seed order): positives ``[0, n_train)`` and from ``n_train + n_val`` on
    (the ``--extra`` cases) with the first half of the negatives train; positives ``[n_train, n_train + n_val)``
    with the other negatives validate."""
    half = (len(negatives) + 1) // 2
    end_val = n_train + n_val
    return {"train": list(positives[:n_train]) + list(positives[end_val:]) + list(negatives[:half]),
            "val": list(positives[n_train:end_val]) + list(negatives[half:])}


def publish_scorer(net: Scorer, result, facts: Dict, cases_train: int, cases_val: int, hidden: int = 16,
                   width: int = 8, members: int = 1, grid: Tuple[float, float] = COARSE_GRID,
                   rules: int = CANDIDATE_RULES):
    """Add the scorer trained on the working ``grid`` (in-plane mm, slice mm) with candidate ``rules`` to the
    shipped registry (``Resources/Models/registry.json``) as the next version of that grid's scorer
    (``SCORER_NAMES``)."""
    in_plane, slices = grid
    if width:
        arch = {"name": "EmbolusMLP", "params": {"hidden": hidden, "width": width}}
        if members > 1:
            arch["params"]["members"] = members
        what = (f"{f'mean of {members} seeds of a ' if members > 1 else ''}3D CNN over a "
                f"{'x'.join(map(str, _grid_patch_shape(grid)))} patch "
                f"({', '.join(PATCH_CHANNELS)}) "
                "joined with density, contrast, size, shape, vessel level and level prior features")
    else:
        arch = {"name": "EmbolusMLP", "params": {"hidden": hidden}}
        what = "MLP over density, contrast, size, shape, vessel level and level prior"
    grid_text = f"{in_plane:g} x {in_plane:g} x {slices:g} mm"
    template = {"name": SCORER_NAMES[grid], "task": "embolism",
                "description": f"Scores candidate filling defects of the CTPA pulmonary artery tree on the "
                               f"{grid_text} working grid ({what}).",
                "architecture": arch, "spatial_dims": 3, "spacing": [in_plane, in_plane, slices],
                "in_channels": len(FEATURES), "out_channels": 1, "normalization": {"type": "none"},
                "output": "classification", "labels": {"0": "embolus"}, "license": "Apache-2.0",
                "inference": {"candidate_rules": rules}}
    data = {"name": "lungai.phantom CTPA cohort (preset pe and healthy, contrast ctpa)",
            "cases_train": cases_train, "cases_val": cases_val,
            "source": f"synthetic, generated by lungai.phantom on a {grid_text} grid (seeds 1000+ positive, "
                      "1500+ negative)",
            "licence": "Apache-2.0 (synthetic)",
            "description": f"candidate features {', '.join(FEATURES)}; {json.dumps(facts)}"}
    return publish_model(template, net, result, data, resource_path("Models", "registry.json"))


def triple_arg(kind):
    """argparse type: three comma-separated values."""
    def parse(text: str) -> tuple:
        values = tuple(kind(v) for v in text.split(","))
        if len(values) != 3:
            raise argparse.ArgumentTypeError(f"{text!r}: three comma-separated values (i,j,k)")
        return values
    return parse


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", required=True, type=Path, help="folder of cached phantom cases")
    parser.add_argument("--train", type=int, default=6, help="positive training cases")
    parser.add_argument("--val", type=int, default=3, help="positive validation cases")
    parser.add_argument("--extra", type=int, default=0,
                        help="further positive training cases, seeded after the validation cases")
    parser.add_argument("--negatives", type=int, default=3, help="negative cases, shared between the two")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--hidden", type=int, default=16, help="hidden units of the head (0: logistic regression)")
    parser.add_argument("--width", type=int, default=8, help="first CNN layer's channels (0: features only)")
    parser.add_argument("--seed", type=int, default=0, help="seed (of the first member)")
    parser.add_argument("--members", type=int, default=1, help="patch scorers averaged (seeds seed, seed+1, ...)")
    parser.add_argument("--size", type=triple_arg(int), default=COHORT_SIZE, help="phantom voxels i,j,k")
    parser.add_argument("--spacing", type=triple_arg(float), default=COHORT_SPACING,
                        help="phantom voxel size i,j,k in mm: the scorer's working grid (1.6,1.6,2 or 1,1,1.25)")
    parser.add_argument("--rules", type=int, choices=range(1, CANDIDATE_RULES + 1), default=SHIPPED_RULES,
                        help=f"candidate rules (default {SHIPPED_RULES}, those of the shipped scorers)")
    parser.add_argument("--publish", action="store_true", help="add the model to Resources/Models/registry.json")
    args = parser.parse_args(argv)
    grid = (args.spacing[0], args.spacing[2])
    if args.spacing[0] != args.spacing[1] or grid not in SCORER_NAMES:
        parser.error(f"--spacing must be one of the working grids {', '.join(map(str, SCORER_NAMES))} "
                     "(in-plane, slice)")
    torch.set_num_threads(1)
    cache = args.cohort / "features"
    cases = list(cohort(args.cohort, "train", args.train + args.val + args.extra, args.negatives, size=args.size,
                        spacing=args.spacing))
    positives = [extract(c, cache, rules=args.rules) for c in cases if c.positive]
    negatives = [extract(c, cache, rules=args.rules) for c in cases if not c.positive]
    tables = split_cases(positives, negatives, args.train, args.val)
    if args.members > 1 and not args.width:
        parser.error("--members needs the patch scorer (--width > 0)")
    if args.members > 1:
        net, result, facts = train_ensemble(tables["train"], tables["val"], args.members, seed=args.seed,
                                            epochs=args.epochs, hidden=args.hidden, width=args.width)
    else:
        net, result, facts = train(tables["train"], tables["val"], seed=args.seed, epochs=args.epochs,
                                   hidden=args.hidden, width=args.width)
    print(json.dumps({"best_average_precision": result.best_metric, "epoch": result.best_epoch, **facts}, indent=1))
    if args.publish:
        entry = publish_scorer(net, result, facts, len(tables["train"]), len(tables["val"]), hidden=args.hidden,
                               width=args.width, members=args.members, grid=grid, rules=args.rules)
        print(f"published {entry.id}: {entry.weights_file} sha256 {entry.sha256}")


if __name__ == "__main__":
    main()
