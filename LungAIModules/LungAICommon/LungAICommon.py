"""LungAICommon: shared, hidden module of the LungAI extension.

It carries ``LungAICommonLib`` (background CLI runner, node conversion, dependency installation) that the visible
LungAI modules import, and a small setup panel (core version, missing packages, compute device).
"""

import logging
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import slicer
import vtk
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from LungAICommonLib import dependencies
from LungAICommonLib.background import DEVICE_SETTING, deviceSetting
from LungAICommonLib.cli_runner import JobState, python_executable

class LungAICommon(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("LungAI Common")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "LungAI")]
        self.parent.dependencies = []
        self.parent.contributors = ["LungAI contributors"]
        self.parent.helpText = _(
            "Shared helpers of the LungAI modules: runs the lungai command line in the background, converts "
            "between Slicer nodes and LungAI images, and installs LungAI's Python packages on first use.")
        self.parent.acknowledgementText = _("LungAI is open source (Apache-2.0).")
        self.parent.hidden = True


class LungAICommonWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Setup panel: which packages are missing, install them, choose the compute device."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LungAICommon.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LungAICommonLogic()
        self.ui.deviceComboBox.setCurrentText(LungAICommonLogic.device())
        self.ui.deviceComboBox.connect("currentTextChanged(QString)", LungAICommonLogic.setDevice)
        self.ui.installButton.connect("clicked(bool)", self.onInstall)
        self.updateStatus()

    def enter(self):
        self.updateStatus()

    def updateStatus(self):
        self.ui.versionLabel.text = self.logic.coreVersion()
        missing = dependencies.missing_requirements()
        self.ui.packagesLabel.text = _("all installed") if not missing else ", ".join(missing)
        self.ui.installButton.enabled = bool(missing)

    def onInstall(self):
        dependencies.ensure_dependencies()
        self.updateStatus()


class LungAICommonLogic(ScriptedLoadableModuleLogic):
    """Settings shared by the LungAI modules."""

    @staticmethod
    def device():
        return deviceSetting()

    @staticmethod
    def setDevice(value):
        if value in ("auto", "cpu", "cuda"):
            slicer.app.userSettings().setValue(DEVICE_SETTING, value)

    @staticmethod
    def coreVersion():
        try:
            import lungai
        except ImportError as exc:
            return _("not importable ({error})").format(error=exc)
        return f"lungai {lungai.__version__} ({Path(lungai.__file__).parent})"


