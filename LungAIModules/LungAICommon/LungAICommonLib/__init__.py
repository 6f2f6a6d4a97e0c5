"""Shared helpers of the LungAI Slicer modules.

``cli_runner`` and ``dependencies`` import neither Slicer nor Qt (tested with pytest outside Slicer);
``background``, ``module_widget`` and ``nodes`` are used inside Slicer only.
"""
