"""Builders of test inputs for the I/O tests, made at test time in tmp_path (no data is committed).

``write_dicom_series`` writes a CT series of 2D DICOM slices with SimpleITK, with the tags a scanner writes
(Image Position/Orientation, Rescale Slope/Intercept, Modality, Series UID), under shuffled file names.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
import SimpleITK as sitk

UID_ROOT = "1.2.826.0.1.3680043.9.7799"


def synthetic_ct(shape=(6, 40, 48), spacing=(0.8, 0.8, 2.5), origin=(-20.0, -16.0, -100.0)) -> sitk.Image:
    """A small CT-like int16 volume: air outside, a soft-tissue body, a lung-density hole; HU."""
    k, j, i = np.mgrid[: shape[0], : shape[1], : shape[2]]
    hu = np.full(shape, -1000, np.int16)
    body = ((j - shape[1] / 2) / (shape[1] * 0.45)) ** 2 + ((i - shape[2] / 2) / (shape[2] * 0.45)) ** 2 < 1
    hu[body] = 40
    lung = ((j - shape[1] / 2) / (shape[1] * 0.2)) ** 2 + ((i - shape[2] / 2) / (shape[2] * 0.2)) ** 2 < 1
    hu[lung] = -850
    hu += (k * 3 + (i % 7)).astype(np.int16)  # slice- and column-dependent values catch re-ordering
    image = sitk.GetImageFromArray(hu)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def write_dicom_series(folder: Path, volume: sitk.Image, *, series_uid: str = f"{UID_ROOT}.1",
                       modality: str = "CT", rescale: bool = True, skip: Iterable[int] = (),
                       seed: int = 0, description: str = "test series",
                       slice_overrides: Optional[dict] = None) -> Sequence[Path]:
    """Write ``volume`` (HU) as one DICOM file per slice with shuffled names; return the paths in slice order.

    With ``rescale`` the pixels are stored as HU + 1024 with Rescale Intercept -1024, as scanners do; without it
    they are stored that way but the rescale tags are left out (a broken export).
    ``slice_overrides`` maps a slice index to a replacement 2D sitk image (for mixed sizes) or to a dict of
    tags to override (e.g. another orientation).
    """
    folder.mkdir(parents=True, exist_ok=True)
    depth = volume.GetDepth()
    names = [f"IM{n:04d}.dcm" for n in random.Random(seed).sample(range(10 * depth), depth)]
    d = volume.GetDirection()
    orientation = "\\".join(f"{v:.6f}" for v in (d[0], d[3], d[6], d[1], d[4], d[7]))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    paths = []
    for k in range(depth):
        if k in set(skip):
            continue
        override = (slice_overrides or {}).get(k)
        plane = override if isinstance(override, sitk.Image) else volume[:, :, k]
        # GDCM stores HU + 1024 when the intercept tag says -1024; without rescale the raw HU + 1024 are stored
        stored = (sitk.Cast(plane, sitk.sitkInt16) if rescale
                  else sitk.Cast(sitk.Cast(plane, sitk.sitkInt32) + 1024, sitk.sitkUInt16))
        position = volume.TransformIndexToPhysicalPoint((0, 0, k))
        tags = {"0008|0060": modality, "0020|000e": series_uid, "0020|000d": f"{UID_ROOT}.100",
                "0008|103e": description, "0020|0013": str(k + 1),
                "0020|0032": "\\".join(f"{p:.6f}" for p in position), "0020|0037": orientation,
                "0018|0050": f"{volume.GetSpacing()[2]:g}"}
        if rescale:
            tags.update({"0028|1052": "-1024", "0028|1053": "1", "0028|1054": "HU"})
        if isinstance(override, dict):
            tags.update(override)
        for tag, value in tags.items():
            stored.SetMetaData(tag, value)
        path = folder / names[k]
        writer.SetFileName(str(path))
        writer.Execute(stored)
        if not rescale:  # GDCM adds an identity rescale to CT files; a broken export has none
            ds = pydicom.dcmread(str(path))
            for keyword in ("RescaleIntercept", "RescaleSlope", "RescaleType"):
                if keyword in ds:
                    delattr(ds, keyword)
            ds.save_as(str(path))
        paths.append(path)
    return paths


def oblique_flipped_direction() -> np.ndarray:
    """A rotation about all three axes combined with a flip of the second axis (determinant -1)."""
    a, b, c = np.radians([20.0, -10.0, 35.0])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx @ np.diag([1.0, -1.0, 1.0])


DX_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"


def gradient(rows=80, cols=96, top=255) -> np.ndarray:
    """A left-to-right ramp 0..top."""
    return np.tile(np.linspace(0, top, cols), (rows, 1)).round()


def write_dx(path: Path, pixels: np.ndarray, *, photometric="MONOCHROME2", modality="DX", window=None,
             function=None, spacing=(0.2, 0.15), slope=1.0, intercept=0.0) -> Path:
    """A 12-bit digital radiograph (DX) DICOM file built with pydicom, with optional VOI window and rescale."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = DX_STORAGE, meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PhotometricInterpretation = photometric
    ds.SamplesPerPixel = 1
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.ImagerPixelSpacing = list(spacing)
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    if function:
        ds.VOILUTFunction = function
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return path
