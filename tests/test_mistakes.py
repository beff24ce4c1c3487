"""The matrix of user mistakes: each ends with exit code 2, ONE line naming the thing, what
was found and what was expected, and leaves the project folder exactly as it was: no store,
no mlruns/ folder, no file created in an empty project, nothing changed beside a study."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import struct
import tempfile
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
import torch

import tuner
from tests.conftest import REPO, TINY_SPACE, tables
from tests.tasks.test_speech import write_wav
from tuner.cli import main
from tuner.contract.checkpoints import save_checkpoint
from tuner.errors import UsageError

FILES = {
    "empty.csv": "",
    "header_only.csv": "month,passengers\n",
    "text.csv": "month,passengers\n2000-01-01,1\n2000-02-01,abc\n",
    "nan.csv": "month,passengers\n2000-01-01,1\n2000-02-01,nan\n",
    "inf.csv": "month,passengers\n2000-01-01,1\n2000-02-01,inf\n",
    "dup.csv": "month,passengers\n2000-01-01,1\n2000-01-01,2\n",
    "ambiguous.csv": "day,sales\n" + "".join(f"{d:02d}/01/2024,{d}\n" for d in range(1, 13)),
    "baddate.csv": "month,passengers\nsoon,1\n",
    "short.csv": "month,passengers\n"
    + "".join(f"20{m // 12:02d}-{m % 12 + 1:02d}-01,{m}\n" for m in range(20)),
    "veryshort.csv": "month,passengers\n" + "".join(f"20{y:02d}-01-01,{y}\n" for y in range(5)),
    "other.csv": "month,passengers\n"
    + "".join(
        f"{1990 + m // 12}-{m % 12 + 1:02d}-01,{100 + m + 9 * (m % 12 > 5)}\n" for m in range(72)
    ),
    "notyaml.yaml": "params: [unclosed\n  - x: {",
    "lowhigh.yaml": "metric: val_mae\nparams:\n  lr: {type: float, low: 0.1, high: 0.01}\n",
    "nochoices.yaml": "metric: val_mae\nparams:\n  transform: {type: categorical, choices: []}\n",
    "badtype.yaml": "metric: val_mae\nparams:\n  lr: {type: uniform, low: 0.1, high: 1}\n",
    "list.yaml": "- metric\n- val_mae\n",
    "metric.yaml": "metric: val_accuracy\n",
    "direction.yaml": "metric: val_acc\ndirection: minimize\n",
    "range.yaml": "params:\n  hidden_size: {type: int, low: 0, high: 8}\n",
    "floatint.yaml": "params:\n  hidden_size: {type: float, low: 4, high: 8}\n",
    "badchoice.yaml": "params:\n  batch_size: {type: categorical, choices: [16, 0]}\n",
    "wordrange.yaml": "params:\n  transform: {type: int, low: 0, high: 2}\n",
    "dropout.yaml": "fixed:\n  dropout: 1.5\n",
    "nanfixed.yaml": "fixed:\n  lr: .nan\n",
    "objectives.yaml": "objectives:\n  - {metric: val_mae}\n  - {metric: flops}\n",
    "firstobj.yaml": "objectives:\n  - {metric: params}\n  - {metric: val_mae}\n",
    "twoobj.yaml": "objectives:\n  - {metric: val_mae}\n  - {metric: params}\n",
    "constraint.yaml": "constraints: [params < 100]\n",
    "notes.ckpt": "just text",
    "tiny.txt": "hello world, a text far shorter than one bptt window.\n",
    "two_seq.csv": "sequence_id,step,x,label\na,0,1.0,yes\na,1,2.0,yes\nb,0,3.0,no\nb,1,1.0,no\n",
    "corrupt.db": "this is not a database, whatever its name says " * 20,
    # round three: what a careless or hostile user hands us
    "bomb.yaml": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nparams: [*c, *c, *c, *c, *c, *c, *c, *c]\n",
    "huge.csv": "month,passengers\n2000-01-01,1\n2000-02-01,1e308\n",
    "folds1.yaml": "metric: val_acc\nfixed: {folds: 1, max_epochs: 1, hidden_size: 4}\n",
    "unseen.csv": "sequence_id,step,x,label,split\n"
    + "".join(f"{i},{t},{i + t},{'ab'[i % 2]},train\n" for i in range(8) for t in range(3))
    + "".join(f"v{i},0,{i},{'ab'[i % 2]},val\n" for i in range(4))
    + "t0,0,1,c,test\n",
    "odd.txt": "the quick brown fox # jumps over the lazy dog\n" * 400,
    "deep.yaml": "params: " + "[" * 400 + "]" * 400 + "\n",
}
HUGE_ERROR = "x" * 100_000
STORED = REPO / "tests" / "data"  # checkpoints of each task, written by an older lstm-tuner

MISTAKES = [
    # data file
    (["search", "--task", "forecasting", "--data", "missing.csv"], ["missing.csv", "not found"]),
    (["search", "--task", "forecasting", "--data", "empty.csv"], ["empty.csv", "empty"]),
    (["search", "--task", "forecasting", "--data", "header_only.csv"], ["no rows"]),
    (
        ["search", "--task", "forecasting", "--data", "unreadable.csv"],
        ["unreadable.csv", "cannot read"],
    ),
    (["search", "--task", "forecasting", "--target", "price"], ["target column price not found"]),
    (["search", "--task", "forecasting", "--time-col", "when"], ["time column 'when' not found"]),
    (
        ["search", "--task", "forecasting", "--data", "text.csv"],
        ["line 3", "'abc'", "finite number"],
    ),
    (["search", "--task", "forecasting", "--data", "nan.csv"], ["line 3", "finite number"]),
    (["search", "--task", "forecasting", "--data", "inf.csv"], ["line 3", "finite number"]),
    (
        ["search", "--task", "forecasting", "--data", "dup.csv"],
        ["line 3", "repeats", "one value per time step"],
    ),
    (
        ["search", "--task", "forecasting", "--data", "ambiguous.csv"],
        ["ambiguous.csv", "day-first (%d/%m/%Y)", "--date-format"],
    ),
    (["search", "--task", "forecasting", "--data", "baddate.csv"], ["line 2", "not a date"]),
    (
        ["search", "--task", "forecasting", "--data", "short.csv"],
        ["short.csv", "too short", "input_len"],
    ),
    (["search", "--task", "forecasting", "--data", "audio"], ["audio", "is a folder"]),
    (["search", "--task", "charlm", "--data", "tiny.txt"], ["tiny.txt", "too short", "bptt"]),
    (["search", "--task", "charlm", "--data", "unreadable.csv"], ["unreadable.csv", "not UTF-8"]),
    (
        ["search", "--task", "classification", "--data", "two_seq.csv"],
        ["two_seq.csv", "validation"],
    ),
    (["search", "--task", "classification", "--data", "notes.ckpt"], ["notes.ckpt", "no rows"]),
    (
        ["search", "--task", "classification", "--data", "fake.npz"],
        ["fake.npz", "cannot read as .npz"],
    ),
    (
        ["search", "--task", "classification", "--data", "one_class.npz"],
        ["one_class.npz", "two classes"],
    ),
    # task, flags
    (["search", "--task", "forcasting"], ["--task 'forcasting'", "did you mean 'forecasting'"]),
    (["search", "--task", "forecasting", "--sampler", "grid"], ["--sampler 'grid'", "tpe"]),
    (["search", "--task", "forecasting", "--pruner", "often"], ["--pruner 'often'", "hyperband"]),
    (["search", "--task", "forecasting", "--trials", "0"], ["--trials 0", "integer >= 1"]),
    (["search", "--task", "forecasting", "--trials", "-2"], ["--trials -2", "integer >= 1"]),
    (["search", "--task", "forecasting", "--trials", "many"], ["--trials 'many'", "integer"]),
    (["search", "--task", "forecasting", "--timeout", "-1"], ["--timeout -1", "number > 0"]),
    (["search", "--task", "forecasting", "--timeout", "0"], ["--timeout 0", "number > 0"]),
    (["search", "--task", "forecasting", "--timeout", "nan"], ["--timeout nan", "number > 0"]),
    (["search", "--task", "forecasting", "--heartbeat", "0"], ["--heartbeat 0", "integer >= 1"]),
    (["search", "--task", "forecasting", "--seed", "-1"], ["--seed -1", ">= 0"]),
    # objectives and constraints
    (["search", "--task", "forecasting", "--constraint", "latency<5"], ["latency<5", "COST<="]),
    (["search", "--task", "forecasting", "--constraint", "params<=ten"], ["params<=ten", "COST"]),
    (
        ["search", "--task", "forecasting", "--space", "objectives.yaml"],
        ["objectives[1]", "flops"],
    ),
    (
        ["search", "--task", "forecasting", "--space", "firstobj.yaml"],
        ["task 'forecasting'", "params"],
    ),
    (
        ["search", "--task", "forecasting", "--space", "constraint.yaml"],
        ["constraints:", "params < 100"],
    ),
    (
        ["search", "--task", "forecasting", "--space", "twoobj.yaml", "--sampler", "cmaes"],
        ["--sampler cmaes", "one objective"],
    ),
    (["best", "--study", "nope", "--constraint", "size<1"], ["size<1", "COST"]),
    (
        ["search", "--task", "forecasting", "--seed", "99999999999"],
        ["--seed 99999999999", "<= 4294967295"],
    ),
    (["search", "--task", "forecasting", "--max-epochs", "0"], ["--max-epochs 0", "integer >= 1"]),
    (["search", "--task", "forecasting", "--workers", "0"], ["--workers 0", "integer >= 1"]),
    (
        ["search", "--task", "forecasting", "--trials-per-device", "0"],
        ["--trials-per-device 0", ">= 1"],
    ),
    (
        ["search", "--task", "forecasting", "--devices", "7"],
        ["--devices '7'", "GPU 7 does not exist"],
    ),
    (
        ["search", "--task", "forecasting", "--devices", "banana"],
        ["--devices 'banana'", "auto, cpu, gpu"],
    ),
    (["search", "--task", "forecasting", "--precision", "fp8"], ["--precision 'fp8'", "32-true"]),
    (
        ["search", "--task", "forecasting", "--precision", "16-mixed", "--devices", "cpu"],
        ["--precision 16-mixed needs a GPU"],
    ),
    (
        ["search", "--task", "forecasting", "--frobnicate"],
        ["unrecognized arguments: --frobnicate"],
    ),
    (["search", "--task", "forecasting", "--trials"], ["--trials", "expected one argument"]),
    (["search"], ["required", "--task"]),
    (["serch"], ["invalid choice", "'serch'"]),
    ([], ["required", "COMMAND"]),
    # names
    (
        ["search", "--task", "forecasting", "--study", "../../x"],
        ["--study '../../x'", "not a valid name"],
    ),
    (
        ["search", "--task", "forecasting", "--study", "o'brien"],
        ['--study "o\'brien"', "not a valid name"],
    ),
    (["search", "--task", "forecasting", "--study", "a/b"], ["--study 'a/b'", "letters, digits"]),
    (["search", "--task", "forecasting", "--study", ""], ["--study ''", "not a valid name"]),
    (["search", "--task", "forecasting", "--study", "tab\there"], ["not a valid name"]),
    # --set
    (
        ["search", "--task", "forecasting", "--set", "max_epochs"],
        ["--set 'max_epochs'", "key=value"],
    ),
    (
        ["search", "--task", "forecasting", "--set", "epochs=3"],
        ["--set epochs", "unknown setting"],
    ),
    (
        ["search", "--task", "forecasting", "--set", "max_epochs=many"],
        ["max_epochs", "expected an integer"],
    ),
    (
        ["search", "--task", "forecasting", "--set", "max_epochs=0"],
        ["--set max_epochs", "integer >= 1", "found 0"],
    ),
    (["search", "--task", "forecasting", "--set", "lr=-1"], ["--set lr", "number > 0"]),
    (["search", "--task", "forecasting", "--set", "lr=nan"], ["--set lr", "number > 0"]),
    (["search", "--task", "forecasting", "--set", "dropout=2"], ["--set dropout", "<= 1"]),
    (["search", "--task", "forecasting", "--set", "horizon=0"], ["--set horizon", ">= 1"]),
    (
        ["search", "--task", "forecasting", "--set", "input_len=1.5"],
        ["--set input_len", "integer"],
    ),
    (
        ["search", "--task", "forecasting", "--set", "batch_size=true"],
        ["--set batch_size", "integer"],
    ),
    (
        ["search", "--task", "forecasting", "--set", "transform=lg"],
        ["transform", "one of none, log"],
    ),
    (
        ["search", "--task", "speech", "--data", "m_good.csv", "--set", "augment=louder"],
        ["augment", "one of none, mask"],
    ),
    # search space
    (
        ["search", "--task", "forecasting", "--space", "notyaml.yaml"],
        ["notyaml.yaml", "not valid YAML"],
    ),
    (
        ["search", "--task", "forecasting", "--space", "missing.yaml"],
        ["missing.yaml", "not found"],
    ),
    (["search", "--task", "forecasting", "--space", "audio"], ["audio", "is a folder"]),
    (
        ["search", "--task", "forecasting", "--space", "unreadable.csv"],
        ["unreadable.csv", "cannot read"],
    ),
    (
        ["search", "--task", "forecasting", "--space", "list.yaml"],
        ["list.yaml", "expected a YAML mapping"],
    ),
    (["search", "--task", "forecasting", "--space", "lowhigh.yaml"], ["params.lr", "low (0.1)"]),
    (
        ["search", "--task", "forecasting", "--space", "nochoices.yaml"],
        ["params.transform.choices", "non-empty"],
    ),
    (
        ["search", "--task", "forecasting", "--space", "badtype.yaml"],
        ["params.lr.type", "'uniform'"],
    ),
    (
        ["search", "--task", "forecasting", "--space", "metric.yaml"],
        ["metric.yaml", "does not log 'val_accuracy'", "val_mae"],
    ),
    (
        ["search", "--task", "classification", "--space", "direction.yaml"],
        ["direction", "val_acc", "maximize"],
    ),
    (
        ["search", "--task", "forecasting", "--space", "range.yaml"],
        ["params.hidden_size", "integer >= 1", "found 0"],
    ),
    (
        ["search", "--task", "forecasting", "--space", "floatint.yaml"],
        ["params.hidden_size.type", "type int"],
    ),
    (
        ["search", "--task", "forecasting", "--space", "badchoice.yaml"],
        ["params.batch_size", "found 0"],
    ),
    (
        ["search", "--task", "forecasting", "--space", "wordrange.yaml"],
        ["params.transform.type", "categorical"],
    ),
    (
        ["search", "--task", "forecasting", "--space", "dropout.yaml"],
        ["fixed.dropout", "<= 1", "found 1.5"],
    ),
    (["search", "--task", "forecasting", "--space", "nanfixed.yaml"], ["fixed.lr", "number > 0"]),
    # stores
    (
        ["search", "--task", "forecasting", "--storage", "redis://127.0.0.1/0"],
        ["--storage", "unknown scheme"],
    ),
    (
        ["search", "--task", "forecasting", "--storage", "mlruns/optuna.db"],
        ["--storage", "unknown scheme"],
    ),
    (
        ["search", "--task", "forecasting", "--storage", "postgresql://nobody@127.0.0.1:1/none"],
        ["--storage 'postgresql://nobody@127.0.0.1:1/none'", "cannot open"],
    ),
    (
        ["search", "--task", "forecasting", "--storage", "postgresql://me:hunter2@127.0.0.1:1/x"],
        ["postgresql://me:***@127.0.0.1:1/x", "cannot open"],
    ),
    (
        ["search", "--task", "forecasting", "--storage", "sqlite:///corrupt.db"],
        ["corrupt.db", "cannot open"],
    ),
    (
        ["search", "--task", "forecasting", "--storage", "sqlite:////proc/version/x.db"],
        ["cannot create", "/proc/version"],
    ),
    (
        ["search", "--task", "forecasting", "--tracking-uri", "postgresql://nobody@127.0.0.1:1/x"],
        ["--tracking-uri", "cannot open"],
    ),
    (
        ["search", "--task", "forecasting", "--tracking-uri", "http://127.0.0.1:1"],
        ["--tracking-uri", "cannot reach the MLflow store"],
    ),
    (
        ["search", "--task", "forecasting", "--tracking-uri", "sqlite:///corrupt.db"],
        ["--tracking-uri", "corrupt.db"],
    ),
    (
        ["best", "--study", "seen", "--storage", "sqlite:///corrupt.db"],
        ["corrupt.db", "cannot open"],
    ),
    (
        ["trials", "--study", "seen", "--storage", "sqlite:///corrupt.db"],
        ["corrupt.db", "cannot open"],
    ),
    # reading commands in a folder with no records
    (["best", "--study", "nope"], ["--study 'nope'", "no such study"]),
    (["trials", "--study", "nope"], ["--study 'nope'", "no such study"]),
    (["report", "--study", "nope"], ["--study 'nope'", "no such study"]),
    (["compare", "nope", "other"], ["'nope'", "no such study"]),
    (["lineage", "runs:/0123"], ["no MLflow store there yet"]),
    (["predict", "--from", "study:nope"], ["no MLflow store there yet"]),
    (["ui", "--port", "0"], ["--port 0", "integer >= 1"]),
    (["ui", "--port", "70000"], ["--port 70000", "<= 65535"]),
    # checkpoint sources
    (["finetune", "--from", "missing.ckpt"], ["missing.ckpt", "no such checkpoint file"]),
    (["finetune", "--from", "notes.ckpt"], ["notes.ckpt", "not a readable checkpoint"]),
    (["finetune", "--from", "truncated.ckpt"], ["truncated.ckpt", "truncated"]),
    (
        ["finetune", "--from", "other_task.ckpt"],
        ["other_task.ckpt", "task 'tests.other'", "cannot be loaded here"],
    ),
    (
        ["finetune", "--from", "good.ckpt", "--task", "tests.faulty_task"],
        ["good.ckpt", "task 'forecasting', but task 'tests.faulty_task' was asked for"],
    ),
    (
        ["finetune", "--from", "wrong_shape.ckpt"],
        ["wrong_shape.ckpt", "not an lstm-tuner checkpoint"],
    ),
    (["predict", "--from", "evil.ckpt"], ["evil.ckpt", "refused"]),
    (
        ["predict", "--from", "good.ckpt", "--data", "veryshort.csv"],
        ["veryshort.csv", "needs the last"],
    ),
    (["finetune", "--from", "good.ckpt", "--data", "short.csv"], ["short.csv", "too short"]),
    # speech audio and manifests
    (
        ["search", "--task", "speech", "--data", "m_missing.csv"],
        ["line 2", "gone.wav", "not found"],
    ),
    (
        ["search", "--task", "speech", "--data", "m_text.csv"],
        ["line 3", "text.wav", "not a PCM WAV"],
    ),
    (
        ["search", "--task", "speech", "--data", "m_float.csv"],
        ["float.wav", "not a PCM WAV", "format: 3"],
    ),
    (["search", "--task", "speech", "--data", "m_empty.csv"], ["empty.wav", "empty (0 samples)"]),
    (["search", "--task", "speech", "--data", "m_short.csv"], ["short.wav", "10 ms", "too short"]),
    (
        ["search", "--task", "speech", "--data", "m_columns.csv"],
        ["column 'path' not found", "file, text"],
    ),
    (["search", "--task", "speech", "--data", "m_blank.csv"], ["line 3", "empty transcript"]),
    (
        ["search", "--task", "speech", "--data", "m_split.csv"],
        ["line 2", "'dev'", "train, val or test"],
    ),
    (["search", "--task", "speech", "--data", "m_one.csv"], ["m_one.csv", "validation"]),
    (
        ["search", "--task", "speech", "--data", "audio"],
        ["no transcripts", "--transcript-from-name"],
    ),
    (
        ["search", "--task", "speech", "--data", "audio", "--transcript-from-name", "^x(\\d)"],
        ["good.wav", "does not match"],
    ),
    (
        ["search", "--task", "speech", "--data", "audio", "--transcript-from-name", "(unclosed"],
        ["not a valid regex"],
    ),
    (
        ["search", "--task", "speech", "--data", "m_good.csv", "--test-speaker", "zed"],
        ["'zed'", "no utterances", "ann, bob"],
    ),
    # round three: files that are not files, YAML that expands, values that do not fit
    (["search", "--task", "forecasting", "--space", "fifo.yaml"], ["fifo.yaml", "named pipe"]),
    (["search", "--task", "forecasting", "--space", "bomb.yaml"], ["bomb.yaml", "aliases"]),
    (["search", "--task", "forecasting", "--data", "huge.csv"], ["line 3", "float32"]),
    (
        ["search", "--task", "classification", "--data", "unseen.csv", "--space", "folds1.yaml"],
        ["unseen.csv", "class 'c'", "test part but not in training"],
    ),
    (["search", "--task", "speech", "--data", "m_rate.csv"], ["rate0.wav", "0 Hz"]),
    (["search", "--task", "speech", "--data", "m_width.csv"], ["width5.wav", "40-bit"]),
    (["search", "--task", "forecasting", "--workers", "100000"], ["--workers 100000", "at most"]),
    (
        ["search", "--task", "forecasting", "--trials", "2", "--workers", "3"],
        ["--workers 3", "more than the 2 trials"],
    ),
    (
        ["search", "--task", "forecasting", "--max-epochs", "3", "--set", "max_epochs=5"],
        ["--max-epochs 3", "max_epochs=5", "disagree"],
    ),
    (["search", "--task", "forecasting", "--study", HUGE_ERROR], ["--study", "..."]),
    (["search", "--task", "forecasting", "--space", "deep.yaml"], ["deep.yaml", "too deeply"]),
    (["search", "--task", "forecasting", "--heartbeat", "99999999"], ["--heartbeat", "<= 3600"]),
    (["search", "--task", "forecasting", "--trials", "9" * 30], ["--trials", "<= 1000000"]),
    (
        ["search", "--task", "forecasting", "--set", "max_epochs=2", "--set", "max_epochs=3"],
        ["max_epochs=3", "max_epochs=2", "disagree"],
    ),
    (["search", "--task", "forecasting", "--set", "hidden_size=" + "9" * 5000], ["hidden_size"]),
    (["ensemble", "--study", "x", "--seeds", "100000"], ["--seeds 100000", "<= 50"]),
    (
        [
            "finetune",
            "--from",
            str(STORED / "classification-7e3bbbc.ckpt"),
            "--data",
            "other_classes.npz",
        ],
        ["other_classes.npz", "class 'zz'", "not one of the model's 9 classes"],
    ),  # fmt: skip
    (
        [
            "finetune",
            "--from",
            str(STORED / "classification-7e3bbbc.ckpt"),
            "--data",
            "other_features.npz",
        ],
        ["other_features.npz", "reads 12 features per step", "holds 3"],
    ),  # fmt: skip
    (
        ["finetune", "--from", str(STORED / "charlm-7e3bbbc.ckpt"), "--data", "odd.txt"],
        ["odd.txt", "'#'", "not in the model's vocabulary"],
    ),
]

# mistakes made in a project that already holds one finished study, 'seen'
MISTAKES_WITH_A_STUDY = [
    (
        [
            "search",
            "--task",
            "forecasting",
            "--study",
            "seen",
            "--set",
            "horizon=6",
            "--space",
            "rmse.yaml",
        ],
        ["--study 'seen'", "metric 'val_mae', not 'val_rmse'"],
    ),
    (
        [
            "search",
            "--task",
            "forecasting",
            "--study",
            "seen",
            "--space",
            "tiny.yaml",
            "--set",
            "max_epochs=3",
        ],
        ["--study 'seen'", "other settings", "max_epochs: 2 -> 3", "--allow-changes"],
    ),
    (
        [
            "search",
            "--task",
            "forecasting",
            "--study",
            "seen",
            "--space",
            "tiny.yaml",
            "--data",
            "other.csv",
        ],
        ["--study 'seen'", "other settings", "content differs"],
    ),
    (["finetune", "--from", "runs:/00000000000000000000000000000000"], ["no MLflow run"]),
    (["finetune", "--from", "models:/nope/1"], ["registered model 'nope'", "version '1'"]),
    (["finetune", "--from", "models:/seen/99"], ["registered model 'seen'", "version '99'"]),
    (["predict", "--from", "study:nope"], ["study:nope", "no such study"]),
    (["lineage", "study:nope"], ["study:nope", "no such study"]),
    (
        ["finetune", "--from", "study:seen", "--freeze-layers", "5"],
        ["--freeze-layers 5", "expected 0 to"],
    ),
    (
        ["finetune", "--from", "study:seen", "--freeze-layers", "-1"],
        ["--freeze-layers -1", ">= 0"],
    ),
    (["finetune", "--from", "study:seen", "--lr", "0"], ["--lr 0", "number > 0"]),
    (["finetune", "--from", "study:seen", "--max-epochs", "0"], ["--max-epochs 0", ">= 1"]),
    (["finetune", "--from", "study:seen", "--patience", "-1"], ["--patience -1", ">= 0"]),
    (["finetune", "--from", "study:seen", "--trials", "0"], ["--trials 0", ">= 1"]),
    (
        ["finetune", "--from", "study:seen", "--study", "../up"],
        ["--study '../up'", "not a valid name"],
    ),
    (
        ["finetune", "--from", "study:seen", "--model-name", "a:b"],
        ["--model-name 'a:b'", "not a valid name"],
    ),
    (
        ["finetune", "--from", "study:seen", "--data", "short.csv"],
        ["short.csv", "too short", "input_len 12"],
    ),
    (
        ["finetune", "--from", "study:seen", "--test-speaker", "ann"],
        ["--test-speaker", "forecasting", "no such data option"],
    ),
    (["predict", "--from", "study:seen", "--length", "0"], ["--length 0", "integer >= 1"]),
    (["predict", "--from", "study:seen", "--temperature", "0"], ["--temperature 0", "number > 0"]),
    (
        ["predict", "--from", "study:seen", "--proba"],
        ["--proba", "task 'forecasting' takes no such option"],
    ),
    (
        ["predict", "--from", "study:seen", "--data", "veryshort.csv"],
        ["veryshort.csv", "needs the last 12"],
    ),
    (
        ["predict", "--from", "study:seen", "--storage", "redis://x"],
        ["--storage", "unknown scheme"],
    ),
    (["best", "--study", "nope"], ["--study 'nope'", "no such study", "seen"]),
    (
        ["best", "--study", "seen", "--constraint", "latency_ms<=5"],
        ["--constraint", "'seen' measured latency_ms", "only where its --constraint"],
    ),
    (["predict", "--from", "study:seen", "--length", "10000000"], ["--length", "<= 100000"]),
    # outputs, checked before any work
    (["predict", "--from", "study:seen", "--out", "audio"], ["--out audio", "is a folder"]),
    (
        ["predict", "--from", "study:seen", "--out", "nowhere/p.csv"],
        ["--out nowhere/p.csv", "does not exist"],
    ),
    (["compare", "seen", "--out", "audio"], ["--out audio", "is a folder"]),
    (["report", "--study", "seen", "--out", "tiny.yaml"], ["--out tiny.yaml", "is a file"]),
    (
        ["report", "--study", "seen", "--tracking-uri", "sqlite:///elsewhere.db"],
        ["no MLflow store there yet"],
    ),
]


class Evil:
    def __reduce__(self):
        return (print, ("this should never run",))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A project folder holding only the mistake files: no store, no mlruns/."""
    root = tmp_path_factory.mktemp("inputs")
    for name, text in FILES.items():
        (root / name).write_text(text)
    (root / "tiny.yaml").write_text(TINY_SPACE)
    (root / "rmse.yaml").write_text(TINY_SPACE.replace("metric: val_mae", "metric: val_rmse"))
    (root / "unreadable.csv").write_bytes(b"\xff\xfe\x00bad\x00")
    (root / "fake.npz").write_bytes(b"PK\x03\x04 not really a zip")
    np.savez(root / "one_class.npz", X=np.zeros((6, 3, 1)), y=np.array(["a"] * 6))
    labels = np.array(["1"] * 10 + ["zz"] * 10)
    np.savez(root / "other_classes.npz", X=np.ones((20, 5, 12)), y=labels)
    np.savez(root / "other_features.npz", X=np.ones((20, 5, 3)), y=np.array(["1", "2"] * 10))
    _write_audio_mistakes(root)
    from tuner.tasks.forecasting.task import DEFAULTS, TASK

    settings = {**DEFAULTS, "input_len": 12, "horizon": 6}
    model = TASK.build_model(settings, None)
    good = save_checkpoint(root / "good.ckpt", model, "forecasting", settings, {})
    (root / "truncated.ckpt").write_bytes(good.read_bytes()[:2000])
    save_checkpoint(root / "other_task.ckpt", model, "tests.other", settings, {})
    torch.save({"format": "lstm-tuner/1", "x": Evil()}, root / "evil.ckpt")
    torch.save(
        {
            "format": "lstm-tuner/1",
            "task": "forecasting",
            "hyper_parameters": [],
            "state_dict": {},
            "settings": {},
        },
        root / "wrong_shape.ckpt",
    )
    return root


