"""Chest radiograph analysis: normal vs bacterial vs viral pneumonia with calibrated probabilities and a
Grad-CAM heat map, trained from scratch on paediatric frontal radiographs (Kermany et al. 2018)."""

from lungai.xray.classes import CLASS_NAMES

__all__ = ["CLASS_NAMES"]
