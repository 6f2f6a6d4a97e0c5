"""MRML nodes <-> ``lungai`` data: volumes, segmentations, tables, plots, and jumping the views to a point.

Slicer volumes are RAS (``GetIJKToRASMatrix``), ``lungai.Image`` is LPS; both index arrays ``[k, j, i]``, so the
voxels transfer unchanged and only the geometry is converted (``Image.from_ijk_to_ras`` / ``Image.ijk_to_ras``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import slicer
import vtk

from lungai.image import Image


# -- volumes ------------------------------------------------------------------------------------------------
def ijkToRasArray(volumeNode: slicer.vtkMRMLVolumeNode) -> np.ndarray:
    """The node's IJK-to-RAS matrix in world coordinates (a linear parent transform applied)."""
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    ijkToRas = slicer.util.arrayFromVTKMatrix(matrix)
    transformNode = volumeNode.GetParentTransformNode()
    if transformNode is not None:
        if not transformNode.IsTransformToWorldLinear():
            raise ValueError(f"'{volumeNode.GetName()}' is under a non-linear transform; harden it first "
                             "(Data module, right-click, Harden transform)")
        toWorld = vtk.vtkMatrix4x4()
        transformNode.GetMatrixTransformToWorld(toWorld)
        ijkToRas = slicer.util.arrayFromVTKMatrix(toWorld) @ ijkToRas
    return ijkToRas


def imageFromVolumeNode(volumeNode: slicer.vtkMRMLVolumeNode) -> Image:
    """A ``lungai.Image`` (LPS geometry) holding a copy of a scalar volume's voxels.

    Single-slice volumes (a radiograph loaded as a volume) become 2D images.
    """
    if volumeNode is None or volumeNode.GetImageData() is None:
        raise ValueError("the volume has no image data")
    array = np.array(slicer.util.arrayFromVolume(volumeNode), copy=True)
    if array.ndim != 3:
        raise ValueError(f"'{volumeNode.GetName()}' is not a scalar volume (array shape {array.shape})")
    image = Image.from_ijk_to_ras(array, ijkToRasArray(volumeNode), {"source": volumeNode.GetName()})
    if array.shape[0] == 1:
        return Image(array[0], image.spacing[:2], image.origin[:2], image.direction[:2, :2], image.metadata)
    return image


def _as3d(image: Image) -> Image:
    if image.ndim == 3:
        return image
    direction = np.eye(3)
    direction[:2, :2] = image.direction
    return Image(image.array[np.newaxis], tuple(image.spacing) + (1.0,), tuple(image.origin) + (0.0,), direction,
                 image.metadata)


def volumeNodeFromImage(image: Image, name: str, labelmap: bool = False,
                        node: Optional[slicer.vtkMRMLVolumeNode] = None) -> slicer.vtkMRMLVolumeNode:
    """A new (or the given) scalar or label map volume node holding ``image`` with its geometry."""
    image = _as3d(image)
    array = image.array
    if array.dtype == np.int64 or array.dtype == np.uint64:
        array = array.astype(np.int32)  # updateVolumeFromArray rejects 64-bit integers
    if array.dtype == bool:
        array = array.astype(np.uint8)
    ijkToRas = image.ijk_to_ras()
    if node is None:
        className = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
        return slicer.util.addVolumeFromArray(np.ascontiguousarray(array), ijkToRAS=ijkToRas, name=name,
                                              nodeClassName=className)
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array))
    node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(ijkToRas))
    node.SetName(name)
    return node


def writeVolumeNode(volumeNode: slicer.vtkMRMLVolumeNode, path: Path) -> Path:
    """Write a volume for the CLI with exact geometry, without touching the node's storage (unlike saveNode)."""
    from lungai.io import write_image

    return write_image(imageFromVolumeNode(volumeNode), Path(path))




# -- segmentations ------------------------------------------------------------------------------------------
def loadSegmentationFile(path: Path, name: str, referenceVolume: Optional[slicer.vtkMRMLScalarVolumeNode] = None,
                         show3D: bool = True, opacity2D: Optional[float] = None) -> slicer.vtkMRMLSegmentationNode:
    """Load a ``.seg.nrrd`` (names, colours and terminology kept) and show it in slices and, if asked, in 3D."""
    segmentationNode = slicer.util.loadSegmentation(str(path))
    if segmentationNode is None:
        raise RuntimeError(f"Slicer could not load the segmentation {path}")
    segmentationNode.SetName(slicer.mrmlScene.GenerateUniqueName(name))
    if referenceVolume is not None:
        segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(referenceVolume)
    segmentationNode.CreateDefaultDisplayNodes()
    displayNode = segmentationNode.GetDisplayNode()
    if opacity2D is not None and displayNode is not None:
        displayNode.SetOpacity2DFill(opacity2D)
    if show3D:
        segmentationNode.CreateClosedSurfaceRepresentation()
    return segmentationNode




