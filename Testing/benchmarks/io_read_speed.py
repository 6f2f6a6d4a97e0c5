"""How long reading the real 512x512x141 chest CT takes in each input form, with and without the CT checks.

Writes the CT as NRRD, MHA and a DICOM series (141 files, shuffled names) to a temporary folder, then times
``read_image`` (median of 3 runs). Run: ``nice -n 10 python Testing/benchmarks/io_read_speed.py``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
from io_testdata import write_dicom_series  # noqa: E402

from lungai.io import read_image, write_image  # noqa: E402

DATA = Path(os.environ.get("LUNGAI_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def timed(call, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    source = DATA / "ct/chest-ct-141/ct.nii.gz"
    if not source.exists():
        sys.exit(f"real CT {source} is absent; set LUNGAI_SHARED_DATA")
    ct = read_image(source)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs = {"NIfTI .nii.gz (given)": source,
                  "NRRD (gzip)": write_image(ct, tmp / "ct.nrrd"),
                  "MHA (gzip)": write_image(ct, tmp / "ct.mha")}
        write_dicom_series(tmp / "dicom", sitk.ReadImage(str(source)))
        inputs["DICOM series, 141 files"] = tmp / "dicom"
        print(f"reading {source.name} {ct.size} ({ct.array.nbytes / 1e6:.0f} MB as {ct.array.dtype}), median of 3")
        for name, path in inputs.items():
            checked = timed(lambda: read_image(path))
            plain = timed(lambda: read_image(path, check="none"))
            print(f"  {name:26s} read_image: {checked:6.2f} s with CT checks, {plain:6.2f} s without")


if __name__ == "__main__":
    main()
