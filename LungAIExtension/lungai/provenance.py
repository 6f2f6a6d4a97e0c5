"""Provenance: which software, method, model and weights made a result, attached to every output."""

from __future__ import annotations

import datetime as _dt
import platform
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional

import lungai


@dataclass
class Provenance:
    """Record of how a result was made; ``to_dict()`` goes into JSON and file headers."""

    method: str
    model_name: Optional[str] = None
    model_version: Optional[str] = None
    weights_sha256: Optional[str] = None
    parameters: Dict[str, Any] = field(default_factory=dict)
    software: str = field(default_factory=lambda: f"lungai {lungai.__version__}")
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    host: str = field(default_factory=lambda: f"{platform.system()} {platform.machine()} Python {platform.python_version()}")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def header_fields(self) -> Dict[str, str]:
        """Flat string fields for image headers (NRRD/MHA key-value pairs)."""
        out = {"method": self.method, "software": self.software, "created": self.created}
        if self.model_name:
            out.update(model=self.model_name, model_version=str(self.model_version),
                       weights_sha256=str(self.weights_sha256))
        return out
