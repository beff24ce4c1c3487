"""Characters <-> CTC label ids, greedy CTC decoding, and error rates (CER / WER)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

BLANK = 0  # CTC blank; characters are ids 1..len(vocabulary)


def build_vocabulary(transcripts: Sequence[str]) -> str:
    """Every character of the training transcripts, sorted (ids 1.. in this order)."""
    return "".join(sorted(set("".join(transcripts))))


def encode(text: str, vocabulary: str) -> list[int]:
    """Label ids of `text`; characters the model never saw are left out."""
    lookup = {ch: i + 1 for i, ch in enumerate(vocabulary)}
    return [lookup[ch] for ch in text if ch in lookup]


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, vocabulary: str) -> list[str]:
    """Best label per frame, repeats merged, blanks dropped: (batch, frames, labels) -> texts."""
    best = log_probs.argmax(-1).cpu()
    texts = []
    for row, length in zip(best, lengths.tolist(), strict=True):
        labels = torch.unique_consecutive(row[:length]).tolist()
        texts.append("".join(vocabulary[i - 1] for i in labels if i != BLANK))
    return texts


def edit_distance(reference: Sequence, hypothesis: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp))
            )
        previous = current
    return previous[-1]


class ErrorRates:
    """Character and word errors summed over an epoch, so CER / WER are exact corpus rates
    (total edits / total reference length), not averages of per-utterance rates."""

    def __init__(self) -> None:
        self.char_edits = self.chars = self.word_edits = self.words = 0

    def add(self, references: Sequence[str], hypotheses: Sequence[str]) -> None:
        for reference, hypothesis in zip(references, hypotheses, strict=True):
            self.char_edits += edit_distance(reference, hypothesis)
            self.chars += len(reference)
            self.word_edits += edit_distance(reference.split(), hypothesis.split())
            self.words += len(reference.split())

    def cer(self) -> float:
        return self.char_edits / max(self.chars, 1)

    def wer(self) -> float:
        return self.word_edits / max(self.words, 1)
