"""How long a user waits for the first result: `tuner search --task T --trials 1` on each
task's shipped data with its default space (sized for this machine's device), one after the
other. The first trial's own duration (Optuna's record) and the command's wall, start-up
included. Run: python -m benchmarks.first_trial (about 5 minutes on 2 cores)."""

from __future__ import annotations

from benchmarks.common import load, machine, print_and_record, run_cli, scratch, verdict

TASKS = {
    "forecasting": "forecasting-air_passengers",
    "classification": "classification-japanese_vowels",
    "charlm": "charlm-tinyshakespeare",
    "speech": "speech-fsdd",
}
LIMIT_S = 120


def first_trial(task: str, study: str) -> tuple[float, float, str]:
    """(trial seconds, command wall seconds, the trial's value and params)."""
    folder = scratch()
    wall, _ = run_cli(folder, "search", "--task", task, "--trials", "1", "--quiet")
    trial = load(folder, study).trials[0]
    params = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in trial.params.items())  # fmt: skip
    return trial.duration.total_seconds(), wall, f"{trial.value:.4g} ({params})"


def main() -> str:
    rows, worst = [], 0.0
    for task, study in TASKS.items():
        seconds, wall, value = first_trial(task, study)
        worst = max(worst, seconds)
        rows.append(f"| {task} | {seconds:.0f} | {wall:.0f} | {value} |")
    return "\n".join([
        "## First results: the first trial of each default sweep",
        "",
        f"Machine: {machine()}. `python -m benchmarks.first_trial`: `tuner search --task T "
        f"--trials 1` on the shipped data, default space and seed, nothing else running.",
        "",
        "| task | first trial (s) | command wall (s) | value (params) |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Slowest first trial: {worst:.0f} s (target <= {LIMIT_S} s: "
        f"{verdict(worst <= LIMIT_S)}).",
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    print_and_record(main())
