"""How one trial trains: the Fabric loop (`loop`), one fit per fold and the model a trial
keeps (`fitting`), folds and backtests (`folds`), what it records each epoch (`recorder`),
resume checkpoints and re-queued trials (`preemption`) and a model's costs (`costs`)."""
