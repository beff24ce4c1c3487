"""The speech model: normalised log-mel frames -> optional frame stacking -> (bi)LSTM ->
characters + CTC blank, and how its output becomes text (greedy, beam or lexicon search).
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from typing_extensions import override

from tuner.contract.lstm import LSTMBackbone, adam
from tuner.tasks.speech.data import FEATURE_KEYS
from tuner.tasks.speech.spec import SPEC
from tuner.tasks.speech.text import ErrorRates, beam_decode, greedy_decode
from tuner.training.loop import EpochMean

UNKNOWN_MARK = "\ufffd"  # stands for a character the model never saw, in references
FEATURE_DEFAULTS = {key: SPEC.defaults[key] for key in FEATURE_KEYS}


def pad_frames(features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, frames, n_mels) zero-padded, and each utterance's frame count."""
    lengths = torch.tensor([len(f) for f in features], dtype=torch.int64)
    return nn.utils.rnn.pad_sequence(features, batch_first=True), lengths


def decode_labels(targets: torch.Tensor, lengths: torch.Tensor, vocabulary: str) -> list[str]:
    alphabet = vocabulary + UNKNOWN_MARK
    return [
        "".join(alphabet[i - 1] for i in row[:n].tolist())
        for row, n in zip(targets, lengths.tolist(), strict=True)
    ]


def stack_frames(x: torch.Tensor, lengths: torch.Tensor, stride: int) -> tuple[torch.Tensor, ...]:
    """Concatenate every `stride` consecutive frames into one: fewer, wider steps (the LSTM
    runs `stride` times fewer steps; CTC needs at least one step per label)."""
    if stride == 1:
        return x, lengths
    batch, frames, width = x.shape
    extra = -frames % stride
    x = F.pad(x, (0, 0, 0, extra))
    return x.reshape(batch, -1, width * stride), (lengths + stride - 1) // stride


