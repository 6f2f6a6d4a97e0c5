"""PDF rendering of a :class:`lungai.report.document.Report` with matplotlib's ``PdfPages`` (A4 portrait)."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

if TYPE_CHECKING:
    from lungai.report.document import Report

A4 = (8.27, 11.69)
MARGIN = 0.06
LINE = 0.018  # fraction of the page height per text line


class _Pager:
    def __init__(self, pdf: PdfPages, title: str):
        self.pdf, self.title = pdf, title
        self.fig = None
        self.y = 0.0
        self.page = 0

    def new_page(self) -> None:
        self.flush()
        self.page += 1
        self.fig = plt.figure(figsize=A4)
        self.fig.text(MARGIN, 0.975, self.title, fontsize=8, color="#666")
        self.fig.text(1 - MARGIN, 0.975, f"page {self.page}", fontsize=8, color="#666", ha="right")
        self.y = 0.95

    def need(self, height: float) -> None:
        if self.fig is None or self.y - height < MARGIN:
            self.new_page()

    def text(self, text: str, size: float = 9, weight: str = "normal", width: int = 100, color: str = "#222") -> None:
        lines: List[str] = []
        for paragraph in str(text).split("\n"):
            lines += textwrap.wrap(paragraph, width) or [""]
        scale = size / 9.0
        for line in lines:
            self.need(LINE * scale)
            self.fig.text(MARGIN, self.y, line, fontsize=size, weight=weight, color=color, va="top",
                          family="DejaVu Sans")
            self.y -= LINE * scale * 1.15
        self.y -= LINE * 0.3

    def table(self, columns, rows, caption: str) -> None:
        """Tables as monospaced text rows (fast to draw, exact column alignment)."""
        from lungai.report.document import _fmt

        cells = [[str(c) for c in columns]] + [[_fmt(r.get(c)) for c in columns] for r in rows]
        widths = [min(max(len(row[n]) for row in cells), 28) for n in range(len(columns))]
        size = 7 if sum(widths) + 2 * len(widths) < 110 else 5.5
        if caption:
            self.need(LINE * 3)
            self.text(caption, size=8, weight="bold", width=110)
        for number, row in enumerate(cells):
            line = "  ".join(value[:w].ljust(w) if n == 0 else value[:w].rjust(w)
                             for n, (value, w) in enumerate(zip(row, widths)))
            self.need(LINE * size / 9.0)
            self.fig.text(MARGIN, self.y, line, fontsize=size, family="monospace", va="top",
                          weight="bold" if number == 0 else "normal")
            self.y -= LINE * size / 9.0 * 1.15
        self.y -= LINE * 0.5

    def image(self, png: bytes, caption: str) -> None:
        picture = mpimg.imread(io.BytesIO(png), format="png")
        h, w = picture.shape[:2]
        width = 1 - 2 * MARGIN
        height = min(width * h / w * A4[0] / A4[1], 0.6)
        self.need(height + 2 * LINE)
        ax = self.fig.add_axes([MARGIN, self.y - height, width, height])
        ax.imshow(picture)
        ax.axis("off")
        self.y -= height + LINE * 0.5
        if caption:
            self.text(caption, size=7, color="#555", width=120)

    def flush(self) -> None:
        if self.fig is not None:
            self.pdf.savefig(self.fig)
            plt.close(self.fig)
            self.fig = None


def render_pdf(report: "Report", path: Path) -> None:
    with PdfPages(str(path)) as pdf:
        pager = _Pager(pdf, report.title)
        pager.new_page()
        pager.text(report.title, size=15, weight="bold", width=60)
        if report.subtitle:
            pager.text(report.subtitle, size=9, color="#444")
        for block in report.blocks:
            d = block.data
            if block.kind == "heading":
                pager.need(LINE * 3)
                pager.text(d["text"], size=12, weight="bold", width=70)
            elif block.kind == "paragraph":
                pager.text(d["text"])
            elif block.kind == "statement":
                pager.text("Important: " + d["text"], weight="bold", color="#a33")
            elif block.kind == "keyvalues":
                from lungai.report.document import _fmt

                for key, value in d["items"].items():
                    pager.text(f"{key}: {_fmt(value)}")
            elif block.kind == "table":
                pager.table(d["columns"], d["rows"], d["caption"])
            elif block.kind == "figure":
                pager.image(d["png"], d["caption"])
        pager.flush()
        info = pdf.infodict()
        info["Title"] = report.title
        info["Creator"] = "LungAI"
