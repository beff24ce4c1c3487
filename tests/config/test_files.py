"""A user's files, read within bounds: what is not a regular file is refused before it is
opened, YAML aliases before they expand, outputs before any work."""

from __future__ import annotations

import os
import time

import pytest

from tuner.config.files import MAX_YAML_BYTES, load_yaml, output_file, output_folder, regular_file
from tuner.errors import CheckpointError, UsageError
from tuner.tracking.pyfunc_model import checkpoint_in

# nine levels of nine: 9**9 (387 million) strings once expanded
BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 9)}]\n" for k in range(1, 9)
)


def test_a_pipe_a_folder_and_a_missing_file_are_named_without_being_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    for name, words in (("pipe", "named pipe (FIFO)"), (".", "a folder"), ("gone", "not found")):
        with pytest.raises(UsageError) as refused:
            regular_file(tmp_path / name, "data file", "a CSV file")
        assert words in str(refused.value) and "expected a CSV file" in str(refused.value)


def test_yaml_aliases_are_refused_before_they_expand(tmp_path):
    (tmp_path / "bomb.yaml").write_text(BOMB)
    started = time.monotonic()
    with pytest.raises(UsageError) as refused:
        load_yaml(tmp_path / "bomb.yaml", "search-space file", "a mapping")
    assert "line 2: aliases (*name) are not accepted" in str(refused.value)
    assert time.monotonic() - started < 5 and len(str(refused.value)) < 300


def test_an_oversized_or_broken_yaml_is_one_short_line(tmp_path):
    (tmp_path / "big.yaml").write_text("x: " + "y" * MAX_YAML_BYTES)
    (tmp_path / "broken.yaml").write_text("params: [unclosed\n  - x: {" + "z" * 5000)
    for name, words in (("big.yaml", f"at most {MAX_YAML_BYTES}"), ("broken.yaml", "line ")):
        with pytest.raises(UsageError) as refused:
            load_yaml(tmp_path / name, "search-space file", "a mapping")
        message = str(refused.value)
        assert words in message and "\n" not in message and len(message) < 300, message


def test_an_mlmodel_file_that_expands_is_refused_as_a_model(tmp_path):
    (tmp_path / "MLmodel").write_text(BOMB)
    with pytest.raises(CheckpointError, match="aliases"):
        checkpoint_in(tmp_path, "models:/x@best")


def test_outputs_are_checked_before_any_work(tmp_path):
    (tmp_path / "file.csv").write_text("a\n")
    assert output_file(tmp_path / "file.csv") == tmp_path / "file.csv"  # replaced later
    assert output_folder(tmp_path / "new" / "report") == tmp_path / "new" / "report"
    for check, path, words in (
        (output_file, tmp_path, "is a folder"),
        (output_file, tmp_path / "missing" / "p.csv", "does not exist"),
        (output_folder, tmp_path / "file.csv", "is a file"),
    ):
        with pytest.raises(UsageError, match=words):
            check(path)