@pytest.fixture(scope="module")
def seen(inputs, tmp_path_factory):
    """The same folder, plus one finished study ('seen') in the default local stores."""
    root = tmp_path_factory.mktemp("seen") / "project"
    shutil.copytree(inputs, root)
    cwd = Path.cwd()
    try:
        os.chdir(root)
        tuner.search(
            "forecasting", trials=1, space="tiny.yaml", study="seen", quiet=True, pruner="none"
        )
    finally:
        os.chdir(cwd)
    return root


def _write_audio_mistakes(root: Path) -> None:
    """WAV files good and bad, and one manifest per mistake (the first row is good)."""
    audio = root / "audio"
    audio.mkdir()
    tone = np.sin(np.arange(4000) / 3.0) * 0.3
    write_wav(audio / "good.wav", tone, 8000)
    write_wav(root / "short.wav", tone[:80], 8000)
    write_wav(root / "empty.wav", tone[:0], 8000)
    (root / "text.wav").write_text("not audio at all")
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + 8,
        b"WAVE",
        b"fmt ",
        16,
        3,
        1,
        8000,
        32000,
        4,
        32,
        b"data",
        8,
    )
    (root / "float.wav").write_bytes(header + np.zeros(2, "<f4").tobytes())
    good = "audio/good.wav,one two,ann,train\naudio/good.wav,two,bob,train\n"
    head, first = "path,transcript,speaker,split\n", good.splitlines(keepends=True)[0]
    manifests = {
        "m_good.csv": head + good,
        "m_missing.csv": head + "gone.wav,one,ann,train\n",
        "m_text.csv": head + first + "text.wav,one,ann,train\n",
        "m_float.csv": head + "float.wav,one,ann,train\n",
        "m_empty.csv": head + "empty.wav,one,ann,train\n",
        "m_short.csv": head + "short.wav,one,ann,train\n",
        "m_columns.csv": "file,text\naudio/good.wav,one\n",
        "m_blank.csv": head + first + "audio/good.wav, ,ann,train\n",
        "m_split.csv": head + "audio/good.wav,one,ann,dev\n",
        "m_one.csv": "path,transcript\naudio/good.wav,one\n",
        "m_rate.csv": head + first + "rate0.wav,one,ann,train\n",
        "m_width.csv": head + first + "width5.wav,one,ann,train\n",
    }
    for name, rate, width in (("rate0.wav", 0, 2), ("width5.wav", 8000, 5)):
        (root / name).write_bytes(_pcm_header(rate, width) + bytes(2000 * width))
    for name, text in manifests.items():
        (root / name).write_text(text)


