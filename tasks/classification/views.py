"""What a classifier's user looks at in `tuner report`: the best model's confusion matrix
on the test part (rows: the true class, columns: the predicted one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import torch


def report_views(model: Any, datamodule: Any) -> list[tuple[str, Callable[[], None]]]:
    classes = list(model.hparams.classes)
    matrix = torch.zeros(len(classes), len(classes), dtype=torch.int64)
    model.eval()
    with torch.no_grad():
        for x, lengths, y in datamodule.test_dataloader():
            predicted = model(x, lengths).argmax(1)
            matrix.index_put_((y, predicted), torch.ones_like(y), accumulate=True)
    if not matrix.sum():
        return []

    def draw() -> None:
        _, axis = plt.subplots()
        axis.imshow(matrix, cmap="Blues")
        for true in range(len(classes)):
            for guess in range(len(classes)):
                count = str(int(matrix[true, guess]))
                axis.text(guess, true, count, ha="center", va="center", fontsize=8)
        ticks = range(len(classes))
        axis.set_xticks(ticks, [str(c) for c in classes], rotation=45, ha="right")
        axis.set_yticks(ticks, [str(c) for c in classes])
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")

    correct = int(matrix.diag().sum())
    title = f"Confusion matrix on the test part ({correct} of {int(matrix.sum())} right)"
    return [(title, draw)]
