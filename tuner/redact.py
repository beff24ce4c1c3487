"""Secrets in URLs. A URL we are given (a store, a tracking server, a proxy) is parsed by
the library that connects to it (SQLAlchemy for databases, urllib for http(s), gRPC and
files), its password and secret-named query values are remembered, and `hide` replaces
them wherever they appear in text we print, log or store: in a URL of any form, and in a
driver's error that quotes one. No regular expression over the text decides what a
secret is."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

MASK = "***"
# query parameters that carry a secret, by name (libpq's `password`, `sslpassword`, an
# `api_key`, an access `token`...)
_SECRET_NAME = re.compile(r"pass|secret|token|key|pwd|credential|auth", re.IGNORECASE)
_NOT_DATABASES = {
    "http",
    "https",
    "grpc",
    "file",
    "databricks",
    "s3",
    "gs",
    "wasbs",
    "mlflow-artifacts",
}
_remembered: set[str] = set()


def remember_url(url: str | None) -> str | None:
    """The URL unchanged, its secrets remembered for `hide` (in every encoding a text may
    hold them: as given, percent-encoded, decoded)."""
    for secret in url_secrets(url or ""):
        _remembered.update(_written_forms(secret))
    return url


def _written_forms(secret: str) -> set[str]:
    """A secret as a text may show it: as it is, percent-encoded, and escaped inside a
    quoted string (Python's repr with either quote, JSON)."""
    encoded = {secret, quote(secret, safe=""), quote_plus(secret)}
    quoted = {
        escaped
        for form in encoded
        for escaped in (repr(form)[1:-1], repr(f'"{form}')[2:-1], json.dumps(form)[1:-1])
    }
    return {form for form in encoded | quoted if form}


def url_secrets(url: str) -> list[str]:
    """The password and the secret-named query values of one URL, as the library that
    connects reads them (SQLAlchemy for a database) and as the URL standard reads them (the
    userinfo before the last @): where the two differ, both are secrets."""
    if "://" not in url:
        return []
    scheme = url.split("://", 1)[0].lower().split("+", 1)[0]
    found = set(_standard_secrets(url))
    if scheme not in _NOT_DATABASES:
        found.update(_database_secrets(url))
    whole = [s for s in found if not any(s != other and s in other for other in found)]
    # a raw @ in a password: a driver reads the rest as the host and may print it alone
    return whole + [piece for s in whole for piece in s.split("@")[1:] if piece]


def _standard_secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    password = unquote(userinfo.partition(":")[2]) if ":" in userinfo else ""
    query = [value for name, value in parse_qsl(parts.query) if _SECRET_NAME.search(name)]
    return [s for s in (password, *query) if s]


def _database_secrets(url: str) -> list[str]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return []
    values = [parsed.password]
    for name, value in parsed.query.items():
        if _SECRET_NAME.search(name):
            values += [value] if isinstance(value, str) else list(value)
    return [str(v) for v in values if v]


def hide(text: str) -> str:
    """The text with every remembered secret replaced by ***, longest first (so a secret
    that holds another is hidden whole)."""
    for secret in sorted(_remembered, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class HidingStream:
    """A text stream (stdout, stderr) whose writes pass through `hide`: whatever a command,
    a library's log handler or a warning prints, no remembered secret reaches the terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(hide(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextmanager
def hidden_output() -> Iterator[None]:
    """stdout and stderr hide every remembered secret while the block runs."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = HidingStream(sys.stdout), HidingStream(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def remember_inputs(argv: Iterable[str], environ: Mapping[str, str]) -> None:
    """Every URL in a command line (`--storage URL`, `--storage=URL`, `--set k=URL`) and in
    the environment (MLFLOW_TRACKING_URI, a proxy's...), remembered before anything prints."""
    for word in argv:
        for part in (word, word.partition("=")[2]):
            if "://" in part:
                remember_url(part)
    for value in environ.values():
        if "://" in value:
            remember_url(value)
