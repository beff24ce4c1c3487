"""Sequence classification: `spec` (its settings, torch-free), `task` (TASK), `data`
(arrays, CSV or text sequences, stratified splits), `model` (SequenceClassifier)."""
