"""Pulmonary embolism detection on CT pulmonary angiograms.

    from lungai.embolism import detect_emboli
    result = detect_emboli(ctpa_image)            # InputError "not a CTPA: ..." without trunk enhancement
    result.candidates, result.pe_score, result.qanadli, result.arteries, result.emboli

Pipeline: CTPA check and pulmonary trunk (``trunk``), enhanced artery tree with levels (``arteries``),
filling-defect candidates and features (``candidates``), learned calibrated scorer with a level prior
(``scorer``), Qanadli index (``qanadli``); evaluation (``evaluation``) and training (``training``) on phantom
cohorts (``cohort``). See ``docs/embolism.md``.
"""

from lungai.embolism.detect import DEFAULT_THRESHOLD, EmbolismResult, detect_emboli

__all__ = ["detect_emboli", "EmbolismResult", "DEFAULT_THRESHOLD"]
