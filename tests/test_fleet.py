"""A fleet: 4 hosts on a private network (tests/fleet.py), 2 workers each, started at one
instant on a fresh database (a Job's pods), one study. The hosts share no disk and reach
PostgreSQL, an `mlflow server` and Optuna's storage proxy only over the network (two hosts
send their trials through the proxy, two straight to the database); a fifth host that ran
nothing uses what the study made."""

from __future__ import annotations

import optuna
import pytest
from mlflow import MlflowClient

from tests.conftest import TINY_SPACE, MlflowServer, wait_for
from tests.fleet import SERVICE, ConnectionCount, Fleet, can_make_hosts
from tuner.config.trial_attrs import of as attrs_of
from tuner.storage.databases import POOL_OVERFLOW, POOL_SIZE
from tuner.storage.proxy import PROXY_POOL_OVERFLOW, PROXY_POOL_SIZE

STUDY = "fleet"
HOSTS, WORKERS, TRIALS = 4, 2, 10

needs_hosts = pytest.mark.skipif(
    not can_make_hosts(),
    reason="needs root, `ip netns`, veth and `unshare -m -u` to simulate hosts (CI runs as root)",
)

CHECK_MODELS = """
import sys
from pathlib import Path
import mlflow
import mlflow.artifacts
from mlflow import MlflowClient
from tuner.contract.checkpoints import load_checkpoint
from tuner.tracking.pyfunc_model import checkpoint_in
mlflow.set_tracking_uri(sys.argv[1])
for version in MlflowClient().search_model_versions("name = 'fleet'"):
    local = Path(mlflow.artifacts.download_artifacts(version.source))
    payload = load_checkpoint(checkpoint_in(local, version.source))
    print("version", version.version, payload["task"], len(payload["state_dict"]))
"""


@pytest.fixture
def fleet(tmp_path, postgres_urls, storage_proxies):
    """4 hosts, PostgreSQL, an MLflow server (PostgreSQL backend, artifacts it serves) and a
    storage proxy reachable from them at SERVICE; the stores' flags as every host types
    them, and the flag that sends a host's trials through the proxy."""
    storage, backend = postgres_urls
    server = MlflowServer(tmp_path / "server", backend)
    server.start()
    proxy = storage_proxies(storage)
    with Fleet(HOSTS + 1, tmp_path) as hosts:
        database = storage.rsplit("/", 1)[1]
        stores = [
            "--storage", f"postgresql://postgres@{SERVICE}:{hosts.expose(5432)}/{database}",
            "--tracking-uri", f"http://{SERVICE}:{hosts.expose(server.port)}",
        ]  # fmt: skip
        through_proxy = ["--storage-proxy", f"grpc://{SERVICE}:{hosts.expose(proxy.port)}"]
        yield hosts, stores, storage, server, through_proxy
    server.stop()


@needs_hosts
def test_four_hosts_two_workers_each_run_one_exact_study(fleet):
    hosts, stores, storage, server, through_proxy = fleet
    argv = ["search", "--task", "forecasting", "--space", "tiny.yaml", "--study", STUDY,
            "--trials", str(TRIALS), "--workers", str(WORKERS), "--pruner", "none",
            "--quiet", *stores]  # fmt: skip
    proxied = range(3, HOSTS + 1)  # hosts 3 and 4: trials through the proxy
    started = [
        hosts.run(
            k, *argv, *(through_proxy if k in proxied else []), files={"tiny.yaml": TINY_SPACE}
        )
        for k in range(1, HOSTS + 1)
    ]
    with ConnectionCount(storage) as connections:
        outputs = [process.communicate(timeout=900)[0] for process in started]
    assert [p.returncode for p in started] == [0] * HOSTS, "\n---\n".join(outputs)

    trials = optuna.load_study(study_name=STUDY, storage=storage).trials
    # each process (a host's launcher and its workers) keeps a bounded pool, plus the
    # setup lock's one connection; one behind the proxy opens a connection for each
    # heartbeat (a thread of its own) or check while it lasts, the proxy keeps its pool
    processes = WORKERS + 1
    direct = (HOSTS - len(proxied)) * processes * (POOL_SIZE + POOL_OVERFLOW + 1)
    behind = len(proxied) * processes * 3 + PROXY_POOL_SIZE + PROXY_POOL_OVERFLOW
    print(f"most PostgreSQL connections: {connections.most}")
    assert 0 < connections.most <= direct + behind, connections.most
    ran_on = {attrs_of(t)["worker"].split(":")[0] for t in trials}
    assert {Fleet.hostname(k) for k in proxied} & ran_on, ran_on  # the proxy carried trials
    states = [(t.number, t.state.name, attrs_of(t).get("fail_reason")) for t in trials]
    assert [t.state.name for t in trials].count("COMPLETE") == TRIALS, states
    assert not [t for t in trials if t.state.name == "RUNNING"]
    params = [tuple(sorted(t.params.items())) for t in trials if t.state.name == "COMPLETE"]
    assert len(set(params)) == TRIALS  # no configuration trained twice
    client = MlflowClient(server.url)
    experiment = client.get_experiment_by_name(STUDY)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("tuner.role") == "study"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("tuner.role") == "trial"]
    assert {r.info.status for r in children} == {"FINISHED"}
    ran = sorted(int(r.data.tags["tuner.trial"]) for r in children)
    assert ran == sorted(t.number for t in trials if t.state.name == "COMPLETE"), states
    # trials asked for after the target was met elsewhere say so, and trained nothing
    for trial in trials:
        if trial.state.name != "COMPLETE":
            assert attrs_of(trial)["fail_reason"].startswith("not run: the study reached")

    # a fifth host that ran nothing reads every model the study registered, and predicts
    versions = client.search_model_versions(f"name = '{STUDY}'")
    tracking = stores[stores.index("--tracking-uri") + 1]
    check = hosts.run(5, tracking, python=("-c", CHECK_MODELS))
    printed, _ = check.communicate(timeout=300)
    assert check.returncode == 0, printed
    read = [line.split() for line in printed.splitlines() if line.startswith("version ")]
    assert sorted(v for _, v, *_ in read) == sorted(v.version for v in versions)
    assert versions and {task for _, _, task, _ in read} == {"forecasting"}
    by_alias = _on(hosts, 5, "predict", "--from", f"models:/{STUDY}@best", *stores)
    by_study = _on(hosts, 5, "predict", "--from", f"study:{STUDY}", *stores)
    assert _rows(by_study) == _rows(by_alias) and len(_rows(by_alias)) == 6  # the horizon
    models = client.search_logged_models([experiment.experiment_id])
    assert models and all(m.artifact_location.startswith("mlflow-artifacts:") for m in models)
    assert list(server.artifacts.rglob("*.ckpt"))  # on the server's store, no host's disk
    tuned = _on(hosts, 5, "finetune", "--from", f"models:/{STUDY}@best", "--max-epochs", "1",
                "--quiet", *stores)  # fmt: skip
    assert "before -> after fine-tuning" in tuned
    finetuned = client.get_model_version(f"{STUDY}-finetuned", "1")  # @best only if better
    model_id = finetuned.source.removeprefix("models:/")
    assert client.get_logged_model(model_id).artifact_location.startswith("mlflow-artifacts:")
    # the team's server is the UI already: `tuner ui` names the study's page there
    shown = _on(hosts, 5, "ui", "--study", STUDY, *stores)
    assert shown.startswith(f"MLflow UI: {tracking}/#/experiments/{experiment.experiment_id}/")


