"""The review store: cases, AI proposals, versioned corrections, statuses and approvals in a plain folder."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

import numpy as np

from lungai.errors import InputError, LungAIError
from lungai.image import Image
from lungai.io import read_image, write_image, write_json
from lungai.review.lock import CaseLock

STORE_FORMAT = "lungai-review-store"
STORE_VERSION = 1
STATUSES = ("todo", "in_progress", "submitted", "approved")
# allowed status changes; approved -> in_progress is "reopen", submitted -> in_progress is "return"
TRANSITIONS = {"todo": {"in_progress"}, "in_progress": {"submitted"},
               "submitted": {"approved", "in_progress"}, "approved": {"in_progress"}}
_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class StoreError(LungAIError):
    """A review-store operation that is not allowed (wrong status, unknown case, wrong label grid...)."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Proposal:
    """An AI proposal for a case, with the provenance of the model that made it."""

    number: int
    file: str
    created: str
    provenance: Dict[str, Any] = field(default_factory=dict)
    uncertainty: Optional[float] = None
    sha256: str = ""


@dataclass
class Version:
    """One saved correction: never overwritten, never deleted by a later save."""

    number: int
    file: str
    annotator: str
    created: str
    time_spent_s: float = 0.0
    note: str = ""
    parent: Optional[str] = None  # "p0001" (a proposal), "v0002" (an earlier version) or None
    sha256: str = ""