def mask_spectrum(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """SpecAugment-style: one band of up to n_mels/8 mels and one span of up to 10% of each
    utterance's frames set to the mean (zero after normalisation)."""
    batch, frames, n_mels = x.shape
    device = x.device

    def span(limit: torch.Tensor, size: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        width = (torch.rand(batch, device=device) * (limit + 1)).long()
        start = (torch.rand(batch, device=device) * (size - width + 1).clamp_min(1)).long()
        return start[:, None], (start + width)[:, None]

    low, high = span(torch.full((batch,), n_mels // 8, device=device), torch.tensor(n_mels))
    mels = torch.arange(n_mels, device=device)[None]
    keep = ~((mels >= low) & (mels < high))[:, None, :]
    lengths = lengths.to(device)
    low, high = span((lengths // 10), lengths)
    steps = torch.arange(frames, device=device)[None]
    keep = keep & ~((steps >= low) & (steps < high))[:, :, None]
    return x * keep


class SpeechRecognizer(pl.LightningModule):
    """Normalised log-mel -> optional frame stacking -> (bi)LSTM -> characters + blank."""

    def __init__(
        self,
        vocabulary: str,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        lr: float,
        weight_decay: float = 0.0,
        bidirectional: bool = True,
        subsample: int = 1,
        normalise: str = "utterance",
        augment: str = "none",
        lr_schedule: str = "none",
        decoder: str = "greedy",
        beam_width: int = 8,
        lexicon: str = "",
        features: dict[str, Any] | None = None,
    ) -> None:
        """`features`: how the audio was turned into frames (sample_rate, n_mels, window_ms,
        hop_ms) and the training mean / std per mel, so new audio is read the same way."""
        super().__init__()
        self.save_hyperparameters()
        features = {**FEATURE_DEFAULTS, **(features or {})}
        n_mels = int(features["n_mels"])
        self.register_buffer("mean", torch.tensor(features.get("mean") or [0.0] * n_mels))
        self.register_buffer("std", torch.tensor(features.get("std") or [1.0] * n_mels))
        self.backbone = LSTMBackbone(
            n_mels * subsample, hidden_size, num_layers, dropout, bidirectional
        )
        # blank, the vocabulary, and one id for characters never seen in training
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(self.backbone.output_size, len(vocabulary) + 2)
        )
        self.rates = ErrorRates()
        self.eval_loss = EpochMean()

    @override
    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probabilities (batch, steps, labels), steps per utterance)."""
        x = normalise_frames(x[:, : int(lengths.max())], lengths, self.hparams.normalise,
                             self.mean, self.std)  # fmt: skip
        if self.training and self.hparams.augment == "mask":
            x = mask_spectrum(x, lengths)
        x, steps = stack_frames(x, lengths, int(self.hparams.subsample))
        packed = pack_padded_sequence(x, steps.cpu(), batch_first=True, enforce_sorted=False)
        output, _ = self.backbone(packed)
        output, _ = pad_packed_sequence(output, batch_first=True)
        return self.head(output).log_softmax(-1), steps

    def _step(self, batch: tuple[torch.Tensor, ...], stage: str) -> torch.Tensor:
        x, lengths, labels, label_lengths = batch
        log_probs, steps = self(x, lengths)
        loss = F.ctc_loss(
            log_probs.transpose(0, 1).float(),
            labels,
            steps,
            label_lengths,
            blank=0,
            zero_infinity=True,
        )
        if stage != "train":
            self.eval_loss.add(loss, len(x))
            references = decode_labels(labels, label_lengths, self.hparams.vocabulary)
            self.rates.add(references, decode(self, log_probs, steps))
        return loss

    @override
    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    @override
    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._step(batch, "val")

    @override
    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._step(batch, "test")

    def _log_rates(self, stage: str) -> None:
        self.log_dict({f"{stage}_loss": self.eval_loss.pop(), f"{stage}_cer": self.rates.cer(),
                       f"{stage}_wer": self.rates.wer()})  # fmt: skip
        self.rates = ErrorRates()

    @override
    def on_validation_epoch_end(self) -> None:
        self._log_rates("val")

    @override
    def on_test_epoch_end(self) -> None:
        self._log_rates("test")

    @override
    def configure_optimizers(self) -> Any:
        """Adam; with lr_schedule onecycle the lr warms up to `lr` and anneals to near zero
        over the trial's epochs, which CTC training converges much faster with."""
        optimizer = adam(self)
        if self.hparams.lr_schedule == "none":
            return optimizer
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=self.hparams.lr,
            total_steps=max(1, int(self.trainer.estimated_stepping_batches)),
        )
        schedule = {"scheduler": scheduler, "interval": "step"}
        return {"optimizer": optimizer, "lr_scheduler": schedule}


def normalise_frames(
    x: torch.Tensor, lengths: torch.Tensor, mode: str, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """Log-mel frames normalised per utterance (its own mean / std over its real frames) or
    globally (the training mean / std); padding stays zero."""
    valid = torch.arange(x.shape[1], device=x.device)[None] < lengths.to(x.device)[:, None]
    valid = valid.unsqueeze(-1).to(x.dtype)
    if mode == "global":
        return (x - mean) / std * valid
    count = lengths.to(x.device).clamp_min(1)[:, None, None].to(x.dtype)
    own_mean = (x * valid).sum(1, keepdim=True) / count
    var = ((x - own_mean) ** 2 * valid).sum(1, keepdim=True) / count
    return (x - own_mean) / (var.sqrt() + 1e-5) * valid


def decode(model: SpeechRecognizer, log_probs: torch.Tensor, steps: torch.Tensor) -> list[str]:
    """Texts by the model's decoder: greedy, prefix beam search, or beam search whose
    words must come from the training transcripts' words (lexicon)."""
    hp = model.hparams
    if hp.decoder == "greedy":
        return greedy_decode(log_probs, steps, hp.vocabulary)
    lexicon = hp.lexicon if hp.decoder == "lexicon" else ""
    return beam_decode(log_probs, steps, hp.vocabulary, int(hp.beam_width), lexicon)


def transcribe(model: SpeechRecognizer, features: list[torch.Tensor]) -> list[str]:
    """Transcripts of (frames, n_mels) log-mel features, in batches."""
    model.eval()
    texts: list[str] = []
    with torch.no_grad():
        for start in range(0, len(features), 256):
            x, lengths = pad_frames(features[start : start + 256])
            log_probs, steps = model(x.to(model.device), lengths)
            texts.extend(decode(model, log_probs, steps))
    return texts


def upgrade(hyper_parameters: dict[str, Any]) -> dict[str, Any]:
    """Checkpoints written before the feature settings were grouped: flat sample_rate,
    n_mels, window_ms, hop_ms, feature_mean, feature_std -> `features`."""
    if "features" in hyper_parameters:
        return hyper_parameters
    features = {key: hyper_parameters.pop(key) for key in FEATURE_KEYS if key in hyper_parameters}
    for old, new in (("feature_mean", "mean"), ("feature_std", "std")):
        features[new] = hyper_parameters.pop(old, None)
    return {**hyper_parameters, "features": features}