class LungAICommonTest(ScriptedLoadableModuleTest):
    """Round trips of the shared helpers on small synthetic data (no download)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_VolumeGeometryRoundTrip()
        self.setUp()
        self.test_SegmentationAndTable()
        self.setUp()
        self.test_BackgroundRunnerInfo()
        self.setUp()
        self.test_BackgroundRunnerCancel()

    @staticmethod
    def _obliqueVolume():
        array = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) - 1000
        angle = np.deg2rad(20.0)
        rotation = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0],
                             [0.0, 0.0, 1.0]])
        ijkToRas = np.eye(4)
        ijkToRas[:3, :3] = rotation @ np.diag([0.7, 0.8, 2.5])
        ijkToRas[:3, 3] = [10.0, -20.0, 30.0]
        return array, ijkToRas

    def test_VolumeGeometryRoundTrip(self):
        from LungAICommonLib.nodes import imageFromVolumeNode, volumeNodeFromImage

        self.delayDisplay("Volume node <-> lungai.Image geometry")
        array, ijkToRas = self._obliqueVolume()
        node = slicer.util.addVolumeFromArray(array, ijkToRAS=ijkToRas, name="oblique")
        image = imageFromVolumeNode(node)
        np.testing.assert_array_equal(image.array, array)
        np.testing.assert_allclose(image.spacing, (0.7, 0.8, 2.5), atol=1e-6)
        np.testing.assert_allclose(image.origin, (-10.0, 20.0, 30.0), atol=1e-6)  # RAS -> LPS
        # voxel (i, j, k) = (2, 3, 1) lands on the same patient point in both worlds
        ras = ijkToRas @ np.array([2.0, 3.0, 1.0, 1.0])
        lps = image.index_to_lps([2.0, 3.0, 1.0])
        np.testing.assert_allclose(lps, [-ras[0], -ras[1], ras[2]], atol=1e-6)
        back = volumeNodeFromImage(image, "back")
        matrix = vtk.vtkMatrix4x4()
        back.GetIJKToRASMatrix(matrix)
        np.testing.assert_allclose(slicer.util.arrayFromVTKMatrix(matrix), ijkToRas, atol=1e-6)
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(back), array)
        self.delayDisplay("Test passed")

    def test_SegmentationAndTable(self):
        from lungai.image import Image
        from lungai.io import Segment, write_segmentation

        from LungAICommonLib.nodes import loadSegmentationFile, segmentNames, tableNodeFromRows

        self.delayDisplay("Segmentation file -> node with named segments; table from rows")
        labels = np.zeros((6, 8, 8), np.uint8)
        labels[1:5, 2:6, 1:3] = 1
        labels[1:5, 2:6, 5:7] = 2
        image = Image.from_array(labels, spacing=(1.0, 1.0, 2.0))
        folder = Path(tempfile.mkdtemp())
        path = write_segmentation(image, [Segment(1, "right lung", (0.5, 0.7, 0.9)),
                                          Segment(2, "left lung", (0.9, 0.7, 0.5))], folder / "lungs.seg.nrrd")
        segmentationNode = loadSegmentationFile(path, "Lungs")
        self.assertEqual(sorted(segmentNames(segmentationNode)), ["left lung", "right lung"])
        rightId = segmentationNode.GetSegmentation().GetSegmentIdBySegmentName("right lung")
        reference = slicer.util.addVolumeFromArray(labels.astype(np.int16), ijkToRAS=image.ijk_to_ras())
        voxels = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, rightId, reference)
        self.assertEqual(int(voxels.sum()), int((labels == 1).sum()))
        table = tableNodeFromRows([{"structure": "right lung", "volume_ml": 2500.5},
                                   {"structure": "left lung", "volume_ml": 2200.0}], "Figures")
        self.assertEqual(table.GetNumberOfRows(), 2)
        self.assertEqual(table.GetNumberOfColumns(), 2)
        self.assertAlmostEqual(float(table.GetTable().GetValue(0, 1).ToDouble()), 2500.5)
        self.delayDisplay("Test passed")

    def test_BackgroundRunnerInfo(self):
        from LungAICommonLib.background import BackgroundCliRunner
        from LungAICommonLib.nodes import writeVolumeNode

        self.delayDisplay("lungai info through the background runner")
        array, ijkToRas = self._obliqueVolume()
        node = slicer.util.addVolumeFromArray(array, ijkToRAS=ijkToRas, name="info input")
        path = writeVolumeNode(node, Path(tempfile.mkdtemp()) / "input.nrrd")
        received = {}
        runner = BackgroundCliRunner()
        runner.start(["info", path, "--check", "volume"], lambda result, outputs: received.update(result),
                     label="info", device="cpu")
        self.assertEqual(runner.waitForCompletion(120), JobState.SUCCEEDED, runner.job.error)
        self.assertEqual(list(received["size_ijk"]), [6, 5, 4])
        self.delayDisplay("Test passed")

    def test_BackgroundRunnerCancel(self):
        from LungAICommonLib.background import BackgroundCliRunner

        self.delayDisplay("Cancel kills the process")

        def sleeper(command, **kwargs):  # injected process: ignores the lungai command and sleeps
            return subprocess.Popen([python_executable(), "-c", "import time; time.sleep(60)"], **kwargs)

        runner = BackgroundCliRunner(processFactory=sleeper)
        runner.start(["info", "unused"], lambda result, outputs: None, label="sleep")
        self.assertTrue(runner.running)
        runner.cancel()
        self.assertEqual(runner.waitForCompletion(30), JobState.CANCELLED)
        logging.info("cancelled job exit code: %s", runner.job.returncode)
        self.assertNotEqual(runner.job.returncode, 0)
        self.delayDisplay("Test passed")
