"""The quality sweeps of benchmarks/RESULTS.md: each task's default space on its shipped
data, stopped after 9 minutes (`--timeout 540`: no trial starts after that), on this
machine's cores; each chosen model's test figures beside the task's baselines on the same
split. Run: python -m benchmarks.quality [classification|digits|charlm] (about 10 minutes
each on 2 cores)."""

from __future__ import annotations

import sys

import optuna

from benchmarks.common import REPO, machine, print_and_record
from benchmarks.selection import best, sweep
from tuner.config import keys
from tuner.config.trial_attrs import of as attrs_of

SWEEPS = {
    "classification": ("classification", "japanese_vowels.npz"),
    "digits": ("classification", "digits.npz"),
    "charlm": ("charlm", "tinyshakespeare.txt"),
}


def row(name: str) -> str:
    task, data = SWEEPS[name]
    study, wall, *_ = sweep(task, REPO / "tasks" / "data" / data, "--trials", "200",
                            "--timeout", "540")  # fmt: skip
    chosen = best(study)
    baselines = set(study.user_attrs.get(keys.BASELINE_KEYS, []))
    tests = {
        k: v for k, v in attrs_of(chosen).items() if k.startswith("test_") and k != "test_loss"
    }
    ours = ", ".join(f"{k} {v:.3f}" for k, v in tests.items() if k not in baselines)
    theirs = ", ".join(f"{k} {v:.3f}" for k, v in tests.items() if k in baselines)
    states = [t.state for t in study.trials]
    complete, pruned = (states.count(s) for s in (optuna.trial.TrialState.COMPLETE,
                                                  optuna.trial.TrialState.PRUNED))  # fmt: skip
    return (
        f"| {task}, {data} | trial {chosen.number}: {chosen.params} | **{ours}** | {theirs} | "
        f"{complete} complete + {pruned} pruned, {wall:.0f} s |"
    )


def section(names: list[str]) -> str:
    return "\n".join(
        [
            "## Quality: default spaces on the shipped data, sweeps of at most 10 minutes",
            "",
            f"Machine: {machine()}. `tuner search --task T --data D --trials 200 --timeout 540`"
            " (no trial starts after 9 minutes; the last one finishes), default sampler, "
            "pruner and seed; test figures of the chosen trial beside the task's baselines "
            "on the same split.",
            "",
            "| task, data | chosen | test | baselines (same split) | sweep |",
            "|---|---|---|---|---|",
            *(row(name) for name in names),
        ]
    )


if __name__ == "__main__":
    print_and_record(section(sys.argv[1:] or list(SWEEPS)))
