"""Characters <-> CTC label ids, greedy CTC decoding, and error rates (CER / WER)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

BLANK = 0  # CTC blank; characters are ids 1..len(vocabulary)


def build_vocabulary(transcripts: Sequence[str]) -> str:
    """Every character of the training transcripts, sorted (ids 1.. in this order)."""
    return "".join(sorted(set("".join(transcripts))))


def encode(text: str, vocabulary: str) -> list[int]:
    """Label ids of `text`; a character outside the vocabulary gets the id after it (one
    the model can never emit, so it counts as an error)."""
    lookup = {ch: i + 1 for i, ch in enumerate(vocabulary)}
    return [lookup.get(ch, len(vocabulary) + 1) for ch in text]


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, vocabulary: str) -> list[str]:
    """Best label per frame, repeats merged, blanks dropped: (batch, frames, labels) -> texts."""
    best = log_probs.argmax(-1).cpu()
    texts = []
    for row, length in zip(best, lengths.tolist(), strict=True):
        labels = torch.unique_consecutive(row[:length]).tolist()
        texts.append("".join(vocabulary[i - 1] for i in labels if 0 < i <= len(vocabulary)))
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


def beam_decode(
    log_probs: torch.Tensor,
    lengths: torch.Tensor,
    vocabulary: str,
    width: int = 8,
    lexicon: str = "",
) -> list[str]:
    """CTC prefix beam search; with a lexicon (space-separated words) every word of a
    transcript must be one of them, which turns near misses ("fve") into words."""
    words = set(lexicon.split())
    prefixes = {word[:i] for word in words for i in range(len(word) + 1)}
    rows = log_probs.float().cpu().numpy()
    return [
        _beam_search(row[:n], vocabulary, width, words, prefixes)
        for row, n in zip(rows, lengths.tolist(), strict=True)
    ]


def _beam_search(
    row: np.ndarray, vocabulary: str, width: int, words: set[str], prefixes: set[str]
) -> str:
    def allowed(text: str) -> bool:
        if text.endswith(" "):  # a space closes a word: it must be a whole one
            return text[:-1].rpartition(" ")[2] in words
        return text.rpartition(" ")[2] in prefixes

    beams: dict[str, tuple[float, float]] = {"": (0.0, -np.inf)}  # (ends in blank, not)
    for frame in row:
        candidates = [int(c) for c in np.argsort(frame)[-width:] if 0 < c <= len(vocabulary)]
        grown: dict[str, list[float]] = {}
        for text, (blank, label) in beams.items():
            total = np.logaddexp(blank, label)
            _add(grown, text, 0, total + frame[BLANK])
            for c in candidates:
                char, score = vocabulary[c - 1], frame[c]
                if text and text[-1] == char:
                    _add(grown, text, 1, label + score)  # the same label, not yet separated
                    extended, base = text + char, blank + score
                else:
                    extended, base = text + char, total + score
                if not words or allowed(extended):
                    _add(grown, extended, 1, base)
        ranked = sorted(grown.items(), key=lambda item: -np.logaddexp(*item[1]))
        beams = {text: (scores[0], scores[1]) for text, scores in ranked[:width]}
    finished = [t for t in beams if not words or t.rpartition(" ")[2] in words]
    return max(finished or beams, key=lambda t: np.logaddexp(*beams[t]))


def _add(beams: dict[str, list[float]], text: str, slot: int, value: float) -> None:
    scores = beams.setdefault(text, [-np.inf, -np.inf])
    scores[slot] = np.logaddexp(scores[slot], value)
