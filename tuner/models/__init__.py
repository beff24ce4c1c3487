"""Trained models after the sweep: naming one (`sources`), fine-tuning it (`finetune`),
predicting with it (`predict`), where it came from (`lineage`), and ensembles of a study's
best trials (`topk`) or of fresh fits of them (`seeds`)."""
