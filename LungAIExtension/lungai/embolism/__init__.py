"""Pulmonary embolism detection on CT pulmonary angiograms (see docs/embolism.md)."""
