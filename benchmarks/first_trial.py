"""How long a user waits for the first result: `tuner search --task T --trials 1` on each
task's shipped data with its default space (sized for this machine's device), one after the
other. The first trial's own duration (Optuna's record) and the command's wall, start-up
included. A space that names its first trial runs it whatever the seed; for the others the
first trial is a random draw, so their largest draw is timed too (`--set` pins it).
Run: python -m benchmarks.first_trial (about 6 minutes on 2 cores)."""

from __future__ import annotations

import yaml

from benchmarks.common import REPO, load, machine, print_and_record, run_cli, scratch, verdict

TASKS = {
    "forecasting": "forecasting-air_passengers",
    "classification": "classification-japanese_vowels",
    "charlm": "charlm-tinyshakespeare",
    "speech": "speech-fsdd",
}
# the costliest corner of the spaces that name no first trial: widest, deepest, longest
LARGEST = {
    "forecasting": ("hidden_size=256", "num_layers=3", "batch_size=16", "input_len=72"),
    "speech": ("hidden_size=192", "num_layers=3", "subsample=2"),
}
LIMIT_S = 120


def first_trial(task: str, study: str, pins: tuple[str, ...] = ()) -> tuple[float, float, str]:
    """(trial seconds, command wall seconds, the trial's value and params)."""
    folder = scratch()
    sets = [arg for pin in pins for arg in ("--set", pin)]
    wall, _ = run_cli(folder, "search", "--task", task, "--trials", "1", "--quiet", *sets)
    trial = load(folder, study).trials[0]
    params = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in trial.params.items())  # fmt: skip
    pinned = f"; {', '.join(pins)}" if pins else ""
    return trial.duration.total_seconds(), wall, f"{trial.value:.4g} ({params}{pinned})"


def _space(task: str) -> dict:
    return yaml.safe_load((REPO / "search_spaces" / f"{task}.yaml").read_text())


def main() -> str:
    rows, worst = [], 0.0
    runs = [(task, study, ()) for task, study in TASKS.items()]
    runs += [(task, TASKS[task], pins) for task, pins in LARGEST.items()]
    for task, study, pins in runs:
        seconds, wall, value = first_trial(task, study, pins)
        worst = max(worst, seconds)
        label = f"{task}, largest draw" if pins else task
        rows.append(f"| {label} | {seconds:.0f} | {wall:.0f} | {value} |")
    named = " and ".join(task for task in TASKS if "first" in _space(task)) or "none"
    return "\n".join([
        "## First results: the first trial of each default sweep",
        "",
        f"Machine: {machine()}. `python -m benchmarks.first_trial`: `tuner search --task T "
        f"--trials 1` on the shipped data, default space and seed, nothing else running. "
        f"Spaces that name their first trial (`first:`; {named}) run it whatever the seed; "
        f"for the others a largest-draw row pins the costliest "
        f"corner of the space (`--set`).",
        "",
        "| task | first trial (s) | command wall (s) | value (params) |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Slowest first trial, largest draws included: {worst:.0f} s (target <= {LIMIT_S} s: "
        f"{verdict(worst <= LIMIT_S)}).",
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    print_and_record(main())
