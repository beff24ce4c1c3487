"""Regenerate the shipped speech demo sets under tasks/data/speech/. Run once by a
maintainer, not at install time (the output is committed, so the demo needs no espeak-ng).

    python tasks/data/make_speech_data.py --fsdd ../shared/data/fsdd/recordings

- fsdd/: a subset of the Free Spoken Digit Dataset (8 kHz int16 WAV, 6 speakers): takes
  0-4 of every digit and speaker (FSDD's official test set) and takes 5-11 (training);
  manifest.csv: path, transcript (the digit as a word), speaker, split.
- connected/: connected digit strings (2-4 digits) spoken by espeak-ng with 12 voice
  variants at varied speeds, resampled to 8 kHz int16, trailing silence trimmed to 0.1 s;
  voices m7 and f5 are the test split (speaker-held-out), the rest train; manifest as above.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tuner.tasks.speech.audio import read_wav, resample  # noqa: E402

HERE = Path(__file__).parent / "speech"
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FSDD_TAKES = range(12)  # 0-4 test, 5-11 train
VOICES = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
TEST_VOICES = ("m7", "f5")
PER_VOICE = 15
RATE = 8000


def copy_fsdd(source: Path, out: Path) -> None:
    rows = ["path,transcript,speaker,split"]
    for file in sorted(source.glob("*.wav")):
        digit, speaker, take = file.stem.split("_")
        if int(take) not in FSDD_TAKES:
            continue
        shutil.copyfile(file, out / file.name)
        split = "test" if int(take) < 5 else "train"
        rows.append(f"{file.name},{WORDS[int(digit)]},{speaker},{split}")
    (out / "manifest.csv").write_text("\n".join(rows) + "\n")


def synthesise_connected(out: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    rows = ["path,transcript,speaker,split"]
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "raw.wav"
        for voice in VOICES:
            for index in range(PER_VOICE):
                digits = rng.integers(0, 10, size=int(rng.integers(2, 5)))
                text = " ".join(WORDS[d] for d in digits)
                speed = int(rng.integers(130, 181))
                subprocess.run(
                    ["espeak-ng", "-v", f"en-us+{voice}", "-s", str(speed), "-w", str(raw), text],
                    check=True,
                )
                samples, rate = read_wav(raw)
                name = f"{''.join(map(str, digits))}_{voice}_{index}.wav"
                write_wav(out / name, trim_tail(resample(samples, rate, RATE)), RATE)
                split = "test" if voice in TEST_VOICES else "train"
                rows.append(f"{name},{text},{voice},{split}")
    (out / "manifest.csv").write_text("\n".join(rows) + "\n")


def trim_tail(samples: np.ndarray, keep_seconds: float = 0.1) -> np.ndarray:
    """espeak-ng ends every utterance with about half a second of silence; keep 0.1 s."""
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    end = int(loud[-1]) + int(keep_seconds * RATE) if len(loud) else len(samples)
    return samples[:end]


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdd", required=True, help="FSDD's recordings/ folder")
    args = parser.parse_args()
    for name in ("fsdd", "connected"):
        shutil.rmtree(HERE / name, ignore_errors=True)
        (HERE / name).mkdir(parents=True)
    copy_fsdd(Path(args.fsdd), HERE / "fsdd")
    synthesise_connected(HERE / "connected")


if __name__ == "__main__":
    main()
