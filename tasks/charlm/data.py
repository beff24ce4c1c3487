"""Reading a text and cutting it into batches of streams: the characters, their ids, and
the training and validation parts."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from typing_extensions import override

from tuner.config.files import excerpt, regular_file
from tuner.contract.datafiles import FRAME, is_frame
from tuner.errors import DataError


def bits_per_char(nats_sum: float, count: int) -> float:
    """Mean cross-entropy in bits: nats / ln 2."""
    return nats_sum / max(count, 1) / math.log(2)


@dataclass(frozen=True)
class Text:
    path: str
    text: str


def read_text(args: Mapping[str, Any]) -> Text:
    """A UTF-8 text file, or a DataFrame whose `text` column holds the text (rows joined by
    new lines)."""
    if is_frame(args["data"]):
        frame = args["data"]
        if "text" not in frame.columns:
            raise DataError(f"{FRAME}: no column 'text'; expected the text to model in it")
        return _checked(FRAME, "\n".join(frame["text"].astype(str)))
    path = Path(args["data"])
    regular_file(path, "text file", "a UTF-8 text file (--data)", DataError)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: byte {exc.start} is not UTF-8 ({raw[exc.start : exc.start + 1]!r});"
            f" expected a UTF-8 text file"
        ) from None
    return _checked(str(path), text)


def _checked(name: str, text: str) -> Text:
    if len(set(text)) < 2:
        raise DataError(
            f"{name}: holds {len(text)} characters of {len(set(text))} kinds; "
            f"expected a text to model"
        )
    return Text(name, text)


class Streams:
    """`batch_size` contiguous streams of a text, read `bptt` characters at a time.

    Each batch is (inputs, targets, reset): reset is 1 where the streams start again from
    their beginning, so the model drops a hidden state that belongs elsewhere. With a
    `limit`, an epoch stops after that many batches and the next one continues from there.
    """

    def __init__(self, ids: torch.Tensor, batch_size: int, bptt: int, limit: int = 0) -> None:
        columns = (len(ids) - 1) // batch_size
        if columns < 2:
            raise DataError(
                f"the text part has {len(ids)} characters; too short for "
                f"{batch_size} streams (lower batch_size)"
            )
        self.inputs = ids[: batch_size * columns].view(batch_size, columns)
        self.targets = ids[1 : batch_size * columns + 1].view(batch_size, columns)
        self.bptt, self.limit, self.position = bptt, limit, 0
        self.starts = list(range(0, columns - 1, bptt))

    def __len__(self) -> int:
        return min(self.limit, len(self.starts)) if self.limit else len(self.starts)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        for _ in range(len(self)):
            start = self.starts[self.position]
            stop = start + self.bptt
            reset = torch.tensor(int(self.position == 0))
            self.position = (self.position + 1) % len(self.starts)
            yield self.inputs[:, start:stop], self.targets[:, start:stop], reset


def require_in_vocabulary(data: Text, vocabulary: str) -> None:
    """A fine-tune's text holds only characters its source model reads (in its order)."""
    unknown = sorted(set(data.text) - set(vocabulary)) if vocabulary else []
    if unknown:
        raise DataError(
            f"{data.path}: characters {excerpt(''.join(unknown))!r} are not in the model's "
            f"vocabulary of {len(vocabulary)}; expected text in the characters it was "
            f"trained on"
        )


class TextData(pl.LightningDataModule):
    def __init__(self, data: Text, settings: Mapping[str, Any]) -> None:
        super().__init__()
        text = data.text[: int(settings["max_chars"])] if settings["max_chars"] else data.text
        self.vocabulary = settings.get("vocabulary") or "".join(sorted(set(data.text)))
        require_in_vocabulary(data, self.vocabulary)
        lookup = {ch: i for i, ch in enumerate(self.vocabulary)}
        ids = torch.tensor([lookup[ch] for ch in text], dtype=torch.int64)
        cut = int(len(ids) * (1 - float(settings["val_fraction"])))
        size, bptt = int(settings["batch_size"]), int(settings["bptt"])
        self.train = Streams(ids[:cut], size, bptt, int(settings["batches_per_epoch"]))
        self.val_ids = ids[cut:]
        self.val = Streams(self.val_ids, min(size, max(1, len(self.val_ids) // (2 * bptt))), bptt)
        self.baseline_metrics = {"val_unigram_bpc": unigram_bpc(ids[:cut], self.val_ids)}

    @override
    def train_dataloader(self) -> Streams:
        return self.train

    @override
    def val_dataloader(self) -> Streams:
        self.val.position = 0  # every validation reads the whole part from its start
        return self.val


def unigram_bpc(train: torch.Tensor, val: torch.Tensor) -> float:
    """Bits per char of character frequencies (add-one smoothed): what a model must beat."""
    size = int(max(train.max(), val.max())) + 1
    counts = torch.bincount(train, minlength=size).double() + 1
    log_p = torch.log(counts / counts.sum())
    return bits_per_char(float(-log_p[val].sum()), len(val))