def segmentNames(segmentationNode: slicer.vtkMRMLSegmentationNode) -> List[str]:
    segmentation = segmentationNode.GetSegmentation()
    return [segmentation.GetNthSegment(index).GetName() for index in range(segmentation.GetNumberOfSegments())]


# -- tables and plots ---------------------------------------------------------------------------------------
def _isNumber(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return value.strip() != ""
    return False


def tableNodeFromRows(rows: Sequence[Mapping[str, Any]], name: str, columns: Optional[Sequence[str]] = None,
                      node: Optional[slicer.vtkMRMLTableNode] = None,
                      textColumns: Sequence[str] = ()) -> slicer.vtkMRMLTableNode:
    """A table node with one row per mapping; all-numeric columns become numbers (sortable), others and
    ``textColumns`` (identifiers) text."""
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    tableNode = node if node is not None else slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode")
    tableNode.SetName(name)
    table = tableNode.GetTable()
    wasModifying = tableNode.StartModify()
    table.Initialize()
    for column in columns:
        values = [row.get(column, "") for row in rows]
        numeric = column not in textColumns and bool(values) and all(_isNumber(v) for v in values)
        array = vtk.vtkDoubleArray() if numeric else vtk.vtkStringArray()
        array.SetName(str(column))
        for value in values:
            if numeric:
                array.InsertNextValue(float(value))
            else:
                array.InsertNextValue("" if value is None else _text(value))
        table.AddColumn(array)
    table.Modified()
    tableNode.SetUseColumnNameAsColumnHeader(True)
    tableNode.EndModify(wasModifying)
    return tableNode


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def readCsvRows(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))






def plotChartFromTable(tableNode: slicer.vtkMRMLTableNode, xColumn: str, yColumns: Iterable[str], title: str,
                       xTitle: str, yTitle: str, colors: Optional[Mapping[str, Sequence[float]]] = None,
                       show: bool = True) -> slicer.vtkMRMLPlotChartNode:
    """A line chart with one series per y column of a table, shown in a plot view of the layout."""
    chartNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLPlotChartNode", title)
    for column in yColumns:
        seriesNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", f"{title}: {column}")
        seriesNode.SetAndObserveTableNodeID(tableNode.GetID())
        seriesNode.SetXColumnName(xColumn)
        seriesNode.SetYColumnName(column)
        seriesNode.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
        seriesNode.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleNone)
        if colors and column in colors:
            red, green, blue = colors[column][:3]
            seriesNode.SetColor(red, green, blue)
        else:
            seriesNode.SetUniqueColor()
        chartNode.AddAndObservePlotSeriesNodeID(seriesNode.GetID())
    chartNode.SetTitle(title)
    chartNode.SetXAxisTitle(xTitle)
    chartNode.SetYAxisTitle(yTitle)
    if show:
        slicer.modules.plots.logic().ShowChartInLayout(chartNode)
    return chartNode


def applyStandardColors(segmentationNode: slicer.vtkMRMLSegmentationNode) -> None:
    """Give segments named like a LungAI structure (e.g. "ground-glass opacity") that structure's colour."""
    from lungai.terminology import STRUCTURES

    colors = {sdef.name.lower(): sdef.color for sdef in STRUCTURES.values()}
    colors.update({key.replace("_", " "): sdef.color for key, sdef in STRUCTURES.items()})
    segmentation = segmentationNode.GetSegmentation()
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        color = colors.get(segment.GetName().lower().replace("_", " "))
        if color is not None:
            segment.SetColor(*color)


def writeLungLabelMap(segmentation: slicer.vtkMRMLSegmentationNode, volume: slicer.vtkMRMLScalarVolumeNode,
                      path: Path) -> Path:
    """A (corrected) lung segmentation as the lungs label map the CLI takes (1 right, 2 left, 3 airways), on the
    volume's grid; segments are matched by name ("right lung", "left_lung", ...)."""
    from lungai.io import write_image
    from lungai.labels import LUNG_LABELS

    from LungAICommonLib.review_labels import label_for_segment

    reference = imageFromVolumeNode(volume)
    labels = np.zeros(reference.shape, np.uint8)
    names = []
    for index in range(segmentation.GetSegmentation().GetNumberOfSegments()):
        segment = segmentation.GetSegmentation().GetNthSegment(index)
        value = label_for_segment(segment.GetName(), LUNG_LABELS)
        if value is None:
            continue
        segmentId = segmentation.GetSegmentation().GetNthSegmentID(index)
        labels[slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segmentId, volume) > 0] = value
        names.append(segment.GetName())
    if not {1, 2} <= set(np.unique(labels).tolist()):
        raise ValueError(f"'{segmentation.GetName()}' needs non-empty 'right lung' and 'left lung' segments "
                         f"(found: {', '.join(names) or 'none'})")
    return write_image(reference.like(labels), path)