def _on(hosts: Fleet, k: int, *argv: str) -> str:
    process = hosts.run(k, *argv)
    printed, _ = process.communicate(timeout=300)
    assert process.returncode == 0, printed
    return printed


def _rows(printed: str) -> list[str]:
    """The forecast rows `tuner predict` printed (a table of unique_id, ds, y_hat)."""
    lines = [line.split() for line in printed.splitlines()]
    return [" ".join(cells) for cells in lines if len(cells) == 3 and cells[0] != "unique_id"]


@needs_hosts
def test_a_host_cut_off_mid_trial_is_failed_requeued_and_leaves_the_record_alone(fleet):
    """Host 1's link goes down while it trains: host 2 fails its trial after the heartbeat
    grace and continues it from the checkpoint on the server. When host 1's link comes
    back, its worker finds the trial taken and writes nothing more for it."""
    hosts, stores, storage, server, _ = fleet
    slow = TINY_SPACE.replace("max_epochs: 2", "max_epochs: 20")
    argv = ["search", "--task", "forecasting", "--space", "tiny.yaml", "--study", STUDY,
            "--trials", "1", "--pruner", "none", "--heartbeat", "2", "--set", "hidden_size=256",
            "--set", "num_layers=3", "--set", "checkpoint_every=2", *stores]  # fmt: skip
    first = hosts.run(1, *argv, files={"tiny.yaml": slow})
    client = MlflowClient(server.url)

    def published() -> bool:
        experiment = client.get_experiment_by_name(STUDY)
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        return any(client.list_artifacts(r.info.run_id, "resume") for r in runs)

    assert wait_for(lambda: first.poll() is not None or published(), timeout=300), (
        "no resume checkpoint reached the server"
    )
    assert first.poll() is None, first.communicate()[0]  # it ended before its link was cut
    hosts.cut(1)
    second = hosts.run(2, *argv, files={"tiny.yaml": slow})
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output
    hosts.reconnect(1)
    returned, _ = first.communicate(timeout=600)
    assert first.returncode == 0, returned
    assert "failed and queued again by another process" in returned

    trials = optuna.load_study(study_name=STUDY, storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"], returned
    assert attrs_of(trials[1])["resumed_from"]["trial"] == 0
    assert attrs_of(trials[1])["epochs"] == 20
    assert "test_mae" not in attrs_of(trials[0])  # host 1 tested nothing into the record
    lost, retry = (client.get_run(attrs_of(t)["mlflow_run_id"]) for t in trials)
    assert lost.info.status == "KILLED" and lost.data.tags["tuner.state"] == "LOST"
    assert "test_mae" not in lost.data.metrics
    assert retry.info.status == "FINISHED" and retry.data.tags["tuner.state"] == "COMPLETE"
    versions = client.search_model_versions(f"name = '{STUDY}'")
    assert versions and {v.run_id for v in versions} == {retry.info.run_id}
