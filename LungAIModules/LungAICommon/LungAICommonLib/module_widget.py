"""The panel lifecycle every visible LungAI module shares (Slicer only).

``LungAIModuleWidget`` loads ``Resources/UI/<Module>.ui``, binds the module's parameter node to the widgets,
follows the scene (closing it stops the background commands and unbinds the node; a new scene binds a fresh
one) and cancels the module's runners when the panel is destroyed. A module's widget keeps what is its own:
its logic, runners, connections and ``_updateGui``.
"""

import slicer
import vtk
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin


class LungAIModuleWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Base of the LungAI module widgets; subclasses set ``self.logic`` and ``self.runner`` in ``setup``.

    Hooks: ``runners()`` (every background runner of the panel), ``sceneRunners()`` (those working on scene
    nodes, stopped when the scene closes), ``defaultInputClass`` (node class picked as ``inputVolume`` when none is
    chosen; ``None`` for a parameter node without one) and ``_updateGui`` (called when the parameter node changes).
    """

    defaultInputClass = "vtkMRMLScalarVolumeNode"

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self.runner = None

    def setup(self) -> None:
        """Load the module's .ui into the panel and follow scene closing."""
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath(f"UI/{self.moduleName}.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

    def runners(self) -> list:
        """Every background runner of the panel (cancelled when the panel is destroyed)."""
        return [self.runner]

    def sceneRunners(self) -> list:
        """The runners whose commands work on scene nodes (cancelled when the scene closes)."""
        return self.runners()

    def cleanup(self) -> None:
        for runner in self.runners():
            if runner is not None:
                runner.cancel()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)

    def onSceneStartClose(self, caller, event) -> None:
        for runner in self.sceneRunners():
            runner.cancel()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        """Bind the logic's parameter node; pick the first node of ``defaultInputClass`` as input if none is set."""
        self.setParameterNode(self.logic.getParameterNode())
        if self.defaultInputClass and not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass(self.defaultInputClass)
            if firstVolumeNode:
                self._parameterNode.inputVolume = firstVolumeNode

    def setParameterNode(self, inputParameterNode) -> None:
        """Bind ``inputParameterNode`` (a module's ``@parameterNodeWrapper`` node, or None) to the widgets."""
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)
            self._updateGui()

    def _updateGui(self, caller=None, event=None) -> None:
        """Show the parameter node's state in the panel (buttons enabled, summaries); modules override it."""