def _pcm_header(rate: int, width: int) -> bytes:
    """A PCM WAV header as a careless encoder might write it: any rate, any sample width."""
    size = 2000 * width
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * width, width, 8 * width)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + size)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + (b"data" + struct.pack("<I", size))
    )


def fingerprint(folder: Path) -> dict[str, str]:
    """Every path under the folder (folders too: an empty mlruns/ counts) and its content;
    a SQLite database's content is its records (a reader may fold the write-ahead log into
    the file, or remove the log's `-wal` and `-shm` files: the same records)."""
    return {
        str(p.relative_to(folder)): _content(p) if p.is_file() else "folder"
        for p in sorted(folder.rglob("*"))
        if not p.name.endswith(("-wal", "-shm"))
    }


def _content(path: Path) -> str:
    data = path.read_bytes()
    if not data.startswith(b"SQLite format 3"):
        return hashlib.sha256(data).hexdigest()
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as database:
        return hashlib.sha256("\n".join(database.iterdump()).encode()).hexdigest()


def make_mistake(template, tmp_path, monkeypatch, capsys, argv, words, name="project"):
    project = tmp_path / name
    shutil.copytree(template, project)
    os.mkfifo(project / "fifo.yaml")  # copytree copies no pipe: made in each project
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = fingerprint(project)
    scratch = tmp_path / f"{name}-tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert len(err) <= 700, f"{len(err)} characters: {err[:300]}"
    for word in words:
        assert word in err, err
    assert "Traceback" not in err and "this should never run" not in out
    assert fingerprint(project) == before
    assert not list(scratch.iterdir())  # no temporary copy left behind


