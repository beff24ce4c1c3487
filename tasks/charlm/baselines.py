"""What a character language model must beat on its validation text: the unigram (in the
data module, every trial) and, once per study, an order-5 character n-gram with Witten-Bell
interpolation, counted on the training text. Both in bits per character."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tuner.tasks.charlm.data import Text

ORDER = 5  # characters of context, plus one


def statistical_baselines(data: Text, settings: Mapping[str, Any]) -> dict[str, float]:
    """The n-gram's bits per character on the validation text the trials read."""
    text = data.text[: int(settings["max_chars"])] if settings["max_chars"] else data.text
    cut = int(len(text) * (1 - float(settings["val_fraction"])))
    if cut < ORDER or cut >= len(text):
        return {}
    return {"val_ngram_bpc": ngram_bpc(text[:cut], text[cut:], len(set(text)))}


def ngram_bpc(train: str, val: str, alphabet: int, order: int = ORDER) -> float:
    """Bits per character of `val` under Witten-Bell interpolated n-grams of `train`: each
    order's estimate leans on the one below as much as its context has seen distinct
    followers. The validation text's first contexts come from the training text's end.
    N-grams are counted as integer codes with numpy (a million characters in a second)."""
    chars = {c: i + 1 for i, c in enumerate(sorted(set(train) | set(val)))}
    base = len(chars) + 1
    while base**order >= 2**62:  # codes must fit in int64: a huge alphabet gets shorter grams
        order -= 1
    ids = np.array([chars[c] for c in train + val], dtype=np.int64)
    cut, positions = len(train), np.arange(len(train), len(train) + len(val))
    counts = _Counts(ids[:cut], 1)
    p = (counts.of(ids[positions]) + counts.distinct / alphabet) / (cut + counts.distinct)
    for k in range(1, order):
        grams = _Counts(_codes(ids[:cut], k + 1, base), base)
        wanted = _codes(ids, k + 1, base)[positions - k]
        seen, spread = grams.context(wanted // base)
        p = np.where(seen > 0, (grams.of(wanted) + spread * p) / np.maximum(seen + spread, 1), p)
    return float(-np.log2(p).sum() / len(val))


def _codes(ids: np.ndarray, length: int, base: int) -> np.ndarray:
    """The code of every `length`-character window (window i starts at character i)."""
    codes = ids[: len(ids) - length + 1].copy()
    for j in range(1, length):
        codes = codes * base + ids[j : len(ids) - length + 1 + j]
    return codes


class _Counts:
    """How often each code occurs, and per context (the code without its last character)
    how often it was followed by anything and by how many distinct characters."""

    def __init__(self, codes: np.ndarray, base: int) -> None:
        self.codes, self.counts = np.unique(codes, return_counts=True)
        self.distinct = len(self.codes)
        contexts, inverse = np.unique(self.codes // base, return_inverse=True)
        self.contexts = contexts
        self.seen = np.bincount(inverse, weights=self.counts)
        self.followers = np.bincount(inverse).astype(float)

    def of(self, codes: np.ndarray) -> np.ndarray:
        return _lookup(self.codes, self.counts.astype(float), codes)

    def context(self, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (_lookup(self.contexts, self.seen, contexts),
                _lookup(self.contexts, self.followers, contexts))  # fmt: skip


def _lookup(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """values[keys == w] for each w of `wanted` (keys sorted), 0 where absent."""
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, values[at], 0.0)
