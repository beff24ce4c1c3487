"""The trial loop's Fabric: plugins that register Fabric callbacks through entry points
still get them, although a loop no longer scans every package for them when none does."""

from __future__ import annotations

import sys

from tuner.training import loop
from tuner.training.loop import FABRIC_CALLBACKS, LoopFabric


def _install_plugin(folder) -> None:
    """A package, as pip leaves it, whose entry point gives Fabric a callback."""
    (folder / "fabric_marker.py").write_text(
        "class Marker:\n    pass\n\ndef factory():\n    return [Marker()]\n"
    )
    info = folder / "fabric_marker-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fabric-marker\nVersion: 0.1\n")
    entry = f"[{FABRIC_CALLBACKS}]\nmarker = fabric_marker:factory\n"
    (info / "entry_points.txt").write_text(entry)


def test_fabric_callbacks_of_installed_plugins_are_kept(tmp_path, monkeypatch):
    own = object()
    loop._callback_factories.cache_clear()
    assert LoopFabric(accelerator="cpu", devices=1, callbacks=[own])._callbacks == [own]

    _install_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    loop._callback_factories.cache_clear()
    try:
        callbacks = LoopFabric(accelerator="cpu", devices=1, callbacks=[own])._callbacks
    finally:
        loop._callback_factories.cache_clear()
        sys.modules.pop("fabric_marker", None)
    assert callbacks[0] is own
    assert [type(c).__name__ for c in callbacks[1:]] == ["Marker"]


def test_what_a_step_logs_is_the_epochs_mean_weighted_by_batch_size():
    """As Lightning's Trainer reduces `self.log` in a step (on_epoch, mean): batches of 4
    and 1 rows whose values are 1 and 0 give 0.8, not the last batch's 0."""
    import lightning.pytorch as pl
    import torch

    class Logs(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)

        def validation_step(self, batch, batch_idx):
            self.log("val_acc", batch[1].float().mean())

    batches = [(torch.zeros(4, 1), torch.ones(4)), (torch.zeros(1, 1), torch.zeros(1))]
    assert loop.evaluate(Logs(), batches, "val")["val_acc"] == 0.8
