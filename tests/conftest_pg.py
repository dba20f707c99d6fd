"""pytest plugin: the real PostgreSQL server, with a throwaway schema per test.

Register it from ``tests/conftest.py`` with ``pytest_plugins = ["tests.conftest_pg"]``.

The server is ``$NFD_TEST_POSTGRES_URL`` if set, else the first of a few local defaults that
accepts a connection. If no server answers, PostgreSQL tests are skipped with the reason —
unless ``$CI`` is set, where a missing server is a failure: CI must not go green by skipping.
A server that answers but refuses every candidate (role, database) always fails.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote

import pytest

from nfdoctor.store.database import redact_url
from nfdoctor.store.schema import create_schema_postgres

URL_ENV = "NFD_TEST_POSTGRES_URL"
# root and postgres both have trust auth here; the socket form covers a server without TCP.
DEFAULT_URLS = (
    "postgresql://root@127.0.0.1:5432/test",
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql:///test",
)
_SOCKET_DIRS = ("/var/run/postgresql", "/tmp")


@dataclass(frozen=True)
class PgSchema:
    """A throwaway schema; ``url`` puts it first on the search_path."""

    name: str
    url: str

    def connect(self, **kwargs: Any) -> Any:
        """An autocommit psycopg connection whose unqualified names resolve in this schema."""
        import psycopg

        return psycopg.connect(self.url, autocommit=True, **kwargs)


def with_search_path(url: str, schema: str) -> str:
    """``url`` with ``options=-csearch_path=<schema>`` (percent-encoded: libpq wants one '=')."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}', safe='')}"


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """URL of a PostgreSQL server that accepts connections (skips or fails, see module doc)."""
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'nfdoctor[postgres]')")
    explicit = os.environ.get(URL_ENV)
    candidates = (explicit,) if explicit else DEFAULT_URLS
    errors: list[str] = []
    for url in candidates:
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return url
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            errors.append(f"{redact_url(url)}: {first}")
    tried = "; ".join(errors)
    if any(_server_answers(url) for url in candidates):
        pytest.fail(f"a PostgreSQL server answers but no URL worked: {tried}", pytrace=False)
    _unavailable(f"no PostgreSQL server answers ({tried}); set {URL_ENV} to use another")


@pytest.fixture
def pg_schema(pg_server_url: str) -> Iterator[PgSchema]:
    """An empty schema ``nfd_test_<random>`` in the test database, dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"nfd_test_{secrets.token_hex(6)}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield PgSchema(name=name, url=with_search_path(pg_server_url, name))
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            # Bounded: a test that leaked an open transaction must not hang the teardown.
            admin.execute("SET lock_timeout = '10s'")
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def pg_crm_schema(pg_schema: PgSchema) -> PgSchema:
    """A throwaway schema holding the CRM tables (``schema_postgres.sql``), empty."""
    with pg_schema.connect() as conn:
        create_schema_postgres(conn)
    return pg_schema


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: failing instead of skipping)", pytrace=False)
    pytest.skip(reason)


def _server_answers(url: str) -> bool:
    """True if something listens where ``url`` points, whatever it then said to us."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except Exception:
        return False
    host = str(params.get("host") or "")
    port = int(params.get("port") or 5432)
    if not host or host.startswith("/"):
        for directory in (host,) if host else _SOCKET_DIRS:
            if _connects(socket.AF_UNIX, f"{directory}/.s.PGSQL.{port}"):
                return True
        return False
    return _connects(socket.AF_INET6 if ":" in host else socket.AF_INET, (host, port))


def _connects(family: socket.AddressFamily, address: Any) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(address)
        except OSError:
            return False
        return True
