"""The model registry: JSON files (checked against ``registry.schema.json``) that describe every model.

Two registries are merged: the one shipped in ``Resources/Models/registry.json`` (read-only in an installed
extension) and the user's in the cache folder (see :func:`lungai.models.weights.cache_dir`), where models
trained or fine-tuned on site are published. Several versions of a model may be listed; :func:`get_model`
returns the newest unless a version is asked for.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from lungai.errors import InputError, LungAIError
from lungai.io.writers import write_json
from lungai.resources import resource_path

PathLike = Union[str, Path]
SCHEMA_VERSION = 1


class UnknownModel(LungAIError):
    """No registry lists a model of that name (and version)."""


def bundled_registry_path() -> Path:
    """The registry shipped with the extension (``Resources/Models/registry.json``)."""
    return resource_path("Models", "registry.json")


def user_home() -> Path:
    """LungAI's per-user folder: ``$LUNGAI_HOME`` or ``~/.cache/lungai``."""
    env = os.environ.get("LUNGAI_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lungai"


def cache_dir() -> Path:
    """The user's model cache: ``$LUNGAI_HOME/models`` or ``~/.cache/lungai/models``."""
    return user_home() / "models"


def user_registry_path() -> Path:
    """The registry of models published on this machine (trained or fine-tuned here)."""
    return cache_dir() / "registry.json"


def version_key(version: str) -> Tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


@dataclass
class ModelEntry:
    """One model version of the registry (see ``registry.schema.json`` for every field)."""

    name: str
    task: str
    version: str
    architecture: Dict[str, Any]
    spatial_dims: int
    normalization: Dict[str, Any]
    output: str
    labels: Dict[int, str]
    weights: Dict[str, Any]
    license: str
    card: str
    description: str = ""
    in_channels: int = 1
    out_channels: Optional[int] = None
    spacing: Optional[Tuple[float, ...]] = None
    patch_size: Optional[Tuple[int, ...]] = None
    orientation: str = "LPS"
    inference: Dict[str, Any] = field(default_factory=dict)
    created: Optional[str] = None
    parent: Optional[str] = None
    training: Dict[str, Any] = field(default_factory=dict)
    registry_dir: Optional[Path] = None  # folder of the registry file that lists this entry (not serialised)
    origin: str = "bundled"  # bundled | user (not serialised)

    def __post_init__(self) -> None:
        self.labels = {int(k): str(v) for k, v in self.labels.items()}
        self.spatial_dims = int(self.spatial_dims)
        if self.spacing is not None:
            self.spacing = tuple(float(s) for s in self.spacing)
        if self.patch_size is not None:
            self.patch_size = tuple(int(s) for s in self.patch_size)
        if self.out_channels is None:
            self.out_channels = len(self.labels) if self.output in ("softmax", "classification") else (
                max(1, len([k for k in self.labels if k != 0])) if self.output == "sigmoid" else self.in_channels)

    # -- identity --------------------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def sha256(self) -> str:
        return str(self.weights["sha256"])

    @property
    def weights_file(self) -> str:
        return str(self.weights["file"])

    @property
    def card_path(self) -> Optional[Path]:
        if not self.card:
            return None
        return (self.registry_dir / self.card) if self.registry_dir else Path(self.card)

    @property
    def patch_size_array(self) -> Optional[Tuple[int, ...]]:
        """Patch size in array order ([k, j, i])."""
        return None if self.patch_size is None else tuple(reversed(self.patch_size))

    # -- (de)serialisation -------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Dict[str, Any], registry_dir: Optional[Path] = None,
                  origin: str = "bundled") -> "ModelEntry":
        known = {f for f in cls.__dataclass_fields__ if f not in ("registry_dir", "origin")}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"model entry {data.get('name')!r} has unknown fields {sorted(unknown)}")
        return cls(**{k: v for k, v in data.items()}, registry_dir=registry_dir, origin=origin)

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "name": self.name, "task": self.task, "version": self.version, "description": self.description,
            "architecture": self.architecture, "spatial_dims": self.spatial_dims, "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "spacing": list(self.spacing) if self.spacing is not None else None,
            "patch_size": list(self.patch_size) if self.patch_size is not None else None,
            "orientation": self.orientation, "normalization": self.normalization, "output": self.output,
            "labels": {str(k): v for k, v in sorted(self.labels.items())}, "inference": self.inference,
            "weights": self.weights, "license": self.license, "card": self.card}
        for key in ("created", "parent"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.training:
            out["training"] = self.training
        return out


# -- reading and validating --------------------------------------------------------------------------------------
def _schema() -> Dict[str, Any]:
    return json.loads(resource_path("Models", "registry.schema.json").read_text(encoding="utf-8"))


def validate_registry(data: Dict[str, Any], source: Optional[PathLike] = None) -> None:
    """Raise :class:`InputError` naming the file and the first schema violation (with its JSON path)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise InputError(source, f"model registry is invalid at {where}: {err.message}")
    seen = set()
    for model in data["models"]:
        key = (model["name"], model["version"])
        if key in seen:
            raise InputError(source, f"model registry lists {model['name']}@{model['version']} twice")
        seen.add(key)


def read_registry_file(path: PathLike, origin: str = "bundled") -> List[ModelEntry]:
    """Entries of one registry file (validated); a missing user registry is simply empty."""
    path = Path(path)
    if not path.exists():
        if origin == "user":
            return []
        raise InputError(path, "model registry does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"model registry is not valid JSON ({exc})") from None
    validate_registry(data, path)
    return [ModelEntry.from_dict(m, path.parent, origin) for m in data["models"]]


def load_registry(path: Optional[PathLike] = None, include_user: bool = True) -> List[ModelEntry]:
    """All model versions: the given (or bundled) registry plus, by default, the user's; sorted by name, version.

    A version listed in both keeps the user's entry (it was re-published on this machine).
    """
    entries = {e.id: e for e in read_registry_file(path or bundled_registry_path(), "bundled")}
    if include_user and path is None:
        entries.update({e.id: e for e in read_registry_file(user_registry_path(), "user")})
    return sorted(entries.values(), key=lambda e: (e.name, version_key(e.version)))


def get_model(name: str, version: Optional[str] = None,
              registry: Optional[Sequence[ModelEntry]] = None) -> ModelEntry:
    """The newest version of model ``name`` (or ``name@version`` / the given ``version``)."""
    if "@" in name and version is None:
        name, version = name.split("@", 1)
    entries = list(registry) if registry is not None else load_registry()
    matches = [e for e in entries if e.name == name and (version is None or e.version == version)]
    if not matches:
        known = sorted({e.name for e in entries})
        versions = sorted((e.version for e in entries if e.name == name), key=version_key)
        if versions:
            raise UnknownModel(f"model {name} has no version {version} (known: {', '.join(versions)})")
        raise UnknownModel(f"unknown model {name!r}; the registry lists: {', '.join(known) or 'no models'}")
    return max(matches, key=lambda e: version_key(e.version))


def next_version(name: str, entries: Sequence[ModelEntry], bump: str = "minor") -> str:
    """The version after the newest of ``name``: ``1.0.0`` for a new model, else a minor (or major/patch) bump."""
    versions = [version_key(e.version) for e in entries if e.name == name]
    if not versions:
        return "1.0.0"
    major, minor, patch = max(versions)
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "patch":
        return f"{major}.{minor}.{patch + 1}"
    return f"{major}.{minor + 1}.0"


def add_to_registry(entry: ModelEntry, registry_path: PathLike) -> None:
    """Add (or replace) ``entry`` in the registry file, validating before the atomic write."""
    path = Path(registry_path)
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
    else:
        data = {"schema_version": SCHEMA_VERSION, "models": []}
    data["models"] = [m for m in data["models"] if (m["name"], m["version"]) != (entry.name, entry.version)]
    data["models"].append(entry.to_dict())
    data["models"].sort(key=lambda m: (m["name"], version_key(m["version"])))
    validate_registry(data, path)
    write_json(data, path)


def remove_from_registry(name: str, version: str, registry_path: PathLike) -> bool:
    """Drop ``name@version`` from a registry file; returns whether it was listed."""
    path = Path(registry_path)
    if not path.exists():
        return False
    data = json.loads(path.read_text(encoding="utf-8"))
    kept = [m for m in data["models"] if (m["name"], m["version"]) != (name, version)]
    if len(kept) == len(data["models"]):
        return False
    data["models"] = kept
    write_json(data, path)
    return True
