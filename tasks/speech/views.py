"""What a speech recogniser's user looks at in `tuner report`: the best model's transcripts
of the first test utterances beside their references, the words it got wrong marked."""

from __future__ import annotations

import difflib
import html
from typing import Any

import torch

from tuner.tasks.speech.model import decode, decode_labels

SHOWN = 8  # test utterances listed


def report_views(model: Any, datamodule: Any) -> list[tuple[str, str]]:
    batch = next(iter(datamodule.test_dataloader()), None)
    if batch is None:
        return []
    x, lengths, labels, label_lengths = (part[:SHOWN] for part in batch)
    model.eval()
    with torch.no_grad():
        heard = decode(model, *model(x, lengths))
    said = decode_labels(labels, label_lengths, model.hparams.vocabulary)
    rows = "".join(
        f"<tr><td>{html.escape(reference)}</td><td>{_marked(reference, text)}</td></tr>"
        for reference, text in zip(said, heard, strict=True)
    )
    table = f"<table><tr><th>reference</th><th>transcript (errors marked)</th></tr>{rows}</table>"
    wrong = sum(reference != text for reference, text in zip(said, heard, strict=True))
    return [(f"Sample transcripts on the test part ({wrong} of {len(said)} with errors)", table)]


def _marked(reference: str, text: str) -> str:
    """The transcript, each word that is not the reference's at its place marked."""
    words, expected = text.split(), reference.split()
    matcher = difflib.SequenceMatcher(a=expected, b=words, autojunk=False)
    shown = []
    for tag, _, _, start, end in matcher.get_opcodes():
        for word in words[start:end]:
            escaped = html.escape(word)
            shown.append(escaped if tag == "equal" else f"<mark>{escaped}</mark>")
        if tag in ("delete", "replace") and start == end:
            shown.append("<mark>_</mark>")  # a reference word the transcript left out
    return " ".join(shown)
