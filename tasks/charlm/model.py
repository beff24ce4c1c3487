"""The character language model: embedding, LSTM and a softmax over the vocabulary,
scored in bits per character."""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from typing_extensions import override

from tuner.contract.lstm import LSTMBackbone, adam
from tuner.contract.members import MemberStates, carried, detached
from tuner.errors import UsageError
from tuner.tasks.charlm.data import bits_per_char


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

    def zero_state(self, batch: int) -> Any:
        """The state a stream starts from, given explicitly (not None): every call then has
        one form, so an export (docs/export.md) is one graph, not one per form. Models
        carried as one (an ensemble's members may differ in size) each get their own."""
        members = carried(self)
        if members:
            return MemberStates(_zeros(model, batch) for model in [self, *members])
        return _zeros(self, batch)

    def _step(self, batch: tuple[torch.Tensor, ...], stage: str) -> torch.Tensor:
        x, y, reset = batch
        state = self.states.get(stage)
        state = self.zero_state(len(x)) if int(reset) or state is None else state
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
        out, state = [], self.zero_state(1)
        with torch.no_grad():
            x = torch.tensor([ids])
            for _ in range(length):
                logits, state = self(x, state)
                probs = torch.softmax(logits[0, -1] / max(temperature, 1e-6), dim=0)  # no overflow
                next_id = int(torch.multinomial(probs, 1, generator=generator))
                out.append(self.hparams.vocabulary[next_id])
                x = torch.tensor([[next_id]])
        return prompt + "".join(out)


def _zeros(model: CharLSTM, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    hp = model.hparams
    zeros = torch.zeros(hp.num_layers, batch, hp.hidden_size, device=model.device)
    return zeros, zeros.clone()


def average_next_chars(
    outputs: list[tuple[torch.Tensor, Any]],
) -> tuple[torch.Tensor, MemberStates]:
    """Language models as one: the log of their mean next-character probabilities (the
    loss and the sampler read it as logits), and each model's own state kept for it."""
    stacked = torch.stack([logits.log_softmax(-1) for logits, _ in outputs])
    mixed = torch.logsumexp(stacked, 0) - math.log(len(outputs))
    return mixed, MemberStates(state for _, state in outputs)
