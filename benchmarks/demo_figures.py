"""The README's demo table is a promise: rerun `make demo`'s sweep in a scratch project and
compare what it prints with what the README says, so a change that moves the figure is
caught by `make bench` instead of by a user.

Run alone (updates its section of RESULTS.md): `python -m benchmarks.demo_figures`."""

from __future__ import annotations

import re

from benchmarks.common import REPO, run_cli, scratch, write_section

DEMO_ROW = re.compile(r"\| \*\*lstm-tuner demo\*\*(.*)\| \*\*([\d.]+)\*\* \| \*\*([\d.]+)\*\* \|")
PRINTED = re.compile(r"test_mae = ([\d.]+), test_rmse = ([\d.]+)")


def readme_figures() -> dict[tuple[float, float], str]:
    """(test MAE, test RMSE) -> the machine the README's demo row names. The sweep follows
    the CPU's kernels (README: the demo), so the README gives a row per machine measured."""
    rows = {(float(mae), float(rmse)): label.rsplit(": ", 1)[-1].strip() for label, mae, rmse in
            DEMO_ROW.findall((REPO / "README.md").read_text())}  # fmt: skip
    if not rows:
        raise RuntimeError("README.md has no lstm-tuner demo row")
    return rows


def main() -> str:
    wall, output = run_cli(scratch(), "search", "--task", "forecasting", "--trials", "30")
    printed = PRINTED.search(output)
    if printed is None:
        raise RuntimeError(f"the demo printed no test figures:\n{output[-2000:]}")
    mae, rmse = float(printed[1]), float(printed[2])
    promised = readme_figures()
    row = promised.get((round(mae, 1), round(rmse, 1)))
    rows = "; ".join(f"{m} / {r} ({machine})" for (m, r), machine in promised.items())
    return "\n".join(
        [
            "## The README's demo figures",
            "",
            f"`tuner search --task forecasting --trials 30` in a fresh project ({wall:.0f} s) "
            f"printed test MAE {mae:.3f}, RMSE {rmse:.3f}; the README's demo rows say {rows}: "
            + (f"**the same** as the {row} row." if row else "**different: update the README**."),
            "",
        ]
    )


if __name__ == "__main__":
    measured = main()
    write_section(measured)
    print(measured)
