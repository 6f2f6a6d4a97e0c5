"""Training engine for any network: seeded, resumable, validated every epoch, with early stopping.

The same :class:`Trainer` trains 3D segmenters, 2D lesion models, the X-ray classifier and the CNN denoiser:
it only needs a network, a loss ``loss_fn(outputs, targets)``, a metric ``metric_fn(outputs, targets)`` (a
number per batch; ``higher_is_better`` says which way is better) and two loaders yielding ``(inputs,
targets)`` tuples or dicts with ``image``/``label`` keys. :func:`publish_model` then turns the best network into
a new registry version with weights, SHA256 and a generated model card.

Reproducibility: every epoch starts from RNG seeds derived from ``(seed, epoch)`` and calls ``set_epoch(epoch)``
on the loader's dataset and sampler when they have one, so a run resumed from its checkpoint continues exactly
as an uninterrupted one would. Build the network after :func:`seed_everything` for identical initial weights.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

import numpy as np
import torch

from lungai.errors import LungAIError
from lungai.io.atomic import atomic_output
from lungai.models.registry import (ModelEntry, add_to_registry, load_registry, next_version, read_registry_file,
                                    user_registry_path)
from lungai.models.weights import sha256_of, weights_cache_dir
from lungai.progress import Progress, ensure

PathLike = Union[str, Path]
LossFn = Callable[[Any, Any], torch.Tensor]
MetricFn = Callable[[Any, Any], Any]
PredictFn = Callable[[torch.nn.Module, Any], Any]
RESUME_KEYS = ("seed", "lr", "batch_size", "weight_decay", "scheduler", "higher_is_better", "metric_name")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) and ask cuDNN for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def hardware_description(device: Union[str, torch.device] = "cpu") -> Dict[str, Any]:
    """What the run used: CPU, threads, GPU name, torch and Python versions."""
    info: Dict[str, Any] = {"cpu": platform.processor() or platform.machine(), "cpu_cores": os.cpu_count(),
                            "torch_threads": torch.get_num_threads(), "device": str(device),
                            "torch": torch.__version__, "python": platform.python_version(),
                            "os": f"{platform.system()} {platform.release()}"}
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


@dataclass
class TrainConfig:
    """Settings of one training run (all saved in the checkpoint and the model card)."""

    max_epochs: int = 50
    batch_size: int = 2
    lr: float = 1e-3
    seed: int = 0
    patience: int = 10
    checkpoint_dir: Optional[PathLike] = None
    device: str = "cpu"
    resume: bool = True
    higher_is_better: bool = True
    metric_name: str = "dice"
    min_delta: float = 0.0
    weight_decay: float = 1e-5
    scheduler: str = "cosine"  # cosine | none
    grad_clip: Optional[float] = None
    steps_per_epoch: Optional[int] = None  # cap on training batches per epoch (None: the whole loader)
    input_key: str = "image"
    target_key: str = "label"

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out["checkpoint_dir"] = None if self.checkpoint_dir is None else str(self.checkpoint_dir)
        return out


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`; the trainer's network holds the best epoch's weights afterwards."""

    history: List[Dict[str, float]]
    best_metric: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    seconds: float
    hardware: Dict[str, Any]
    metric_name: str
    higher_is_better: bool
    config: Dict[str, Any]
    checkpoint_dir: Optional[str] = None
    resumed_from_epoch: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _split_batch(batch: Any, config: TrainConfig):
    if isinstance(batch, dict):
        return batch[config.input_key], batch[config.target_key]
    if isinstance(batch, (list, tuple)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise LungAIError("a training batch must be (inputs, targets) or a dict with "
                      f"{config.input_key!r} and {config.target_key!r}")


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, (list, tuple)):
        return type(value)(_to(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    return value


def _batch_size(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return int(value.shape[0]) if value.ndim else 1
    if isinstance(value, (list, tuple)) and value:
        return _batch_size(value[0])
    return 1


def _set_epoch(loader: Iterable, epoch: int) -> None:
    for part in (getattr(loader, "dataset", None), getattr(loader, "sampler", None)):
        if part is not None and hasattr(part, "set_epoch"):
            part.set_epoch(epoch)


def _save(obj: Any, path: Path) -> None:
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


class Trainer:
    """Fits ``network`` with AdamW; checkpoints every epoch to ``config.checkpoint_dir`` (resumable)."""

    def __init__(self, network: torch.nn.Module, loss_fn: LossFn, metric_fn: MetricFn, config: TrainConfig,
                 progress: Optional[Progress] = None, *, predict_fn: Optional[PredictFn] = None,
                 log: Optional[Callable[[str], None]] = None,
                 optimizer: Optional[torch.optim.Optimizer] = None):
        self.config = config
        self.device = torch.device(config.device if config.device != "auto" else
                                   ("cuda" if torch.cuda.is_available() else "cpu"))
        self.network = network.to(self.device)
        self.loss_fn, self.metric_fn = loss_fn, metric_fn
        self.predict_fn = predict_fn or (lambda net, x: net(x))
        self.progress = ensure(progress)
        self.log = log or (lambda message: None)
        self.optimizer = optimizer or torch.optim.AdamW(self.network.parameters(), lr=config.lr,
                                                        weight_decay=config.weight_decay)
        self.scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=max(config.max_epochs, 1))
                          if config.scheduler == "cosine" else None)
        self.checkpoint_dir = Path(config.checkpoint_dir) if config.checkpoint_dir else None

    # -- checkpoints ---------------------------------------------------------------------------------------------
    @property
    def last_path(self) -> Optional[Path]:
        return self.checkpoint_dir / "last.pt" if self.checkpoint_dir else None

    @property
    def best_path(self) -> Optional[Path]:
        return self.checkpoint_dir / "best.pt" if self.checkpoint_dir else None

    def _state(self, epoch: int, history: List[Dict[str, float]], best: float, best_epoch: int, bad: int,
               finished: bool, elapsed: float, stopped_early: bool) -> Dict[str, Any]:
        return {"epoch": epoch, "model": self.network.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None, "history": history,
                "best_metric": best, "best_epoch": best_epoch, "bad_epochs": bad, "finished": finished,
                "stopped_early": stopped_early, "elapsed": elapsed, "config": self.config.to_dict()}

    def _load_checkpoint(self) -> Optional[Dict[str, Any]]:
        if not (self.config.resume and self.last_path and self.last_path.is_file()):
            return None
        state = torch.load(self.last_path, map_location="cpu", weights_only=False)
        saved = state.get("config", {})
        changed = [k for k in RESUME_KEYS if k in saved and saved[k] != getattr(self.config, k)]
        if changed:
            raise LungAIError(f"checkpoint {self.last_path} was made with other settings "
                              f"({', '.join(f'{k} {saved[k]} -> {getattr(self.config, k)}' for k in changed)}); "
                              "use another checkpoint folder or resume=False")
        try:
            self.network.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise LungAIError(f"checkpoint {self.last_path} belongs to another network ({str(exc).splitlines()[0]}); "
                              "use a new checkpoint folder or resume=False") from None
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        return state

    # -- loops ---------------------------------------------------------------------------------------------------
    def _train_epoch(self, loader: Iterable, epoch: int) -> float:
        self.network.train()
        total, count = 0.0, 0
        n_batches = self.config.steps_per_epoch or (len(loader) if hasattr(loader, "__len__") else 0)  # type: ignore[arg-type]
        span = self.progress.span(epoch / self.config.max_epochs, (epoch + 0.9) / self.config.max_epochs)
        for step, batch in enumerate(loader):
            if self.config.steps_per_epoch and step >= self.config.steps_per_epoch:
                break
            inputs, targets = (_to(v, self.device) for v in _split_batch(batch, self.config))
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.network(inputs), targets)
            if not torch.isfinite(loss):
                raise LungAIError(f"training diverged: the loss became {loss.item()} in epoch {epoch + 1}; "
                                  "lower the learning rate")
            loss.backward()
            if self.config.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.config.grad_clip)
            self.optimizer.step()
            n = _batch_size(inputs)
            total += float(loss.detach()) * n
            count += n
            span.update((step + 1) / max(n_batches, step + 1),
                        f"epoch {epoch + 1}/{self.config.max_epochs} loss {total / count:.4f}")
        if count == 0:
            raise LungAIError("the training loader yielded no batches")
        return total / count

    def evaluate(self, loader: Iterable) -> float:
        """Mean of ``metric_fn`` over a loader (weighted by batch size), network in eval mode."""
        self.network.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for batch in loader:
                self.progress.check()
                inputs, targets = (_to(v, self.device) for v in _split_batch(batch, self.config))
                value = self.metric_fn(self.predict_fn(self.network, inputs), targets)
                value = float(value.mean()) if isinstance(value, torch.Tensor) else float(value)
                n = _batch_size(inputs)
                total += value * n
                count += n
        if count == 0:
            raise LungAIError("the validation loader yielded no batches")
        return total / count

    def _better(self, value: float, best: float) -> bool:
        if not np.isfinite(best):
            return np.isfinite(value)
        if self.config.higher_is_better:
            return value > best + self.config.min_delta
        return value < best - self.config.min_delta

    def fit(self, train_loader: Iterable, val_loader: Iterable) -> TrainResult:
        """Train until ``max_epochs`` or ``patience`` epochs without improvement; keep the best weights."""
        cfg = self.config
        history: List[Dict[str, float]] = []
        best = -np.inf if cfg.higher_is_better else np.inf
        best_epoch, bad, start_epoch, elapsed, stopped_early = -1, 0, 0, 0.0, False
        resumed_from = None
        state = self._load_checkpoint()
        if state is not None:
            history, best, best_epoch = state["history"], state["best_metric"], state["best_epoch"]
            bad, elapsed, stopped_early = state["bad_epochs"], state["elapsed"], state.get("stopped_early", False)
            start_epoch = state["epoch"] + 1
            resumed_from = state["epoch"] + 1
            self.log(f"resuming from {self.last_path} after epoch {resumed_from}")
            if state["finished"]:
                start_epoch = cfg.max_epochs
        best_state = None
        if self.best_path and self.best_path.is_file() and state is not None:
            best_state = torch.load(self.best_path, map_location="cpu", weights_only=True)
        started = time.perf_counter()
        epoch = start_epoch - 1
        for epoch in range(start_epoch, cfg.max_epochs):
            seed_everything(cfg.seed * 1000 + epoch)
            _set_epoch(train_loader, epoch)
            t0 = time.perf_counter()
            loss = self._train_epoch(train_loader, epoch)
            self.progress.update((epoch + 0.9) / cfg.max_epochs, f"epoch {epoch + 1}: validating")
            metric = self.evaluate(val_loader)
            if self.scheduler:
                self.scheduler.step()
            record = {"epoch": epoch + 1, "train_loss": round(loss, 6), f"val_{cfg.metric_name}": round(metric, 6),
                      "lr": self.optimizer.param_groups[0]["lr"], "seconds": round(time.perf_counter() - t0, 2)}
            history.append(record)
            if self._better(metric, best):
                best, best_epoch, bad = metric, epoch + 1, 0
                best_state = {k: v.detach().cpu().clone() for k, v in self.network.state_dict().items()}
                if self.best_path:
                    _save(best_state, self.best_path)
            else:
                bad += 1
            stop = bad >= cfg.patience
            finished = stop or epoch + 1 >= cfg.max_epochs
            stopped_early = stop and epoch + 1 < cfg.max_epochs
            self.log(f"epoch {epoch + 1}/{cfg.max_epochs}: train loss {loss:.4f}, val {cfg.metric_name} "
                     f"{metric:.4f} (best {best:.4f} at epoch {best_epoch})")
            if self.last_path:
                _save(self._state(epoch, history, best, best_epoch, bad, finished,
                                  elapsed + time.perf_counter() - started, stopped_early), self.last_path)
            self.progress.update((epoch + 1) / cfg.max_epochs, f"epoch {epoch + 1}: val {cfg.metric_name} {metric:.4f}")
            if stop:
                self.log(f"early stop: no improvement for {cfg.patience} epochs")
                break
        if best_state is None:
            raise LungAIError("training produced no validated epoch (max_epochs is 0?)")
        self.network.load_state_dict(best_state)
        total = elapsed + time.perf_counter() - started
        return TrainResult(history=history, best_metric=float(best), best_epoch=best_epoch,
                           epochs_run=len(history), stopped_early=stopped_early, seconds=round(total, 2),
                           hardware=hardware_description(self.device), metric_name=cfg.metric_name,
                           higher_is_better=cfg.higher_is_better, config=cfg.to_dict(),
                           checkpoint_dir=str(self.checkpoint_dir) if self.checkpoint_dir else None,
                           resumed_from_epoch=resumed_from)


