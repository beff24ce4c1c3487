"""ONNX and int8 exports against the float model, for each shipped task's demo model: a short
sweep on the shipped data and default space (3 trials, epochs capped as shown so each fits a
few minutes), its best model exported with `tuner export --format onnx|int8`, and the figures
the export is checked and measured on (validation figure, latency per sequence on 1 thread,
size on disk) read from the export's manifest. Targets (#47): int8 within 1% of the float
figure at under half the size; ONNX at least 1.5x faster per sequence.
Run: python -m benchmarks.exports (about 8 minutes on 2 cores)."""

from __future__ import annotations

import json

from benchmarks.common import machine, print_and_record, run_cli, scratch, verdict

STUDIES = {  # task: what keeps its sweep within a few minutes here
    "forecasting": ("--set", "max_epochs=15"),
    "classification": ("--set", "max_epochs=4"),
    "speech": ("--set", "max_epochs=3"),
    "charlm": ("--set", "max_epochs=1", "--set", "hidden_size=64"),
}
TRIALS = 3


def measure(task: str, extra: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """The figures of the onnx and int8 exports of the task's demo study's best model."""
    folder = scratch()
    run_cli(folder, "search", "--task", task, "--trials", str(TRIALS), "--study", task,
            "--quiet", *extra)  # fmt: skip
    found = {}
    for form in ("onnx", "int8"):
        run_cli(folder, "export", "--from", f"study:{task}", "--format", form, "--tolerance",
                "0.99", "--no-register", "--out", form)  # fmt: skip
        found[form] = json.loads((folder / form / "export.json").read_text())["figures"]
    return found


def row(task: str, found: dict[str, dict[str, float]]) -> tuple[str, bool, bool]:
    onnx, int8 = found["onnx"], found["int8"]
    metric = next(k for k in onnx if k.startswith("float_") and "_ms" not in k and "mb" not in k)
    metric = metric.removeprefix("float_")
    int8_ok = int8["relative_loss"] <= 0.01 and int8["int8_size_mb"] < int8["float_size_mb"] / 2
    speedup = onnx["float_latency_ms"] / onnx["onnx_latency_ms"]
    line = (
        f"| {task} | {metric} {onnx[f'float_{metric}']:.4g} / {onnx[f'onnx_{metric}']:.4g} / "
        f"{int8[f'int8_{metric}']:.4g} ({int8['relative_loss']:+.2%}) | "
        f"{onnx['float_latency_ms']:.3f} / {onnx['onnx_latency_ms']:.3f} / "
        f"{int8['int8_latency_ms']:.3f} | {speedup:.2f}x | "
        f"{onnx['float_size_mb']:.3f} / {onnx['onnx_size_mb']:.3f} / {int8['int8_size_mb']:.3f} | "
        f"{onnx['largest_difference']:.2g} / {int8['largest_difference']:.2g} |"
    )
    return line, int8_ok, speedup >= 1.5


def main() -> str:
    rows, int8_met, onnx_met = [], [], []
    for task, extra in STUDIES.items():
        line, int8_ok, onnx_ok = row(task, measure(task, extra))
        rows.append(line)
        int8_met.append(int8_ok)
        onnx_met.append(onnx_ok)
    return "\n".join([
        "## Exports: ONNX and int8 against float32",
        "",
        f"Machine: {machine()}. `python -m benchmarks.exports`: per task, `tuner search "
        f"--trials {TRIALS}` on the shipped data and default space (epochs capped: "
        + ", ".join(f"{t} `{' '.join(e)}`" for t, e in STUDIES.items())
        + "), then `tuner export --format onnx|int8` of its best model. Validation figure "
        "fold by fold as every model is scored; latency per sequence of one validation "
        "batch, 1 thread, median of 20; size: the float weights against the graphs on disk; "
        "largest absolute output difference on the recorded forwards. One run.",
        "",
        "| task | validation: float / onnx / int8 (int8 loss) | ms per sequence: float / "
        "onnx / int8 | onnx speed-up | MB: float / onnx / int8 | largest difference: onnx / "
        "int8 |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Targets: int8 within 1% of the float figure at under half the size: "
        f"{verdict(all(int8_met))} ({sum(int8_met)} of {len(int8_met)}); ONNX at least "
        f"1.5x faster per sequence: {verdict(all(onnx_met))} ({sum(onnx_met)} of "
        f"{len(onnx_met)}).",
    ])  # fmt: skip


if __name__ == "__main__":
    print_and_record(main())
