"""Report helpers shared by every capability: self-contained HTML and PDF documents, figures and CSV tables."""

from lungai.report.document import READER_STATEMENT, Report, png_bytes
from lungai.report.tables import write_csv

__all__ = ["READER_STATEMENT", "Report", "png_bytes", "write_csv"]
