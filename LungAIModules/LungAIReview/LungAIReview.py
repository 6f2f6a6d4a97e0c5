"""LungAIReview: the review and training loop in Slicer.

Annotators open the next case of a review store, run the AI proposal, correct it in the embedded Segment Editor
and save versions (never overwriting earlier ones) and submit; reviewers approve or send back; approved cases
retrain the model in the background, and the model version used for proposals can be switched.
The store itself is ``lungai.review.ReviewStore`` (plain folder, per-case locks); writes go through the
``lungai review`` command line in the background.
"""

import time
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import qt
import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest)

from LungAICommonLib import commands, dependencies
from LungAICommonLib.background import BackgroundCliRunner
from LungAICommonLib.cli_runner import JobState
from LungAICommonLib.module_widget import LungAIModuleWidget
from LungAICommonLib.nodes import imageFromVolumeNode, loadSegmentationFile, volumeNodeFromImage
from LungAICommonLib.review_labels import (case_rows, entry_choices, label_for_segment, parse_entry_key,
                                           segment_definitions)
from LungAICommonLib.views import newWorkDirectory, showVolume

STRATEGIES = ["least_reviewed", "uncertain", "random"]
STORE_SETTING = "LungAI/ReviewStore"
USER_SETTING = "LungAI/ReviewUser"
ACTIVE_MODEL_SETTING = "LungAI/ActiveModel/{task}"
CASE_COLUMNS = ["case", "status", "versions", "proposals", "assigned", "last change"]
EDITOR_NODE_TAG = "LungAIReviewSegmentEditor"
MODEL_TASKS = {"lungs": {"lungs"}, "lobes": {"lobes", "lungs"}, "lesions": {"lesions"}}  # store task -> registry


class LungAIReview(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("LungAI Review")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "LungAI")]
        self.parent.dependencies = ["LungAICommon", "SegmentEditor"]
        self.parent.contributors = ["LungAI contributors"]
        self.parent.helpText = _(
            "The review loop: open the next case of a review store, let the AI propose labels, correct them, save "
            "versions and submit; reviewers approve or send back. Approved cases retrain the model in the "
            "background, and you choose which model version makes the proposals.")
        self.parent.acknowledgementText = _("LungAI is open source (Apache-2.0).")


@parameterNodeWrapper
class LungAIReviewParameterNode:
    storeFolder: str = ""
    user: str = ""
    strategy: Annotated[str, Choice(STRATEGIES)] = "least_reviewed"
    epochs: Annotated[int, WithinRange(1, 500)] = 30
    caseId: str = ""
    caseVolume: vtkMRMLScalarVolumeNode
    caseSegmentation: vtkMRMLSegmentationNode


