"""EmbolismDetection: pulmonary embolism candidates on a CT pulmonary angiogram, reviewed one by one.

Thin module: ``lungai embolism`` runs in the background; candidates come back as a markups point list, a table
sorted by confidence and emboli/artery segmentations. The reader accepts or rejects each candidate; accepted ones
are saved as a label map next to the case for the review and training loop.
"""

import json
import logging
from pathlib import Path
from typing import Annotated

import numpy as np
import slicer
import vtk
from slicer import vtkMRMLMarkupsFiducialNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest)

from LungAICommonLib import commands, dependencies, synthetic
from LungAICommonLib.background import BackgroundCliRunner
from LungAICommonLib.cli_runner import JobState
from LungAICommonLib.module_widget import LungAIModuleWidget
from LungAICommonLib.embolism_review import candidate_id, load_statuses, save_accepted
from LungAICommonLib.nodes import (applyStandardColors, loadSegmentationFile, tableNodeFromRows, writeLungLabelMap,
                                   writeVolumeNode)
from LungAICommonLib.results import (candidate_rows, centroid_ras, confidence, embolism_summary_lines,
                                     format_value)
from LungAICommonLib.views import jumpSlicesToRas, newWorkDirectory, showVolume, tableViewRow

STATUS_COLUMN = "status"
ID_COLUMN = "id"
MARKS = {"pending": "", "accepted": " \u2713", "rejected": " \u2717"}


