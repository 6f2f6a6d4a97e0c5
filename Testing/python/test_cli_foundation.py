"""``lungai info`` and ``lungai convert``: exit codes, error lines, JSON results and no leftovers on failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from io_testdata import UID_ROOT, gradient, synthetic_ct, write_dicom_series, write_dx
from lungai.cli.main import main
from lungai.image import Image
from lungai.io import read_image, write_image


@pytest.fixture()
def ct_file(tmp_path):
    path = tmp_path / "in" / "ct.nrrd"
    path.parent.mkdir()
    sitk.WriteImage(synthetic_ct(), str(path))
    return path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_convert_writes_the_same_image_and_reports_json(tmp_path, ct_file, capsys):
    out_file = tmp_path / "out" / "ct.nii.gz"
    code, out, err = run(capsys, "--json", "--progress", "none", "convert", str(ct_file), str(out_file))
    assert code == 0, err
    result = json.loads(out)
    assert result["outputs"] == {"image": str(out_file.resolve())} and result["size_ijk"] == [48, 40, 6]
    original, converted = read_image(ct_file), read_image(out_file)
    assert np.array_equal(original.array, converted.array) and converted.same_grid(original, tol=1e-5)
    assert sorted(os.listdir(out_file.parent)) == ["ct.nii.gz"]


def test_convert_reports_progress_as_json_lines(tmp_path, ct_file, capsys):
    code, _, err = run(capsys, "--progress", "json", "convert", str(ct_file), str(tmp_path / "ct.mha"))
    assert code == 0
    steps = [json.loads(line) for line in err.splitlines()]
    assert [s["progress"] for s in steps] == [0.0, 0.6, 1.0] and steps[-1]["message"] == "done"


def test_info_json_on_a_dicom_folder_lists_its_series(tmp_path, capsys):
    write_dicom_series(tmp_path / "dicom", synthetic_ct(), description="chest 2.5 mm")
    code, out, err = run(capsys, "--json", "info", str(tmp_path / "dicom"))
    assert code == 0, err
    result = json.loads(out)
    assert result["size_ijk"] == [48, 40, 6] and result["spacing_mm"] == pytest.approx([0.8, 0.8, 2.5])
    assert result["series"] == [{"series_uid": f"{UID_ROOT}.1", "modality": "CT", "description": "chest 2.5 mm",
                                 "files": 6, "size": [48, 40, 6]}]
    assert np.allclose(result["ijk_to_ras"], read_image(tmp_path / "dicom").ijk_to_ras())
    code, out, _ = run(capsys, "info", str(tmp_path / "dicom"))
    assert code == 0 and "chest 2.5 mm" in out and "check 'ct': passed" in out


def _empty_file(folder):
    (folder / "empty.nii.gz").write_bytes(b"")
    return folder / "empty.nii.gz"


def _empty_folder(folder):
    (folder / "nothing").mkdir()
    return folder / "nothing"


def _no_dicom_folder(folder):
    (folder / "notes").mkdir()
    (folder / "notes" / "readme.txt").write_text("no images\n")
    return folder / "notes"


def _truncated(folder):
    path = write_image(Image.from_sitk(synthetic_ct()), folder / "cut.nii.gz")
    path.write_bytes(path.read_bytes()[:200])
    return path


def _two_ct_series(folder):
    write_dicom_series(folder / "two", synthetic_ct(), series_uid=f"{UID_ROOT}.31")
    write_dicom_series(folder / "two", synthetic_ct(origin=(0.0, 0.0, 0.0)), series_uid=f"{UID_ROOT}.32", seed=4)
    return folder / "two"


def _gap(folder):
    write_dicom_series(folder / "gap", synthetic_ct(), skip=[2])
    return folder / "gap"


def _no_rescale(folder):
    write_dicom_series(folder / "raw", synthetic_ct(), rescale=False)
    return folder / "raw"


def _mr(folder):
    write_dicom_series(folder / "mr", synthetic_ct(), modality="MR")
    return folder / "mr"


def _ct_values(folder, name, values, spacing=(0.8, 0.8, 2.5)):
    return write_image(Image.from_sitk(synthetic_ct(spacing=spacing)).like(values), folder / name)


CT_VALUES = sitk.GetArrayFromImage(synthetic_ct())
NAN_VALUES = CT_VALUES.astype(np.float32)
NAN_VALUES[1, 2, 3] = np.nan

def test_info_reads_radiographs(tmp_path, shared_data, capsys):
    jpeg = shared_data / "cxr/kermany-224/NORMAL/IM-0003-0001.jpeg"
    code, out, err = run(capsys, "--json", "info", str(jpeg))
    assert code == 0, err
    result = json.loads(out)
    assert result["check"] == "xray" and result["size_ijk"] == [224, 224] and 0 <= result["min"] < result["max"] <= 1
    dx = write_dx(tmp_path / "cxr.dcm", gradient(rows=70, top=4000), photometric="MONOCHROME1")
    code, out, _ = run(capsys, "info", str(dx))
    assert code == 0 and "radiograph 96 x 70 pixels, spacing (0.15, 0.2) mm, modality DX" in out
    code, _, err = run(capsys, "info", str(dx), "--check", "ct")
    assert code == 2 and "modality is DX, not CT" in err


BAD_INPUTS = {
    "missing": (lambda d: d / "absent.nii.gz", "does not exist"),
    "empty": (_empty_file, "the file is empty"),
    "truncated": (_truncated, "truncated"),
    "empty_folder": (_empty_folder, "the folder is empty"),
    "no_dicom": (_no_dicom_folder, "holds no DICOM image series"),
    "mixed_series": (_two_ct_series, "mixed series: the folder holds 2 CT series"),
    "missing_slice": (_gap, "uneven slice positions"),
    "two_d": (lambda d: write_image(Image.from_array(np.full((40, 48), -900, np.int16)), d / "flat.nrrd"),
              "a 3D volume is required but this is a 2D image"),
    "mr_modality": (_mr, "modality is MR, not CT"),
    "mr_like": (lambda d: _ct_values(d, "mr.nii.gz", np.full(CT_VALUES.shape, 700, np.int16)),
                "have no negative numbers"),
    "eight_bit": (lambda d: _ct_values(d, "u8.nrrd", (CT_VALUES // 8 + 128).astype(np.uint8)),
                  "look like 8-bit windowed pixels"),
    "no_rescale": (_no_rescale, "no Rescale Slope/Intercept"),
    "absurd_spacing": (lambda d: _ct_values(d, "s.mha", CT_VALUES, spacing=(0.8, 0.8, 40.0)), "absurd voxel spacing"),
    "non_finite": (lambda d: _ct_values(d, "nan.nii.gz", NAN_VALUES), "contains 1 non-finite voxel values"),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_exits_2_with_the_reason_and_leaves_no_file(tmp_path, capsys, kind):
    make, problem = BAD_INPUTS[kind]
    source = make(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, out, err = run(capsys, "convert", str(source), str(out_dir / "ct.nrrd"))
    assert code == 2
    last = err.strip().splitlines()[-1]  # after the (cleared) progress bar
    assert last.startswith(f"lungai: error: {source}: ") and problem in last
    assert os.listdir(out_dir) == []  # neither the output nor a temporary file


def test_failure_while_writing_leaves_no_file(tmp_path, ct_file, capsys, monkeypatch):
    def broken(image, name, useCompression=True):
        with open(name, "wb") as handle:
            handle.write(b"half")
        raise RuntimeError("No space left on device")

    monkeypatch.setattr(sitk, "WriteImage", broken)
    with pytest.raises(RuntimeError):
        main(["convert", str(ct_file), str(tmp_path / "out.nrrd")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_wrong_output_format_is_a_usage_error(tmp_path, ct_file, capsys):
    code, _, err = run(capsys, "convert", str(ct_file), str(tmp_path / "ct.png"))
    assert code == 2 and "must end in .nii.gz, .nii, .nrrd, .mha" in err
    assert not (tmp_path / "ct.png").exists()


def test_help_reads_well(capsys):
    for command in ("info", "convert"):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and "Examples:" in out and "--series UID" in out and "--min-slices" in out
    code, out, _ = run(capsys, "--help")
    assert "info" in out and "convert" in out


def test_command_line_process_exit_code_and_message(tmp_path):
    missing = tmp_path / "missing.nii.gz"
    target = tmp_path / "out.nrrd"
    done = subprocess.run([sys.executable, "-m", "lungai.cli", "convert", str(missing), str(target)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == f"lungai: error: {missing}: does not exist"
    assert list(tmp_path.iterdir()) == []
