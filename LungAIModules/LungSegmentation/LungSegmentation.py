"""LungSegmentation: right and left lung, airways, zones and lobes of a chest CT, with volumes and densities.

The module is thin: it writes the input volume for the ``lungai lungs`` command, runs it in the background and
loads its outputs (segmentations with named, coloured segments and a figures table) back into the scene.
"""

import json
import logging
from pathlib import Path
from typing import Annotated

import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest)

from LungAICommonLib import commands, dependencies, synthetic
from LungAICommonLib.background import BackgroundCliRunner
from LungAICommonLib.cli_runner import JobState
from LungAICommonLib.module_widget import LungAIModuleWidget
from LungAICommonLib.nodes import loadSegmentationFile, tableNodeFromRows, writeVolumeNode
from LungAICommonLib.results import figures_rows, lung_summary_lines
from LungAICommonLib.views import newWorkDirectory, openInSegmentEditor

METHODS = commands.LUNG_METHODS


class LungSegmentation(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Lung Segmentation")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "LungAI")]
        self.parent.dependencies = ["LungAICommon"]
        self.parent.contributors = ["LungAI contributors"]
        self.parent.helpText = _(
            "Segments the right and left lung and the airways of a chest CT, optionally the lung zones and the "
            "five lobes, and reports volumes and densities. Correct the result in the Segment Editor. "
            "Results support a reader; they do not replace one.")
        self.parent.acknowledgementText = _("LungAI is open source (Apache-2.0).")


@parameterNodeWrapper
class LungSegmentationParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    method: Annotated[str, Choice(METHODS)] = "auto"
    loadZones: bool = True
    loadLobes: bool = True
    show3D: bool = True
    outputSegmentation: vtkMRMLSegmentationNode
    zonesSegmentation: vtkMRMLSegmentationNode
    lobesSegmentation: vtkMRMLSegmentationNode
    figuresTable: vtkMRMLTableNode
    summary: str = ""


class LungSegmentationWidget(LungAIModuleWidget):
    def setup(self) -> None:
        LungAIModuleWidget.setup(self)
        self.logic = LungSegmentationLogic()
        self.runner = BackgroundCliRunner(self.ui.progressBar, self.ui.statusLabel, self.ui.cancelButton,
                                          busyWidgets=[self.ui.applyButton, self.ui.inputsCollapsibleButton])

        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.correctButton.connect("clicked(bool)", self.onCorrectButton)

        self.initializeParameterNode()

    def _updateGui(self, caller=None, event=None) -> None:
        running = self.runner is not None and self.runner.running
        hasInput = bool(self._parameterNode and self._parameterNode.inputVolume)
        self.ui.applyButton.enabled = hasInput and not running
        self.ui.applyButton.toolTip = _("Segment the lungs") if hasInput else _("Select an input CT first")
        self.ui.correctButton.enabled = bool(self._parameterNode and self._parameterNode.outputSegmentation)
        self.ui.summaryLabel.text = self._parameterNode.summary if self._parameterNode else ""
        self.ui.figuresTableView.setMRMLTableNode(self._parameterNode.figuresTable if self._parameterNode else None)

    def onApplyButton(self) -> None:
        if not dependencies.ensure_dependencies():
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start the lung segmentation."), waitCursor=True):
            self.logic.process(self._parameterNode, self.runner, onDone=self._updateGui)

    def onCorrectButton(self) -> None:
        openInSegmentEditor(self._parameterNode.outputSegmentation, self._parameterNode.inputVolume)


class LungSegmentationLogic(ScriptedLoadableModuleLogic):
    """Runs ``lungai lungs`` on a volume node and loads what it writes."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return LungSegmentationParameterNode(super().getParameterNode())

    def process(self, parameters: LungSegmentationParameterNode, runner: BackgroundCliRunner, onDone=None):
        """Start the segmentation in the background; results land in ``parameters`` when it ends."""
        inputVolume = parameters.inputVolume
        if inputVolume is None:
            raise ValueError(_("Select an input CT volume."))
        workFolder = newWorkDirectory("lungs")
        inputPath = writeVolumeNode(inputVolume, workFolder / "input.nrrd")
        arguments = commands.lungs(inputPath, workFolder / "output", parameters.method)

        return runner.start(arguments, lambda result, outputs: self.loadResults(parameters, outputs),
                            label=_("Lung segmentation"), onDone=onDone)

    def loadResults(self, parameters: LungSegmentationParameterNode, outputs: dict) -> None:
        """Segmentations and figures table from the command's outputs, shown in slices (and 3D if asked)."""
        inputVolume = parameters.inputVolume
        baseName = inputVolume.GetName() if inputVolume else "CT"
        lungsPath = outputs.get("lungs_seg")
        if lungsPath is None:
            raise RuntimeError(f"lungai lungs reported no lungs.seg.nrrd (outputs: {sorted(outputs)})")
        # earlier results stay in the scene (they may hold corrections); the new ones get unique names
        parameters.outputSegmentation = loadSegmentationFile(lungsPath, f"{baseName} lungs", inputVolume,
                                                             show3D=parameters.show3D)
        for key, role, title, wanted in (("zones_seg", "zonesSegmentation", "zones", parameters.loadZones),
                                         ("lobes_seg", "lobesSegmentation", "lobes", parameters.loadLobes)):
            path = outputs.get(key)
            if not wanted or path is None or not Path(path).is_file():
                continue
            node = loadSegmentationFile(path, f"{baseName} {title}", inputVolume, show3D=False)
            node.GetDisplayNode().SetVisibility(False)  # the lungs stay visible; zones/lobes on demand
            setattr(parameters, role, node)
        figuresPath = outputs.get("figures")
        if figuresPath is not None and Path(figuresPath).is_file():
            figures = json.loads(Path(figuresPath).read_text(encoding="utf-8"))
            parameters.figuresTable = tableNodeFromRows(figures_rows(figures), f"{baseName} lung figures",
                                                        node=parameters.figuresTable)
            method = (figures.get("provenance") or {}).get("method")
            lines = lung_summary_lines(figures) + ([_("Method: {method}").format(method=method)] if method else [])
            parameters.summary = "\n".join(lines)
        logging.info("LungAI lungs: loaded %s", ", ".join(sorted(outputs)))


class LungSegmentationTest(ScriptedLoadableModuleTest):
    """Segments a small synthetic thorax made with numpy and checks the lung volumes against the truth."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_SyntheticThorax()

    def test_SyntheticThorax(self):
        self.delayDisplay("Synthetic thorax")
        thorax = synthetic.thorax()
        rightMl, leftMl = thorax["right_ml"], thorax["left_ml"]
        volume = slicer.util.addVolumeFromArray(thorax["ct"], ijkToRAS=thorax["ijk_to_ras"], name="thorax")
        logic = LungSegmentationLogic()
        parameters = logic.getParameterNode()
        parameters.inputVolume = volume
        parameters.method = "classic"
        runner = BackgroundCliRunner()
        logic.process(parameters, runner)
        self.assertEqual(runner.waitForCompletion(600), JobState.SUCCEEDED, runner.job.error)
        segmentation = parameters.outputSegmentation
        self.assertIsNotNone(segmentation)
        measured = {}
        for name in ("right lung", "left lung"):
            segmentId = segmentation.GetSegmentation().GetSegmentIdBySegmentName(name)
            self.assertTrue(segmentId, f"segment '{name}' missing")
            voxels = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segmentId, volume)
            measured[name] = float(voxels.sum()) * 0.008
        self.assertAlmostEqual(measured["right lung"], rightMl, delta=0.15 * rightMl)
        self.assertAlmostEqual(measured["left lung"], leftMl, delta=0.15 * leftMl)
        self.assertIsNotNone(parameters.figuresTable)
        self.assertGreaterEqual(parameters.figuresTable.GetNumberOfRows(), 2)
        self.delayDisplay("Test passed")
