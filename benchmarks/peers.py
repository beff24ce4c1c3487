"""Sweep versus peers on the same work: airline passengers, 1960 test, 1959 validation,
horizon 12, 10 trials, CPU, 3 seeds, for (a) lstm-tuner's default search, (b) NeuralForecast
AutoLSTM (Optuna backend; interpreter from $NF_PYTHON, which has neuralforecast), (c) Ray
Tune with ASHA over the same model and space (interpreter from $RAY_PYTHON), and (d) the
hand-written Optuna + Lightning script. Wall time, test MAE / RMSE (min / median / max over
seeds) and peak RSS (GNU time) of each, measured in one run. With AutoLSTM, lstm-tuner is
also given each AutoLSTM seed's wall as its `--timeout` (6 seeds: the budget comparison).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys

import optuna

from benchmarks.common import REPO, epoch_budget, epochs_of, load, machine, scratch, verdict

AIR = str(REPO / "tasks" / "data" / "air_passengers.csv")
SEEDS = (0, 1, 2)
# What a budget ends with: the top 5 configurations trained again, 3 fresh fits each (the best
# recipe of benchmarks.seed_fits), in FITS_RESERVE s of the wall (5 fits took 59-70 s on a core)
FRESH_TOP, FRESH_SEEDS = 5, 3
FRESH_FITS = ("--top", str(FRESH_TOP), "--seeds", str(FRESH_SEEDS))
FRESH_ARGS = " ".join(FRESH_FITS)  # how a sweep's result line names its fits
FRESH_LABEL = f"`tuner ensemble {FRESH_ARGS}`"
FRESH_COUNT = FRESH_TOP * FRESH_SEEDS  # fits trained at the end of a budget
FITS_RESERVE = 360


def timed(command: list[str], cwd: str, core: int | None = None) -> tuple[float, float, str]:
    """(wall s, peak RSS GiB, stdout) under GNU time; on one CPU core with one thread when
    `core` is given (two runs side by side, each with the same share of the machine)."""
    pinned = ["taskset", "-c", str(core)] if core is not None else []
    threads = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"} if core is not None else {}
    done = subprocess.run(
        [*pinned, "/usr/bin/time", "-f", "%e %M", *command],
        cwd=cwd,
        text=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **threads},
        timeout=3 * 3600,  # an AutoLSTM seed took 57 minutes on one core here
    )
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    wall, rss_kb = done.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss_kb) / 2**20, done.stdout


def cli(folder, core: int | None, *args: str) -> tuple[float, str]:
    """(wall s, stdout) of `tuner ARGS` in `folder`, on `core` as `timed` runs it."""
    wall, _, out = timed([sys.executable, "-m", "tuner.cli", *args], str(folder), core)
    return wall, out


def printed_mae(out: str) -> float:
    """The first test MAE a command printed (a search's kept model, an ensemble's own)."""
    return float(re.search(r"test_mae = ([0-9.]+)", out).group(1))


def ours(seed: int, *extra: str, core: int | None = None) -> dict[str, float]:
    folder = scratch()
    wall, rss, out = timed(
        [
            sys.executable,
            "-m",
            "tuner.cli",
            "search",
            "--task",
            "forecasting",
            "--trials",
            "10",
            "--seed",
            str(seed),
            "--quiet",
            *extra,
        ],
        str(folder),
        core,
    )
    rmse = float(re.search(r"test_rmse = ([0-9.]+)", out).group(1))
    result = {"wall": wall, "rss": rss, "test_mae": printed_mae(out), "test_rmse": rmse,
              **pruning(folder)}  # fmt: skip
    return {**result, "folder": str(folder)}


def pruning(folder) -> dict[str, int]:
    """Pruned trials, and the epochs they did not run (of max_epochs in each of its folds)."""
    study = load(folder, "forecasting-air_passengers")
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    budget = {t.number: epoch_budget(t) for t in study.trials}
    saved = sum(budget[t.number] - epochs_of(t) for t in pruned)
    return {
        "trials": len(study.trials),
        "pruned": len(pruned),
        "epochs_saved": saved,
        "epoch_budget": sum(budget.values()),
    }


def script(python: str, name: str, seed: int, core: int | None = None) -> dict[str, float]:
    wall, rss, out = timed(
        [python, str(REPO / "benchmarks" / f"{name}.py"), str(seed), AIR], str(scratch()), core
    )
    return {"wall": wall, "rss": rss, **json.loads(out.strip().splitlines()[-1])}


def _row(label: str, runs: list[dict[str, float]]) -> str:
    def spread(key: str, fmt: str) -> str:
        low, *_, high = values = sorted(r[key] for r in runs)
        middle = statistics.median(values)
        return f"{fmt.format(middle)} ({fmt.format(low)}-{fmt.format(high)})"

    return (
        f"| {label} | {spread('wall', '{:.0f}')} | {spread('test_mae', '{:.1f}')} | "
        f"{spread('test_rmse', '{:.1f}')} | {spread('rss', '{:.2f}')} |"
    )


def main() -> str:
    nf_python = os.environ.get("NF_PYTHON")
    ray_python = os.environ.get("RAY_PYTHON")
    results = {
        "lstm-tuner (default space, TPE, median pruner)": [ours(s) for s in SEEDS],
        "lstm-tuner, random sampler (what Optuna's default TPE does in 10 trials)": [
            ours(s, "--sampler", "random") for s in SEEDS
        ],
        "hand-written Optuna + Lightning": [
            script(sys.executable, "peer_handwritten", s) for s in SEEDS
        ],
    }
    if nf_python:
        results["NeuralForecast AutoLSTM (optuna)"] = [
            script(nf_python, "peer_autolstm", s) for s in SEEDS
        ]
    if ray_python:
        results[RAY] = [script(ray_python, "peer_raytune", s) for s in SEEDS]
    lines = [
        "## Sweep versus peers: airline, 1960 held out, 10 trials, 3 seeds",
        "",
        f"Machine: {machine()}. Median (min-max) over seeds {SEEDS}.",
        "",
        "| sweep | wall (s) | test MAE | test RMSE | peak RSS (GiB) |",
        "|---|---|---|---|---|",
    ]
    lines += [_row(label, runs) for label, runs in results.items()]
    ours_runs = next(iter(results.values()))
    saved = sum(r["epochs_saved"] for r in ours_runs)
    budget = sum(r["epoch_budget"] for r in ours_runs)
    lines += [
        "",
        f"Seasonal naive on the same months: MAE 47.8, RMSE 50.7. lstm-tuner pruned "
        f"{sum(r['pruned'] for r in ours_runs)} of {10 * len(SEEDS)} trials, which saved "
        f"{saved} of {budget} epochs ({saved / budget:.0%}). Optuna's TPE samples at "
        f"random for its first 10 trials by default, so a 10-trial study never uses it; "
        f"lstm-tuner starts TPE (multivariate) after 3 (a third of the budget, 3 to 10), "
        f"which the random-sampler row shows the effect of.",
    ]
    lines += ["", *ray_lines(ours_runs, results.get(RAY))]
    if nf_python:
        autolstm = results["NeuralForecast AutoLSTM (optuna)"]
        lines += ["", *targets(ours_runs, autolstm), "", *at_equal_budget(autolstm)]
    else:
        lines.append(
            "AutoLSTM not run (`make bench AUTOLSTM=no`, or no interpreter with "
            "neuralforecast in NF_PYTHON), nor lstm-tuner at AutoLSTM's walls."
        )
    return "\n".join(lines) + "\n"


RAY = "Ray Tune, ASHA (random search, Lightning report callback, MLflowLoggerCallback)"


def ray_lines(ours: list[dict], ray: list[dict] | None) -> list[str]:
    """Ray Tune against lstm-tuner on the same seeds: ratios of medians, what it pruned,
    and what its MLflow record holds."""
    if not ray:
        return [
            "Ray Tune not run (`make bench RAYTUNE=no`, or no interpreter with ray in RAY_PYTHON)."
        ]
    wall = statistics.median(r["wall"] for r in ours) / statistics.median(r["wall"] for r in ray)
    mae = statistics.median(r["test_mae"] for r in ours)
    their_mae = statistics.median(r["test_mae"] for r in ray)
    record = ray[0]["mlflow"]
    return [
        f"**Against Ray Tune + ASHA (medians):** wall {wall:.2f}x; test MAE {mae:.1f} vs "
        f"{their_mae:.1f}; ASHA stopped {sum(r['pruned'] for r in ray)} of "
        f"{10 * len(ray)} trials early ({sum(r['epochs'] for r in ray)} epochs trained in "
        f"all). Its peak RSS is the driver's alone (Ray trains in worker processes). Its "
        f"MLflow record (seed 0): {record['runs']} runs, flat (nested: {record['nested']}), "
        f"params {', '.join(record['params'])}, {record['metrics']} metrics and "
        f"{record['artifacts']} artifacts in a run, {record['registered_models']} registered "
        f"models: no parent run for the sweep, no model to load through MLflow, and the "
        f"checkpoints stay in Ray's own folder.",
    ]


def within(seed: int, wall: float, core: int | None = None) -> dict[str, float]:
    """lstm-tuner's default search given `wall` seconds (as many trials as fit, up to 1000),
    then FRESH_FITS (its best configurations trained again) within the same wall: the
    sweep gets the wall less FITS_RESERVE seconds."""
    timeout = f"{max(wall - FITS_RESERVE, 1):.0f}"
    sweep = ours(seed, "--trials", "1000", "--timeout", timeout, core=core)
    fits_wall, out = cli(sweep["folder"], core, "ensemble", "--study",
                         "forecasting-air_passengers", *FRESH_FITS)  # fmt: skip
    return {**sweep, "budget": wall, "fits": FRESH_ARGS, "fits_mae": printed_mae(out),
            "total_wall": sweep["wall"] + fits_wall}  # fmt: skip


def at_equal_budget(autolstm: list[dict[str, float]]) -> list[str]:
    """lstm-tuner given each AutoLSTM seed's wall as `--timeout` (seeds 0-5, AutoLSTM seed
    i % 3's wall): the comparison a user with a fixed budget makes."""
    runs = [within(seed, autolstm[seed % len(SEEDS)]["wall"]) for seed in range(2 * len(SEEDS))]
    their_mae = statistics.median(r["test_mae"] for r in autolstm)
    walls = ", ".join(f"{r['total_wall']:.0f}" for r in runs)
    lines = []
    for key, label in (
        ("test_mae", "the sweep's kept model"),
        ("fits_mae", f"{FRESH_COUNT} fresh fits"),
    ):
        mae = statistics.median(r[key] for r in runs)
        lines.append(
            f"**At AutoLSTM's wall time** (`--timeout` = each AutoLSTM seed's wall less "
            f"{FITS_RESERVE} s, then {FRESH_LABEL}; 6 seeds), {label}: "
            f"median test MAE {mae:.1f} ({min(r[key] for r in runs):.1f}-"
            f"{max(r[key] for r in runs):.1f}) vs AutoLSTM's {their_mae:.1f} (target: below, "
            f"{verdict(mae < their_mae)}); walls with the fits {walls} s."
        )
    return lines


def targets(ours: list[dict[str, float]], autolstm: list[dict[str, float]]) -> list[str]:
    """The issue's three targets against AutoLSTM, on medians over the seeds."""

    def median(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    wall = median(ours, "wall") / median(autolstm, "wall")
    rss = median(ours, "rss") / median(autolstm, "rss")
    mae, their_mae = median(ours, "test_mae"), median(autolstm, "test_mae")
    return [
        f"**Against AutoLSTM (medians):** wall {wall:.2f}x (target <= 0.5x, "
        f"{verdict(wall <= 0.5)}); test MAE {mae:.1f} vs {their_mae:.1f} (target: at most "
        f"AutoLSTM's, {verdict(mae <= their_mae)}); peak RSS {rss:.2f}x (target <= 0.5x, "
        f"{verdict(rss <= 0.5)}).",
    ]


if __name__ == "__main__":
    print(main())
