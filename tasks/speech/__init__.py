"""Speech recognition with CTC: `spec` (its settings, torch-free), `task` (TASK), `data`
(a WAV manifest), `audio` (WAV reading, log-mel features), `text` (labels, decoding),
`model` (the CTC model)."""