# -- publishing --------------------------------------------------------------------------------------------------
def _save_weights(network: torch.nn.Module, folder: Path, file_name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    target = folder / file_name
    with atomic_output(target) as tmp:
        torch.save(state, tmp)
    return target


def publish_model(entry_template: Dict[str, Any], network: torch.nn.Module, result: TrainResult,
                  data_description: Dict[str, Any], registry_path: Optional[PathLike] = None, *,
                  version: Optional[str] = None, bump: str = "minor", url: Optional[str] = None) -> ModelEntry:
    """Register the trained ``network`` as a new model version and return its entry.

    ``entry_template`` holds the registry fields except ``version``/``weights``/``card`` (an existing entry's
    ``to_dict()`` works: those fields are replaced). Weights go to the user cache for the user registry (the
    default), else to ``weights/`` beside the given registry (e.g. ``Resources/Models/`` when shipping). The
    version is the next minor one after every version of that name already known, unless given. ``url`` is
    where the weights file will be published for download (shipped models), if anywhere.
    ``data_description``: what the model was trained on (``name``, ``cases_train``, ``cases_val``, ``source``,
    ``licence``, ``description`` and optional ``evaluations`` {title: {metric: value}} on other data).
    """
    from lungai.models.cards import render_card

    registry = Path(registry_path) if registry_path else user_registry_path()
    template = {k: v for k, v in entry_template.items() if k not in ("weights", "card", "created", "training")}
    name = template["name"]
    known = load_registry() + (read_registry_file(registry, "user") if registry.exists() else [])
    new_version = version or next_version(name, known, bump)
    template["version"] = new_version
    file_name = f"{name}-{new_version}.pt"
    is_user = registry.resolve() == user_registry_path().resolve()
    saved = _save_weights(network, weights_cache_dir() if is_user else registry.parent / "weights", file_name)
    digest, size = sha256_of(saved), saved.stat().st_size
    card_rel = f"cards/{name}-{new_version}.md"
    training = {"data": data_description, "metric": result.metric_name, "best_metric": round(result.best_metric, 4),
                "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                "stopped_early": result.stopped_early, "seconds": result.seconds, "hardware": result.hardware,
                "seed": result.config.get("seed"), "config": result.config,
                "history": [[h["epoch"], h["train_loss"], h[f"val_{result.metric_name}"]] for h in result.history]}
    entry = ModelEntry.from_dict(dict(template, weights={"file": file_name, "sha256": digest, "size": size,
                                                         "url": url},
                                      card=card_rel,
                                      created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                                      training=training),
                                 registry.parent, "user" if is_user else "bundled")
    card_path = registry.parent / card_rel
    card_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(card_path) as tmp:
        tmp.write_text(render_card(entry, result, data_description), encoding="utf-8")
    add_to_registry(entry, registry)
    return entry
