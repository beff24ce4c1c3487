"""Optuna's gRPC storage proxy, for fleets larger than a database server's connections.

`tuner storage-proxy` runs Optuna's own proxy server in front of the database. A worker
given `--storage-proxy grpc://HOST:PORT` sends its trials' traffic through it (ask, tell,
reports, reads; the proxy's pool holds the connections, the workers none) and keeps only
its heartbeats on the database (`--storage`): the proxy has none, and without them a trial
whose worker died would stay RUNNING for ever and the study would never end. The start-up
lock and the checks that create nothing also stay on the database.
"""

from __future__ import annotations

import abc
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

import optuna
from optuna.storages import BaseStorage, GrpcStorageProxy, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat

from tuner.errors import UsageError, mask_secrets
from tuner.storage.databases import CONNECT_TIMEOUT_S, engine_options, store_lock

SCHEME = "grpc"
# the proxy's own connections to the database: every worker's trial traffic shares them
PROXY_POOL_SIZE, PROXY_POOL_OVERFLOW = 4, 4
PROXY_THREADS = 16  # requests the proxy serves at once (Optuna's default: 10)
HEARTBEAT_METHODS = (
    "record_heartbeat",
    "_get_stale_trial_ids",
    "get_heartbeat_interval",
    "get_heartbeat_stale_trial_callback",
    "get_failed_trial_callback",
)


def parse_address(url: str) -> tuple[str, int]:
    """(host, port) of grpc://HOST:PORT, the form our flags take (Optuna's storage URLs
    have no such scheme)."""
    parsed = urlparse(url)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme != SCHEME or not parsed.hostname or port is None or parsed.path.strip("/"):
        raise UsageError(
            f"--storage-proxy {url!r}: expected grpc://HOST:PORT, the address "
            f"`tuner storage-proxy` listens on"
        )
    return parsed.hostname, port


def _forward(to: str, name: str) -> Callable[..., Any]:
    """A method that calls the same method of `self.<to>`."""

    def forward(self: ProxiedStorage, *args: Any, **kwargs: Any) -> Any:
        return getattr(getattr(self, to), name)(*args, **kwargs)

    forward.__name__ = name
    return forward


class ProxiedStorage(BaseStorage, BaseHeartbeat):
    """Optuna's GrpcStorageProxy for every storage call, and a direct RDBStorage for the
    heartbeat calls only (the arrangement Optuna's own _CachedStorage uses around an
    RDBStorage). Both must name the same database: `check_proxy` and `check_study_in`."""

    def __init__(self, proxy: GrpcStorageProxy, direct: RDBStorage) -> None:
        self.proxy = proxy
        self.direct = direct


for _name in dir(GrpcStorageProxy):
    if _name in BaseStorage.__abstractmethods__ or (
        not _name.startswith("_") and _name in vars(GrpcStorageProxy)
    ):
        setattr(ProxiedStorage, _name, _forward("proxy", _name))
for _name in HEARTBEAT_METHODS:
    setattr(ProxiedStorage, _name, _forward("direct", _name))
abc.update_abstractmethods(ProxiedStorage)


def open_proxied(address: str, direct: RDBStorage) -> ProxiedStorage:
    host, port = parse_address(address)
    return ProxiedStorage(GrpcStorageProxy(host=host, port=port), direct)


def check_proxy(address: str, database_studies: Callable[[], dict[str, int]]) -> None:
    """The proxy answers within seconds and serves the database --storage names: a worker's
    heartbeats go to the one and its trials to the other, and two databases would fail each
    other's trials. Every study the proxy lists must be in the database, read after it,
    under the same id (the database may hold one more: another worker just made it)."""
    host, port = parse_address(address)
    proxy = GrpcStorageProxy(host=host, port=port)
    try:
        proxy.wait_server_ready(timeout=CONNECT_TIMEOUT_S)
        proxied = {study.study_name: study._study_id for study in proxy.get_all_studies()}
    except Exception as exc:
        raise UsageError(
            f"--storage-proxy {address!r}: no storage proxy answers there ({exc}); start one "
            f"with `tuner storage-proxy --storage DATABASE_URL --port {port}`"
        ) from None
    finally:
        proxy.close()
    direct = database_studies()
    if any(direct.get(name) != study_id for name, study_id in proxied.items()):
        raise UsageError(
            f"--storage-proxy {address!r} serves another database than --storage: its "
            f"studies are {sorted(proxied)}, the database's {sorted(direct) or 'none'}; start "
            f"the proxy with the same --storage URL as the workers"
        )


def check_study_in(direct: RDBStorage, study: optuna.Study) -> None:
    """After the study is opened through the proxy: the database holds it under the same id
    (a proxy with no studies yet could not be told apart before)."""
    try:
        same = direct.get_study_id_from_name(study.study_name) == study._study_id
    except KeyError:
        same = False
    if not same:
        raise UsageError(
            f"--storage-proxy: the proxy serves another database than --storage (study "
            f"{study.study_name!r} is not in the database); start the proxy with the same "
            f"--storage URL as the workers"
        )


def serve(storage: str, host: str, port: int) -> int:
    """Run Optuna's proxy server until SIGTERM or Ctrl-C (then it finishes the requests in
    flight); the database's tables are made under the start-up lock the workers take too."""
    from optuna.storages import get_storage
    from optuna.storages._grpc.server import make_server

    _check_free(host, port)
    with store_lock(storage):
        backend = get_storage(_open_for_proxy(storage))
    server = make_server(backend, host, port, ThreadPoolExecutor(max_workers=PROXY_THREADS))
    server.start()
    print(
        mask_secrets(
            f"storage proxy for {storage} on grpc://{host}:{port}: workers pass "
            f"--storage {storage} --storage-proxy grpc://HOST:{port}"
        ),
        flush=True,
    )
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        server.stop(grace=5).wait()
        print("storage proxy stopped", flush=True)
    return 0


def _check_free(host: str, port: int) -> None:
    """Nothing listens there yet: gRPC binds with SO_REUSEPORT, so a second proxy on the same
    port would start and take half of the first one's requests."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as exc:
        message = f"--port {port}: cannot listen there on {host} ({exc.strerror})"
        raise UsageError(message) from None


def _open_for_proxy(url: str) -> RDBStorage:
    """The database behind `tuner storage-proxy`: one pool that every worker's trials share."""
    options = engine_options(url, True, PROXY_POOL_SIZE, PROXY_POOL_OVERFLOW)
    return RDBStorage(url, engine_kwargs=options)
