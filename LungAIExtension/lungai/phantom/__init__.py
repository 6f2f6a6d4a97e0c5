"""Synthetic chest CT and chest X-ray phantoms with exact ground truth, at any size, healthy or diseased.

>>> from lungai.phantom import PhantomConfig, make_phantom
>>> case = make_phantom(PhantomConfig(seed=0, preset="covid-moderate"))
>>> case.ct, case.truth["lungs"], case.info["lesions"]

See ``LungAIExtension/docs/phantom.md`` for the anatomy, presets, acquisition model and truth conventions.
"""

from lungai.phantom.config import PRESETS, XRAY_PRESETS, PhantomConfig
from lungai.phantom.ct import PhantomCase, make_phantom
from lungai.phantom.storage import make_cohort, save_case
from lungai.phantom.xray import XrayCase, make_xray

__all__ = ["PhantomConfig", "PhantomCase", "XrayCase", "make_phantom", "make_xray", "save_case", "make_cohort",
           "PRESETS", "XRAY_PRESETS"]
