"""The matrix of user mistakes: each ends with exit code 2, ONE line naming the thing, what
was found and what was expected, and leaves the Optuna storage and MLflow store unchanged."""

from __future__ import annotations

import hashlib
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import tuner
from tests.conftest import TINY_SPACE
from tests.test_speech import write_wav
from tuner.checkpoints import save_checkpoint
from tuner.cli import main

FILES = {
    "empty.csv": "",
    "header_only.csv": "month,passengers\n",
    "text.csv": "month,passengers\n2000-01-01,1\n2000-02-01,abc\n",
    "nan.csv": "month,passengers\n2000-01-01,1\n2000-02-01,nan\n",
    "inf.csv": "month,passengers\n2000-01-01,1\n2000-02-01,inf\n",
    "dup.csv": "month,passengers\n2000-01-01,1\n2000-01-01,2\n",
    "unsorted.csv": "month,passengers\n2000-02-01,1\n2000-01-01,2\n",
    "baddate.csv": "month,passengers\nsoon,1\n",
    "short.csv": "month,passengers\n" + "".join(f"20{y:02d}-01-01,{y}\n" for y in range(20)),
    "notyaml.yaml": "params: [unclosed\n  - x: {",
    "lowhigh.yaml": "metric: val_mae\nparams:\n  lr: {type: float, low: 0.1, high: 0.01}\n",
    "nochoices.yaml": "metric: val_mae\nparams:\n  transform: {type: categorical, choices: []}\n",
    "badtype.yaml": "metric: val_mae\nparams:\n  lr: {type: uniform, low: 0.1, high: 1}\n",
    "notes.ckpt": "just text",
}

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
        ["line 3", "repeats", "increasing"],
    ),
    (["search", "--task", "forecasting", "--data", "unsorted.csv"], ["line 3", "back in time"]),
    (["search", "--task", "forecasting", "--data", "baddate.csv"], ["line 2", "not a date"]),
    (
        ["search", "--task", "forecasting", "--data", "short.csv"],
        ["short.csv", "too short", "input_len"],
    ),
    # task, flags
    (["search", "--task", "forcasting"], ["--task 'forcasting'", "did you mean 'forecasting'"]),
    (["search", "--task", "forecasting", "--sampler", "grid"], ["--sampler 'grid'", "tpe"]),
    (["search", "--task", "forecasting", "--pruner", "often"], ["--pruner 'often'", "hyperband"]),
    (["search", "--task", "forecasting", "--trials", "0"], ["--trials 0", "positive"]),
    (["search", "--task", "forecasting", "--trials", "-2"], ["--trials -2", "positive"]),
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
        ["max_epochs", "expected int"],
    ),
    (["search", "--task", "forecasting", "--precision", "fp8"], ["--precision 'fp8'", "32-true"]),
    (
        ["search", "--task", "forecasting", "--precision", "16-mixed", "--devices", "cpu"],
        ["--precision 16-mixed needs a GPU"],
    ),
    (["search", "--task", "forecasting", "--workers", "0"], ["--workers 0", "1 or more"]),
    # search space
    (
        ["search", "--task", "forecasting", "--space", "notyaml.yaml"],
        ["notyaml.yaml", "not valid YAML"],
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
    # stores
    (
        ["search", "--task", "forecasting", "--storage", "redis://127.0.0.1/0"],
        ["--storage", "unknown scheme"],
    ),
    (
        ["search", "--task", "forecasting", "--storage", "postgresql://nobody@127.0.0.1:1/none"],
        ["--storage 'postgresql://nobody@127.0.0.1:1/none'", "cannot open"],
    ),
    (
        ["search", "--task", "forecasting", "--tracking-uri", "postgresql://nobody@127.0.0.1:1/x"],
        ["--tracking-uri", "cannot reach the MLflow store"],
    ),
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
    (["predict", "--from", "evil.ckpt"], ["evil.ckpt", "refused"]),
    (["finetune", "--from", "runs:/00000000000000000000000000000000"], ["no MLflow run"]),
    (["finetune", "--from", "models:/nope/1"], ["registered model 'nope'", "version '1'"]),
    (["finetune", "--from", "models:/seen/99"], ["registered model 'seen'", "version '99'"]),
    (["predict", "--from", "study:nope"], ["study:nope", "no such study"]),
    (
        ["search", "--task", "forecasting", "--set", "transform=lg"],
        ["transform 'lg'", "none, log"],
    ),
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
    (
        ["search", "--task", "speech", "--data", "m_good.csv", "--set", "augment=louder"],
        ["augment 'louder'", "none, mask"],
    ),
    (
        ["finetune", "--from", "study:seen", "--freeze-layers", "5"],
        ["--freeze-layers 5", "expected 0 to"],
    ),
]


class Evil:
    def __reduce__(self):
        return (print, ("this should never run",))


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A project folder holding one finished study ('seen') and the mistake files."""
    root = tmp_path_factory.mktemp("template")
    cwd = Path.cwd()
    try:
        import os

        os.chdir(root)
        (root / "tiny.yaml").write_text(TINY_SPACE)
        (root / "rmse.yaml").write_text(TINY_SPACE.replace("metric: val_mae", "metric: val_rmse"))
        tuner.search(
            "forecasting", trials=1, space="tiny.yaml", study="seen", quiet=True, pruner="none"
        )
    finally:
        os.chdir(cwd)
    for name, text in FILES.items():
        (root / name).write_text(text)
    (root / "unreadable.csv").write_bytes(b"\xff\xfe\x00bad\x00")
    _write_audio_mistakes(root)
    from tasks.forecasting import DEFAULTS, TASK

    model = TASK.build_model(DEFAULTS, None)
    good = save_checkpoint(root / "good.ckpt", model, "forecasting", DEFAULTS, {})
    (root / "truncated.ckpt").write_bytes(good.read_bytes()[:2000])
    save_checkpoint(root / "other_task.ckpt", model, "tests.other", DEFAULTS, {})
    torch.save({"format": "lstm-tuner/1", "x": Evil()}, root / "evil.ckpt")
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
    }
    for name, text in manifests.items():
        (root / name).write_text(text)


def _fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((folder / "mlruns").rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("argv, words", MISTAKES, ids=[" ".join(m[0][:4]) for m in MISTAKES])
def test_mistake(template, tmp_path, monkeypatch, capsys, argv, words):
    project = tmp_path / "project"
    shutil.copytree(template, project)
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = _fingerprint(project)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, err
    assert "Traceback" not in err
    assert _fingerprint(project) == before


def test_matrix_covers_at_least_25_mistakes():
    assert len(MISTAKES) >= 25