@dataclass
class CaseRecord:
    """Everything known about a case except its voxels (kept in ``case.json``)."""

    id: str
    image: str = "image.nii.gz"
    status: str = "todo"
    assigned_to: Optional[str] = None
    created: str = field(default_factory=_now)
    proposals: List[Proposal] = field(default_factory=list)
    versions: List[Version] = field(default_factory=list)
    approvals: List[Dict[str, Any]] = field(default_factory=list)
    history: List[Dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "CaseRecord":
        data = dict(data)
        data["proposals"] = [Proposal(**p) for p in data.get("proposals", [])]
        data["versions"] = [Version(**v) for v in data.get("versions", [])]
        return cls(**data)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @property
    def latest_version(self) -> Optional[Version]:
        return self.versions[-1] if self.versions else None

    @property
    def latest_proposal(self) -> Optional[Proposal]:
        return self.proposals[-1] if self.proposals else None

    @property
    def approved_version(self) -> Optional[Version]:
        """The version the last approval named (approval of the latest version at that time)."""
        if self.status != "approved" or not self.approvals:
            return None
        wanted = self.approvals[-1]["version"]
        return next((v for v in self.versions if v.number == wanted), None)


class ReviewStore:
    """A review store in ``folder`` (see :mod:`lungai.review`). Open with ``ReviewStore(folder)``."""

    def __init__(self, folder: Union[str, Path], lock_timeout: float = 30.0):
        self.folder = Path(folder)
        meta_path = self.folder / "store.json"
        if not meta_path.is_file():
            raise InputError(self.folder, "is not a LungAI review store (no store.json); create one with "
                                          "`lungai review init`")
        try:
            self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(meta_path, f"is not valid JSON ({exc})") from None
        if self.meta.get("format") != STORE_FORMAT:
            raise InputError(meta_path, f"format is {self.meta.get('format')!r}, not {STORE_FORMAT!r}")
        self.lock_timeout = lock_timeout

    # -- store ----------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: Union[str, Path], task: str, labels: Dict[int, str],
               description: str = "") -> "ReviewStore":
        """Make a new, empty store for ``task`` with the label table ``labels`` (value -> structure key)."""
        folder = Path(folder)
        if (folder / "store.json").exists():
            raise StoreError(f"{folder}: a review store already exists here")
        if 0 in labels:
            raise StoreError("label 0 is the background; list only foreground labels")
        (folder / "cases").mkdir(parents=True, exist_ok=True)
        write_json({"format": STORE_FORMAT, "format_version": STORE_VERSION, "task": task,
                    "labels": {str(k): v for k, v in sorted(labels.items())}, "description": description,
                    "created": _now()}, folder / "store.json")
        return cls(folder)

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def labels(self) -> Dict[int, str]:
        return {int(k): v for k, v in self.meta["labels"].items()}

    def case_dir(self, case_id: str) -> Path:
        return self.folder / "cases" / case_id

    def case_ids(self) -> List[str]:
        root = self.folder / "cases"
        return sorted(p.name for p in root.iterdir() if (p / "case.json").is_file()) if root.is_dir() else []

    def cases(self) -> List[CaseRecord]:
        return [self.case(cid) for cid in self.case_ids()]

    def case(self, case_id: str) -> CaseRecord:
        path = self.case_dir(case_id) / "case.json"
        if not path.is_file():
            raise StoreError(f"no case {case_id!r} in {self.folder}")
        return CaseRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))

    # -- writes (all under the case lock) -------------------------------------------------------------------
    def _lock(self, case_id: str, user: str) -> CaseLock:
        return CaseLock(self.case_dir(case_id) / ".lock", user, timeout=self.lock_timeout)

    def _write_record(self, record: CaseRecord) -> None:
        write_json(record.to_dict(), self.case_dir(record.id) / "case.json")

    def _update(self, case_id: str, user: str, event: str, change: Callable[[CaseRecord], Any],
                detail: str = "") -> Any:
        with self._lock(case_id, user):
            record = self.case(case_id)  # re-read under the lock: another writer may have saved meanwhile
            result = change(record)
            record.history.append({"time": _now(), "user": user, "event": event, "detail": detail})
            self._write_record(record)
            return result

    @staticmethod
    def _set_status(record: CaseRecord, status: str) -> None:
        if status == record.status:
            return
        if status not in TRANSITIONS[record.status]:
            raise StoreError(f"case {record.id}: cannot go from {record.status!r} to {status!r}")
        record.status = status

    def add_case(self, image: Union[Image, str, Path], case_id: Optional[str] = None, user: str = "system",
                 check: str = "volume") -> CaseRecord:
        """Add an image (an :class:`Image` or a path read with ``check``) as a new case with status ``todo``."""
        if not isinstance(image, Image):
            source = Path(image)
            image = read_image(source, check=check)
            case_id = case_id or source.name.split(".")[0]
        if not case_id or not _CASE_ID.match(case_id):
            raise StoreError(f"case id {case_id!r} must be 1-64 letters, digits, '_', '-' or '.'")
        folder = self.case_dir(case_id)
        if (folder / "case.json").exists():
            raise StoreError(f"case {case_id!r} already exists in {self.folder}")
        (folder / "versions").mkdir(parents=True, exist_ok=True)
        (folder / "proposals").mkdir(exist_ok=True)
        with self._lock(case_id, user):
            write_image(image, folder / "image.nii.gz")
            record = CaseRecord(id=case_id, history=[{"time": _now(), "user": user, "event": "added",
                                                      "detail": str(image.metadata.get("source", ""))}])
            self._write_record(record)
        return record

    def _check_labels(self, case_id: str, labels: Image) -> Image:
        reference = read_image(self.case_dir(case_id) / "image.nii.gz", check="none")
        if not reference.same_grid(labels):
            raise StoreError(f"case {case_id}: the label map grid {labels.size} does not match the image grid "
                             f"{reference.size} (spacing/origin/direction must match too)")
        values = set(np.unique(labels.array).tolist()) - {0}
        unknown = values - set(self.labels)
        if unknown:
            raise StoreError(f"case {case_id}: label values {sorted(unknown)} are not in the store's labels "
                             f"{self.labels}")
        return labels.like(labels.array.astype(np.uint8 if max(self.labels) < 256 else np.uint16))

    @staticmethod
    def _next_number(folder: Path, prefix: str, known: List[int]) -> int:
        """Next free number, above every recorded one and every file on disk (even orphans of a crash)."""
        on_disk = [int(m.group(1)) for p in folder.glob(f"{prefix}*.nii.gz")
                   if (m := re.match(rf"{prefix}(\d+)\.nii\.gz$", p.name))]
        return max(known + on_disk + [0]) + 1

    def add_proposal(self, case_id: str, labels: Image, provenance: Dict[str, Any],
                     uncertainty: Optional[float] = None, user: str = "ai") -> Proposal:
        """Store an AI proposal with the provenance (model name, version, weights SHA256...) that made it."""
        labels = self._check_labels(case_id, labels)

        def change(record: CaseRecord) -> Proposal:
            folder = self.case_dir(case_id) / "proposals"
            number = self._next_number(folder, "p", [p.number for p in record.proposals])
            path = write_image(labels, folder / f"p{number:04d}.nii.gz",
                               metadata={k: v for k, v in provenance.items() if v is not None})
            proposal = Proposal(number, f"proposals/{path.name}", _now(), dict(provenance), uncertainty,
                                _sha256(path))
            record.proposals.append(proposal)
            return proposal

        model = provenance.get("model_name") or provenance.get("method", "?")
        return self._update(case_id, user, "proposal", change, f"by {model}")

    def save_version(self, case_id: str, labels: Image, annotator: str, time_spent_s: float = 0.0,
                     note: str = "", parent: Optional[str] = None) -> Version:
        """Save a correction as a new version; the case goes to ``in_progress`` (from ``todo``).

        Saving on a submitted or approved case is refused: reopen it first, so that the reviewer sees it.
        """
        labels = self._check_labels(case_id, labels)

        def change(record: CaseRecord) -> Version:
            if record.status in ("submitted", "approved"):
                raise StoreError(f"case {case_id} is {record.status}; reopen it before saving a new version")
            self._set_status(record, "in_progress")
            record.assigned_to = record.assigned_to or annotator
            folder = self.case_dir(case_id) / "versions"
            number = self._next_number(folder, "v", [v.number for v in record.versions])
            path = write_image(labels, folder / f"v{number:04d}.nii.gz",
                               metadata={"annotator": annotator, "note": note})
            default_parent = (f"v{record.versions[-1].number:04d}" if record.versions else
                              f"p{record.proposals[-1].number:04d}" if record.proposals else None)
            version = Version(number, f"versions/{path.name}", annotator, _now(), float(time_spent_s), note,
                              parent or default_parent, _sha256(path))
            record.versions.append(version)
            return version

        return self._update(case_id, annotator, "saved", change, note)

    def start(self, case_id: str, annotator: str) -> CaseRecord:
        """Take a ``todo`` case: status ``in_progress``, assigned to ``annotator``."""
        def change(record: CaseRecord) -> CaseRecord:
            self._set_status(record, "in_progress")
            record.assigned_to = annotator
            return record
        return self._update(case_id, annotator, "started", change)

    def submit(self, case_id: str, annotator: str, note: str = "") -> CaseRecord:
        """Hand the latest version to review (needs at least one saved version)."""
        def change(record: CaseRecord) -> CaseRecord:
            if not record.versions:
                raise StoreError(f"case {case_id}: save a version before submitting")
            self._set_status(record, "submitted")
            return record
        return self._update(case_id, annotator, "submitted", change, note)

    def approve(self, case_id: str, reviewer: str, note: str = "") -> CaseRecord:
        """Approve the latest version of a submitted case; it then counts for export and training."""
        def change(record: CaseRecord) -> CaseRecord:
            self._set_status(record, "approved")
            record.approvals.append({"reviewer": reviewer, "version": record.versions[-1].number,
                                     "time": _now(), "note": note})
            return record
        return self._update(case_id, reviewer, "approved", change, note)

    def send_back(self, case_id: str, reviewer: str, note: str) -> CaseRecord:
        """Return a submitted case to its annotator with the reviewer's note."""
        def change(record: CaseRecord) -> CaseRecord:
            if record.status != "submitted":
                raise StoreError(f"case {case_id} is {record.status}, not submitted")
            self._set_status(record, "in_progress")
            return record
        return self._update(case_id, reviewer, "sent back", change, note)

    def reopen(self, case_id: str, user: str, reason: str) -> CaseRecord:
        """Reopen an approved case for more corrections (its approval stays in the history)."""
        def change(record: CaseRecord) -> CaseRecord:
            if record.status != "approved":
                raise StoreError(f"case {case_id} is {record.status}, not approved")
            self._set_status(record, "in_progress")
            return record
        return self._update(case_id, user, "reopened", change, reason)

    # -- reads ----------------------------------------------------------------------------------------------
    def load_image(self, case_id: str) -> Image:
        return read_image(self.case_dir(case_id) / "image.nii.gz", check="none")

    def _load_entry(self, case_id: str, entry: Union[Version, Proposal]) -> Image:
        path = self.case_dir(case_id) / entry.file
        if entry.sha256 and _sha256(path) != entry.sha256:
            raise StoreError(f"{path}: file content does not match its recorded SHA256 (changed outside LungAI)")
        return read_image(path, check="none")

    def load_version(self, case_id: str, number: Optional[int] = None) -> Image:
        """A saved correction (the latest when ``number`` is None)."""
        return self._load_numbered(case_id, self.case(case_id).versions, number, "saved version")

    def load_proposal(self, case_id: str, number: Optional[int] = None) -> Image:
        """An AI proposal (the latest when ``number`` is None)."""
        return self._load_numbered(case_id, self.case(case_id).proposals, number, "AI proposal")

    def _load_numbered(self, case_id: str, entries: List[Union[Version, Proposal]], number: Optional[int],
                       what: str) -> Image:
        if not entries:
            raise StoreError(f"case {case_id} has no {what}")
        entry = entries[-1] if number is None else next((e for e in entries if e.number == number), None)
        if entry is None:
            raise StoreError(f"case {case_id} has no {what} {number}")
        return self._load_entry(case_id, entry)

    def repair(self) -> List[Path]:
        """Remove what a crashed writer left (temporary files, stale locks); returns what was removed.

        Temporary files are dot-files beside their target; recorded versions are never touched.
        """
        removed = []
        for case_id in self.case_ids():
            folder = self.case_dir(case_id)
            for tmp in list(folder.glob(".*-*")) + list(folder.glob("*/.*-*")):
                tmp.unlink()
                removed.append(tmp)
        return removed
