"""What ITK's NIfTI reader does not report: a short file is filled with zeros and NaN voxels become zeros.

Both are found here from the NIfTI-1 header (voxel offset, dimensions, data type) at little cost: the gzip
trailer gives the uncompressed size, and only floating-point files are scanned for NaN or infinity.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from lungai.errors import InputError

NIFTI_FLOAT_TYPES = {16: "f4", 64: "f8"}


class NiftiLayout(NamedTuple):
    offset: int  # byte offset of the voxels
    size: int  # bytes of voxel data
    endian: str  # "<" or ">"
    datatype: int  # NIfTI datatype code
    oriented: bool  # qform_code or sform_code set: the header states the patient orientation


class NiftiFacts(NamedTuple):
    non_finite: int  # NaN or infinite voxels (ITK's reader turns them into zeros)
    oriented: bool


def _nifti_layout(header: bytes) -> Optional[NiftiLayout]:
    """Voxel layout and orientation flag of a NIfTI-1 header; None if not NIfTI-1."""
    if len(header) < 348:
        return None
    for endian in "<>":
        if struct.unpack(endian + "i", header[:4])[0] == 348:
            dims = struct.unpack(endian + "8h", header[40:56])
            datatype, bitpix = struct.unpack(endian + "2h", header[70:74])
            offset = struct.unpack(endian + "f", header[108:112])[0]
            qform_code, sform_code = struct.unpack(endian + "2h", header[252:256])
            if not 1 <= dims[0] <= 7 or bitpix <= 0 or any(d < 1 for d in dims[1:dims[0] + 1]):
                return None
            voxels = int(np.prod(dims[1:dims[0] + 1], dtype=np.int64)) * bitpix // 8
            return NiftiLayout(int(max(offset, 348)), voxels, endian, datatype, qform_code > 0 or sform_code > 0)
    return None


def _nifti_non_finite(path: Path, compressed: bool, layout: NiftiLayout) -> int:
    """Count NaN/inf voxels in a floating-point NIfTI (ITK's reader turns them into zeros silently)."""
    offset, size = layout.offset, layout.size
    dtype = np.dtype(layout.endian + NIFTI_FLOAT_TYPES[layout.datatype])
    opener = gzip.open if compressed else open
    bad = 0
    with opener(path, "rb") as handle:
        handle.seek(offset)
        remaining = size
        while remaining > 0:
            chunk = handle.read(min(remaining, dtype.itemsize * (1 << 22)))
            if not chunk:
                break
            remaining -= len(chunk)
            bad += int(np.count_nonzero(~np.isfinite(np.frombuffer(chunk, dtype))))
    return bad


def _gzip_stream_complete(path: Path) -> bool:
    """Decompress the whole stream once; False when it ends early or is corrupt."""
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 24):
                pass
    except (EOFError, OSError, zlib.error):
        return False
    return True


def check_nifti_file(path: Path) -> NiftiFacts:
    """Catch what ITK's NIfTI reader hides: a short file (filled with zeros) raises; returns the count of NaN or
    infinite voxels, which the reader turns into zeros (the input checks refuse them), and whether the header
    states the orientation at all (with neither qform nor sform, left and right are a guess)."""
    compressed = path.name.lower().endswith(".gz")
    try:
        opener = gzip.open if compressed else open
        with opener(path, "rb") as handle:
            layout = _nifti_layout(handle.read(348))
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(path, f"the file is truncated or corrupt ({exc})") from None
    if layout is None:
        return NiftiFacts(0, True)
    _check_nifti_size(path, compressed, layout.offset + layout.size)
    bad = _nifti_non_finite(path, compressed, layout) if layout.datatype in NIFTI_FLOAT_TYPES else 0
    return NiftiFacts(bad, layout.oriented)


def _check_nifti_size(path: Path, compressed: bool, expected: int) -> None:
    if not compressed:
        actual = path.stat().st_size
        if actual < expected:
            raise InputError(path, f"the file is truncated: it holds {actual} bytes, its header needs {expected}")
        return
    with open(path, "rb") as handle:  # gzip trailer: uncompressed size modulo 2**32
        handle.seek(-4, 2)
        stored = struct.unpack("<I", handle.read(4))[0]
    if stored != expected % 2 ** 32 and not _gzip_stream_complete(path):
        raise InputError(path, "the file is truncated: its compressed data end before all voxels are stored")
