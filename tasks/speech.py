"""Speech recognition: WAV -> log-mel frames -> (bi)LSTM -> characters + blank, trained
with CTC and decoded greedily; val_cer (character error rate) is minimised by default.

Features are computed once per study (per feature setting) and shared by every trial;
a trial only pads, batches and trains. The character vocabulary, normalisation and
feature settings travel in the model's hyperparameters, so a checkpoint transcribes new
audio exactly as it was trained.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from typing_extensions import override

from tasks.speech_data import FEATURE_KEYS, UtteranceSet, read_utterances
from tasks.speech_spec import SPEC
from tasks.speech_text import (
    ErrorRates,
    beam_decode,
    build_vocabulary,
    edit_distance,
    encode,
    greedy_decode,
)
from tuner.datafiles import require_splits, worst_split_settings
from tuner.errors import DataError
from tuner.lstm import LSTMBackbone, adam
from tuner.space import SearchSpace
from tuner.task import Task
from tuner.tensors import TensorData

DEFAULTS: dict[str, Any] = SPEC.defaults
DATA = Path(__file__).parent / "data"  # the shipped demo data
UNKNOWN_MARK = "\ufffd"  # stands for a character the model never saw, in references


# ---------------------------------------------------------------- splits and tensors


def assign_splits(data: UtteranceSet, settings: Mapping[str, Any]) -> np.ndarray:
    """The data's split (manifest column or --test-speaker) when given, with val carved
    from train when it has none; otherwise seeded random val / test fractions."""
    split = data.split.copy() if data.split is not None else np.full(len(data.files), "train")
    rng = np.random.default_rng(0)
    carve = [("test", float(settings["test_fraction"]))] if data.split is None else []
    if "val" not in split:
        carve.append(("val", float(settings["val_fraction"])))
    for name, fraction in carve:
        pool = rng.permutation(np.flatnonzero(split == "train"))
        split[pool[: max(1, int(round(fraction * len(pool))))]] = name
    return split


def pad_frames(features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, frames, n_mels) zero-padded, and each utterance's frame count."""
    lengths = torch.tensor([len(f) for f in features], dtype=torch.int64)
    return nn.utils.rnn.pad_sequence(features, batch_first=True), lengths


