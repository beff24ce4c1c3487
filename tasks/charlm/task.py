"""Character language model: UTF-8 text -> character ids -> embedding + LSTM -> next char.

Training reads contiguous streams with truncated back-propagation through time: the
hidden state is carried from one batch to the next and detached, so gradients span `bptt`
characters while the state remembers further back. The last `val_fraction` of the text
is validation. Metrics: `val_loss` in nats, `val_bpc` in bits per character.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pandas as pd
import torch
from torch import nn
from tuner.tasks.charlm.spec import SPEC
from typing_extensions import override

from tuner.config.space import SearchSpace
from tuner.contract.datafiles import FRAME, is_frame
from tuner.contract.lstm import LSTMBackbone, adam
from tuner.contract.members import MemberStates, detached
from tuner.contract.task import Task
from tuner.errors import DataError, UsageError

DEFAULTS: dict[str, Any] = SPEC.defaults
DATA = Path(__file__).parents[1] / "data"  # the shipped demo data (tasks/data)


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
    if not path.is_file():
        raise DataError(f"{path}: text file not found; expected a UTF-8 text file (--data)")
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


def bits_per_char(nats_sum: float, count: int) -> float:
    """Mean cross-entropy in bits: nats / ln 2."""
    return nats_sum / max(count, 1) / math.log(2)


# ---------------------------------------------------------------- streams


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


class TextData(pl.LightningDataModule):
    def __init__(self, data: Text, settings: Mapping[str, Any]) -> None:
        super().__init__()
        text = data.text[: int(settings["max_chars"])] if settings["max_chars"] else data.text
        self.vocabulary = "".join(sorted(set(data.text)))
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


# ---------------------------------------------------------------- model


class CharLSTM(pl.LightningModule):
    def __init__(
        self,
        vocabulary: str,
        embed_size: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        lr: float,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.embedding = nn.Embedding(len(vocabulary), embed_size)
        self.backbone = LSTMBackbone(embed_size, hidden_size, num_layers, dropout)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, len(vocabulary)))
        self.states: dict[str, Any] = {}
        self.nats, self.count = 0.0, 0

    @override
    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        output, state = self.backbone(self.embedding(x), state)
        return self.head(output), state

    def _step(self, batch: tuple[torch.Tensor, ...], stage: str) -> torch.Tensor:
        x, y, reset = batch
        state = None if int(reset) else self.states.get(stage)
        logits, state = self(x, state)
        self.states[stage] = detached(state)  # truncated BPTT
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        if stage == "val":  # the loop averages the training loss itself
            self.nats += loss.detach().item() * y.numel()
            self.count += y.numel()
        return loss

    @override
    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    @override
    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._step(batch, "val")

    @override
    def on_validation_epoch_start(self) -> None:
        self.states.pop("val", None)
        self.nats, self.count = 0.0, 0

    @override
    def on_validation_epoch_end(self) -> None:
        loss = self.nats / self.count if self.count else math.nan
        self.log_dict({"val_loss": loss, "val_bpc": bits_per_char(self.nats, self.count)})

    @override
    def configure_optimizers(self) -> torch.optim.Optimizer:
        return adam(self)

    def generate(self, prompt: str, length: int, temperature: float, seed: int) -> str:
        """Sample `length` characters after `prompt`."""
        lookup = {ch: i for i, ch in enumerate(self.hparams.vocabulary)}
        unknown = sorted({ch for ch in prompt if ch not in lookup})
        if unknown:
            raise UsageError(
                f"--prompt: characters {''.join(unknown)!r} are not in the model's vocabulary"
            )
        generator = torch.Generator().manual_seed(seed)
        ids = [lookup[ch] for ch in prompt] or [0]
        self.eval()
        out, state = [], None
        with torch.no_grad():
            x = torch.tensor([ids])
            for _ in range(length):
                logits, state = self(x, state)
                probs = torch.softmax(logits[0, -1] / max(temperature, 1e-6), dim=0)  # no overflow
                next_id = int(torch.multinomial(probs, 1, generator=generator))
                out.append(self.hparams.vocabulary[next_id])
                x = torch.tensor([[next_id]])
        return prompt + "".join(out)


def average_next_chars(
    outputs: list[tuple[torch.Tensor, Any]],
) -> tuple[torch.Tensor, MemberStates]:
    """Language models as one: the log of their mean next-character probabilities (the
    loss and the sampler read it as logits), and each model's own state kept for it."""
    stacked = torch.stack([logits.log_softmax(-1) for logits, _ in outputs])
    mixed = torch.logsumexp(stacked, 0) - math.log(len(outputs))
    return mixed, MemberStates(state for _, state in outputs)


