"""Character language model: UTF-8 text -> character ids -> embedding + LSTM -> next char.

Training reads contiguous streams with truncated back-propagation through time: the
hidden state is carried from one batch to the next and detached, so gradients span `bptt`
characters while the state remembers further back. The last `val_fraction` of the text
is validation. Metrics: `val_loss` in nats, `val_bpc` in bits per character.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tuner.config.space import SearchSpace
from tuner.contract.datafiles import FRAME, is_frame
from tuner.contract.task import Task
from tuner.errors import DataError
from tuner.tasks.charlm.baselines import statistical_baselines
from tuner.tasks.charlm.data import Text, TextData, read_text, require_in_vocabulary
from tuner.tasks.charlm.model import CharLSTM, average_next_chars
from tuner.tasks.charlm.spec import SPEC
from tuner.tasks.charlm.views import report_views

DEFAULTS: dict[str, Any] = SPEC.defaults
DATA = Path(__file__).parents[1] / "data"  # the shipped demo data (tasks/data)


# ---------------------------------------------------------------- streams


# ---------------------------------------------------------------- model


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
    require_in_vocabulary(data, str(space.fixed.get("vocabulary") or ""))
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
    report_views=report_views,
    predict=predict,
    ensemble_inputs=("vocabulary",),  # members may read other window lengths and batches
    combine=average_next_chars,
    statistical_baselines=statistical_baselines,
    split_settings=("val_fraction", "max_chars"),
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
