"""What the speech recognition task declares without importing torch."""

from __future__ import annotations

from tuner.config.settings import MINIMIZE, Setting, TaskSpec, lstm_settings

SPEC = TaskSpec(
    name="speech",
    metric="val_cer",
    direction=MINIMIZE,
    metrics={"val_cer": MINIMIZE, "val_wer": MINIMIZE, "val_loss": MINIMIZE},
    settings=(
        *lstm_settings(hidden_size=128, num_layers=2, dropout=0.1, lr=2e-3),
        Setting("batch_size", 32, "utterances per batch", low=1),
        Setting("bidirectional", True, "read each utterance both ways", model=True),
        Setting("subsample", 2, "frames stacked into one LSTM step", low=1, model=True),
        Setting(
            "normalise",
            "utterance",
            "log-mel normalisation",
            choices=("utterance", "global"),
            model=True,
        ),
        Setting(
            "augment",
            "none",
            "mask: SpecAugment-style time and frequency masks",
            choices=("none", "mask"),
            model=True,
        ),
        Setting(
            "speed_perturb",
            0.0,
            "> 0: train on copies at 1 - p and 1 + p speed too",
            low=0,
            high=0.5,
        ),
        Setting(
            "lr_schedule",
            "onecycle",
            "learning-rate schedule",
            choices=("none", "onecycle"),
            model=True,
        ),
        Setting(
            "decoder", "greedy", "CTC decoding", choices=("greedy", "beam", "lexicon"), model=True
        ),
        Setting("beam_width", 8, "beam search width", low=1, model=True),
        Setting("vocabulary", "", "characters the model emits (empty: the training ones)"),
        Setting("lexicon", "", "words the lexicon decoder allows (empty: the training ones)"),
        Setting("sample_rate", 8000, "audio is resampled to this rate (Hz)", low=1000),
        Setting("n_mels", 40, "log-mel bands", low=1),
        Setting("window_ms", 25.0, "analysis window (ms)", low=0, above=True),
        Setting("hop_ms", 10.0, "frame hop (ms)", low=0, above=True),
        Setting(
            "val_fraction",
            0.15,
            "share for validation (no split column)",
            low=0,
            above=True,
            high=0.9,
        ),
        Setting("test_fraction", 0.15, "share for test (no split column)", low=0, high=0.9),
    ),
    framework={"max_epochs": 30, "grad_clip": 5.0},
)
