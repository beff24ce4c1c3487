"""The `tuner` command: `main` parses a subcommand's flags and calls the Python API
(tuner/api.py); `python -m tuner.cli` runs it too."""

from tuner.cli.main import main

__all__ = ["main"]
