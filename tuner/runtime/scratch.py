"""Scratch folders (downloaded models and checkpoints) that go when the process ends: a
`predict --from models:/...` leaves nothing in the temp folder."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

_made: list[Path] = []


def scratch_folder(prefix: str) -> Path:
    """A fresh folder in the temp folder, removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    _made.append(folder)
    return folder


@atexit.register
def remove_scratch_folders() -> None:
    while _made:
        shutil.rmtree(_made.pop(), ignore_errors=True)