class LungAIReviewWidget(LungAIModuleWidget):
    defaultInputClass = None  # the review opens its own case images

    def __init__(self, parent=None) -> None:
        LungAIModuleWidget.__init__(self, parent)
        self.trainRunner = None

    def setup(self) -> None:
        LungAIModuleWidget.setup(self)
        self.logic = LungAIReviewLogic()
        caseButtons = [self.ui.runAiButton, self.ui.loadVersionButton, self.ui.saveVersionButton,
                       self.ui.submitButton, self.ui.approveButton, self.ui.sendBackButton, self.ui.reopenButton,
                       self.ui.nextCaseButton, self.ui.openCaseButton]
        self.runner = BackgroundCliRunner(self.ui.progressBar, self.ui.statusLabel, self.ui.cancelButton,
                                          busyWidgets=caseButtons)
        self.trainRunner = BackgroundCliRunner(self.ui.trainProgressBar, self.ui.trainStatusLabel,
                                               self.ui.trainCancelButton, busyWidgets=[self.ui.retrainButton])

        self.ui.casesTableWidget.setColumnCount(len(CASE_COLUMNS))
        self.ui.casesTableWidget.setHorizontalHeaderLabels(CASE_COLUMNS)
        self.ui.segmentEditorWidget.setMRMLSegmentEditorNode(self.logic.segmentEditorNode())
        self.ui.storePathEdit.currentPath = str(slicer.util.settingsValue(STORE_SETTING, ""))

        self.ui.openStoreButton.connect("clicked(bool)", self.onOpenStore)
        self.ui.createStoreButton.connect("clicked(bool)", self.onCreateStore)
        self.ui.addCasesButton.connect("clicked(bool)", self.onAddCases)
        self.ui.refreshButton.connect("clicked(bool)", self.refreshCases)
        self.ui.nextCaseButton.connect("clicked(bool)", self.onNextCase)
        self.ui.openCaseButton.connect("clicked(bool)", self.onOpenSelectedCase)
        self.ui.casesTableWidget.connect("cellDoubleClicked(int,int)", lambda row, column: self.onOpenSelectedCase())
        self.ui.runAiButton.connect("clicked(bool)", self.onRunAi)
        self.ui.proposeAllButton.connect("clicked(bool)", self.onProposeAll)
        self.ui.loadVersionButton.connect("clicked(bool)", self.onLoadVersion)
        self.ui.saveVersionButton.connect("clicked(bool)", self.onSaveVersion)
        self.ui.submitButton.connect("clicked(bool)", lambda: self.onStatusChange("submit"))
        self.ui.approveButton.connect("clicked(bool)", lambda: self.onStatusChange("approve"))
        self.ui.sendBackButton.connect("clicked(bool)", lambda: self.onStatusChange("send-back"))
        self.ui.reopenButton.connect("clicked(bool)", lambda: self.onStatusChange("reopen"))
        self.ui.refreshModelsButton.connect("clicked(bool)", self.refreshModels)
        self.ui.useModelButton.connect("clicked(bool)", self.onUseModel)
        self.ui.retrainButton.connect("clicked(bool)", self.onRetrain)

        self.initializeParameterNode()

    def runners(self) -> list:
        return [self.runner, self.trainRunner]

    def sceneRunners(self) -> list:
        return [self.runner]  # retraining works on the store, not on scene nodes: it outlives the scene

    def enter(self) -> None:
        LungAIModuleWidget.enter(self)
        self.ui.segmentEditorWidget.installKeyboardShortcuts()

    def exit(self) -> None:
        self.ui.segmentEditorWidget.uninstallKeyboardShortcuts()
        LungAIModuleWidget.exit(self)

    def onSceneEndClose(self, caller, event) -> None:
        self.ui.segmentEditorWidget.setMRMLSegmentEditorNode(self.logic.segmentEditorNode())
        LungAIModuleWidget.onSceneEndClose(self, caller, event)

    def initializeParameterNode(self) -> None:
        LungAIModuleWidget.initializeParameterNode(self)
        if not self._parameterNode.user:
            self._parameterNode.user = str(slicer.util.settingsValue(USER_SETTING, ""))

    # -- GUI state ------------------------------------------------------------------------------------------
    def _updateGui(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        store = self.logic.store
        storeOpen = store is not None
        busy = self.runner.running
        self.ui.addCasesButton.enabled = storeOpen and not busy
        self.ui.refreshButton.enabled = storeOpen
        self.ui.proposeAllButton.enabled = storeOpen and not busy
        self.ui.nextCaseButton.enabled = storeOpen and not busy and bool(p.user)
        self.ui.openCaseButton.enabled = storeOpen and not busy and bool(p.user)
        status = self.logic.caseStatus(p.caseId) if storeOpen and p.caseId else ""
        editable = status in ("todo", "in_progress") and not busy
        self.ui.runAiButton.enabled = editable
        self.ui.loadVersionButton.enabled = bool(p.caseId) and self.ui.versionComboBox.count > 0 and not busy
        self.ui.saveVersionButton.enabled = editable and bool(p.caseSegmentation)
        self.ui.submitButton.enabled = status == "in_progress" and not busy
        self.ui.approveButton.enabled = status == "submitted" and not busy
        self.ui.sendBackButton.enabled = status == "submitted" and not busy
        self.ui.reopenButton.enabled = status == "approved" and not busy
        self.ui.currentCaseLabel.text = (_("Case {case}: {status}").format(case=p.caseId, status=status)
                                         if p.caseId else _("No case open."))
        self.ui.retrainButton.enabled = storeOpen and self.ui.modelComboBox.count > 0
        self.ui.useModelButton.enabled = storeOpen and self.ui.modelComboBox.count > 0
        if storeOpen:
            self.ui.activeModelLabel.text = self.logic.activeModel() or _("default (newest registered)")

    def _requireUser(self) -> bool:
        if not self._parameterNode.user.strip():
            slicer.util.warningDisplay(_("Enter your name first: it is recorded with every change."))
            return False
        slicer.app.userSettings().setValue(USER_SETTING, self._parameterNode.user.strip())
        return True

    # -- store ----------------------------------------------------------------------------------------------
    def onOpenStore(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to open the review store."), waitCursor=True):
            self.logic.openStore(Path(self.ui.storePathEdit.currentPath))
            self._parameterNode.storeFolder = str(self.logic.store.folder)
            slicer.app.userSettings().setValue(STORE_SETTING, self._parameterNode.storeFolder)
            self.ui.storeInfoLabel.text = self.logic.storeSummary()
            self.refreshCases()
            self.refreshModels()

    def onCreateStore(self) -> None:
        folder = self.ui.storePathEdit.currentPath
        if not folder:
            slicer.util.warningDisplay(_("Choose an empty folder for the new store first."))
            return
        task = self.ui.taskComboBox.currentText
        self.runner.start(commands.review_init(folder, task), lambda result, outputs: self.onOpenStore(),
                          label=_("Create store"))

    def onAddCases(self) -> None:
        if not self._requireUser():
            return
        files = qt.QFileDialog.getOpenFileNames(slicer.util.mainWindow(), _("Add CT images as cases"), "",
                                                "CT (*.nii *.nii.gz *.nrrd *.mha *.dcm);;All files (*)")
        if not files:
            return
        arguments = commands.review_add(self.logic.store.folder, list(files), self._parameterNode.user)
        self.runner.start(arguments, lambda result, outputs: self.refreshCases(), label=_("Add cases"))

    def refreshCases(self) -> None:
        table = self.ui.casesTableWidget
        table.setSortingEnabled(False)
        rows = self.logic.caseRows()
        table.setRowCount(len(rows))
        for rowIndex, row in enumerate(rows):
            for columnIndex, column in enumerate(CASE_COLUMNS):
                table.setItem(rowIndex, columnIndex, qt.QTableWidgetItem(str(row[column])))
        table.setSortingEnabled(True)
        table.resizeColumnsToContents()
        self.refreshVersions()
        self._updateGui()

    # -- cases ----------------------------------------------------------------------------------------------
    def onNextCase(self) -> None:
        if not self._requireUser():
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to open the next case."), waitCursor=True):
            caseId = self.logic.nextCaseId(self._parameterNode.strategy, self._parameterNode.user)
            if caseId is None:
                slicer.util.infoDisplay(_("No case is left to annotate for you."))
                return
            self.openCase(caseId)

    def onOpenSelectedCase(self) -> None:
        row = self.ui.casesTableWidget.currentRow()
        if row < 0 or not self._requireUser():
            return
        caseId = self.ui.casesTableWidget.item(row, 0).text()
        with slicer.util.tryWithErrorDisplay(_("Failed to open the case."), waitCursor=True):
            self.openCase(caseId)

    def openCase(self, caseId: str) -> None:
        if not self._confirmReplace():
            return
        self.logic.openCase(self._parameterNode, caseId)
        editor = self.ui.segmentEditorWidget
        editor.setSegmentationNode(self._parameterNode.caseSegmentation)
        if hasattr(editor, "setSourceVolumeNode"):
            editor.setSourceVolumeNode(self._parameterNode.caseVolume)
        else:  # Slicer before 5.2
            editor.setMasterVolumeNode(self._parameterNode.caseVolume)
        self.refreshCases()

    def _confirmReplace(self) -> bool:
        if self._parameterNode.caseSegmentation is None:
            return True
        return slicer.util.confirmOkCancelDisplay(
            _("Replace the segmentation being edited? Changes not saved as a version are lost."),
            windowTitle=_("LungAI review"))

    def onRunAi(self) -> None:
        if not self._confirmReplace() or not dependencies.ensure_dependencies():
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start the AI proposal."), waitCursor=True):
            self.logic.runProposal(self._parameterNode, self.runner, onDone=self._afterProposal)

    def onProposeAll(self) -> None:
        if not dependencies.ensure_dependencies():
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start the AI proposals."), waitCursor=True):
            self.logic.proposeAll(self.runner, onDone=self.refreshCases)

    def onLoadVersion(self) -> None:
        key = self.ui.versionComboBox.currentData
        if not key or not self._confirmReplace():
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to load that version."), waitCursor=True):
            self.logic.loadEntry(self._parameterNode, str(key))
            self.ui.segmentEditorWidget.setSegmentationNode(self._parameterNode.caseSegmentation)

    def refreshVersions(self) -> None:
        combo = self.ui.versionComboBox
        combo.clear()
        if self.logic.store is not None and self._parameterNode.caseId:
            for key, text in entry_choices(self.logic.store.case(self._parameterNode.caseId)):
                combo.addItem(text, key)

    def _afterProposal(self) -> None:
        self.ui.segmentEditorWidget.setSegmentationNode(self._parameterNode.caseSegmentation)
        self.refreshCases()

    def onSaveVersion(self) -> None:
        if not self._requireUser():
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to save the version."), waitCursor=True):
            self.logic.saveVersion(self._parameterNode, self.runner, self.ui.noteLineEdit.text,
                                   onDone=self.refreshCases)

    def onStatusChange(self, action: str) -> None:
        if not self._requireUser():
            return
        note = self.ui.noteLineEdit.text.strip()
        if action in ("send-back", "reopen") and not note:
            note = qt.QInputDialog.getText(slicer.util.mainWindow(), _("LungAI review"),
                                           _("Why? (kept in the case history)"))
            if not note:
                return
        with slicer.util.tryWithErrorDisplay(_("Failed to change the case status."), waitCursor=True):
            self.logic.changeStatus(self._parameterNode, action, note, self.runner, onDone=self.refreshCases)

    # -- models ---------------------------------------------------------------------------------------------
    def refreshModels(self) -> None:
        combo = self.ui.modelComboBox
        combo.clear()
        if self.logic.store is None:
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to read the model registry."), waitCursor=True):
            for modelId, description in self.logic.modelVersions():
                combo.addItem(description, modelId)
            active = self.logic.activeModel()
            index = combo.findData(active) if active else -1
            if index >= 0:
                combo.currentIndex = index
        self._updateGui()

    def onUseModel(self) -> None:
        modelId = self.ui.modelComboBox.currentData
        if modelId:
            self.logic.setActiveModel(str(modelId))
            self._updateGui()

    def onRetrain(self) -> None:
        modelId = self.ui.modelComboBox.currentData
        if not modelId:
            return
        if not slicer.util.confirmOkCancelDisplay(
                _("Retrain {model} on the approved cases of this store for up to {epochs} epochs? This runs in "
                  "the background and can take long; a new model version is published when it ends.").format(
                    model=modelId, epochs=self._parameterNode.epochs)):
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start retraining."), waitCursor=True):
            self.logic.retrain(str(modelId), self._parameterNode.epochs, self.trainRunner,
                               onDone=self.refreshModels)


class LungAIReviewLogic(ScriptedLoadableModuleLogic):
    """Review store access (``lungai.review``) and the background commands of the review loop."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.store = None
        self.caseOpenedAt = 0.0

    def getParameterNode(self):
        return LungAIReviewParameterNode(super().getParameterNode())

    @staticmethod
    def segmentEditorNode():
        node = slicer.mrmlScene.GetSingletonNode(EDITOR_NODE_TAG, "vtkMRMLSegmentEditorNode")
        if node is None:
            node = slicer.mrmlScene.CreateNodeByClass("vtkMRMLSegmentEditorNode")
            node.UnRegister(None)
            node.SetSingletonTag(EDITOR_NODE_TAG)
            node = slicer.mrmlScene.AddNode(node)
        return node

    # -- store ----------------------------------------------------------------------------------------------
    def openStore(self, folder: Path):
        from lungai.review import ReviewStore

        self.store = ReviewStore(folder)
        return self.store

    def storeSummary(self) -> str:
        cases = self.store.cases()
        counts = {status: sum(1 for c in cases if c.status == status)
                  for status in ("todo", "in_progress", "submitted", "approved")}
        return _("Task: {task}; {n} cases ({counts})").format(
            task=self.store.task, n=len(cases), counts=", ".join(f"{k.replace('_', ' ')} {v}"
                                                                 for k, v in counts.items()))

    def caseRows(self) -> list:
        return case_rows(self.store.cases()) if self.store is not None else []

    def caseStatus(self, caseId: str) -> str:
        try:
            return self.store.case(caseId).status
        except Exception:  # a case removed from the store by someone else
            return ""

    def nextCaseId(self, strategy: str, user: str) -> Optional[str]:
        from lungai.review import next_case

        record = next_case(self.store, strategy=strategy, annotator=user)
        return record.id if record is not None else None

    # -- a case ---------------------------------------------------------------------------------------------
    def openCase(self, parameters: LungAIReviewParameterNode, caseId: str) -> None:
        """Load the case image and its latest version (or AI proposal) as an editable segmentation."""
        from lungai.io import read_image

        record = self.store.case(caseId)
        if record.status == "todo":
            record = self.store.start(caseId, parameters.user)
        for node in (parameters.caseSegmentation, parameters.caseVolume):
            if node is not None and node.GetScene() is not None:
                slicer.mrmlScene.RemoveNode(node)
        image = read_image(self.store.case_dir(caseId) / record.image, check="none")
        parameters.caseVolume = volumeNodeFromImage(image, caseId)
        parameters.caseId = caseId
        labels = None
        if record.versions:
            labels = self.store.load_version(caseId)
        elif record.proposals:
            labels = self.store.load_proposal(caseId)
        self.loadLabels(parameters, labels)
        showVolume(parameters.caseVolume)
        self.caseOpenedAt = time.monotonic()

    def loadEntry(self, parameters: LungAIReviewParameterNode, key: str) -> None:
        """Load a saved version (``v<n>``) or AI proposal (``p<n>``) of the open case for editing."""
        kind, number = parse_entry_key(key)
        load = self.store.load_version if kind == "version" else self.store.load_proposal
        self.loadLabels(parameters, load(parameters.caseId, number))

    def loadLabels(self, parameters: LungAIReviewParameterNode, labels) -> None:
        """Replace the case segmentation by a label map (store values), or empty named segments if None."""
        from lungai.io import write_segmentation

        old = parameters.caseSegmentation
        definitions = segment_definitions(self.store.labels)
        name = f"{parameters.caseId} labels"
        if labels is not None:
            path = newWorkDirectory("review") / "labels.seg.nrrd"
            write_segmentation(labels, definitions, path)
            segmentation = loadSegmentationFile(path, name, parameters.caseVolume, show3D=False)
            existing = {segmentation.GetSegmentation().GetNthSegment(i).GetName()
                        for i in range(segmentation.GetSegmentation().GetNumberOfSegments())}
        else:
            segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
            segmentation.CreateDefaultDisplayNodes()
            segmentation.SetReferenceImageGeometryParameterFromVolumeNode(parameters.caseVolume)
            existing = set()
        for definition in definitions:  # every store label is offered, even when still empty
            if definition.name not in existing:
                segmentation.GetSegmentation().AddEmptySegment("", definition.name, list(definition.color))
        if old is not None and old.GetScene() is not None:
            slicer.mrmlScene.RemoveNode(old)
        parameters.caseSegmentation = segmentation

    def labelImage(self, parameters: LungAIReviewParameterNode):
        """The case segmentation as a label map with the store's values, on the case image grid."""
        segmentation = parameters.caseSegmentation
        volume = parameters.caseVolume
        reference = imageFromVolumeNode(volume)
        labels = np.zeros(reference.shape, np.uint8 if max(self.store.labels) < 256 else np.uint16)
        unknown = []
        for index in range(segmentation.GetSegmentation().GetNumberOfSegments()):
            segment = segmentation.GetSegmentation().GetNthSegment(index)
            value = label_for_segment(segment.GetName(), self.store.labels)
            segmentId = segmentation.GetSegmentation().GetNthSegmentID(index)
            voxels = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segmentId, volume)
            if value is None:
                if voxels.any():
                    unknown.append(segment.GetName())
                continue
            labels[voxels > 0] = value
        if unknown:
            raise ValueError(_("Segments {names} match none of the store's labels ({labels}); rename or delete "
                               "them.").format(names=", ".join(unknown),
                                               labels=", ".join(self.store.labels.values())))
        return reference.like(labels)

    def saveVersion(self, parameters: LungAIReviewParameterNode, runner: BackgroundCliRunner, note: str = "",
                    onDone=None):
        from lungai.io import write_image

        path = write_image(self.labelImage(parameters), newWorkDirectory("review") / "correction.nii.gz")
        seconds = max(0.0, time.monotonic() - self.caseOpenedAt) if self.caseOpenedAt else 0.0
        arguments = commands.review_save(self.store.folder, parameters.caseId, path, parameters.user, seconds, note)
        return runner.start(arguments, label=_("Save version"), onDone=onDone)

    def changeStatus(self, parameters: LungAIReviewParameterNode, action: str, note: str,
                     runner: BackgroundCliRunner, onDone=None):
        arguments = commands.review_status(action, self.store.folder, parameters.caseId, parameters.user, note)
        return runner.start(arguments, label=action.replace("-", " ").capitalize(), onDone=onDone)

    def runProposal(self, parameters: LungAIReviewParameterNode, runner: BackgroundCliRunner, onDone=None):
        """``lungai review propose`` for the open case (stored with provenance and uncertainty), then load it."""
        caseId = parameters.caseId
        arguments = commands.review_propose(self.store.folder, [caseId], self.store.task, self.activeModel())

        def proposed(result, outputs):
            if parameters.caseId == caseId:  # still the open case
                self.loadLabels(parameters, self.store.load_proposal(caseId))

        return runner.start(arguments, proposed, label=_("AI proposal"), onDone=onDone)

    def proposeAll(self, runner: BackgroundCliRunner, onDone=None):
        """AI proposals for every case that has none yet (annotators then start from them)."""
        arguments = commands.review_propose(self.store.folder, [], self.store.task, self.activeModel())
        return runner.start(arguments, label=_("AI proposals for all cases"), onDone=onDone)

    # -- models ---------------------------------------------------------------------------------------------
    def modelVersions(self) -> list:
        """(id, description) of every registered model version for the store's task, newest first."""
        from lungai.models.registry import load_registry, version_key

        tasks = MODEL_TASKS.get(self.store.task, {self.store.task})
        entries = [e for e in load_registry() if e.task in tasks]
        entries.sort(key=lambda e: (e.name, version_key(e.version)), reverse=True)
        return [(e.id, f"{e.id}  ({e.origin})") for e in entries]

    def activeModel(self) -> str:
        if self.store is None:
            return ""
        return str(slicer.util.settingsValue(ACTIVE_MODEL_SETTING.format(task=self.store.task), ""))

    def setActiveModel(self, modelId: str) -> None:
        slicer.app.userSettings().setValue(ACTIVE_MODEL_SETTING.format(task=self.store.task), modelId)

    def retrain(self, modelId: str, epochs: int, runner: BackgroundCliRunner, onDone=None):
        """``lungai review retrain``: export the approved cases and publish a new version of the model."""
        return runner.start(commands.review_retrain(self.store.folder, modelId, epochs),
                            label=_("Retraining {model}").format(model=modelId.split("@")[0]), onDone=onDone)


class LungAIReviewTest(ScriptedLoadableModuleTest):
    """A store with one synthetic case: open, edit, save a version, submit, approve."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_ReviewCycle()

    def test_ReviewCycle(self):
        from lungai.image import Image
        from lungai.review import ReviewStore

        self.delayDisplay("Review cycle on a synthetic case")
        folder = newWorkDirectory("review-test") / "store"
        store = ReviewStore.create(folder, "lungs", {1: "right_lung", 2: "left_lung", 3: "airways"})
        ct = np.full((12, 40, 48), -1000, np.int16)
        ct[2:10, 8:32, 6:20] = -850
        ct[2:10, 8:32, 28:42] = -850
        store.add_case(Image.from_array(ct, spacing=(1.5, 1.5, 3.0)), "case01", user="test")

        logic = LungAIReviewLogic()
        parameters = logic.getParameterNode()
        parameters.user = "tester"
        logic.openStore(folder)
        logic.openCase(parameters, "case01")
        self.assertEqual(logic.caseStatus("case01"), "in_progress")
        segmentation = parameters.caseSegmentation
        self.assertEqual(segmentation.GetSegmentation().GetNumberOfSegments(), 3)

        rightId = segmentation.GetSegmentation().GetSegmentIdBySegmentName("right lung")
        mask = np.zeros(ct.shape, np.uint8)
        mask[2:10, 8:32, 6:20] = 1
        slicer.util.updateSegmentBinaryLabelmapFromArray(mask, segmentation, rightId, parameters.caseVolume)
        labels = logic.labelImage(parameters)
        self.assertEqual(int((labels.array == 1).sum()), int(mask.sum()))

        runner = BackgroundCliRunner()
        logic.saveVersion(parameters, runner, note="right lung drawn")
        self.assertEqual(runner.waitForCompletion(120), JobState.SUCCEEDED, runner.job.error)
        self.assertEqual(len(store.case("case01").versions), 1)
        np.testing.assert_array_equal(store.load_version("case01").array, labels.array)

        for action, status in (("submit", "submitted"), ("approve", "approved")):
            logic.changeStatus(parameters, action, "", runner)
            self.assertEqual(runner.waitForCompletion(120), JobState.SUCCEEDED, runner.job.error)
            self.assertEqual(logic.caseStatus("case01"), status)
        self.delayDisplay("Test passed")
