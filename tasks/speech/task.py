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
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from tuner.config.space import SearchSpace
from tuner.contract.datafiles import require_splits, worst_split_settings
from tuner.contract.task import Task
from tuner.contract.tensors import TensorData
from tuner.errors import DataError
from tuner.tasks.speech.baselines import frequent_transcript_baseline, statistical_baselines
from tuner.tasks.speech.data import FEATURE_KEYS, UtteranceSet, assign_splits, read_utterances
from tuner.tasks.speech.model import SpeechRecognizer, pad_frames, transcribe, upgrade
from tuner.tasks.speech.spec import SPEC
from tuner.tasks.speech.text import (
    build_vocabulary,
    edit_distance,
    encode,
)
from tuner.tasks.speech.views import report_views

DEFAULTS: dict[str, Any] = SPEC.defaults
DATA = Path(__file__).parents[1] / "data"  # the shipped demo data (tasks/data)


# ---------------------------------------------------------------- splits and tensors


def pad_labels(texts: list[str], vocabulary: str) -> tuple[torch.Tensor, torch.Tensor]:
    """CTC targets: label ids padded with blanks (unseen characters get the id after the
    vocabulary, which the model can never emit, so they count as errors)."""
    encoded = [encode(text, vocabulary) for text in texts]
    lengths = torch.tensor([len(e) for e in encoded], dtype=torch.int64)
    out = torch.zeros(len(encoded), max(int(lengths.max()), 1), dtype=torch.int64)
    for i, ids in enumerate(encoded):
        out[i, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
    return out, lengths


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
            "features": {**{key: settings[key] for key in FEATURE_KEYS}, "mean": mean, "std": std},
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
        self.baseline_metrics = frequent_transcript_baseline(transcripts, split)


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
    texts = transcribe(model, data.features(model.hparams.features))
    table = pd.DataFrame({"path": [str(f) for f in data.files], "transcript": texts})
    if data.transcripts is not None:
        table["reference"] = data.transcripts
        table["cer"] = [
            edit_distance(ref, hyp) / max(len(ref), 1)
            for ref, hyp in zip(data.transcripts, texts, strict=True)
        ]
    return table


def average_log_probs(
    outputs: list[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Several recognisers of one frame rate as one: the log of their mean per-frame label
    probabilities (a CTC distribution again), decoded once; the steps are the same."""
    stacked = torch.stack([log_probs for log_probs, _ in outputs])
    return torch.logsumexp(stacked, 0) - math.log(len(outputs)), outputs[0][1]


def example(data: UtteranceSet, settings: Mapping[str, Any]) -> pd.DataFrame:
    """One recording, by its absolute path."""
    return pd.DataFrame({"path": [str(Path(data.files[0]).resolve())]})


TASK = Task(
    spec=SPEC,
    add_data_args=add_data_args,
    load_data=load_data,
    fit_space=fit_space,
    build_datamodule=build_datamodule,
    build_model=build_model,
    model_class=SpeechRecognizer,
    example=example,
    report_views=report_views,
    forward_inputs=2,  # (features, lengths)
    # members emit frames at one rate, over one alphabet, from audio read one way
    ensemble_inputs=("vocabulary", "subsample", "features"),
    combine=average_log_probs,
    statistical_baselines=statistical_baselines,
    split_settings=("test_fraction",),
    upgrade=upgrade,
    predict=predict,
    default_data=str(DATA / "speech/fsdd/manifest.csv"),
    smoke={"hidden_size": 8, "num_layers": 1, "max_epochs": 2, "batch_size": 64},
)
