"""PneumoniaAnalysis: ground-glass and consolidation lesions, lung involvement, density histogram, severity,
per-patient call, report, and follow-up between two CTs of the same patient.

Thin module: ``lungai pneumonia analyze`` / ``lungai pneumonia followup`` run in the background; their files are
loaded back as segmentations, tables, a plot and an HTML report.
"""

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

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
from LungAICommonLib.nodes import (applyStandardColors, loadSegmentationFile, plotChartFromTable, readCsvRows,
                                   tableNodeFromRows, writeLungLabelMap, writeVolumeNode)
from LungAICommonLib.results import centroid_ras, followup_summary_lines, pneumonia_summary_lines
from LungAICommonLib.views import jumpSlicesToRas, newWorkDirectory, openFile, saveCopyAs, showVolume, tableViewRow



class PneumoniaAnalysis(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Pneumonia Analysis")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "LungAI")]
        self.parent.dependencies = ["LungAICommon"]
        self.parent.contributors = ["LungAI contributors"]
        self.parent.helpText = _(
            "Finds ground-glass opacities and consolidations in a chest CT, measures lung involvement per lobe and "
            "zone, shows the density histogram, a severity score and a per-patient call, and writes a report. "
            "The Follow-up tab compares two CTs of one patient. Results support a reader; they do not replace one.")
        self.parent.acknowledgementText = _("LungAI is open source (Apache-2.0).")


@parameterNodeWrapper
class PneumoniaAnalysisParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    lungSegmentation: vtkMRMLSegmentationNode
    method: Annotated[str, Choice(commands.LESION_METHODS)] = "classic"
    lesionSegmentation: vtkMRMLSegmentationNode
    lesionTable: vtkMRMLTableNode
    histogramTable: vtkMRMLTableNode
    summary: str = ""
    reportPath: str = ""
    earlierVolume: vtkMRMLScalarVolumeNode
    laterVolume: vtkMRMLScalarVolumeNode
    earlierLungs: vtkMRMLSegmentationNode
    laterLungs: vtkMRMLSegmentationNode
    changeSegmentation: vtkMRMLSegmentationNode
    changesTable: vtkMRMLTableNode
    followupSummary: str = ""
    followupReportPath: str = ""


class PneumoniaAnalysisWidget(LungAIModuleWidget):
    def __init__(self, parent=None) -> None:
        LungAIModuleWidget.__init__(self, parent)
        self.followupRunner = None

    def setup(self) -> None:
        LungAIModuleWidget.setup(self)
        self.logic = PneumoniaAnalysisLogic()
        self.runner = BackgroundCliRunner(self.ui.progressBar, self.ui.statusLabel, self.ui.cancelButton,
                                          busyWidgets=[self.ui.applyButton, self.ui.inputSelector])
        self.followupRunner = BackgroundCliRunner(
            self.ui.followupProgressBar, self.ui.followupStatusLabel, self.ui.followupCancelButton,
            busyWidgets=[self.ui.followupApplyButton, self.ui.earlierSelector, self.ui.laterSelector])

        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.followupApplyButton.connect("clicked(bool)", self.onFollowupApplyButton)
        self.ui.lesionTableView.connect("clicked(QModelIndex)", self.onLesionClicked)
        self.ui.changesTableView.connect("clicked(QModelIndex)", self.onChangeClicked)
        self.ui.histogramButton.connect("clicked(bool)", self.onHistogramButton)
        self.ui.openReportButton.connect("clicked(bool)", lambda: openFile(Path(self._parameterNode.reportPath)))
        self.ui.saveReportButton.connect("clicked(bool)", lambda: self.onSaveReport(self._parameterNode.reportPath))
        self.ui.openFollowupReportButton.connect(
            "clicked(bool)", lambda: openFile(Path(self._parameterNode.followupReportPath)))
        self.ui.saveFollowupReportButton.connect(
            "clicked(bool)", lambda: self.onSaveReport(self._parameterNode.followupReportPath))

        self.initializeParameterNode()

    def runners(self) -> list:
        return [self.runner, self.followupRunner]

    def _updateGui(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        self.ui.applyButton.enabled = bool(p.inputVolume) and not self.runner.running
        self.ui.followupApplyButton.enabled = (bool(p.earlierVolume and p.laterVolume)
                                               and p.earlierVolume != p.laterVolume
                                               and not self.followupRunner.running)
        self.ui.summaryLabel.text = p.summary
        self.ui.followupSummaryLabel.text = p.followupSummary
        self.ui.lesionTableView.setMRMLTableNode(p.lesionTable)
        self.ui.changesTableView.setMRMLTableNode(p.changesTable)
        self.ui.histogramButton.enabled = bool(p.histogramTable)
        for button, path in ((self.ui.openReportButton, p.reportPath), (self.ui.saveReportButton, p.reportPath),
                             (self.ui.openFollowupReportButton, p.followupReportPath),
                             (self.ui.saveFollowupReportButton, p.followupReportPath)):
            button.enabled = bool(path) and Path(path).is_file()

    def onApplyButton(self) -> None:
        if not dependencies.ensure_dependencies():
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start the pneumonia analysis."), waitCursor=True):
            self.logic.analyze(self._parameterNode, self.runner, onDone=self._afterAnalysis)

    def _afterAnalysis(self) -> None:
        self._updateGui()
        self.onHistogramButton()

    def onFollowupApplyButton(self) -> None:
        if not dependencies.ensure_dependencies():
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start the follow-up comparison."), waitCursor=True):
            self.logic.followup(self._parameterNode, self.followupRunner, onDone=self._updateGui)

    def onLesionClicked(self, index) -> None:
        point = centroid_ras(tableViewRow(self.ui.lesionTableView, index))
        if point is not None:
            jumpSlicesToRas(point)

    def onChangeClicked(self, index) -> None:
        point = centroid_ras(tableViewRow(self.ui.changesTableView, index))
        if point is not None:
            jumpSlicesToRas(point)

    def onHistogramButton(self) -> None:
        if self._parameterNode.histogramTable:
            self.logic.showHistogram(self._parameterNode.histogramTable)

    def onSaveReport(self, path: str) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to save the report."), waitCursor=True):
            saved = saveCopyAs(Path(path), _("Save report"), "HTML (*.html)", companions=["histogram.png"])
            if saved is not None:
                slicer.util.showStatusMessage(_("Report saved to {path}").format(path=saved), 5000)


class PneumoniaAnalysisLogic(ScriptedLoadableModuleLogic):
    """Runs ``lungai pneumonia analyze`` and ``lungai pneumonia followup`` and loads their outputs."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return PneumoniaAnalysisParameterNode(super().getParameterNode())

    def analyze(self, parameters: PneumoniaAnalysisParameterNode, runner: BackgroundCliRunner, onDone=None):
        if parameters.inputVolume is None:
            raise ValueError(_("Select an input CT volume."))
        workFolder = newWorkDirectory("pneumonia")
        inputPath = writeVolumeNode(parameters.inputVolume, workFolder / "input.nrrd")
        lungsPath = None
        if parameters.lungSegmentation is not None:
            lungsPath = writeLungLabelMap(parameters.lungSegmentation, parameters.inputVolume,
                                             workFolder / "lungs.nii.gz")

        arguments = commands.pneumonia_analyze(inputPath, workFolder / "output", parameters.method, lungsPath)
        return runner.start(arguments, lambda result, outputs: self.loadAnalysis(parameters, result, outputs),
                            label=_("Pneumonia analysis"), onDone=onDone)

    def loadAnalysis(self, parameters: PneumoniaAnalysisParameterNode, result: dict, outputs: dict) -> None:
        volume = parameters.inputVolume
        name = volume.GetName() if volume else "CT"
        for node in (parameters.lesionTable, parameters.histogramTable):  # segmentations stay (may be edited)
            _remove(node)
        lesions = loadSegmentationFile(_output(outputs, "lesions", ".seg.nrrd"), f"{name} lesions", volume,
                                       show3D=True, opacity2D=0.5)
        applyStandardColors(lesions)
        parameters.lesionSegmentation = lesions
        parameters.lesionTable = tableNodeFromRows(readCsvRows(_output(outputs, "lesions", ".csv")),
                                                   f"{name} lesions")
        parameters.histogramTable = tableNodeFromRows(readCsvRows(_output(outputs, "histogram", ".csv")),
                                                      f"{name} density histogram")
        parameters.summary = "\n".join(pneumonia_summary_lines(_summary(outputs, "results", result)))
        parameters.reportPath = _reportPath(outputs)
        if volume is not None:
            showVolume(volume)

    def followup(self, parameters: PneumoniaAnalysisParameterNode, runner: BackgroundCliRunner, onDone=None):
        if parameters.earlierVolume is None or parameters.laterVolume is None:
            raise ValueError(_("Select the earlier and the later CT."))
        if parameters.earlierVolume == parameters.laterVolume:
            raise ValueError(_("The earlier and the later CT must be two different volumes."))
        workFolder = newWorkDirectory("followup")
        earlier = writeVolumeNode(parameters.earlierVolume, workFolder / "earlier.nrrd")
        later = writeVolumeNode(parameters.laterVolume, workFolder / "later.nrrd")
        lungs = {}
        for key, segmentation, volume in (("earlier", parameters.earlierLungs, parameters.earlierVolume),
                                          ("later", parameters.laterLungs, parameters.laterVolume)):
            if segmentation is not None:
                lungs[key] = writeLungLabelMap(segmentation, volume, workFolder / f"{key}-lungs.nii.gz")

        arguments = commands.pneumonia_followup(earlier, later, workFolder / "output", parameters.method,
                                                lungs.get("earlier"), lungs.get("later"))
        return runner.start(arguments, lambda result, outputs: self.loadFollowup(parameters, result, outputs),
                            label=_("Follow-up"), onDone=onDone)

    def loadFollowup(self, parameters: PneumoniaAnalysisParameterNode, result: dict, outputs: dict) -> None:
        """The change map lies on the earlier CT's grid (the later CT is registered onto it)."""
        earlier = parameters.earlierVolume
        name = parameters.laterVolume.GetName() if parameters.laterVolume else "CT"
        _remove(parameters.changesTable)
        change = loadSegmentationFile(_output(outputs, "change", ".seg.nrrd"), f"{name} change", earlier,
                                      show3D=True, opacity2D=0.5)
        parameters.changeSegmentation = change
        parameters.changesTable = tableNodeFromRows(readCsvRows(_output(outputs, "changes", ".csv")),
                                                    f"{name} changes")
        parameters.followupSummary = "\n".join(followup_summary_lines(_summary(outputs, "followup", result)))
        parameters.followupReportPath = _reportPath(outputs)
        if earlier is not None:
            showVolume(earlier)

    @staticmethod
    def showHistogram(histogramTable: vtkMRMLTableNode):
        """Plot the percent-of-lung columns (right, left, both lungs) against the bins' lower HU edge."""
        table = histogramTable.GetTable()
        columns = [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())]
        curves = [c for c in columns if c.endswith("_percent")] or columns[1:]
        if len(columns) < 2 or not curves:
            raise ValueError(_("The histogram table needs a HU column and at least one value column."))
        titles = {c: c.replace("_percent", "").replace("_", " ") for c in curves}
        logging.info("LungAI histogram curves: %s", ", ".join(titles.values()))
        return plotChartFromTable(histogramTable, columns[0], curves, _("Lung density histogram"),
                                  _("Hounsfield units"), _("% of lung volume"))


def _output(outputs: dict, name: str, suffix: str, required: bool = True) -> Optional[Path]:
    """The path the CLI reported for ``name`` (keys are names like "lesions" or file names like "lesions.csv")."""
    for key, path in outputs.items():
        if key in (f"{name}{suffix}", name) and str(path).endswith(suffix):
            return Path(path)
    for path in outputs.values():
        if Path(path).name == f"{name}{suffix}":
            return Path(path)
    if required:
        raise RuntimeError(f"the command reported no {name}{suffix} (outputs: {', '.join(sorted(outputs))})")
    return None


def _summary(outputs: dict, name: str, result: dict) -> dict:
    """The command's full JSON file ``<name>.json`` when it wrote one, else the result it printed."""
    path = _output(outputs, name, ".json", required=False)
    return json.loads(path.read_text(encoding="utf-8")) if path else result


def _reportPath(outputs: dict) -> str:
    """The HTML report's path, or "" when the command wrote none (the report buttons stay disabled)."""
    report = _output(outputs, "report", ".html", required=False)
    return str(report) if report else ""


def _remove(node) -> None:
    if node is not None and node.GetScene() is not None:
        slicer.mrmlScene.RemoveNode(node)


class PneumoniaAnalysisTest(ScriptedLoadableModuleTest):
    """Analysis of a synthetic chest CT with two lesions of known size and density."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_OutputLookup()
        self.setUp()
        self.test_SyntheticLesions()

    def test_OutputLookup(self):
        outputs = {"lesions": "/o/lesions.seg.nrrd", "lesions.csv": "/o/lesions.csv", "report": "/o/report.html"}
        self.assertEqual(_output(outputs, "lesions", ".seg.nrrd"), Path("/o/lesions.seg.nrrd"))
        self.assertEqual(_output(outputs, "lesions", ".csv"), Path("/o/lesions.csv"))
        self.assertIsNone(_output(outputs, "results", ".json", required=False))
        with self.assertRaises(RuntimeError):
            _output(outputs, "histogram", ".csv")

    def test_SyntheticLesions(self):
        self.delayDisplay("Pneumonia analysis of a synthetic chest")
        chest = synthetic.pneumonia_chest()
        volume = slicer.util.addVolumeFromArray(chest["ct"], ijkToRAS=chest["ijk_to_ras"], name="chest")
        logic = PneumoniaAnalysisLogic()
        parameters = logic.getParameterNode()
        parameters.inputVolume = volume
        runner = BackgroundCliRunner()
        logic.analyze(parameters, runner)
        self.assertEqual(runner.waitForCompletion(600), JobState.SUCCEEDED, runner.job.error)
        lesions = parameters.lesionSegmentation
        total = 0.0
        for index in range(lesions.GetSegmentation().GetNumberOfSegments()):
            segmentId = lesions.GetSegmentation().GetNthSegmentID(index)
            total += float(slicer.util.arrayFromSegmentBinaryLabelmap(lesions, segmentId, volume).sum()) * 0.008
        truth = chest["ground_glass_ml"] + chest["consolidation_ml"]
        self.assertAlmostEqual(total, truth, delta=0.5 * truth)
        self.assertGreaterEqual(parameters.lesionTable.GetNumberOfRows(), 1)
        self.assertTrue(parameters.summary)
        chart = logic.showHistogram(parameters.histogramTable)
        self.assertGreaterEqual(chart.GetNumberOfPlotSeriesNodes(), 1)
        self.assertTrue(Path(parameters.reportPath).is_file())
        self.delayDisplay("Test passed")
