"""What a task and the framework agree on: the Task contract (`task`) and the registry that
finds one (`registry`), and the pieces tasks share: the LSTM backbone (`lstm`), in-memory
batches (`tensors`), data files and splits (`datafiles`), checkpoints (`checkpoints`) and
several models carried as one (`members`). Tasks import from here; this never imports a
task."""
