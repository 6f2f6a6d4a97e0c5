"""Reading and writing the files radiologists' images come in (see :mod:`lungai.image` for conventions)."""

from lungai.io.atomic import atomic_output
from lungai.io.dicom import describe_dicom_series, list_dicom_series, read_dicom_series
from lungai.io.readers import read_image, read_xray
from lungai.io.writers import write_image, write_json
from lungai.io.segmentation import Segment, labels_on_grid, read_segmentation, write_segmentation

__all__ = ["atomic_output", "read_image", "read_dicom_series", "list_dicom_series", "describe_dicom_series",
           "read_xray", "write_image", "write_json",
           "Segment", "write_segmentation", "read_segmentation", "labels_on_grid"]
