"""A forecast's frame: its transform and scaling, and a forecaster read in another's frame.

A top-k ensemble (tuner.models.topk) is carried by the best trial's model, which reads
its own windows; a member trained on a shorter window or another transform answers for
those windows through `Reframed`: it rebuilds the raw values from the carrier's normalised
window, cuts and scales its own window from them, and returns its forecast in the carrier's
frame, where the members' forecasts are averaged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn


def symlog(x: np.ndarray | torch.Tensor) -> Any:
    """sign(x) * log(1 + |x|): a log scale that is defined for every real value."""
    if isinstance(x, torch.Tensor):
        return torch.sign(x) * torch.log1p(x.abs())
    return np.sign(x) * np.log1p(np.abs(x))


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


def to_original_units(
    y_norm: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor, transform: str
) -> torch.Tensor:
    """A forecast on the normalised scale back in the series' own units."""
    y = y_norm * scale + loc
    return symexp(y) if transform == "log" else y


def normalise(
    x: np.ndarray, train_part: np.ndarray, scaling: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample (loc, scale), shape (n, 1) each: from the window itself, or from the
    series' training part only (never from what comes after it)."""
    source = x if scaling == "window" else np.broadcast_to(train_part, (len(x), len(train_part)))
    loc = source.mean(axis=1, keepdims=True)
    scale = source.std(axis=1, keepdims=True)
    scale = np.where(scale < 1e-8, 1.0, scale)
    return loc, scale


def window_scale(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`normalise`'s per-window (loc, scale), on tensors."""
    loc = x.mean(dim=1, keepdim=True)
    scale = x.std(dim=1, keepdim=True, unbiased=False)
    return loc, torch.where(scale < 1e-8, torch.ones_like(scale), scale)


class Reframed(nn.Module):
    """A forecaster of a shorter window or another transform, read in a carrier's frame."""

    def __init__(self, model: nn.Module, transform: str) -> None:
        super().__init__()
        self.model, self.transform = model, transform

    @property
    def hparams(self) -> Any:
        """The forecaster's own (what a checkpoint records to rebuild it)."""
        return self.model.hparams

    def forward(self, x: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        hp = self.model.hparams
        raw = to_original_units(x, loc, scale, self.transform)[:, -int(hp.input_len) :]
        own = symlog(raw) if hp.transform == "log" else raw
        own_loc, own_scale = window_scale(own)
        forecast = self.model((own - own_loc) / own_scale)
        forecast = to_original_units(forecast, own_loc, own_scale, hp.transform)
        back = symlog(forecast) if self.transform == "log" else forecast
        return (back - loc) / scale


def reframe(carrier: Mapping[str, Any], member: nn.Module) -> nn.Module:
    """`member` as it can answer for the carrier's windows (itself when they read alike).

    Raises:
        ValueError: why it cannot (another horizon, a longer window, global scaling).
    """
    hp = member.hparams
    frame = ("input_len", "transform", "scaling")
    if int(hp.horizon) != int(carrier["horizon"]):
        raise ValueError(f"forecasts {hp.horizon} steps, not {carrier['horizon']}")
    if all(hp[key] == carrier[key] for key in frame):
        return member
    if "global" in (hp.scaling, carrier["scaling"]):
        raise ValueError("scales by its series (scaling: global): its window alone cannot say how")
    if int(hp.input_len) > int(carrier["input_len"]):
        raise ValueError(
            f"reads {hp.input_len} steps, more than the {carrier['input_len']} the best reads"
        )
    return Reframed(member, str(carrier["transform"]))
