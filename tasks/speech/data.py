"""Reading speech input: a manifest CSV (path, transcript[, speaker][, split]), a folder of
WAV files (transcripts from the file names), or one WAV file; and the log-mel features of
a whole set, computed once per feature setting and kept with the set."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from tuner.contract.datafiles import Table, is_frame, read_table, split_column
from tuner.errors import DataError
from tuner.tasks.speech.audio import log_mel, read_wav, resample

FEATURE_KEYS = ("sample_rate", "n_mels", "window_ms", "hop_ms")


@dataclass(frozen=True)
class UtteranceSet:
    """Audio files with what is known about them; audio is read once, at the rate it has."""

    source: str  # the manifest, folder or file given as --data (for messages)
    files: list[Path]
    audio: list[tuple[np.ndarray, int]]  # (float samples, their rate) per file
    transcripts: list[str] | None
    speakers: list[str] | None = None
    split: np.ndarray | None = None
    _features: dict = field(default_factory=dict, repr=False, compare=False)

    def features(self, settings: Mapping[str, Any], speed: float = 1.0) -> list[torch.Tensor]:
        """(frames, n_mels) log-mel per file; computed on the first call for a feature
        setting, then shared by every trial that uses it. `speed` != 1 plays the audio
        that much faster (and higher), as speed perturbation does."""
        key = (*(settings[name] for name in FEATURE_KEYS), speed)
        if key not in self._features:
            rate, n_mels, window_ms, hop_ms, _ = key
            self._features[key] = [
                log_mel(
                    resample(samples, source_rate, round(int(rate) / speed)),
                    int(rate),
                    int(n_mels),
                    float(window_ms),
                    float(hop_ms),
                )
                for samples, source_rate in self.audio
            ]
        return self._features[key]


def read_utterances(args: Mapping[str, Any], need_transcripts: bool = True) -> UtteranceSet:
    """--data as a manifest CSV, a folder of WAVs or a single WAV; with transcripts for
    training (need_transcripts), without for prediction; or a DataFrame with the columns of
    a manifest (paths relative to the working folder)."""
    if is_frame(args["data"]):
        return _finish(_read_manifest(read_table(args["data"]), Path()), args, need_transcripts)
    path = Path(args["data"])
    if path.is_dir():
        utterances = _read_folder(path, args.get("transcript_from_name"))
    elif path.suffix.lower() == ".wav" and path.is_file():
        utterances = _with_audio(str(path), [path], None, None, None)
    elif path.is_file():
        utterances = _read_manifest(read_table(path), path.parent)
    else:
        raise DataError(
            f"{path}: not found; expected a manifest CSV (path,transcript), a folder of "
            f"WAV files or a WAV file (--data)"
        )
    return _finish(utterances, args, need_transcripts)


def _finish(
    utterances: UtteranceSet, args: Mapping[str, Any], need_transcripts: bool
) -> UtteranceSet:
    if need_transcripts and utterances.transcripts is None:
        raise DataError(
            f"{utterances.source}: no transcripts; expected a manifest column 'transcript', "
            f"or for a folder --transcript-from-name REGEX (e.g. '^(?P<transcript>\\d)_')"
        )
    return _hold_out_speakers(utterances, args.get("test_speaker"))


def _read_manifest(table: Table, folder: Path) -> UtteranceSet:
    """Rows of path,transcript[,speaker][,split]; paths relative to `folder`."""
    path, frame = table.name, table.frame
    if "path" not in frame.columns:
        raise DataError(
            f"{path}: column 'path' not found; expected path,transcript[,speaker][,split] "
            f"(found: {', '.join(map(str, frame.columns))})"
        )
    transcripts = None
    if "transcript" in frame.columns:
        transcripts = [_clean(table, i, value) for i, value in enumerate(frame["transcript"])]
    speakers = [str(v) for v in frame["speaker"]] if "speaker" in frame.columns else None
    split = split_column(path, frame["split"], table) if "split" in frame.columns else None
    files = [folder / str(p) for p in frame["path"]]
    return _with_audio(path, files, transcripts, speakers, split, table)


def _clean(table: Table, index: int, value: Any) -> str:
    text = " ".join(str(value).split()) if not pd.isna(value) else ""
    if not text:
        raise DataError(f"{table.name}: {table.where(index)}: empty transcript; expected text")
    return text


def _read_folder(folder: Path, pattern: str | None) -> UtteranceSet:
    files = sorted(folder.rglob("*.wav"))
    if not files:
        raise DataError(f"{folder}: no .wav files in this folder")
    if not pattern:
        return _with_audio(str(folder), files, None, None, None)
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise DataError(f"--transcript-from-name {pattern!r}: not a valid regex ({exc})") from None
    transcripts, speakers = [], []
    for file in files:
        match = regex.search(file.name)
        if match is None:
            raise DataError(f"{file}: the name does not match --transcript-from-name {pattern!r}")
        groups = match.groupdict()
        text = groups.get("transcript") or (match.group(1) if regex.groups else match.group(0))
        transcripts.append(" ".join(str(text).split()))
        speakers.append(groups.get("speaker") or "")
    has_speakers = "speaker" in regex.groupindex
    return _with_audio(str(folder), files, transcripts, speakers if has_speakers else None, None)


def _with_audio(
    source: str,
    files: list[Path],
    transcripts: list[str] | None,
    speakers: list[str] | None,
    split: np.ndarray | None,
    table: Table | None = None,
) -> UtteranceSet:
    """Read every file now, so a bad one stops the study before it starts."""
    audio = []
    for i, file in enumerate(files):
        try:
            audio.append(read_wav(file))
        except DataError as exc:
            where = f"{source}: {table.where(i)}: " if table else ""
            raise DataError(f"{where}{exc}") from None
    return UtteranceSet(source, files, audio, transcripts, speakers, split)


def _hold_out_speakers(utterances: UtteranceSet, names: str | None) -> UtteranceSet:
    """--test-speaker A,B: those speakers' utterances become the test split (the rest
    train, val carved from it later), for a speaker-independent test figure."""
    if not names:
        return utterances
    wanted = {name.strip() for name in str(names).split(",") if name.strip()}
    if utterances.speakers is None:
        raise DataError(
            f"{utterances.source}: --test-speaker needs speakers; expected a manifest column "
            f"'speaker' or a (?P<speaker>...) group in --transcript-from-name"
        )
    known = set(utterances.speakers)
    missing = sorted(wanted - known)
    if missing:
        raise DataError(
            f"{utterances.source}: --test-speaker {missing[0]!r} has no utterances; "
            f"speakers here: {', '.join(sorted(known))}"
        )
    split = np.array(["test" if s in wanted else "train" for s in utterances.speakers])
    return replace(utterances, split=split)


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
