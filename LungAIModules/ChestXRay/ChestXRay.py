"""ChestXRay: classify a frontal chest radiograph (normal, bacterial or viral pneumonia) and show where the
classifier looked as a heat map over the image.

Thin module: ``lungai xray`` runs in the background on the radiograph file; probabilities and the heat map come
back into a table and a foreground volume with a colour table and opacity.
"""

import json
import logging
from pathlib import Path
from typing import Annotated

import numpy as np
import qt
import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest)

from LungAICommonLib import commands, dependencies, synthetic
from LungAICommonLib.background import BackgroundCliRunner
from LungAICommonLib.cli_runner import JobState
from LungAICommonLib.module_widget import LungAIModuleWidget
from LungAICommonLib.nodes import imageFromVolumeNode, ijkToRasArray, tableNodeFromRows, volumeNodeFromImage
from LungAICommonLib.results import format_value, probability_rows, xray_summary_lines
from LungAICommonLib.views import newWorkDirectory, showOverlay, showVolume

SOURCE_ATTRIBUTE = "LungAI.SourcePath"
CLASSIFIER = "xray-pneumonia"
FILE_FILTER = "Radiographs (*.png *.jpg *.jpeg *.tif *.tiff *.dcm *.dicom);;All files (*)"


class ChestXRay(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Chest X-Ray")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "LungAI")]
        self.parent.dependencies = ["LungAICommon"]
        self.parent.contributors = ["LungAI contributors"]
        self.parent.helpText = _(
            "Classifies a frontal chest radiograph as normal, bacterial or viral pneumonia with calibrated "
            "probabilities and overlays a heat map of the regions that drove the decision. "
            "The classification supports a reader; it does not replace one.")
        self.parent.acknowledgementText = _("LungAI is open source (Apache-2.0).")


@parameterNodeWrapper
class ChestXRayParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    probabilityTable: vtkMRMLTableNode
    heatmapVolume: vtkMRMLScalarVolumeNode
    showHeatmap: bool = True
    heatmapOpacity: Annotated[float, WithinRange(0.0, 1.0)] = 0.4
    prediction: str = ""


class ChestXRayWidget(LungAIModuleWidget):
    def setup(self) -> None:
        LungAIModuleWidget.setup(self)
        self.logic = ChestXRayLogic()
        self.runner = BackgroundCliRunner(self.ui.progressBar, self.ui.statusLabel, self.ui.cancelButton,
                                          busyWidgets=[self.ui.applyButton, self.ui.loadButton])

        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.loadButton.connect("clicked(bool)", self.onLoadButton)
        self.ui.modelVersionComboBox.addItem(_("newest registered"), "")
        for version in self.logic.classifierVersions():
            self.ui.modelVersionComboBox.addItem(version, version)

        self.initializeParameterNode()

    def _updateGui(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        self.ui.applyButton.enabled = bool(p.inputVolume) and not self.runner.running
        self.ui.predictionLabel.text = p.prediction
        self.ui.probabilityTableView.setMRMLTableNode(p.probabilityTable)
        self.ui.opacitySlider.enabled = bool(p.heatmapVolume) and p.showHeatmap
        if p.inputVolume and p.heatmapVolume:
            self.logic.showHeatmap(p)

    def onLoadButton(self) -> None:
        path = qt.QFileDialog.getOpenFileName(slicer.util.mainWindow(), _("Load chest radiograph"), "", FILE_FILTER)
        if not path:
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to load the radiograph."), waitCursor=True):
            self._parameterNode.inputVolume = self.logic.loadRadiograph(Path(path))

    def onApplyButton(self) -> None:
        if not dependencies.ensure_dependencies():
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start the classification."), waitCursor=True):
            self.logic.classify(self._parameterNode, self.runner, onDone=self._updateGui,
                                modelVersion=str(self.ui.modelVersionComboBox.currentData or ""))


class ChestXRayLogic(ScriptedLoadableModuleLogic):
    """Loads radiographs, runs ``lungai xray`` and shows its probabilities and heat map."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return ChestXRayParameterNode(super().getParameterNode())

    @staticmethod
    def loadRadiograph(path: Path) -> vtkMRMLScalarVolumeNode:
        """Read a radiograph the way the classifier does (DICOM windowing, MONOCHROME1) into a volume 0..1."""
        from lungai.io import read_xray

        image = read_xray(path)
        node = volumeNodeFromImage(image, path.name.split(".")[0])
        node.SetAttribute(SOURCE_ATTRIBUTE, str(path))
        node.CreateDefaultDisplayNodes()
        display = node.GetDisplayNode()
        display.SetAutoWindowLevel(False)
        display.SetWindowLevelMinMax(0.0, 1.0)
        showVolume(node)
        return node

    @staticmethod
    def radiographFile(volume: vtkMRMLScalarVolumeNode, folder: Path) -> Path:
        """The original file when the node came from one, else a 16-bit PNG written from the node's voxels."""
        source = volume.GetAttribute(SOURCE_ATTRIBUTE)
        if source and Path(source).is_file():
            return Path(source)
        from PIL import Image as PILImage

        image = imageFromVolumeNode(volume)
        if image.ndim != 2:
            raise ValueError(_("'{name}' is a 3D volume; a radiograph is a single image.").format(
                name=volume.GetName()))
        values = image.array.astype(np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        path = folder / "radiograph.png"
        PILImage.fromarray(np.round(scaled * 65535).astype(np.uint16)).save(path)
        return path

    @staticmethod
    def classifierVersions() -> list:
        """Registered versions of the classifier, newest first (empty when the registry cannot be read)."""
        try:
            from lungai.models.registry import load_registry, version_key
        except ImportError:
            return []
        try:
            entries = [e for e in load_registry() if e.name == CLASSIFIER]
        except Exception as exc:  # an unreadable user registry must not break the panel
            logging.warning("LungAI: model registry not readable: %s", exc)
            return []
        return [e.version for e in sorted(entries, key=lambda e: version_key(e.version), reverse=True)]

    def classify(self, parameters: ChestXRayParameterNode, runner: BackgroundCliRunner, onDone=None,
                 modelVersion: str = ""):
        volume = parameters.inputVolume
        if volume is None:
            raise ValueError(_("Load or select a chest radiograph."))
        workFolder = newWorkDirectory("xray")
        imagePath = self.radiographFile(volume, workFolder)

        outputFolder = workFolder / "output"
        return runner.start(commands.xray(imagePath, outputFolder, modelVersion),
                            lambda result, outputs: self.loadResults(parameters, result, outputFolder, outputs),
                            label=_("Chest X-ray classification"), onDone=onDone)

    def loadResults(self, parameters: ChestXRayParameterNode, result: dict, outputFolder: Path,
                    outputs: dict) -> None:
        from lungai.io import read_image

        resultPath = Path(outputs.get("result", outputFolder / "result.json"))
        if resultPath.is_file():
            result = json.loads(resultPath.read_text(encoding="utf-8"))
        rows = probability_rows(result)
        if not rows:
            raise RuntimeError(_("The classifier returned no probabilities."))
        for node in (parameters.probabilityTable, parameters.heatmapVolume):
            if node is not None and node.GetScene() is not None:
                slicer.mrmlScene.RemoveNode(node)
        name = parameters.inputVolume.GetName()
        parameters.probabilityTable = tableNodeFromRows(rows, f"{name} class probabilities")
        parameters.prediction = "\n".join(xray_summary_lines(result))
        heatmapPath = Path(outputs.get("heatmap", outputFolder / "heatmap.nrrd"))
        if heatmapPath.is_file():
            heatmap = volumeNodeFromImage(read_image(heatmapPath, check="none"), f"{name} heat map")
            self.fitToReference(heatmap, parameters.inputVolume)
            parameters.heatmapVolume = heatmap
        logging.info("LungAI x-ray: %s", ", ".join(f"{r['class']} {format_value(r['probability'])}" for r in rows))

    @staticmethod
    def fitToReference(overlay: vtkMRMLScalarVolumeNode, reference: vtkMRMLScalarVolumeNode) -> None:
        """Place an overlay computed on a resized grid so that it covers the reference image exactly."""
        referenceDims = np.array(reference.GetImageData().GetDimensions(), float)
        overlayDims = np.array(overlay.GetImageData().GetDimensions(), float)
        referenceMatrix = ijkToRasArray(reference)
        scale = np.where(overlayDims > 0, referenceDims / np.maximum(overlayDims, 1), 1.0)
        scale[2] = 1.0
        matrix = referenceMatrix.copy()
        matrix[:3, :3] = referenceMatrix[:3, :3] @ np.diag(scale)
        matrix[:3, 3] = (referenceMatrix @ np.array([(scale[0] - 1) / 2, (scale[1] - 1) / 2, 0.0, 1.0]))[:3]
        overlay.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(matrix))

    @staticmethod
    def showHeatmap(parameters: ChestXRayParameterNode) -> None:
        if parameters.showHeatmap and parameters.heatmapVolume is not None:
            showOverlay(parameters.inputVolume, parameters.heatmapVolume, parameters.heatmapOpacity)
        else:
            slicer.util.setSliceViewerLayers(background=parameters.inputVolume, foreground=None)


class ChestXRayTest(ScriptedLoadableModuleTest):
    """Loads a synthetic radiograph, classifies it and checks the probabilities and the heat map geometry."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_OverlayFit()
        self.setUp()
        self.test_SyntheticRadiograph()

    def test_OverlayFit(self):
        reference = slicer.util.addVolumeFromArray(np.zeros((1, 400, 300), np.float32),
                                                   ijkToRAS=np.diag([-0.5, -0.5, 1.0, 1.0]), name="ref")
        overlay = slicer.util.addVolumeFromArray(np.zeros((1, 100, 75), np.float32), name="overlay")
        ChestXRayLogic.fitToReference(overlay, reference)
        matrix = ijkToRasArray(overlay)
        # the overlay's first pixel centre sits at the centre of the 4x4 reference block it covers
        np.testing.assert_allclose(matrix @ [0, 0, 0, 1], [-0.75, -0.75, 0, 1], atol=1e-6)
        np.testing.assert_allclose(np.diag(matrix)[:3], [-2.0, -2.0, 1.0], atol=1e-6)

    def test_SyntheticRadiograph(self):
        self.delayDisplay("Classify a synthetic radiograph")
        path = synthetic.radiograph_png(newWorkDirectory("xray-test"))
        logic = ChestXRayLogic()
        parameters = logic.getParameterNode()
        parameters.inputVolume = logic.loadRadiograph(path)
        self.assertEqual(parameters.inputVolume.GetImageData().GetDimensions(), (256, 256, 1))
        if not dependencies.model_installed(CLASSIFIER):
            self.delayDisplay("The xray-pneumonia model weights are not installed (lungai models download "
                              "xray-pneumonia); classification step not run")
            return
        runner = BackgroundCliRunner()
        logic.classify(parameters, runner)
        self.assertEqual(runner.waitForCompletion(600), JobState.SUCCEEDED, runner.job.error)
        table = parameters.probabilityTable
        self.assertGreaterEqual(table.GetNumberOfRows(), 2)
        total = sum(float(table.GetCellText(row, 1)) for row in range(table.GetNumberOfRows()))
        self.assertAlmostEqual(total, 1.0, delta=0.01)
        self.assertTrue(parameters.prediction)
        if parameters.heatmapVolume is not None:
            corner = ijkToRasArray(parameters.heatmapVolume) @ [0, 0, 0, 1]
            reference = ijkToRasArray(parameters.inputVolume) @ [0, 0, 0, 1]
            self.assertLess(np.linalg.norm(corner[:3] - reference[:3]), 10.0)
        self.delayDisplay("Test passed")
