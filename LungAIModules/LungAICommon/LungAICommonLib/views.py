"""View helpers shared by the LungAI modules: jump to a point, overlays, compare layout, Segment Editor."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

import qt
import slicer


def newWorkDirectory(task: str) -> Path:
    """A fresh folder for one run's input and outputs, under Slicer's temporary folder."""
    base = Path(slicer.app.temporaryPath) / "LungAI"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{task}-{time.strftime('%Y%m%d-%H%M%S')}-", dir=str(base)))


def jumpSlicesToRas(ras: Sequence[float]) -> None:
    """Centre all slice views on a RAS point (mm)."""
    r, a, s = (float(v) for v in ras[:3])
    slicer.modules.markups.logic().JumpSlicesToLocation(r, a, s, True)


def showVolume(volumeNode: slicer.vtkMRMLVolumeNode, fit: bool = True) -> None:
    slicer.util.setSliceViewerLayers(background=volumeNode, fit=fit)


def showOverlay(backgroundNode: slicer.vtkMRMLVolumeNode, overlayNode: slicer.vtkMRMLScalarVolumeNode,
                opacity: float = 0.4, colorNodeId: str = "vtkMRMLColorTableNodeFileColdToHotRainbow.txt",
                fit: bool = False) -> None:
    """Show ``overlayNode`` (e.g. a heat map) over ``backgroundNode`` with a colour table and opacity."""
    displayNode = overlayNode.GetDisplayNode()
    if displayNode is None:
        overlayNode.CreateDefaultDisplayNodes()
        displayNode = overlayNode.GetDisplayNode()
    if slicer.mrmlScene.GetNodeByID(colorNodeId) is None:
        colorNodeId = "vtkMRMLColorTableNodeRainbow"
    displayNode.SetAndObserveColorNodeID(colorNodeId)
    displayNode.SetAutoWindowLevel(False)
    displayNode.SetWindowLevelMinMax(0.0, 1.0)
    slicer.util.setSliceViewerLayers(background=backgroundNode, foreground=overlayNode, foregroundOpacity=opacity,
                                     fit=fit)


def compareSideBySide(leftVolume: slicer.vtkMRMLVolumeNode, rightVolume: slicer.vtkMRMLVolumeNode) -> None:
    """Side-by-side layout, left and right views showing the two volumes, with linked slice controllers."""
    layoutManager = slicer.app.layoutManager()
    layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView)
    for viewName, volume in (("Red", leftVolume), ("Yellow", rightVolume)):
        sliceWidget = layoutManager.sliceWidget(viewName)
        if sliceWidget is None:
            continue
        sliceWidget.mrmlSliceNode().SetOrientationToAxial()
        compositeNode = sliceWidget.mrmlSliceCompositeNode()
        compositeNode.SetBackgroundVolumeID(volume.GetID())
        compositeNode.SetForegroundVolumeID(None)
        compositeNode.SetLinkedControl(True)
        sliceWidget.sliceLogic().FitSliceToAll()
    copyWindowLevel(leftVolume, rightVolume)


def copyWindowLevel(source: slicer.vtkMRMLVolumeNode, target: slicer.vtkMRMLVolumeNode) -> None:
    """Same window and level on both volumes, so that a denoised CT compares fairly with its input."""
    sourceDisplay, targetDisplay = source.GetDisplayNode(), target.GetDisplayNode()
    if sourceDisplay is None or targetDisplay is None:
        return
    targetDisplay.SetAutoWindowLevel(False)
    targetDisplay.SetWindowLevel(sourceDisplay.GetWindow(), sourceDisplay.GetLevel())


def openInSegmentEditor(segmentationNode: slicer.vtkMRMLSegmentationNode,
                        sourceVolume: Optional[slicer.vtkMRMLScalarVolumeNode]) -> None:
    """Switch to the Segment Editor with this segmentation and source volume selected."""
    slicer.util.selectModule("SegmentEditor")
    editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
    editor.setSegmentationNode(segmentationNode)
    if sourceVolume is not None:
        if hasattr(editor, "setSourceVolumeNode"):
            editor.setSourceVolumeNode(sourceVolume)
        else:  # Slicer before 5.2 called it the master volume
            editor.setMasterVolumeNode(sourceVolume)


def tableViewRow(tableView, index) -> dict:
    """Column title -> text of the clicked row of a table view (right even when the view is sorted)."""
    model = tableView.model()
    values = {}
    for column in range(model.columnCount()):
        title = str(model.headerData(column, qt.Qt.Horizontal, qt.Qt.DisplayRole))
        values[title] = model.data(model.index(index.row(), column), qt.Qt.DisplayRole)
    return values


def openFile(path: Path) -> None:
    """Open a file (e.g. an HTML report) with the system's default application."""
    qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(str(path)))


def saveCopyAs(source: Path, title: str, fileFilter: str, companions: Sequence[str] = ()) -> Optional[Path]:
    """Ask where to save a copy of ``source`` (and files it links to, e.g. its figures); None if cancelled."""
    target = qt.QFileDialog.getSaveFileName(slicer.util.mainWindow(), title, str(Path.home() / source.name),
                                            fileFilter)
    if not target:
        return None
    target = Path(target)
    shutil.copyfile(source, target)
    for name in companions:
        companion = source.parent / name
        if companion.is_file() and not (target.parent / name).exists():
            shutil.copyfile(companion, target.parent / name)
    return target
