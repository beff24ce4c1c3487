from __future__ import annotations

import math

import pytest
import torch

from tuner.errors import DataError
from tuner.tasks.charlm.data import Streams, Text, TextData, bits_per_char, read_text
from tuner.tasks.charlm.model import CharLSTM
from tuner.tasks.charlm.task import DEFAULTS


def test_streams_are_contiguous_and_targets_shifted():
    ids = torch.arange(41)
    streams = Streams(ids, batch_size=2, bptt=5)
    batches = list(streams)
    x0, y0, reset0 = batches[0]
    assert x0.tolist() == [[0, 1, 2, 3, 4], [20, 21, 22, 23, 24]]
    assert torch.equal(y0, x0 + 1) and int(reset0) == 1
    x1, _, reset1 = batches[1]
    assert x1[0].tolist() == [5, 6, 7, 8, 9] and int(reset1) == 0


def test_bptt_state_is_carried_and_detached():
    torch.manual_seed(0)
    model = CharLSTM("abcd", embed_size=4, hidden_size=8, num_layers=1, dropout=0.0, lr=1e-3)
    first = (torch.tensor([[0, 1, 2]]), torch.tensor([[1, 2, 3]]), torch.tensor(1))
    second = (torch.tensor([[3, 2, 1]]), torch.tensor([[2, 1, 0]]), torch.tensor(0))
    model._step(first, "train")
    carried = model.states["train"]
    assert all(s.grad_fn is None and not s.requires_grad for s in carried)
    with_state = model._step(second, "train")
    fresh = model._step((*second[:2], torch.tensor(1)), "train")
    assert not torch.isclose(with_state, fresh)  # the carried state changed the prediction


def test_bits_per_char_on_a_known_distribution(tmp_path):
    # a model whose logits are all equal predicts the uniform distribution: log2(V) bits
    model = CharLSTM("abcdefgh", embed_size=4, hidden_size=8, num_layers=1, dropout=0.0, lr=1e-3)
    torch.nn.init.zeros_(model.head[1].weight)
    torch.nn.init.zeros_(model.head[1].bias)
    data = TextData(Text("t", "abcdefgh" * 50), {**DEFAULTS, "batch_size": 2, "bptt": 10})
    model.on_validation_epoch_start()
    for batch in data.val_dataloader():
        model._step(batch, "val")
    assert bits_per_char(model.nats, model.count) == pytest.approx(math.log2(8), rel=1e-6)
    assert bits_per_char(math.log(2) * 10, 10) == pytest.approx(1.0)


def test_text_errors(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match="byte 3 is not UTF-8"):
        read_text({"data": str(bad)})
    same = tmp_path / "same.txt"
    same.write_text("aaaa")
    with pytest.raises(DataError, match="expected a text to model"):
        read_text({"data": str(same)})


def test_generation_is_reproducible_and_refuses_unknown_prompt_chars():
    model = CharLSTM("ab \n", embed_size=4, hidden_size=8, num_layers=1, dropout=0.0, lr=1e-3)
    one = model.generate("ab", 30, 1.0, seed=5)
    assert one == model.generate("ab", 30, 1.0, seed=5) and len(one) == 32
    assert set(one) <= set("ab \n")
    with pytest.raises(Exception, match="'z'"):
        model.generate("z", 5, 1.0, seed=0)