def pad_labels(texts: list[str], vocabulary: str) -> tuple[torch.Tensor, torch.Tensor]:
    """CTC targets: label ids padded with blanks (unseen characters get the id after the
    vocabulary, which the model can never emit, so they count as errors)."""
    encoded = [encode(text, vocabulary) for text in texts]
    lengths = torch.tensor([len(e) for e in encoded], dtype=torch.int64)
    out = torch.zeros(len(encoded), max(int(lengths.max()), 1), dtype=torch.int64)
    for i, ids in enumerate(encoded):
        out[i, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
    return out, lengths


def decode_labels(targets: torch.Tensor, lengths: torch.Tensor, vocabulary: str) -> list[str]:
    alphabet = vocabulary + UNKNOWN_MARK
    return [
        "".join(alphabet[i - 1] for i in row[:n].tolist())
        for row, n in zip(targets, lengths.tolist(), strict=True)
    ]


def global_stats(features: list[torch.Tensor]) -> tuple[list[float], list[float]]:
    frames = torch.cat(features)
    return frames.mean(0).tolist(), frames.std(0).clamp_min(1e-5).tolist()


# ---------------------------------------------------------------- data module


class SpeechData(TensorData):
    """Padded log-mel frames, frame counts, CTC targets and target lengths per split."""

    eval_batch_size = 256

    def __init__(self, data: UtteranceSet, settings: Mapping[str, Any], seed: int = 0) -> None:
        super().__init__(settings, seed)
        features = data.features(settings)
        split = assign_splits(data, settings)
        train = np.flatnonzero(split == "train")
        if not len(train) or not (split == "val").any():
            raise DataError(
                f"{data.source}: no {'training' if not len(train) else 'validation'} "
                f"utterances; expected some of each (split column or --test-speaker)"
            )
        transcripts = data.transcripts or []
        chosen = [transcripts[i] for i in train]
        self.vocabulary = settings.get("vocabulary") or build_vocabulary(chosen)
        mean, std = global_stats([features[i] for i in train])
        self.inputs = {
            "vocabulary": self.vocabulary,
            "lexicon": settings.get("lexicon") or " ".join(sorted(set(" ".join(chosen).split()))),
            "feature_mean": mean,
            "feature_std": std,
            **{key: settings[key] for key in FEATURE_KEYS},
        }
        for stage in ("train", "val", "test"):
            chosen = np.flatnonzero(split == stage)
            if len(chosen):
                frames = [features[i] for i in chosen]
                texts = [transcripts[i] for i in chosen]
                if stage == "train" and float(settings["speed_perturb"]) > 0:
                    frames, texts = speed_perturbed(data, settings, chosen, frames, texts)
                self.tensors[stage] = (
                    *pad_frames(frames),
                    *pad_labels(texts, self.vocabulary),
                )


def speed_perturbed(
    data: UtteranceSet,
    settings: Mapping[str, Any],
    chosen: np.ndarray,
    frames: list[torch.Tensor],
    texts: list[str],
) -> tuple[list[torch.Tensor], list[str]]:
    """The training utterances, plus copies played 1 - p and 1 + p times as fast (p =
    speed_perturb): more speaking rates and voice pitches for the same transcripts."""
    rate = float(settings["speed_perturb"])
    for speed in (1.0 - rate, 1.0 + rate):
        perturbed = data.features(settings, speed)
        frames = frames + [perturbed[i] for i in chosen]
    return frames, texts * 3


# ---------------------------------------------------------------- model


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
        sample_rate: int = 8000,
        n_mels: int = 40,
        window_ms: float = 25.0,
        hop_ms: float = 10.0,
        feature_mean: list[float] | None = None,
        feature_std: list[float] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.register_buffer("mean", torch.tensor(feature_mean or [0.0] * n_mels))
        self.register_buffer("std", torch.tensor(feature_std or [1.0] * n_mels))
        self.backbone = LSTMBackbone(
            n_mels * subsample, hidden_size, num_layers, dropout, bidirectional
        )
        # blank, the vocabulary, and one id for characters never seen in training
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(self.backbone.output_size, len(vocabulary) + 2)
        )
        self.rates = ErrorRates()

    def _normalise(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        valid = torch.arange(x.shape[1], device=x.device)[None] < lengths.to(x.device)[:, None]
        valid = valid.unsqueeze(-1).to(x.dtype)
        if self.hparams.normalise == "global":
            return (x - self.mean) / self.std * valid
        count = lengths.to(x.device).clamp_min(1)[:, None, None].to(x.dtype)
        mean = (x * valid).sum(1, keepdim=True) / count
        var = ((x - mean) ** 2 * valid).sum(1, keepdim=True) / count
        return (x - mean) / (var.sqrt() + 1e-5) * valid

    @override
    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probabilities (batch, steps, labels), steps per utterance)."""
        x = self._normalise(x[:, : int(lengths.max())], lengths)
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
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=len(x))
        if stage != "train":
            references = decode_labels(labels, label_lengths, self.hparams.vocabulary)
            self.rates.add(references, self.decode(log_probs, steps))
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
        self.log_dict({f"{stage}_cer": self.rates.cer(), f"{stage}_wer": self.rates.wer()})
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

    def decode(self, log_probs: torch.Tensor, steps: torch.Tensor) -> list[str]:
        """Texts by the model's decoder: greedy, prefix beam search, or beam search whose
        words must come from the training transcripts' words (lexicon)."""
        hp = self.hparams
        if hp.decoder == "greedy":
            return greedy_decode(log_probs, steps, hp.vocabulary)
        lexicon = hp.lexicon if hp.decoder == "lexicon" else ""
        return beam_decode(log_probs, steps, hp.vocabulary, int(hp.beam_width), lexicon)

    def transcribe(self, features: list[torch.Tensor]) -> list[str]:
        """Greedy transcripts of (frames, n_mels) log-mel features, in batches."""
        self.eval()
        texts: list[str] = []
        with torch.no_grad():
            for start in range(0, len(features), 256):
                x, lengths = pad_frames(features[start : start + 256])
                log_probs, steps = self(x.to(self.device), lengths)
                texts.extend(self.decode(log_probs, steps))
        return texts


def build_model(settings: Mapping[str, Any], datamodule: SpeechData) -> SpeechRecognizer:
    return SpeechRecognizer(**datamodule.inputs, **SPEC.model_args(settings))


# ---------------------------------------------------------------- contract glue


