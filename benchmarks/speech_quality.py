"""Speech quality figures of benchmarks/RESULTS.md, each a real `tuner` sweep on this
machine's cores (run by hand: about 40 minutes on 2 cores, too long for `make bench`).

    python -m benchmarks.speech_quality [fsdd|connected|speaker] [--fsdd DIR]

- fsdd: FSDD's official split (takes 0-4 of every speaker and digit are the test set, the
  other 2700 recordings train + val), the default space with the lexicon decoder, a
  sweep in which no trial starts after 700 s (`--timeout 700`), so it ends within 15 min.
- connected: the shipped espeak-ng connected digit strings, two voices held out as test.
- speaker: trained on five FSDD speakers (the sixth held out), then fine-tuned on takes
  5-19 of the sixth; word error rate on its takes 0-4 before and after.

The full FSDD (3000 WAV, CC BY-SA 4.0) is read from --fsdd (default
../shared/data/fsdd/recordings; github.com/Jakobovski/free-spoken-digit-dataset).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

from benchmarks.common import REPO, machine, print_and_record, run_cli, scratch
from tuner.tasks.speech.text import ErrorRates

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
HELD_OUT_SPEAKER = "theo"
LEXICON = ("--set", "decoder=lexicon")


def fsdd_manifest(folder: Path, recordings: Path, split_of) -> Path:
    """A manifest of every FSDD recording, with `split_of(speaker, take)` as its split
    (None leaves the recording out)."""
    rows = []
    for file in sorted(recordings.glob("*.wav")):
        digit, speaker, take = file.stem.split("_")
        split = split_of(speaker, int(take))
        if split:
            rows.append((file, WORDS[int(digit)], speaker, split))
    path = folder / "manifest.csv"
    pd.DataFrame(rows, columns=["path", "transcript", "speaker", "split"]).to_csv(
        path, index=False
    )
    return path


def sweep(folder: Path, data: Path, seconds: int, *extra: str) -> tuple[float, str]:
    return run_cli(
        folder,
        "search",
        "--task",
        "speech",
        "--data",
        str(data),
        "--trials",
        "10",  # a target, so TPE leaves its random start-up after 3 trials
        "--timeout",
        str(seconds),
        "--quiet",
        *extra,
        timeout=seconds + 900,
    )


def official_split(recordings: Path) -> str:
    folder = scratch()
    data = fsdd_manifest(folder, recordings, lambda _, take: "test" if take < 5 else "train")
    wall, output = sweep(folder, data, 700, *LEXICON, "--study", "fsdd")
    return f"FSDD official split: wall {wall:.0f} s\n{output}"


def connected() -> str:
    folder = scratch()
    data = REPO / "tasks" / "data" / "speech" / "connected" / "manifest.csv"
    wall, output = sweep(folder, data, 600, *LEXICON)
    return f"connected digits (voices m7, f5 held out): wall {wall:.0f} s\n{output}"


def word_error_rate(folder: Path, source: str, data: Path) -> tuple[float, float]:
    run_cli(folder, "predict", "--from", source, "--data", str(data), "--out", "p.csv")
    table = pd.read_csv(folder / "p.csv", keep_default_na=False)
    rates = ErrorRates()
    rates.add(list(table["reference"]), list(table["transcript"]))
    return rates.wer(), rates.cer()


def speaker_finetune(recordings: Path) -> str:
    folder = scratch()
    others = fsdd_manifest(
        folder, recordings, lambda s, _: "test" if s == HELD_OUT_SPEAKER else "train"
    )
    wall, output = sweep(folder, others, 300, *LEXICON, "--study", "five")
    new = folder / "speaker"
    new.mkdir()

    def speaker_split(speaker: str, take: int) -> str | None:
        if speaker != HELD_OUT_SPEAKER:
            return None
        return "test" if take < 5 else "val" if take < 8 else "train" if take < 20 else None

    own = fsdd_manifest(new, recordings, speaker_split)
    test = folder / "speaker_test.csv"
    table = pd.read_csv(own)
    table[table.split == "test"].to_csv(test, index=False)
    before = word_error_rate(folder, "study:five", test)
    _, tuned = run_cli(folder, "finetune", "--from", "study:five", "--data", str(own), "--quiet")
    after = word_error_rate(folder, "models:/five-finetuned@best", test)
    return (
        f"speaker-held-out ({HELD_OUT_SPEAKER}): sweep on five speakers, wall {wall:.0f} s\n"
        f"{output}\nfine-tune on 12 takes x 10 digits of {HELD_OUT_SPEAKER}:\n{tuned}\n"
        f"{HELD_OUT_SPEAKER} takes 0-4: WER {before[0]:.3f} -> {after[0]:.3f}, "
        f"CER {before[1]:.3f} -> {after[1]:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", default=["fsdd", "connected", "speaker"])
    parser.add_argument("--fsdd", default=str(REPO.parent / "shared/data/fsdd/recordings"))
    args = parser.parse_args()
    recordings = Path(args.fsdd)
    if not any(recordings.glob("*.wav")):
        parser.error(f"--fsdd {recordings}: no FSDD recordings (*.wav) there")
    runs = {
        "fsdd": lambda: official_split(recordings),
        "connected": connected,
        "speaker": lambda: speaker_finetune(recordings),
    }
    printed = "\n\n".join(re.sub(r"\n{3,}", "\n\n", runs[name]()) for name in args.which)
    print_and_record(
        "\n".join(
            [
                "## Speech: FSDD and connected digits",
                "",
                f"Machine: {machine()}. What each sweep printed:",
                "",
                "```text",
                printed,
                "```",
            ]
        )
    )


if __name__ == "__main__":
    main()