def _ids(cases):
    return [" ".join(argv[:5])[:70] for argv, _ in cases]


@pytest.mark.parametrize("argv, words", MISTAKES, ids=_ids(MISTAKES))
def test_mistake_in_an_empty_project(inputs, tmp_path, monkeypatch, capsys, argv, words):
    make_mistake(inputs, tmp_path, monkeypatch, capsys, argv, words)


@pytest.mark.parametrize("argv, words", MISTAKES_WITH_A_STUDY, ids=_ids(MISTAKES_WITH_A_STUDY))
def test_mistake_beside_a_study(seen, tmp_path, monkeypatch, capsys, argv, words):
    make_mistake(seen, tmp_path, monkeypatch, capsys, argv, words)


def test_the_matrix_holds_every_kind_of_mistake():
    assert len(MISTAKES) + len(MISTAKES_WITH_A_STUDY) >= 140


REMOTE_MISTAKES = [
    (["search", "--task", "forecasting", "--timeout", "-1"], ["--timeout"]),
    (["search", "--task", "forecasting", "--space", "metric.yaml"], ["does not log"]),
    (["search", "--task", "forecasting", "--data", "short.csv"], ["too short"]),
    (["search", "--task", "forecasting", "--study", "../x"], ["not a valid name"]),
    (["best", "--study", "nope"], ["no such study"]),
    (["trials", "--study", "nope"], ["no such study"]),
    (["lineage", "study:nope"], ["no MLflow store there yet"]),
    (["predict", "--from", "study:nope"], ["no MLflow store there yet"]),
    (["ui"], ["no MLflow store there yet"]),
    # each host would keep its models on its own disk
    (["search", "--task", "forecasting"], ["--artifact-root", "mlflow server"]),
]


