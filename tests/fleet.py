"""Simulated hosts on a private network, for multi-host tests and the fleet benchmark.

Each host is a Linux network namespace joined to this one by a veth pair (host k is
10.213.k.2, its gateway here 10.213.k.1) and, for each command it runs, a UTS namespace
with the host's own hostname and a mount namespace with a fresh tmpfs over the test's
folder as its only disk: no host sees another's files, and hosts reach the team's services
only over the network. The services stay on this machine's loopback (PostgreSQL trusts
127.0.0.1 only); `Fleet.expose` starts a TCP forwarder (tests/forwarder.py) that makes one
reachable from every host at one address, SERVICE (as a team's hosts share one server
name), routed through each host's gateway. `Fleet.cut` brings a host's link down (the host
is lost to the others, its processes live on) and `Fleet.reconnect` brings it back. Needs
root, `ip` and `unshare`.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

from tests.conftest import REPO, free_port

SUBNET = "10.213"
SERVICE = f"{SUBNET}.0.1"  # where the hosts reach the exposed services
LOCK = Path(tempfile.gettempdir()) / "lstm-tuner-fleet.lock"
PREFIX = "ltf"  # every link and namespace a fleet makes starts with it


def _ip(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=check)


def can_make_hosts() -> bool:
    """Root, `ip netns`, veth pairs and `unshare -m -u` work here (CI runs as root)."""
    if os.geteuid() != 0 or not (shutil.which("ip") and shutil.which("unshare")):
        return False
    name = f"{PREFIX}probe{os.getpid() % 10000}"
    made = _ip("netns", "add", name, check=False).returncode == 0
    if made:
        _ip("netns", "delete", name, check=False)
    veth = _ip("link", "add", name, "type", "veth", "peer", "name", f"{name}p", check=False)
    made = made and veth.returncode == 0
    _ip("link", "delete", name, check=False)
    probe = "hostname fleet-probe && mount -t tmpfs none /mnt"
    mounts = subprocess.run(
        ["unshare", "-m", "-u", "--propagation", "private", "sh", "-c", probe],
        capture_output=True,
    )
    return made and mounts.returncode == 0


class Fleet:
    """`count` hosts (1-based: host k), made on entry and removed on exit."""

    def __init__(self, count: int, root: Path) -> None:
        self.count, self.root = count, root
        self.tag = uuid.uuid4().hex[:4]
        self.forwarders: list[subprocess.Popen] = []

    def namespace(self, k: int) -> str:
        return f"{PREFIX}{self.tag}h{k}"

    def _link(self, k: int) -> str:
        return f"{PREFIX}{self.tag}v{k}"  # the root side of host k's veth pair

    def gateway(self, k: int) -> str:
        return f"{SUBNET}.{k}.1"

    def __enter__(self) -> Fleet:
        # one fleet at a time on this machine (parallel test workers, a benchmark): they
        # share SERVICE, and a new one removes what a killed one left
        self.lock = open(LOCK, "w")  # noqa: SIM115 (held until __exit__)
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        try:
            self._make_hosts()
        except BaseException:  # `with` calls no __exit__ then: undo it and give the lock back
            self.__exit__()
            raise
        return self

    def _make_hosts(self) -> None:
        _remove_leftovers()
        _ip("addr", "add", f"{SERVICE}/32", "dev", "lo")
        for k in range(1, self.count + 1):
            namespace, link, peer = self.namespace(k), self._link(k), f"{PREFIX}{self.tag}p{k}"
            _ip("netns", "add", namespace)
            _ip("link", "add", link, "type", "veth", "peer", "name", peer)
            _ip("link", "set", peer, "netns", namespace)
            _ip("addr", "add", f"{self.gateway(k)}/24", "dev", link)
            _ip("link", "set", link, "up")
            inside = ["netns", "exec", namespace, "ip"]
            _ip(*inside, "addr", "add", f"{SUBNET}.{k}.2/24", "dev", peer)
            _ip(*inside, "link", "set", peer, "up")
            _ip(*inside, "link", "set", "lo", "up")
            _ip(*inside, "route", "add", "default", "via", self.gateway(k))

    def __exit__(self, *exc: object) -> None:
        for process in self.forwarders:
            process.kill()
            process.wait()
        for k in range(1, self.count + 1):
            _ip("link", "delete", self._link(k), check=False)
            _ip("netns", "delete", self.namespace(k), check=False)
        _ip("addr", "del", f"{SERVICE}/32", "dev", "lo", check=False)
        self.lock.close()  # gives the lock back

    def expose(self, port: int) -> int:
        """Make the service on 127.0.0.1:`port` reachable from every host at SERVICE; the
        port it is reached at there."""
        outside = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.forwarder", str(port), f"{SERVICE}:{outside}"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.forwarders.append(process)
        assert process.stdout.readline().strip() == "ready", "the forwarder did not start"
        return outside

    def run(
        self,
        k: int,
        *argv: str,
        files: dict[str, str] | None = None,
        python: tuple[str, ...] = ("-m", "tuner.cli"),
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen:
        """`python PYTHON ARGV` (by default `tuner ARGV`) on host k, under its own hostname, in
        a fresh mount namespace whose only disk is a private tmpfs over the fleet's folder,
        holding `files` (name -> text) to start with, and `env` over this process's
        environment."""
        root = shlex.quote(str(self.root))
        writes = "".join(
            f"printf %s {shlex.quote(text)} > {shlex.quote(name)} && "
            for name, text in (files or {}).items()
        )
        tuner = shlex.join([sys.executable, *python, *argv])
        script = (
            f"hostname {self.hostname(k)} && mount -t tmpfs none {root} && cd {root} && "
            f"{writes}exec {tuner}"
        )
        env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        env.pop("MLFLOW_TRACKING_URI", None)
        command = ["ip", "netns", "exec", self.namespace(k), "unshare", "-m", "-u",
                   "--propagation", "private", "sh", "-c", script]  # fmt: skip
        return subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip

    @staticmethod
    def hostname(k: int) -> str:
        """Host k's own name (its processes run in a UTS namespace of their own)."""
        return f"fleet-host{k}"

    def cut(self, k: int) -> None:
        """Host k drops off the network: its link goes down, its processes run on."""
        _ip("link", "set", self._link(k), "down")

    def reconnect(self, k: int) -> None:
        _ip("link", "set", self._link(k), "up")


def _remove_leftovers() -> None:
    """Links and namespaces of a fleet whose test process was killed before its cleanup."""
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(PREFIX) and "v" in name[len(PREFIX) :]:
            _ip("link", "delete", name, check=False)
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX):
            _ip("netns", "delete", name, check=False)
    _ip("addr", "del", f"{SERVICE}/32", "dev", "lo", check=False)


class ConnectionCount:
    """The most connections PostgreSQL held open to a database, sampled every 0.2 s."""

    def __init__(self, url: str) -> None:
        self.database = url.rsplit("/", 1)[1]
        self.most = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psycopg  # the PostgreSQL tests' driver (dev extra)

        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
        with psycopg.connect(
            host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
        ) as admin:  # autocommit: a transaction would see one snapshot of the view
            while not self.done.wait(0.2):
                (count,) = admin.execute(query, (self.database,)).fetchone()
                self.most = max(self.most, count)

    def __enter__(self) -> ConnectionCount:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
