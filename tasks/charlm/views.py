"""What a character language model's user looks at in `tuner report`: a sample of the best
model's text (the predict defaults: a new line as prompt, temperature 1, seed 0)."""

from __future__ import annotations

import html
from typing import Any

SAMPLE = 300  # characters


def report_views(model: Any, datamodule: Any) -> list[tuple[str, str]]:
    text = model.eval().generate("\n", SAMPLE, 1.0, 0)
    title = f"A sample of {SAMPLE} characters from the best model (temperature 1, seed 0)"
    return [(title, f"<pre>{html.escape(text)}</pre>")]
