"""The README's demo table is a promise: rerun `make demo`'s sweep in a scratch project and
compare what it prints with the README's row for this machine's CPU (the figure follows the
CPU's kernels: benchmarks/README.md), so a change that moves the figure is caught by
`make bench` instead of by a user.

Run alone (updates its section of RESULTS.md): `python -m benchmarks.demo_figures`."""

from __future__ import annotations

import re

from benchmarks.common import REPO, cpu_model, run_cli, scratch, write_section

DEMO_ROW = re.compile(r"\| \*\*lstm-tuner demo\*\*(.*)\| \*\*([\d.]+)\*\* \| \*\*([\d.]+)\*\* \|")
PRINTED = re.compile(r"test_mae = ([\d.]+), test_rmse = ([\d.]+)")


def readme_figures() -> dict[tuple[float, float], str]:
    """(test MAE, test RMSE) -> the machine the README's demo row names. The sweep follows
    the CPU's kernels (README: the demo), so the README gives a row per machine measured."""
    rows = {(float(mae), float(rmse)): label.strip(" ,") for label, mae, rmse in
            DEMO_ROW.findall((REPO / "README.md").read_text())}  # fmt: skip
    if not rows:
        raise RuntimeError("README.md has no lstm-tuner demo row")
    return rows


def rows_for(cpu: str, rows: dict[tuple[float, float], str]) -> list[tuple[float, float]]:
    """The figures of the rows whose machine (their first two words: "Intel Xeon") this is:
    hosts sold under one name print different rows (benchmarks/README.md)."""
    return [k for k, label in rows.items() if " ".join(label.split()[:2]) in cpu]


def main() -> str:
    wall, output = run_cli(scratch(), "search", "--task", "forecasting", "--trials", "30")
    printed = PRINTED.search(output)
    if printed is None:
        raise RuntimeError(f"the demo printed no test figures:\n{output[-2000:]}")
    mae, rmse = float(printed[1]), float(printed[2])
    promised, cpu = readme_figures(), cpu_model()
    mine, printed_row = rows_for(cpu, promised), (round(mae, 3), round(rmse, 3))
    if printed_row in mine:
        verdict = f"**the same** as the README's {promised[printed_row]} row."
    elif mine:
        said = "; ".join(f"{promised[k]}: {k[0]} / {k[1]}" for k in mine)
        verdict = f"the README's rows for this CPU say {said}: **add a row or update one**."
    else:
        verdict = f"the README has no row for this CPU ({cpu}): **add one**."
    return "\n".join(
        [
            "## The README's demo figures",
            "",
            f"`tuner search --task forecasting --trials 30` in a fresh project ({wall:.0f} s, "
            f"{cpu}) printed test MAE {mae:.3f}, RMSE {rmse:.3f}; {verdict}",
            "",
        ]
    )


if __name__ == "__main__":
    measured = main()
    write_section(measured)
    print(measured)
