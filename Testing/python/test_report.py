"""Report helpers: self-contained HTML (escaped text, embedded PNG), PDF pages, CSV tables, slice orientation."""

from __future__ import annotations

import base64
import csv

import numpy as np

from lungai.image import Image
from lungai.report import READER_STATEMENT, Report, write_csv
from lungai.report.figures import best_slices, oriented_slice, overlay_png


def _report() -> Report:
    png = overlay_png(Image.from_array(np.full((4, 8, 8), -800.0)), np.eye(8, dtype=np.uint8)[None].repeat(4, 0),
                      {1: (1.0, 0.0, 0.0)}, {1: "lesion"}, "axial", 2, title="t")
    report = Report("Title <b>", "sub & title")
    report.statement().heading("Numbers").key_values({"count": 3, "volume": 1.23456})
    report.table([{"a": 1, "b": "x<y"}, {"a": 2.5, "b": None}], caption="cap").figure(png, "a figure")
    return report


def test_html_is_self_contained_and_escaped(tmp_path):
    path = _report().write_html(tmp_path / "r.html")
    text = path.read_text()
    assert "Title &lt;b&gt;" in text and "x&lt;y" in text and "<b>" not in text.replace("<body>", "")
    assert READER_STATEMENT[:40] in text and "1.235" in text
    start = text.index("data:image/png;base64,") + len("data:image/png;base64,")
    data = base64.b64decode(text[start:text.index("'", start)])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert "src='http" not in text and "<script" not in text


def test_pdf_has_pages(tmp_path):
    path = _report().write_pdf(tmp_path / "r.pdf")
    data = path.read_bytes()
    assert data[:5] == b"%PDF-" and data.count(b"/Type /Page") >= 2


def test_csv_round_trip(tmp_path):
    path = write_csv([{"x": 1.0, "y": (1.23456, 2.0)}, {"x": None, "y": "z"}], tmp_path / "t.csv")
    rows = list(csv.DictReader(path.open()))
    assert rows == [{"x": "1.0", "y": "1.235 2.0"}, {"x": "", "y": "z"}]
    assert write_csv([], tmp_path / "e.csv", ["a", "b"]).read_text() == "a,b\n"


def test_axial_slice_is_shown_in_radiological_orientation():
    """Patient right on the image left, anterior up, whatever the stored axis directions."""
    array = np.zeros((3, 4, 5))
    array[1, 0, 0] = 1  # i=0 (patient right-most with +i towards left), j=0 (anterior-most with +j posterior)
    standard = Image.from_array(array)
    picture, aspect = oriented_slice(array, standard, "axial", 1)
    assert picture[0, 0] == 1 and aspect == 1
    flipped = Image(array[:, ::-1, ::-1], (1, 1, 1), (0, 0, 0), np.diag([-1.0, -1.0, 1.0]))
    picture, _ = oriented_slice(flipped.array, flipped, "axial", 1)
    assert picture[0, 0] == 1
    coronal, _ = oriented_slice(array, standard, "coronal", 0)
    assert coronal.shape == (3, 5) and coronal[1, 0] == 1  # superior (k=2) on top -> k=1 in the middle row


def test_best_slices_picks_largest_areas():
    mask = np.zeros((40, 4, 4), dtype=bool)
    mask[5, :2], mask[30] = True, True
    assert best_slices(mask, Image.from_array(mask.astype(float)), "axial", 2) == [5, 30]
    assert best_slices(np.zeros_like(mask), Image.from_array(mask.astype(float)), "axial", 1) == [20]
