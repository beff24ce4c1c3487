"""A trial's data for a user's model: its data module (built from the data settings, prepared
and set up once per stage as Lightning's Trainer would), or the model's own dataloaders."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning.pytorch as pl

LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader")
STAGES = {"train_dataloader": "fit", "val_dataloader": "fit", "test_dataloader": "test"}


def overrides(owner: Any, hook: str, base: type) -> bool:
    """Whether `owner` (an instance or a class) defines `hook` beyond Lightning's own."""
    kind = owner if isinstance(owner, type) else type(owner)
    return getattr(kind, hook, None) is not getattr(base, hook, None)


class UserData(pl.LightningDataModule):
    """What the trial loop reads: the user's data module, or (with none) the model's own
    loaders, once `model` is set. A loader neither defines is empty."""

    def __init__(self, source: pl.LightningDataModule | None = None) -> None:
        super().__init__()
        self.source, self.model = source, None
        self._set_up: set[str] = set()

    def train_dataloader(self) -> Any:
        return self._loader("train_dataloader")

    def val_dataloader(self) -> Any:
        return self._loader("val_dataloader")

    def test_dataloader(self) -> Any:
        return self._loader("test_dataloader")

    def model_args(self) -> dict[str, Any]:
        """Constructor arguments the data decides (a vocabulary's size, the classes): the
        data module's `model_args()` hook, saved with the model as hyperparameters."""
        hook = getattr(self.source, "model_args", None)
        return dict(hook()) if callable(hook) else {}

    def _loader(self, hook: str) -> Any:
        owner = self.source if self.source is not None else self.model
        base = pl.LightningDataModule if self.source is not None else pl.LightningModule
        if owner is None or not overrides(owner, hook, base):
            return []
        stage = STAGES[hook]
        if stage not in self._set_up:  # as Lightning's Trainer: prepare_data, then setup
            if not self._set_up:
                owner.prepare_data()
            self._set_up.add(stage)
            owner.setup(stage)
        return getattr(owner, hook)()


def build_source(
    data: Callable[..., Any] | None, arguments: Mapping[str, Any]
) -> pl.LightningDataModule | None:
    """The user's data module from its arguments (None: the model brings its loaders)."""
    return None if data is None else data(**arguments)
