"""The review and training loop: a dataset store of cases, AI proposals and every saved correction.

A store is a plain folder (also on a shared drive)::

    store.json                      task, label table, format version
    cases/<case_id>/case.json       status, history of events, proposals, versions (metadata only)
    cases/<case_id>/image.nii.gz    the image
    cases/<case_id>/proposals/p0001.nii.gz   AI proposals (with model provenance in case.json)
    cases/<case_id>/versions/v0001.nii.gz    corrections; a save always adds a version, never replaces one
    cases/<case_id>/.lock           held while one annotator writes

Every write goes to a temporary file and is renamed into place; a per-case lock serialises writers.
"""

from lungai.review.store import (CaseRecord, ReviewStore, StoreError, Version, Proposal, STATUSES)
from lungai.review.agreement import agreement_table, compare_labels
from lungai.review.selection import next_case
from lungai.review.export import export_nnunet

__all__ = ["ReviewStore", "CaseRecord", "Version", "Proposal", "StoreError", "STATUSES", "compare_labels",
           "agreement_table", "next_case", "export_nnunet"]
