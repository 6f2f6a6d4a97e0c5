"""A report as an ordered list of blocks, rendered to one self-contained HTML file and to a PDF.

Blocks are headings, paragraphs, key-value lists, tables and PNG figures. HTML embeds figures as base64 data
URIs (the file opens anywhere, offline, and can be attached to an e-mail); the PDF is drawn with matplotlib's
``PdfPages`` so no system library is needed. Every report ends with the reader statement and the provenance.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from lungai.io.atomic import atomic_output

PathLike = Union[str, Path]

READER_STATEMENT = ("This report is produced by software to support a qualified reader. It does not replace the "
                    "reader's own review of the images, and it is not a diagnosis. Check every finding on the "
                    "images before relying on it.")

_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#222;line-height:1.4}
h1{font-size:1.6em;border-bottom:2px solid #446;padding-bottom:4px}h2{font-size:1.25em;margin-top:1.6em;color:#334}
table{border-collapse:collapse;margin:8px 0;font-size:0.9em}th,td{border:1px solid #bbb;padding:3px 8px;text-align:right}
th{background:#eef}td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:6px;vertical-align:top}
figcaption{font-size:0.85em;color:#555;max-width:520px}img{max-width:100%}.statement{border:2px solid #c63;background:#fff4ee;
padding:8px 12px;margin:12px 0}.kv td{text-align:left}.call-positive{color:#b22;font-weight:bold}.call-negative{color:#262;font-weight:bold}
"""


@dataclass
class Block:
    kind: str  # heading | paragraph | keyvalues | table | figure | statement
    data: Dict[str, Any] = field(default_factory=dict)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return "" if value is None else str(value)


class Report:
    """Build a report block by block, then :meth:`write_html` and :meth:`write_pdf`."""

    def __init__(self, title: str, subtitle: str = ""):
        self.title, self.subtitle = title, subtitle
        self.blocks: List[Block] = []

    def heading(self, text: str) -> "Report":
        self.blocks.append(Block("heading", {"text": text}))
        return self

    def paragraph(self, text: str, css_class: str = "") -> "Report":
        self.blocks.append(Block("paragraph", {"text": text, "class": css_class}))
        return self

    def key_values(self, items: Dict[str, Any]) -> "Report":
        self.blocks.append(Block("keyvalues", {"items": dict(items)}))
        return self

    def table(self, rows: Sequence[Dict[str, Any]], columns: Optional[Sequence[str]] = None,
              caption: str = "") -> "Report":
        rows = list(rows)
        columns = list(columns) if columns else (list(rows[0]) if rows else [])
        self.blocks.append(Block("table", {"rows": rows, "columns": columns, "caption": caption}))
        return self

    def figure(self, png: bytes, caption: str = "") -> "Report":
        self.blocks.append(Block("figure", {"png": png, "caption": caption}))
        return self

    def statement(self, text: str = READER_STATEMENT) -> "Report":
        self.blocks.append(Block("statement", {"text": text}))
        return self

    # -- HTML ---------------------------------------------------------------------------------------------------
    def to_html(self) -> str:
        e = html.escape
        parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
                 f"<title>{e(self.title)}</title><style>{_CSS}</style></head><body>", f"<h1>{e(self.title)}</h1>"]
        if self.subtitle:
            parts.append(f"<p>{e(self.subtitle)}</p>")
        for block in self.blocks:
            d = block.data
            if block.kind == "heading":
                parts.append(f"<h2>{e(d['text'])}</h2>")
            elif block.kind == "paragraph":
                cls = f" class='{e(d['class'])}'" if d["class"] else ""
                parts.append(f"<p{cls}>{e(d['text'])}</p>")
            elif block.kind == "statement":
                parts.append(f"<div class='statement'><strong>Important:</strong> {e(d['text'])}</div>")
            elif block.kind == "keyvalues":
                rows = "".join(f"<tr><th>{e(str(k))}</th><td>{e(_fmt(v))}</td></tr>" for k, v in d["items"].items())
                parts.append(f"<table class='kv'>{rows}</table>")
            elif block.kind == "table":
                head = "".join(f"<th>{e(str(c))}</th>" for c in d["columns"])
                body = "".join("<tr>" + "".join(f"<td>{e(_fmt(r.get(c)))}</td>" for c in d["columns"]) + "</tr>"
                               for r in d["rows"])
                cap = f"<caption>{e(d['caption'])}</caption>" if d["caption"] else ""
                parts.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif block.kind == "figure":
                data = base64.b64encode(d["png"]).decode("ascii")
                parts.append(f"<figure><img alt='{e(d['caption'])}' src='data:image/png;base64,{data}'>"
                             f"<figcaption>{e(d['caption'])}</figcaption></figure>")
        parts.append("</body></html>")
        return "\n".join(parts)

    def write_html(self, path: PathLike) -> Path:
        path = Path(path)
        with atomic_output(path) as tmp:
            tmp.write_text(self.to_html(), encoding="utf-8")
        return path

    # -- PDF ----------------------------------------------------------------------------------------------------
    def write_pdf(self, path: PathLike) -> Path:
        """A4 pages: text blocks flow top to bottom; tables and figures start a page when they do not fit."""
        from lungai.report.pdf import render_pdf

        path = Path(path)
        with atomic_output(path) as tmp:
            render_pdf(self, tmp)
        return path


def png_bytes(fig) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