def build_model(settings: Mapping[str, Any], datamodule: TextData) -> CharLSTM:
    return CharLSTM(datamodule.vocabulary, **SPEC.model_args(settings))


# ---------------------------------------------------------------- contract glue


def add_data_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("charlm data")
    group.add_argument("--data", help="UTF-8 text file; default: the shipped tiny-shakespeare")


def fit_space(space: SearchSpace, data: Text) -> tuple[SearchSpace, list[str]]:
    """Refuse a text too short for every trial of the space: each of the `batch_size`
    training streams needs one `bptt` window and the validation part one window too."""
    bptt = int(space.value_range("bptt", DEFAULTS)[1])
    batch = int(space.value_range("batch_size", DEFAULTS)[1])
    low, high = (float(v) for v in space.value_range("val_fraction", DEFAULTS))
    max_chars = int(space.value_range("max_chars", DEFAULTS)[0])
    chars = min(len(data.text), max_chars) if max_chars else len(data.text)
    train, val = int(chars * (1 - high)), chars - int(chars * (1 - low))
    need_train, need_val = batch * (bptt + 1) + 1, bptt + 1
    if train < need_train or val < need_val:
        raise DataError(
            f"{data.path}: {chars} characters ({train} for training, {val} for validation) "
            f"are too short for bptt {bptt} with batch_size {batch}; expected at least "
            f"{need_train} for training and {need_val} for validation (a longer text, or a "
            f"smaller bptt / batch_size)"
        )
    return space, []


def build_datamodule(data: Text, settings: Mapping[str, Any]) -> TextData:
    return TextData(data, settings)


def predict(
    model: CharLSTM,
    data_args: Mapping[str, Any],
    settings: Mapping[str, Any],
    options: Mapping[str, Any],
) -> pd.DataFrame:
    """Generated text: `--prompt`, `--length`, `--temperature`, `--seed` (checked against
    SPEC.predict_options before they get here; a missing one takes its default). Given a
    DataFrame with a `prompt` column (MLflow's pyfunc, the Python API), one text per row."""
    given = {**{s.name: s.default for s in SPEC.predict_options}, **options}
    prompts = [given["prompt"]]
    if is_frame(data_args.get("data")):
        if "prompt" not in data_args["data"].columns:
            raise DataError(f"{FRAME}: no column 'prompt'; expected the texts to continue")
        prompts = [str(p) for p in data_args["data"]["prompt"]]
    texts = [
        model.generate(
            "\n" if prompt is None else prompt,
            int(given["length"]),
            float(given["temperature"]),
            int(given["seed"]),
        )
        for prompt in prompts
    ]
    return pd.DataFrame({"text": texts})


def example(data: Text, settings: Mapping[str, Any]) -> pd.DataFrame:
    """A prompt: the text's first line (at most 40 characters)."""
    return pd.DataFrame({"prompt": [data.text.lstrip().split("\n")[0][:40] or data.text[:1]]})


TASK = Task(
    spec=SPEC,
    add_data_args=add_data_args,
    load_data=read_text,
    fit_space=fit_space,
    build_datamodule=build_datamodule,
    build_model=build_model,
    model_class=CharLSTM,
    example=example,
    predict=predict,
    ensemble_inputs=("vocabulary",),  # members may read other window lengths and batches
    combine=average_next_chars,
    default_data=str(DATA / "tinyshakespeare.txt"),
    smoke={
        "hidden_size": 16,
        "embed_size": 8,
        "num_layers": 1,
        "max_epochs": 2,
        "batch_size": 4,
        "bptt": 20,
        "max_chars": 4000,
        "batches_per_epoch": 5,
    },
)