def test_mistakes_leave_remote_stores_untouched(
    inputs, tmp_path, monkeypatch, capsys, postgres_urls
):
    """Against fresh PostgreSQL databases: checking never creates a table in either."""
    storage, tracking = postgres_urls
    for index, (argv, words) in enumerate(REMOTE_MISTAKES):
        stores = ["--storage", storage, "--tracking-uri", tracking]
        make_mistake(inputs, tmp_path, monkeypatch, capsys, [*argv, *stores], words, str(index))
    assert tables(storage) == [] and tables(tracking) == []


API_MISTAKES = [  # (function, args, kwargs, words): the API refuses what the CLI refuses
    ("search", ("forecasting",), {"data": 42}, ["data=42", "expected a file path"]),
    ("search", ("forecasting",), {"trials": "3"}, ["--trials '3'", "an integer >= 1"]),
    ("search", ("forecasting",), {"storage": 123}, ["--storage 123", "expected text"]),
    ("search", ("forecasting",), {"workers": 2.5}, ["--workers 2.5", "an integer"]),
    ("search", ("forecasting",), {"max_epochs": 3, "overrides": {"max_epochs": 4}}, ["disagree"]),
    ("ensemble", ("seen",), {"top": "3"}, ["--top '3'", "an integer >= 1"]),
    ("best", ("seen",), {"storage": 123}, ["--storage 123", "expected text"]),
    ("best", (7,), {}, ["--study 7", "expected text"]),
    ("trials", ("seen",), {"storage": ["x"]}, ["--storage ['x']", "expected text"]),
    ("predict", (None,), {}, ["source=None", "expected a checkpoint path"]),
    ("predict", ("study:seen",), {"out": 5}, ["--out 5", "expected text"]),
    ("compare", ("seen",), {}, ["names='seen'", "a list of study names"]),
    ("compare", (5,), {}, ["names=5", "a list of study names"]),
    ("search", (42,), {}, ["task=42", "expected str"]),
    ("search", ("forecasting",), {"space": 5}, ["space=5", "expected str or PathLike"]),
    ("search", ("forecasting",), {"overrides": [("a", 1)]}, ["overrides=", "expected Mapping"]),
    ("search", ("forecasting",), {"data": {"dta": "x.csv"}}, ["data['dta']", "did you mean"]),
    ("predict", ("study:seen",), {"options": ["length"]}, ["options=['length']", "Mapping"]),
    ("lineage", (3,), {}, ["source=3", "expected a checkpoint path"]),
    ("finetune", ("study:seen",), {"max_epochs": "many"}, ["--max-epochs 'many'", "an integer"]),
]


@pytest.mark.parametrize(
    "function, args, kwargs, words", API_MISTAKES, ids=[f"{m[0]}-{m[3][0]}" for m in API_MISTAKES]
)
def test_the_api_refuses_wrong_types_in_one_line(seen, tmp_path, monkeypatch, function, args,
                                                 kwargs, words):  # fmt: skip
    project = tmp_path / "project"
    shutil.copytree(seen, project)
    monkeypatch.chdir(project)
    before = fingerprint(project)
    with pytest.raises(UsageError) as refused:
        getattr(tuner, function)(*args, **kwargs)
    message = str(refused.value)
    assert "\n" not in message and len(message) < 300, message
    for word in words:
        assert word in message, message
    assert fingerprint(project) == before
