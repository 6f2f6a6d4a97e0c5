"""Model weights on disk: found in the user cache or shipped, downloaded only on request, imported by hand.

Every weights file is checked against the SHA256 the registry lists before it is used or stored; a download
goes to a temporary file that is renamed only after the check, so a failed or corrupted transfer leaves nothing.
``urllib`` honours the usual ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` settings of hospital networks.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Union

from lungai.errors import InputError, LungAIError
from lungai.models.registry import ModelEntry, cache_dir
from lungai.progress import Progress, ensure
from lungai.resources import resource_path

PathLike = Union[str, Path]
CHUNK = 1 << 20


class WeightsError(LungAIError):
    """Weights are missing, corrupted, or could not be fetched."""


def weights_cache_dir() -> Path:
    return cache_dir() / "weights"


def bundled_weights_dir() -> Path:
    return resource_path("Models", "weights")


def sha256_of(path: PathLike, progress: Optional[Progress] = None) -> str:
    """SHA256 hex digest of a file, read in chunks."""
    path = Path(path)
    digest = hashlib.sha256()
    total = max(path.stat().st_size, 1)
    done = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress.update(done / total, f"checking {path.name}")
    return digest.hexdigest()


def _candidates(entry: ModelEntry) -> List[Path]:
    paths = [weights_cache_dir() / entry.weights_file]
    if entry.registry_dir is not None:
        paths.append(entry.registry_dir / "weights" / entry.weights_file)
    try:
        paths.append(bundled_weights_dir() / entry.weights_file)
    except FileNotFoundError:
        pass
    unique: List[Path] = []
    for p in paths:
        if p not in unique:
            unique.append(p)
    return unique


def weights_path(entry: ModelEntry) -> Optional[Path]:
    """Where the weights of ``entry`` are on this machine (user cache first, then shipped), or None."""
    for path in _candidates(entry):
        if path.is_file():
            return path
    return None


@dataclass
class WeightsStatus:
    """What :func:`verify_weights` found for one model version."""

    entry: ModelEntry
    state: str  # ok | missing | corrupt
    path: Optional[Path]
    location: Optional[str]  # cache | shipped
    detail: str = ""

    def to_dict(self) -> Dict[str, object]:
        return {"model": self.entry.name, "version": self.entry.version, "state": self.state,
                "path": str(self.path) if self.path else None, "location": self.location, "detail": self.detail}


def _location(path: Path) -> str:
    return "cache" if weights_cache_dir() in path.parents else "shipped"


def verify_weights(entry: ModelEntry, progress: Optional[Progress] = None) -> WeightsStatus:
    """Check size and SHA256 of the weights of ``entry`` where they are found."""
    path = weights_path(entry)
    if path is None:
        return WeightsStatus(entry, "missing", None, None, "not downloaded or imported")
    size = path.stat().st_size
    if size != int(entry.weights["size"]):
        return WeightsStatus(entry, "corrupt", path, _location(path),
                             f"size {size} bytes, registry says {entry.weights['size']}")
    digest = sha256_of(path, progress)
    if digest != entry.sha256:
        return WeightsStatus(entry, "corrupt", path, _location(path),
                             f"SHA256 {digest[:12]}... differs from the registry's {entry.sha256[:12]}...")
    return WeightsStatus(entry, "ok", path, _location(path))


def require_weights(entry: ModelEntry) -> Path:
    """The verified weights file of ``entry``, or a :class:`WeightsError` that tells the user what to do."""
    status = verify_weights(entry)
    if status.state == "missing":
        hint = f"`lungai models download {entry.name}`" if entry.weights.get("url") else "no download URL is listed"
        raise WeightsError(f"weights of {entry.id} ({entry.weights_file}) are not on this machine: run {hint}, or "
                           f"`lungai models import {entry.name} FILE_OR_FOLDER` with a copy you have")
    if status.state == "corrupt":
        raise WeightsError(f"weights of {entry.id} at {status.path} are corrupted ({status.detail}); remove them "
                           f"with `lungai models remove {entry.name}` and download or import them again")
    assert status.path is not None
    return status.path


def _install(tmp: Path, entry: ModelEntry) -> Path:
    target = weights_cache_dir() / entry.weights_file
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)
    return target


def download_weights(entry: ModelEntry, progress: Optional[Progress] = None, *, url: Optional[str] = None,
                     force: bool = False, timeout: float = 60.0) -> Path:
    """Download the weights of ``entry`` into the user cache, checking size and SHA256; never called implicitly.

    Already-present verified weights are kept unless ``force``. On any failure nothing is left behind.
    """
    progress = ensure(progress)
    status = verify_weights(entry)
    if status.state == "ok" and status.location == "cache" and not force:
        progress.update(1.0, "already in the cache")
        return status.path  # type: ignore[return-value]
    source = url or entry.weights.get("url")
    if not source:
        raise WeightsError(f"{entry.id} lists no download URL; import its weights with "
                           f"`lungai models import {entry.name} FILE_OR_FOLDER`")
    folder = weights_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.weights_file}-", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    expected = int(entry.weights["size"])
    try:
        with os.fdopen(fd, "wb") as out:
            request = urllib.request.Request(source, headers={"User-Agent": "lungai-model-downloader"})
            try:
                response = urllib.request.urlopen(request, timeout=timeout)
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise WeightsError(f"cannot download {entry.id} from {source}: {reason}") from None
            with response:
                total = int(response.headers.get("Content-Length") or expected)
                done = 0
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    progress.update(min(done / max(total, 1), 1.0), f"downloading {entry.weights_file}")
                    if done > expected * 2 + CHUNK:
                        raise WeightsError(f"download of {entry.id} from {source} is far larger than the "
                                           f"{expected} bytes the registry lists; refused")
        if done != expected or digest.hexdigest() != entry.sha256:
            raise WeightsError(f"download of {entry.id} from {source} does not match the registry "
                               f"({done} bytes, SHA256 {digest.hexdigest()[:12]}...; expected {expected} bytes, "
                               f"{entry.sha256[:12]}...): refused and deleted")
        return _install(tmp, entry)
    finally:
        if tmp.exists():
            tmp.unlink()


def import_weights(entry: ModelEntry, source: PathLike, progress: Optional[Progress] = None) -> Path:
    """Copy weights for ``entry`` from a local file, or find them in a folder, into the user cache.

    In a folder, the file named as in the registry is taken, else any ``*.pt`` whose SHA256 matches. The copy is
    checked before it is stored; a file with another SHA256 is refused.
    """
    progress = ensure(progress)
    source = Path(source).expanduser()
    if not source.exists():
        raise InputError(source, "does not exist")
    if source.is_dir():
        named = source / entry.weights_file
        found = named if named.is_file() else None
        if found is None:
            for candidate in sorted(source.rglob("*.pt")):
                if candidate.stat().st_size == int(entry.weights["size"]) and sha256_of(candidate) == entry.sha256:
                    found = candidate
                    break
        if found is None:
            raise InputError(source, f"holds no {entry.weights_file} and no .pt file with the SHA256 of {entry.id}")
        source = found
    if sha256_of(source, progress.span(0.0, 0.5)) != entry.sha256:
        raise InputError(source, f"is not the weights of {entry.id}: its SHA256 differs from the registry's "
                                 f"{entry.sha256[:12]}... (wrong file, wrong version, or damaged)")
    folder = weights_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.weights_file}-", suffix=".part", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        shutil.copyfile(source, tmp)
        if sha256_of(tmp, progress.span(0.5, 1.0)) != entry.sha256:
            raise WeightsError(f"copy of {source} into the cache was damaged; nothing was imported")
        return _install(tmp, entry)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_weights(entry: ModelEntry) -> Optional[Path]:
    """Delete the cached weights of ``entry`` (shipped weights are never touched); returns what was removed."""
    path = weights_cache_dir() / entry.weights_file
    if path.is_file():
        path.unlink()
        return path
    return None
