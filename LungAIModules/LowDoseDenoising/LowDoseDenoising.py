"""LowDoseDenoising: denoise a low-dose CT (non-local means or a trained CNN), compare it with its input in
linked side-by-side views, and simulate lower-dose scans from full-dose ones to make training pairs.

Thin module: ``lungai denoise`` and ``lungai simulate-dose`` run in the background; the output file is read back
into a volume node with its exact geometry.
"""

import logging
import re
from pathlib import Path
from typing import Annotated, Optional

import slicer
from slicer import vtkMRMLScalarVolumeNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest)

from LungAICommonLib import commands, dependencies, synthetic
from LungAICommonLib.background import BackgroundCliRunner
from LungAICommonLib.cli_runner import JobState
from LungAICommonLib.module_widget import LungAIModuleWidget
from LungAICommonLib.nodes import imageFromVolumeNode, volumeNodeFromImage, writeVolumeNode
from LungAICommonLib.results import append_pair_row, noise_summary_lines
from LungAICommonLib.views import compareSideBySide, copyWindowLevel, newWorkDirectory

METHODS = commands.DENOISE_METHODS
PAIRS_FOLDER_SETTING = "LungAI/DosePairsFolder"


class LowDoseDenoising(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Low-Dose Denoising")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "LungAI")]
        self.parent.dependencies = ["LungAICommon"]
        self.parent.contributors = ["LungAI contributors"]
        self.parent.helpText = _(
            "Reduces the noise of low-dose chest CTs with non-local means or a trained network, shows input and "
            "output side by side with linked views, and simulates lower-dose scans from full-dose ones to build "
            "training pairs.")
        self.parent.acknowledgementText = _("LungAI is open source (Apache-2.0).")


@parameterNodeWrapper
class LowDoseDenoisingParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    method: Annotated[str, Choice(METHODS)] = "nlm"
    strength: Annotated[float, WithinRange(0.0, 1.5)] = 1.0
    outputVolume: vtkMRMLScalarVolumeNode
    summary: str = ""
    sourceVolume: vtkMRMLScalarVolumeNode
    doseFraction: Annotated[float, WithinRange(0.05, 0.95)] = 0.25
    simulatedVolume: vtkMRMLScalarVolumeNode
    savePair: bool = False
    simulateSummary: str = ""


class LowDoseDenoisingWidget(LungAIModuleWidget):
    def __init__(self, parent=None) -> None:
        LungAIModuleWidget.__init__(self, parent)
        self.simulateRunner = None

    def setup(self) -> None:
        LungAIModuleWidget.setup(self)
        self.logic = LowDoseDenoisingLogic()
        self.runner = BackgroundCliRunner(self.ui.progressBar, self.ui.statusLabel, self.ui.cancelButton,
                                          busyWidgets=[self.ui.applyButton])
        self.simulateRunner = BackgroundCliRunner(self.ui.simulateProgressBar, self.ui.simulateStatusLabel,
                                                  self.ui.simulateCancelButton,
                                                  busyWidgets=[self.ui.simulateApplyButton])
        self.ui.pairsFolderEdit.currentPath = str(slicer.util.settingsValue(PAIRS_FOLDER_SETTING, ""))

        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.simulateApplyButton.connect("clicked(bool)", self.onSimulateButton)
        self.ui.compareButton.connect("clicked(bool)", self.onCompareButton)

        self.initializeParameterNode()

    def runners(self) -> list:
        return [self.runner, self.simulateRunner]

    def _updateGui(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        self.ui.applyButton.enabled = bool(p.inputVolume) and not self.runner.running
        self.ui.simulateApplyButton.enabled = bool(p.sourceVolume) and not self.simulateRunner.running
        self.ui.compareButton.enabled = bool(p.inputVolume and p.outputVolume)
        self.ui.pairsFolderEdit.enabled = p.savePair
        self.ui.summaryLabel.text = p.summary
        self.ui.simulateSummaryLabel.text = p.simulateSummary

    def onApplyButton(self) -> None:
        if not dependencies.ensure_dependencies():
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start denoising."), waitCursor=True):
            self.logic.denoise(self._parameterNode, self.runner, onDone=self.onCompareButton)

    def onCompareButton(self) -> None:
        if self._parameterNode.inputVolume and self._parameterNode.outputVolume:
            compareSideBySide(self._parameterNode.inputVolume, self._parameterNode.outputVolume)

    def onSimulateButton(self) -> None:
        if not dependencies.ensure_dependencies():
            return
        pairsFolder = None
        if self._parameterNode.savePair:
            if not self.ui.pairsFolderEdit.currentPath:
                slicer.util.errorDisplay(_("Choose the folder the training pairs go to."))
                return
            pairsFolder = Path(self.ui.pairsFolderEdit.currentPath)
            slicer.app.userSettings().setValue(PAIRS_FOLDER_SETTING, str(pairsFolder))
        with slicer.util.tryWithErrorDisplay(_("Failed to start the dose simulation."), waitCursor=True):
            self.logic.simulateDose(self._parameterNode, self.simulateRunner, pairsFolder)


class LowDoseDenoisingLogic(ScriptedLoadableModuleLogic):
    """Runs ``lungai denoise`` and ``lungai simulate-dose`` on volume nodes."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return LowDoseDenoisingParameterNode(super().getParameterNode())

    def denoise(self, parameters: LowDoseDenoisingParameterNode, runner: BackgroundCliRunner, onDone=None):
        inputVolume = parameters.inputVolume
        if inputVolume is None:
            raise ValueError(_("Select an input CT volume."))
        workFolder = newWorkDirectory("denoise")
        inputPath = writeVolumeNode(inputVolume, workFolder / "input.nrrd")
        outputPath = workFolder / "denoised.nrrd"

        def loaded(result, outputs):
            name = f"{inputVolume.GetName()} denoised ({parameters.method})"
            parameters.outputVolume = self.loadVolume(_firstOutput(outputs, outputPath), name,
                                                      parameters.outputVolume)
            copyWindowLevel(inputVolume, parameters.outputVolume)
            parameters.summary = "\n".join(noise_summary_lines(result))

        arguments = commands.denoise(inputPath, outputPath, parameters.method, parameters.strength)
        return runner.start(arguments, loaded, label=_("Denoising"), onDone=onDone)

    def simulateDose(self, parameters: LowDoseDenoisingParameterNode, runner: BackgroundCliRunner,
                     pairsFolder: Optional[Path] = None, onDone=None):
        source = parameters.sourceVolume
        if source is None:
            raise ValueError(_("Select a full-dose CT volume."))
        fraction = float(parameters.doseFraction)
        caseId = _safeName(source.GetName())
        if pairsFolder is not None:
            pairsFolder.mkdir(parents=True, exist_ok=True)
            fullPath = writeVolumeNode(source, pairsFolder / f"{caseId}_full.nrrd")
            outputPath = pairsFolder / f"{caseId}_dose{fraction:g}.nrrd"
        else:
            workFolder = newWorkDirectory("dose")
            fullPath = writeVolumeNode(source, workFolder / "full.nrrd")
            outputPath = workFolder / "simulated.nrrd"

        def loaded(result, outputs):
            simulatedPath = _firstOutput(outputs, outputPath)
            parameters.simulatedVolume = self.loadVolume(simulatedPath, f"{source.GetName()} {fraction:g} dose",
                                                         parameters.simulatedVolume)
            copyWindowLevel(source, parameters.simulatedVolume)
            lines = noise_summary_lines(result)
            if pairsFolder is not None:
                pairs = append_pair_row(pairsFolder / "pairs.csv", caseId, fullPath, simulatedPath, fraction)
                lines.append(_("Pair added to {path}").format(path=pairs))
            parameters.simulateSummary = "\n".join(lines)
            compareSideBySide(source, parameters.simulatedVolume)

        return runner.start(commands.simulate_dose(fullPath, outputPath, fraction), loaded,
                            label=_("Dose simulation"), onDone=onDone)

    @staticmethod
    def loadVolume(path: Path, name: str, node: Optional[vtkMRMLScalarVolumeNode]):
        """Read a CLI output volume into ``node`` (or a new node), geometry exact."""
        from lungai.io import read_image

        return volumeNodeFromImage(read_image(path, check="none"), name, node=node)


def _firstOutput(outputs: dict, expected: Path) -> Path:
    if expected.is_file():
        return expected
    for path in outputs.values():
        if str(path).endswith((".nrrd", ".nii.gz", ".nii", ".mha")) and Path(path).is_file():
            return Path(path)
    raise RuntimeError(f"the command wrote no volume (expected {expected})")


def _safeName(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "case"


class LowDoseDenoisingTest(ScriptedLoadableModuleTest):
    """Denoising lowers the noise of a synthetic noisy CT; dose simulation raises it and writes a pair."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_DenoiseAndSimulate()

    def test_DenoiseAndSimulate(self):
        self.delayDisplay("Denoise a noisy phantom")
        phantom = synthetic.noisy_phantom(60.0)
        noisy, tissue = phantom["ct"], phantom["tissue"]
        volume = slicer.util.addVolumeFromArray(noisy, ijkToRAS=phantom["ijk_to_ras"], name="noisy")
        logic = LowDoseDenoisingLogic()
        parameters = logic.getParameterNode()
        parameters.inputVolume = volume
        parameters.method = "nlm"
        parameters.strength = 1.0
        runner = BackgroundCliRunner()
        logic.denoise(parameters, runner)
        self.assertEqual(runner.waitForCompletion(600), JobState.SUCCEEDED, runner.job.error)
        denoised = imageFromVolumeNode(parameters.outputVolume)
        self.assertEqual(denoised.shape, noisy.shape)
        self.assertLess(synthetic.tissue_noise(denoised.array, tissue), 0.6 * synthetic.tissue_noise(noisy, tissue))

        self.delayDisplay("Simulate a quarter dose and write the pair")
        parameters.sourceVolume = volume
        parameters.doseFraction = 0.25
        pairs = Path(slicer.app.temporaryPath) / "LungAI-test-pairs"
        logic.simulateDose(parameters, runner, pairsFolder=pairs)
        self.assertEqual(runner.waitForCompletion(600), JobState.SUCCEEDED, runner.job.error)
        simulated = imageFromVolumeNode(parameters.simulatedVolume)
        self.assertGreater(synthetic.tissue_noise(simulated.array, tissue), synthetic.tissue_noise(noisy, tissue))
        self.assertTrue((pairs / "pairs.csv").is_file())
        logging.info("pairs: %s", (pairs / "pairs.csv").read_text())
        self.delayDisplay("Test passed")
