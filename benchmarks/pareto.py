"""Quality against size, measured: the airline with the default forecasting space, as one
two-objective study (val_mae, params: no pruning, half the epochs) and as the default
pruned single-objective study, TRIALS trials each, same seed. The front, the smallest
model within 5% of the best val_mae, and their test MAE. Run: python -m benchmarks.pareto
(about 8 minutes on 2 cores).
"""

from __future__ import annotations

import yaml

from benchmarks.common import REPO, load, machine, print_and_record, run_cli, scratch
from tuner.config.trial_attrs import of as attrs_of
from tuner.reports.ranking import best_trial, pareto_front

TRIALS, SEED, WITHIN = 30, 0, 0.05


def two_objective_space(path) -> None:
    space = yaml.safe_load((REPO / "search_spaces" / "forecasting.yaml").read_text())
    space["objectives"] = [{"metric": "val_mae"}, {"metric": "params"}]
    path.write_text(yaml.safe_dump(space))


def main() -> str:
    folder = scratch()
    two_objective_space(folder / "pareto.yaml")
    common = ("search", "--task", "forecasting", "--trials", str(TRIALS), "--seed", str(SEED))
    wall_pareto, _ = run_cli(folder, *common, "--space", "pareto.yaml", "--study", "pareto")
    wall_single, _ = run_cli(folder, *common, "--study", "single")
    front = pareto_front(load(folder, "pareto"))
    best = front[0]
    good_enough = [t for t in front if t.values[0] <= best.values[0] * (1 + WITHIN)]
    small = min(good_enough, key=lambda t: t.values[1])
    single = best_trial(load(folder, "single"))
    rows = [
        f"| {t.number} | {t.values[0]:.2f} | {t.values[1]:.0f} | "
        f"{attrs_of(t).get('test_mae', float('nan')):.2f} | "
        f"{t.params['hidden_size']} x {t.params['num_layers']} |"
        for t in front
    ]
    return "\n".join([
        "## Quality against size: the Pareto front of val_mae and params",
        "",
        f"Machine: {machine()}. `python -m benchmarks.pareto`: the airline, the default "
        f"forecasting space; one study with `objectives: [val_mae, params]` ({TRIALS} trials, "
        f"no pruning, max_epochs halved to 30) and the default single-objective study "
        f"(median pruner, 60 epochs), seed {SEED}.",
        "",
        "| front trial | val_mae | params | test_mae | hidden x layers |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Smallest model within {WITHIN:.0%} of the front's best val_mae: trial {small.number}, "
        f"**{small.values[1]:.0f} params** ({small.values[1] / best.values[1]:.2f}x the best's "
        f"{best.values[1]:.0f}), val_mae {small.values[0]:.2f} vs {best.values[0]:.2f}, test MAE "
        f"{attrs_of(small).get('test_mae', float('nan')):.2f}.",
        f"Single-objective study: best val_mae {single.value:.2f} with "
        f"{attrs_of(single)['params']:.0f} params (test MAE "
        f"{attrs_of(single).get('test_mae', float('nan')):.2f}). Walls: two-objective "
        f"{wall_pareto:.0f} s, single {wall_single:.0f} s "
        f"(**{wall_pareto / wall_single:.2f}x**).",
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    print_and_record(main())
