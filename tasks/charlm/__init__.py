"""Character language modelling: `spec` (its settings, torch-free), `task` (TASK), `data`
(a text cut into streams), `model` (CharLSTM)."""
