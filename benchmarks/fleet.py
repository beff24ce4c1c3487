"""What coordinating a study costs as workers are added: `python -m benchmarks.fleet` (root
and PostgreSQL on 127.0.0.1:5432; not part of `make bench`).

1, 4 and 16 workers (4 per simulated host: tests/fleet.py) run one study of tiny airline
trials against PostgreSQL and an mlflow server reached over the hosts' network, with the
median pruner and with Hyperband; 16 workers also through Optuna's storage proxy
(`tuner storage-proxy`, reached over the same links; heartbeats stay on the database).
Every worker times its calls to Optuna's storage (benchmarks/fleet_timing): per trial
`ask` + `tell`, per report `report` + `should_prune` (p50 / p95 over every call of every
worker); a sampler counts the connections PostgreSQL holds open to Optuna's database. All
workers share the machine's cores, so latencies at 16 workers include waiting for a core.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, machine, print_and_record
from tests.conftest import (
    TINY_SPACE,
    MlflowServer,
    StorageProxy,
    create_databases,
    drop_databases,
    postgres_available,
)
from tests.fleet import SERVICE, ConnectionCount, Fleet, can_make_hosts
from tuner.storage.databases import POOL_OVERFLOW, POOL_SIZE
from tuner.storage.proxy import PROXY_POOL_OVERFLOW, PROXY_POOL_SIZE

PER_HOST = 4
TRIALS_PER_WORKER = 3
SPACE = TINY_SPACE.replace("max_epochs: 2", "max_epochs: 9")  # Hyperband's rungs 1, 3, 9
TIMING = REPO / "benchmarks" / "fleet_timing"


def measure(workers: int, pruner: str, via: str = "database") -> dict[str, float]:
    """One study of `workers` workers, its trials' traffic straight to the database or
    through a storage proxy; its latencies, connections and wall."""
    names = create_databases("tuner_fleet")
    scratch = Path(tempfile.mkdtemp(prefix="tuner-fleet-"))
    timings = scratch / "timings"
    timings.mkdir()
    server = MlflowServer(scratch / "server", f"postgresql://postgres@127.0.0.1:5432/{names[1]}")
    server.start()
    hosts_count, per_host = -(-workers // PER_HOST), min(workers, PER_HOST)
    root = scratch / "hosts"
    root.mkdir()
    proxy = None
    try:
        with Fleet(hosts_count, root) as hosts:
            database = f"{SERVICE}:{hosts.expose(5432)}/{names[0]}"
            tracking = f"http://{SERVICE}:{hosts.expose(server.port)}"
            stores = ["--storage", f"postgresql://postgres@{database}", "--tracking-uri", tracking]
            if via == "proxy":
                proxy = StorageProxy(f"postgresql://postgres@127.0.0.1:5432/{names[0]}", scratch)
                stores += ["--storage-proxy", f"grpc://{SERVICE}:{hosts.expose(proxy.port)}"]
            argv = ["search", "--task", "forecasting", "--space", "space.yaml", "--study", "fleet",
                    "--trials", str(workers * TRIALS_PER_WORKER), "--workers", str(per_host),
                    "--pruner", pruner, "--quiet", *stores]  # fmt: skip
            env = {"PYTHONPATH": f"{REPO}:{TIMING}", "TUNER_FLEET_TIMINGS": str(timings)}
            started = time.monotonic()
            with ConnectionCount(f"/{names[0]}") as connections:
                running = [hosts.run(k, *argv, files={"space.yaml": SPACE}, env=env)
                           for k in range(1, hosts_count + 1)]  # fmt: skip
                outputs = [p.communicate(timeout=3600)[0] for p in running]
            wall = time.monotonic() - started
        failed = [o for p, o in zip(running, outputs, strict=True) if p.returncode != 0]
        assert not failed, failed[0][-3000:]
    finally:
        if proxy is not None:
            proxy.stop()
        server.stop()
        drop_databases(names)
    per_trial, per_report = [], []
    for path in timings.glob("*.json"):  # one process's calls, in order
        calls = json.loads(path.read_text())
        pairs = (("ask", "tell", per_trial), ("report", "should_prune", per_report))
        for first, second, into in pairs:
            into += [
                a + b for a, b in zip(calls.get(first, []), calls.get(second, []), strict=False)
            ]
    return {"workers": workers, "pruner": pruner, "trials": workers * TRIALS_PER_WORKER,
            "trial": _percentiles(per_trial), "report": _percentiles(per_report),
            "reports": len(per_report), "connections": connections.most, "wall": wall}  # fmt: skip


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds (nan when there were no such calls)."""
    if len(seconds) < 2:
        return (float("nan"), float("nan"))
    cuts = statistics.quantiles([1000 * s for s in seconds], n=20)
    return (statistics.median(1000 * s for s in seconds), cuts[18])


def main() -> str:
    if not (can_make_hosts() and postgres_available()):
        return "## Coordination cost\n\nNot measured: needs root, `ip netns` and PostgreSQL.\n"
    rows = []
    runs = [(workers, "database") for workers in (1, 4, 16)] + [(16, "proxy")]
    for pruner in ("median", "hyperband"):
        for workers, via in runs:
            row = measure(workers, pruner, via)
            rows.append(
                f"| {pruner} | {via} | {workers} | {row['trials']} | {row['trial'][0]:.1f} / "
                f"{row['trial'][1]:.1f} | {row['report'][0]:.1f} / {row['report'][1]:.1f} "
                f"({row['reports']}) | {row['connections']} | {row['wall']:.0f} |"
            )
            print(rows[-1], flush=True)
    bound = POOL_SIZE + POOL_OVERFLOW + 1
    proxy_bound = PROXY_POOL_SIZE + PROXY_POOL_OVERFLOW
    return "\n".join([
        "## Coordination cost: 1, 4 and 16 workers on one PostgreSQL study",
        "",
        f"Machine: {machine()}. `python -m benchmarks.fleet`: {PER_HOST} workers per simulated "
        f"host (network namespaces, tests/fleet.py), {TRIALS_PER_WORKER} tiny airline trials "
        f"per worker (9 epochs), PostgreSQL and an mlflow server reached over the hosts' "
        f"links. Latency in ms, p50 / p95 over every call of every worker; connections: the "
        f"most PostgreSQL held open to Optuna's database (bound: {bound} per process, a "
        f"host's launcher and each worker; through the proxy, its pool of {proxy_bound} and "
        f"a connection per heartbeat or start-up check while it lasts).",
        "",
        "| pruner | trials' traffic | workers | trials | per trial: ask + tell | per report: "
        "report + should_prune (calls) | connections | wall (s) |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    print_and_record(main())