def add_data_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("speech data")
    group.add_argument(
        "--data",
        help="manifest CSV (path,transcript[,speaker][,split]; paths relative to it), a "
        "folder of WAV files, or one WAV file (predict); default: the shipped FSDD subset",
    )
    group.add_argument(
        "--transcript-from-name",
        metavar="REGEX",
        help="folder --data: the transcript is the regex's group 'transcript' (or group 1) "
        "in each file name; a group 'speaker' names the speaker, "
        "e.g. '^(?P<transcript>\\d)_(?P<speaker>[a-z]+)_'",
    )
    group.add_argument(
        "--test-speaker",
        metavar="NAME[,NAME]",
        help="hold these speakers out as the test split (speaker-independent test)",
    )


def load_data(args: Mapping[str, Any]) -> UtteranceSet:
    return read_utterances(args, need_transcripts=True)


def fit_space(space: SearchSpace, data: UtteranceSet) -> tuple[SearchSpace, list[str]]:
    """Training and validation utterances must exist for every trial, and CTC needs an LSTM
    step per label (two for a doubled letter): frame stacking (subsample) is capped by the
    utterance with the fewest frames per label."""
    settings = {**DEFAULTS, **space.fixed}
    require_splits(
        data.source, assign_splits(data, worst_split_settings(space, DEFAULTS)), "utterances"
    )
    perturb = space.param("speed_perturb")
    fastest = 1 + float(
        max(perturb.choices or [perturb.high]) if perturb else settings["speed_perturb"]
    )
    seconds = np.array([len(s) / rate for s, rate in data.audio]) / fastest
    frames = seconds * 1000 / settings["hop_ms"]
    needed = np.array([ctc_steps(t) for t in data.transcripts or []])
    worst = int(np.argmin(frames / needed))
    limit = int(frames[worst] // needed[worst])
    spec = space.param("subsample")
    lowest = (
        min(spec.choices)
        if spec and spec.kind == "categorical"
        else (spec.low if spec else settings["subsample"])
    )
    if limit < int(lowest):
        raise DataError(
            f"{data.files[worst]}: {frames[worst]:.0f} frames for a transcript needing "
            f"{needed[worst]} CTC steps is too short for subsample {int(lowest)}; expected "
            f"a longer recording, a shorter transcript or a smaller subsample"
        )
    if spec is None:
        return space, []
    if spec.kind == "categorical":
        kept = tuple(c for c in spec.choices if int(c) <= limit)
        capped = dataclasses.replace(spec, choices=kept)
    else:
        capped = dataclasses.replace(spec, high=min(spec.high, limit))
    if capped == spec:
        return space, []
    note = f"subsample: capped at {limit}, the most {data.files[worst].name} allows"
    return space.with_param(capped), [note]


def ctc_steps(text: str) -> int:
    """Fewest output steps CTC needs for `text`: one per character, plus a blank between
    each doubled character."""
    return max(1, len(text) + sum(a == b for a, b in zip(text, text[1:], strict=False)))


def build_datamodule(data: UtteranceSet, settings: Mapping[str, Any]) -> SpeechData:
    return SpeechData(data, settings, seed=int(settings.get("seed", 0)))


def predict(
    model: SpeechRecognizer,
    data_args: Mapping[str, Any],
    settings: Mapping[str, Any],
    options: Mapping[str, Any],
) -> pd.DataFrame:
    """path, transcript (and reference + per-file CER where the input has transcripts)."""
    data = read_utterances(data_args, need_transcripts=False)
    texts = model.transcribe(data.features(model.hparams))
    table = pd.DataFrame({"path": [str(f) for f in data.files], "transcript": texts})
    if data.transcripts is not None:
        table["reference"] = data.transcripts
        table["cer"] = [
            edit_distance(ref, hyp) / max(len(ref), 1)
            for ref, hyp in zip(data.transcripts, texts, strict=True)
        ]
    return table


TASK = Task(
    spec=SPEC,
    add_data_args=add_data_args,
    load_data=load_data,
    fit_space=fit_space,
    build_datamodule=build_datamodule,
    build_model=build_model,
    model_class=SpeechRecognizer,
    predict=predict,
    default_data=str(DATA / "speech/fsdd/manifest.csv"),
    smoke={"hidden_size": 8, "num_layers": 1, "max_epochs": 2, "batch_size": 64},
)