class EmbolismDetection(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Embolism Detection")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "LungAI")]
        self.parent.dependencies = ["LungAICommon"]
        self.parent.contributors = ["LungAI contributors"]
        self.parent.helpText = _(
            "Finds filling defects in the contrast-filled pulmonary arteries of a CT pulmonary angiogram and lists "
            "them as candidates, most confident first. Review each candidate (accept or reject); accepted emboli "
            "are saved as labels for the review loop. Candidates support a reader; they do not replace one.")
        self.parent.acknowledgementText = _("LungAI is open source (Apache-2.0).")


@parameterNodeWrapper
class EmbolismDetectionParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    lungSegmentation: vtkMRMLSegmentationNode
    threshold: Annotated[float, WithinRange(0.0, 1.0)] = 0.5
    candidatesMarkups: vtkMRMLMarkupsFiducialNode
    emboliSegmentation: vtkMRMLSegmentationNode
    arteriesSegmentation: vtkMRMLSegmentationNode
    candidatesTable: vtkMRMLTableNode
    outputFolder: str = ""
    reviewer: str = ""
    summary: str = ""


class EmbolismDetectionWidget(LungAIModuleWidget):
    def __init__(self, parent=None) -> None:
        LungAIModuleWidget.__init__(self, parent)
        self.currentCandidate = None

    def setup(self) -> None:
        LungAIModuleWidget.setup(self)
        self.logic = EmbolismDetectionLogic()
        self.runner = BackgroundCliRunner(self.ui.progressBar, self.ui.statusLabel, self.ui.cancelButton,
                                          busyWidgets=[self.ui.applyButton, self.ui.inputSelector])

        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.candidatesTableView.connect("clicked(QModelIndex)", self.onCandidateClicked)
        self.ui.acceptButton.connect("clicked(bool)", lambda: self.onDecision("accepted"))
        self.ui.rejectButton.connect("clicked(bool)", lambda: self.onDecision("rejected"))
        self.ui.resetButton.connect("clicked(bool)", lambda: self.onDecision("pending"))
        self.ui.saveButton.connect("clicked(bool)", self.onSaveButton)

        self.initializeParameterNode()

    def onSceneStartClose(self, caller, event) -> None:
        self.currentCandidate = None
        LungAIModuleWidget.onSceneStartClose(self, caller, event)

    def _updateGui(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        self.ui.applyButton.enabled = bool(p.inputVolume) and not self.runner.running
        self.ui.candidatesTableView.setMRMLTableNode(p.candidatesTable)
        self.ui.summaryLabel.text = p.summary
        decided = self.currentCandidate is not None and bool(p.candidatesTable)
        for button in (self.ui.acceptButton, self.ui.rejectButton, self.ui.resetButton):
            button.enabled = decided
        self.ui.saveButton.enabled = bool(p.candidatesTable and p.outputFolder)

    def onApplyButton(self) -> None:
        if not dependencies.ensure_dependencies():
            return
        self.currentCandidate = None
        with slicer.util.tryWithErrorDisplay(_("Failed to start the embolism detection."), waitCursor=True):
            self.logic.detect(self._parameterNode, self.runner, onDone=self._updateGui)

    def onCandidateClicked(self, index) -> None:
        row = tableViewRow(self.ui.candidatesTableView, index)
        self.currentCandidate = str(row.get(ID_COLUMN, ""))
        point = centroid_ras(row)
        if point is not None:
            jumpSlicesToRas(point)
        self._updateGui()

    def onDecision(self, status: str) -> None:
        if self.currentCandidate is None:
            return
        self.logic.setStatus(self._parameterNode, self.currentCandidate, status)

    def onSaveButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to save the accepted emboli."), waitCursor=True):
            written = self.logic.saveAccepted(self._parameterNode)
            text = _("Saved {files}").format(files=", ".join(str(written[k]) for k in ("accepted_emboli", "review")))
            if written["without_mask"]:
                text += "\n" + _("Accepted below the threshold, so without a mask (recorded in the review file): "
                                  "{ids}").format(ids=", ".join(written["without_mask"]))
            self.ui.savedLabel.text = text


class EmbolismDetectionLogic(ScriptedLoadableModuleLogic):
    """Runs ``lungai embolism``, shows the candidates and keeps the reader's decisions."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return EmbolismDetectionParameterNode(super().getParameterNode())

    def detect(self, parameters: EmbolismDetectionParameterNode, runner: BackgroundCliRunner, onDone=None):
        if parameters.inputVolume is None:
            raise ValueError(_("Select a CT pulmonary angiogram."))
        workFolder = newWorkDirectory("embolism")
        inputPath = writeVolumeNode(parameters.inputVolume, workFolder / "input.nrrd")
        lungsPath = None
        if parameters.lungSegmentation is not None:
            lungsPath = writeLungLabelMap(parameters.lungSegmentation, parameters.inputVolume,
                                          workFolder / "lungs.nii.gz")

        def loaded(result, outputs):
            self.loadResults(parameters, workFolder / "output", outputs)
            parameters.summary = "\n".join(embolism_summary_lines(result))

        arguments = commands.embolism(inputPath, workFolder / "output", parameters.threshold, lungsPath)
        return runner.start(arguments, loaded, label=_("Embolism detection"), onDone=onDone)

    def loadResults(self, parameters: EmbolismDetectionParameterNode, outputFolder: Path, outputs: dict) -> None:
        volume = parameters.inputVolume
        name = volume.GetName() if volume else "CTPA"
        # an earlier run's nodes stay in the scene (its decisions are in its table until saved)
        folder = Path(outputs["candidates"]).parent if "candidates" in outputs else Path(outputFolder)
        parameters.outputFolder = str(folder)
        arteries = loadSegmentationFile(folder / "arteries.seg.nrrd", f"{name} pulmonary arteries", volume,
                                        show3D=True, opacity2D=0.2)
        arteries.GetDisplayNode().SetOpacity3D(0.35)
        parameters.arteriesSegmentation = arteries
        emboli = loadSegmentationFile(folder / "emboli.seg.nrrd", f"{name} emboli", volume, show3D=True,
                                      opacity2D=0.6)
        applyStandardColors(emboli)
        parameters.emboliSegmentation = emboli
        rows = candidate_rows(json.loads((folder / "candidates.json").read_text(encoding="utf-8")))
        statuses = load_statuses(self.caseFolder(parameters) / "embolism-review.json") or {}  # resume a review
        tableRows = []
        for index, row in enumerate(rows):
            cid = candidate_id(row, index)
            tableRows.append({ID_COLUMN: cid, STATUS_COLUMN: statuses.get(cid, "pending"),
                              **{k: v for k, v in row.items() if k not in (ID_COLUMN, STATUS_COLUMN)}})
        parameters.candidatesTable = tableNodeFromRows(tableRows, f"{name} embolism candidates",
                                                       textColumns=[ID_COLUMN, STATUS_COLUMN])
        parameters.candidatesMarkups = self.candidatesMarkups(tableRows, f"{name} PE candidates")
        if volume is not None:
            showVolume(volume)

    @staticmethod
    def candidatesMarkups(rows: list, name: str) -> vtkMRMLMarkupsFiducialNode:
        """One locked control point per candidate, labelled with its id, confidence and decision."""
        markups = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
        markups.CreateDefaultDisplayNodes()
        display = markups.GetDisplayNode()
        display.SetSelectedColor(0.95, 0.10, 0.55)
        display.SetColor(0.6, 0.6, 0.6)
        for row in rows:
            point = centroid_ras(row)
            if point is None:
                continue
            index = markups.AddControlPoint(vtk.vtkVector3d(*point), _pointLabel(row))
            markups.SetNthControlPointLocked(index, True)
            markups.SetNthControlPointDescription(index, str(row[ID_COLUMN]))
            markups.SetNthControlPointSelected(index, row[STATUS_COLUMN] != "rejected")
        return markups

    @staticmethod
    def _rowIndex(table: vtkMRMLTableNode, candidateId: str) -> int:
        column = table.GetColumnIndex(ID_COLUMN)
        for row in range(table.GetNumberOfRows()):
            if table.GetCellText(row, column) == candidateId:
                return row
        raise KeyError(f"no candidate {candidateId!r} in {table.GetName()}")

    def setStatus(self, parameters: EmbolismDetectionParameterNode, candidateId: str, status: str) -> None:
        """Record accept / reject / pending in the table and on the candidate's point."""
        if status not in MARKS:
            raise ValueError(f"unknown decision {status!r}")
        table = parameters.candidatesTable
        row = self._rowIndex(table, candidateId)
        table.SetCellText(row, table.GetColumnIndex(STATUS_COLUMN), status)
        markups = parameters.candidatesMarkups
        if markups is None:
            return
        for index in range(markups.GetNumberOfControlPoints()):
            if markups.GetNthControlPointDescription(index) == candidateId:
                rowValues = {ID_COLUMN: candidateId, STATUS_COLUMN: status,
                             "confidence": table.GetCellText(row, table.GetColumnIndex("confidence"))
                             if table.GetColumnIndex("confidence") >= 0 else ""}
                markups.SetNthControlPointLabel(index, _pointLabel(rowValues))
                markups.SetNthControlPointSelected(index, status != "rejected")

    @staticmethod
    def tableRows(table: vtkMRMLTableNode) -> list:
        columns = [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())]
        return [{column: table.GetCellText(row, c) for c, column in enumerate(columns)}
                for row in range(table.GetNumberOfRows())]

    def saveAccepted(self, parameters: EmbolismDetectionParameterNode) -> dict:
        """accepted-emboli.seg.nrrd + embolism-review.json beside the case file (or the run's output folder)."""
        rows = self.tableRows(parameters.candidatesTable)
        statuses = {row[ID_COLUMN]: row[STATUS_COLUMN] for row in rows}
        folder = self.caseFolder(parameters)
        written = save_accepted(Path(parameters.outputFolder) / "emboli.seg.nrrd", rows, statuses, folder,
                                reviewer=parameters.reviewer)
        logging.info("LungAI embolism review saved: %s", written)
        return written

    @staticmethod
    def caseFolder(parameters: EmbolismDetectionParameterNode) -> Path:
        volume = parameters.inputVolume
        storage = volume.GetStorageNode() if volume is not None else None
        fileName = storage.GetFileName() if storage is not None else None
        if fileName and Path(fileName).exists():
            caseName = Path(fileName).name.split(".")[0]
            return Path(fileName).parent / f"{caseName}-lungai-embolism"
        return Path(parameters.outputFolder)


def _pointLabel(row: dict) -> str:
    value = confidence(row)
    score = "" if np.isnan(value) else f" ({format_value(value)})"
    return f"PE {row[ID_COLUMN]}{score}{MARKS.get(str(row.get(STATUS_COLUMN, 'pending')), '')}"


class EmbolismDetectionTest(ScriptedLoadableModuleTest):
    """A synthetic CTPA with contrast-filled arteries and one filling defect of known position."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_SyntheticFillingDefect()

    def test_SyntheticFillingDefect(self):
        self.delayDisplay("Embolism candidates on a synthetic CTPA")
        if not dependencies.model_installed("embolism-candidates"):
            self.delayDisplay("The embolism-candidates scorer is not installed (lungai models download "
                              "embolism-candidates); detection step not run")
            return
        ctpa = synthetic.ctpa()
        ijkToRas, defectIjk = ctpa["ijk_to_ras"], ctpa["defect_ijk"]
        volume = slicer.util.addVolumeFromArray(ctpa["ct"], ijkToRAS=ijkToRas, name="ctpa")
        logic = EmbolismDetectionLogic()
        parameters = logic.getParameterNode()
        parameters.inputVolume = volume
        runner = BackgroundCliRunner()
        logic.detect(parameters, runner)
        self.assertEqual(runner.waitForCompletion(600), JobState.SUCCEEDED, runner.job.error)
        table = parameters.candidatesTable
        self.assertGreaterEqual(table.GetNumberOfRows(), 1)
        defectRas = (ijkToRas @ np.array([*defectIjk, 1.0]))[:3]
        rows = logic.tableRows(table)
        distances = [np.linalg.norm(np.array(centroid_ras(r)) - defectRas) for r in rows]
        best = int(np.argmin(distances))
        self.assertLess(distances[best], 5.0)
        self.assertEqual(parameters.candidatesMarkups.GetNumberOfControlPoints(), table.GetNumberOfRows())
        logic.setStatus(parameters, rows[best][ID_COLUMN], "accepted")
        written = logic.saveAccepted(parameters)
        review = json.loads(Path(written["review"]).read_text())
        self.assertEqual(review["accepted"], 1)
        self.assertGreater(review["accepted_volume_ml"], 0.0)
        self.delayDisplay("Test passed")
