"""The container and the Kubernetes Job: the manifest is valid YAML of the shape Kubernetes
accepts for an Indexed Job, its command is one our CLI parses, its failure policy matches
the exit codes the CLI uses, and the Dockerfile builds what it names. (The image itself is
built only where Docker and a package index are reachable.)"""

from __future__ import annotations

import re
import shlex

import yaml

from tests.conftest import REPO
from tuner.cli.main import build_parser

JOB = REPO / "deploy" / "kubernetes" / "job.yaml"
PROXY = REPO / "deploy" / "kubernetes" / "storage-proxy.yaml"


def _documents(path=JOB) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(path.read_text()) if doc}


def _argv(container: dict, env: dict) -> list[str]:
    """The container's command line as Kubernetes expands it ($(NAME) from `env`)."""
    assert set(re.findall(r"\$\((\w+)\)", " ".join(container["args"]))) <= set(env)
    return [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg) for arg in container["args"]]


def test_the_job_runs_one_indexed_worker_per_pod_with_stores_from_a_secret():
    docs = _documents()
    assert set(docs) == {"Secret", "Job"}
    job, secret = docs["Job"], docs["Secret"]
    assert job["apiVersion"] == "batch/v1" and secret["apiVersion"] == "v1"
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["parallelism"] == spec["completions"]
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"  # Kubernetes requires it with podFailurePolicy
    assert pod["terminationGracePeriodSeconds"] >= 60  # time to finish an epoch on SIGTERM
    (container,) = pod["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    # the command line as Kubernetes expands it: $(NAME) from the Secret and the Job index
    env = {**secret["stringData"], "JOB_COMPLETION_INDEX": "3"}
    argv = _argv(container, env)
    args = build_parser(argv).parse_args(argv)
    assert args.command == "search" and args.storage == env["OPTUNA_STORAGE"], shlex.join(argv)
    assert args.tracking_uri == env["MLFLOW_TRACKING_URI"] and args.seed == 3


def test_the_failure_policy_follows_the_cli_exit_codes():
    rules = _documents()["Job"]["spec"]["podFailurePolicy"]["rules"]
    by_code = {
        code: rule["action"]
        for rule in rules
        for code in rule.get("onExitCodes", {}).get("values", [])
    }
    # 130: a stop (SIGTERM: the trial is checkpointed and re-queued); 2: a usage mistake
    assert by_code == {130: "Ignore", 2: "FailJob"}
    conditions = [c["type"] for rule in rules for c in rule.get("onPodConditions", [])]
    assert conditions == ["DisruptionTarget"]
    cli = (REPO / "tuner" / "cli" / "main.py").read_text()
    assert "return 130" in cli and "_fail(exc, 2, debug)" in cli


def test_the_dockerfile_installs_the_pinned_torch_and_enters_tuner():
    text = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["tuner"]' in text
    assert "torch==2.13.0" in text and "whl/cpu" in text
    for source in re.findall(r"^COPY (\S+)", text, flags=re.MULTILINE):
        assert (REPO / source).exists(), source
    assert 'tuner = "tuner.cli:main"' in (REPO / "pyproject.toml").read_text()


def test_the_storage_proxy_serves_the_jobs_database_at_the_address_its_comment_gives():
    secret = _documents()["Secret"]
    docs = _documents(PROXY)
    assert set(docs) == {"Deployment", "Service"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    argv = _argv(container, secret["stringData"])
    args = build_parser(argv).parse_args(argv)
    assert args.command == "storage-proxy" and args.host == "0.0.0.0"
    assert args.storage == secret["stringData"]["OPTUNA_STORAGE"]  # the workers' database
    service = docs["Service"]
    assert service["spec"]["type"] == "ClusterIP"  # no TLS or login: inside the cluster only
    assert service["spec"]["selector"] == docs["Deployment"]["spec"]["selector"]["matchLabels"]
    (port,) = service["spec"]["ports"]
    assert port["port"] == args.port
    # the flag the comment tells a worker to add parses, and names this Service and port
    address = f"grpc://{service['metadata']['name']}:{port['port']}"
    assert f"- {address}" in PROXY.read_text()
    job = _documents()["Job"]["spec"]["template"]["spec"]["containers"][0]
    worker = [*_argv(job, {**secret["stringData"], "JOB_COMPLETION_INDEX": "0"}),
              "--storage-proxy", address]  # fmt: skip
    assert build_parser(worker).parse_args(worker).storage_proxy == address
