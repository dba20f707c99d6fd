"""nfdoctor.store: URLs, the read-only probe, connections and the demo database.

Real SQLite files in tmp_path and the real PostgreSQL (fixtures in tests/conftest_pg.py);
nothing here mocks a database.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
import unicodedata
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from nfdoctor.errors import (
    DatabaseError,
    DatabaseLockedError,
    DatabaseUnreachableError,
    NotADatabaseError,
    UsageError,
)
from nfdoctor.simulator.crm_data import (
    DEMO_ACCOUNTS_PER_PLATFORM,
    DEMO_CONVERSATIONS_PER_ACCOUNT,
    DEMO_ORDERS_PER_SHOP,
    DemoSummary,
    build_demo_database,
)
from nfdoctor.simulator.registry import SIM_PLATFORMS
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.store import database as database_module
from nfdoctor.store.database import (
    DatabaseUrl,
    connect_postgres,
    connect_sqlite_rw,
    parse_database_url,
    probe_database,
    redact_url,
)
from nfdoctor.store.repository import sqlite_time
from nfdoctor.store.schema import (
    ALL_TABLES,
    EXPECTED_TABLES,
    ORDER_STATUSES,
    channels,
    check_values,
    create_schema_sqlite,
    ddl_statements,
    postgres_ddl,
    sqlite_ddl,
)

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
PASSWORD = "s3cr3t-pg-pass"
TIME_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
TIME_COLUMNS = {
    "shops": ("created_at",),
    "customers": ("created_at",),
    "conversations": ("created_at", "last_message_at"),
    "messages": ("sent_at", "received_at"),
    "orders": ("created_at", "updated_at", "synced_at"),
}


@contextlib.contextmanager
def opened(path: Path | str) -> Iterator[sqlite3.Connection]:
    """Commit on success and always close (sqlite3's own ``with`` only commits)."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def sqlite_url(path: Path) -> DatabaseUrl:
    return parse_database_url(f"sqlite:///{path}")


def file_state(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def dump_hash(path: Path) -> str:
    with opened(path) as conn:
        return hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()


@pytest.fixture
def crm_db(tmp_path: Path) -> Path:
    path = tmp_path / "crm.db"
    conn = sqlite3.connect(path)
    create_schema_sqlite(conn)
    conn.commit()
    conn.close()
    return path


# --- schema -------------------------------------------------------------------------------


def test_sqlite_ddl_creates_exactly_the_expected_tables_and_columns() -> None:
    with opened(":memory:") as conn:
        create_schema_sqlite(conn)
        assert_crm_schema(conn)


def assert_crm_schema(conn: sqlite3.Connection) -> None:
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid"
        )
    ]
    # v1's tables, then v1.1's optional channel_credentials.
    assert tables == list(ALL_TABLES)
    for table, columns in ALL_TABLES.items():
        assert tuple(r[1] for r in conn.execute(f"PRAGMA table_info({table})")) == columns
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {
        "messages_shop_external",
        "messages_conversation",
        "message_attachments_message",
        "orders_shop_created",
    } <= indexes


def test_both_ddls_declare_the_same_tables_and_indexes_in_the_same_order() -> None:
    def names(ddl: str) -> list[str]:
        return [
            re.match(r"CREATE (?:TABLE|INDEX) (\w+)", s).group(1)  # type: ignore[union-attr]
            for s in ddl_statements(ddl)
        ]

    assert names(sqlite_ddl()) == names(postgres_ddl())


def test_create_schema_sqlite_runs_inside_the_callers_transaction(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    conn.execute("BEGIN")
    create_schema_sqlite(conn)
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
    conn.close()


# --- URLs ---------------------------------------------------------------------------------


def test_relative_sqlite_path_is_resolved_against_base_dir(tmp_path: Path) -> None:
    url = parse_database_url("sqlite:///data/crm.db", base_dir=tmp_path)
    assert url == DatabaseUrl("sqlite", path=tmp_path / "data" / "crm.db")
    assert url.dsn is None


def test_relative_sqlite_path_without_base_dir_stays_relative() -> None:
    assert parse_database_url("sqlite:///crm.db").path == Path("crm.db")


def test_absolute_sqlite_path_ignores_base_dir(tmp_path: Path) -> None:
    url = parse_database_url("sqlite:////var/lib/nextflow/crm.db", base_dir=tmp_path)
    assert url.path == Path("/var/lib/nextflow/crm.db")
    assert url.redacted() == "sqlite:////var/lib/nextflow/crm.db"


def test_sqlite_url_round_trips_through_redacted(tmp_path: Path) -> None:
    url = parse_database_url("sqlite:///crm.db", base_dir=tmp_path)
    assert parse_database_url(url.redacted()) == url


@pytest.mark.parametrize(
    "text",
    [
        f"postgresql://nextflow:{PASSWORD}@db.internal:5432/crm",
        f"postgres://nextflow:{PASSWORD}@db.internal:5432/crm?sslmode=require",
        "  postgresql://nextflow@db.internal/crm  ",
        "postgresql:///crm?host=/var/run/postgresql",
    ],
)
def test_postgres_urls_are_accepted(text: str) -> None:
    url = parse_database_url(text)
    assert url.backend == "postgresql"
    assert url.dsn == text.strip()
    assert url.path is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (f"mysql://root:{PASSWORD}@localhost/crm", "unsupported database URL"),
        ("crm.db", "unsupported database URL"),
        ("/var/lib/crm.db", "unsupported database URL"),
        ("", "empty"),
        ("sqlite://crm.db", "three slashes"),
        ("sqlite://host/crm.db", "three slashes"),
        ("sqlite:///", "names no file"),
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite:///crm.db?mode=ro", "query parameters"),
        (f"postgresql://u:{PASSWORD}@h/crm db", "whitespace"),
    ],
)
def test_bad_urls_raise_one_line_value_error(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_database_url(text)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message
    assert PASSWORD not in message
    if fragment in ("unsupported database URL", "empty", "three slashes"):
        assert "sqlite:///" in message and "postgresql://" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"postgresql://nextflow:{PASSWORD}@db:5432/crm",
            "postgresql://nextflow:***@db:5432/crm",
        ),
        (
            f"postgres://nextflow:{PASSWORD}@db/crm?sslmode=require&password={PASSWORD}",
            "postgres://nextflow:***@db/crm?sslmode=require&password=***",
        ),
        # a raw '@' inside the password: everything up to the last '@' is user info
        ("postgresql://u:p@ss@word@db/crm", "postgresql://u:***@db/crm"),
        ("postgresql://nextflow@db/crm", "postgresql://nextflow@db/crm"),
        (
            f"host=db user=u password={PASSWORD} dbname=crm",
            "host=db user=u password=*** dbname=crm",
        ),
    ],
)
def test_redaction_masks_every_password_form(text: str, expected: str) -> None:
    assert redact_url(text) == expected


def test_database_url_never_shows_its_password() -> None:
    url = parse_database_url(f"postgresql://nextflow:{PASSWORD}@db.internal:6432/crm")
    for shown in (url.redacted(), repr(url), str(url), f"{url}", url.location):
        assert PASSWORD not in shown
    assert url.redacted() == "postgresql://nextflow:***@db.internal:6432/crm"
    assert url.location == "db.internal:6432"


@pytest.mark.parametrize(
    ("text", "location"),
    [
        ("postgresql://u@127.0.0.1/crm", "127.0.0.1:5432"),
        ("postgresql://u@[::1]:6543/crm", "[::1]:6543"),
        ("postgresql:///crm?host=/var/run/postgresql&port=5433", "/var/run/postgresql:5433"),
        ("postgresql:///crm", "local socket:5432"),
        ("postgresql://h1:5432,h2/crm", "h1:5432,h2:5432"),
    ],
)
def test_postgres_location_is_host_and_port(text: str, location: str) -> None:
    assert parse_database_url(text).location == location


# --- SQLite probe -------------------------------------------------------------------------


def test_probe_of_a_correct_database(crm_db: Path) -> None:
    before = file_state(crm_db)
    entries = set(crm_db.parent.iterdir())
    probe = probe_database(sqlite_url(crm_db))
    assert probe.backend == "sqlite"
    assert probe.path == crm_db
    assert probe.location == str(crm_db)
    assert probe.server_version == sqlite3.sqlite_version
    assert probe.missing_tables == ()
    assert probe.missing_columns == ()
    assert probe.schema_ok
    assert probe.integrity == "ok"
    assert probe.integrity_check == "integrity_check"
    assert 0 < probe.latency_s < 5
    assert probe.size_bytes == crm_db.stat().st_size
    assert file_state(crm_db) == before  # read-only: not a byte, not even the mtime
    assert set(crm_db.parent.iterdir()) == entries  # no journal, WAL or lock file left


def test_probe_without_integrity_check(crm_db: Path) -> None:
    probe = probe_database(sqlite_url(crm_db), integrity=False)
    assert probe.integrity is None
    assert probe.integrity_check is None


def test_probe_uses_quick_check_above_the_size_threshold(
    crm_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "QUICK_CHECK_ABOVE_BYTES", 0)
    probe = probe_database(sqlite_url(crm_db))
    assert (probe.integrity_check, probe.integrity) == ("quick_check", "ok")


def test_probe_detects_a_missing_table(crm_db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    shutil.copy(crm_db, copy)
    with opened(copy) as conn:
        conn.execute("DROP TABLE message_attachments")
    probe = probe_database(sqlite_url(copy))
    assert probe.missing_tables == ("message_attachments",)
    assert probe.missing_columns == ()
    assert not probe.schema_ok


def test_probe_detects_missing_columns(crm_db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    shutil.copy(crm_db, copy)
    with opened(copy) as conn:
        conn.execute("ALTER TABLE orders DROP COLUMN raw")
        conn.execute("ALTER TABLE messages RENAME COLUMN received_at TO received")
    probe = probe_database(sqlite_url(copy))
    assert probe.missing_tables == ()
    assert probe.missing_columns == ("messages.received_at", "orders.raw")


def test_probe_of_an_empty_file_reports_every_table_missing(tmp_path: Path) -> None:
    # SQLite treats a 0-byte file as an empty database: present, valid, no tables.
    empty = tmp_path / "empty.db"
    empty.touch()
    probe = probe_database(sqlite_url(empty))
    assert probe.missing_tables == tuple(EXPECTED_TABLES)
    assert empty.stat().st_size == 0


def test_probe_of_a_missing_file_does_not_create_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "crm.db"
    with pytest.raises(DatabaseUnreachableError) as caught:
        probe_database(sqlite_url(missing))
    assert str(caught.value) == f"database file not found: {missing}"
    assert not missing.exists()
    assert not missing.parent.exists()


def test_probe_of_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnreachableError, match="is a directory"):
        probe_database(sqlite_url(tmp_path))


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file"
)
def test_probe_of_an_unreadable_file(crm_db: Path) -> None:
    crm_db.chmod(0)
    try:
        with pytest.raises(DatabaseUnreachableError, match="permission denied"):
            probe_database(sqlite_url(crm_db))
    finally:
        crm_db.chmod(0o644)


def test_probe_of_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    junk = tmp_path / "crm.db"
    junk.write_bytes(random.Random(1).randbytes(8192))
    before = file_state(junk)
    entries = set(tmp_path.iterdir())
    with pytest.raises(NotADatabaseError) as caught:
        probe_database(sqlite_url(junk))
    assert str(caught.value) == f"{junk} is not a SQLite database (file is not a database)"
    assert file_state(junk) == before
    assert set(tmp_path.iterdir()) == entries


def test_probe_of_a_locked_database(crm_db: Path) -> None:
    holder = sqlite3.connect(crm_db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.perf_counter()
        with pytest.raises(DatabaseLockedError) as caught:
            probe_database(sqlite_url(crm_db), timeout_s=0.2)
        waited = time.perf_counter() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert str(caught.value) == f"{crm_db} is locked by another process (waited 0.2 s)"
    assert 0.15 < waited < 3
    assert probe_database(sqlite_url(crm_db)).schema_ok  # fine once the lock is gone


def test_probe_waits_for_a_short_lock(crm_db: Path) -> None:
    holder = sqlite3.connect(crm_db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.2, lambda: holder.execute("ROLLBACK"))
    release.start()
    try:
        assert probe_database(sqlite_url(crm_db), timeout_s=5).schema_ok
    finally:
        release.join()
        holder.close()


def test_probe_of_a_wal_database_while_the_crm_writes(crm_db: Path) -> None:
    # WAL is how a busy CRM runs SQLite: readers must not wait for the writer.
    with opened(crm_db) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
    writer = sqlite3.connect(crm_db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO shops (channel, external_id, name, created_at)"
        " VALUES ('zalo', '1', 'x', '2026-11-26T00:00:00.000000Z')"
    )
    try:
        before = crm_db.read_bytes()
        probe = probe_database(sqlite_url(crm_db), timeout_s=0.2)
        assert probe.schema_ok and probe.integrity == "ok"
        assert crm_db.read_bytes() == before
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_probe_reports_corruption_in_the_integrity_field(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    build_demo_database(path, now=NOW)
    with opened(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'messages'"
        ).fetchone()
    data = bytearray(path.read_bytes())
    # Garble the root page of messages after its 12-byte header: its cell pointers now point
    # anywhere. Page 1, with the schema, stays intact, so the probe itself still works.
    start = (root - 1) * page_size
    data[start + 12 : start + page_size] = random.Random(3).randbytes(page_size - 12)
    path.write_bytes(bytes(data))
    probe = probe_database(sqlite_url(path))
    assert probe.integrity not in (None, "ok")
    assert probe.integrity is not None
    assert 1 <= len(probe.integrity.splitlines()) <= database_module.INTEGRITY_MAX_LINES


def test_probe_refuses_to_touch_a_hot_journal(tmp_path: Path) -> None:
    # A copy of a database and its rollback journal taken mid-transaction is what a crashed
    # writer leaves behind. A read-only open cannot roll it back, and must not try.
    live = tmp_path / "live.db"
    writer = sqlite3.connect(live, isolation_level=None)
    writer.execute("CREATE TABLE t (x)")
    writer.execute(
        "INSERT INTO t SELECT randomblob(1000) FROM"
        " (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 500)"
        " SELECT i FROM c)"
    )
    writer.execute("PRAGMA cache_size = 5")  # spill to the file before commit
    writer.execute("BEGIN")
    writer.execute("UPDATE t SET x = randomblob(1000)")
    crashed = tmp_path / "crashed.db"
    shutil.copy(live, crashed)
    shutil.copy(f"{live}-journal", f"{crashed}-journal")
    writer.execute("ROLLBACK")
    writer.close()
    before = (file_state(crashed), Path(f"{crashed}-journal").read_bytes())
    with pytest.raises(DatabaseError, match="crashed process") as caught:
        probe_database(sqlite_url(crashed))
    assert type(caught.value) is DatabaseError
    assert (file_state(crashed), Path(f"{crashed}-journal").read_bytes()) == before


# --- SQLite read-write connection ---------------------------------------------------------


def test_connect_sqlite_rw_opens_an_existing_file_for_one_transaction(crm_db: Path) -> None:
    conn = connect_sqlite_rw(crm_db, timeout_s=1)
    try:
        assert conn.isolation_level is None
        assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO shops (channel, external_id, name, created_at)"
            " VALUES ('zalo', '1', 'x', '2026-11-26T00:00:00.000000Z')"
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    with opened(crm_db) as check:
        assert check.execute("SELECT count(*) FROM shops").fetchone() == (1,)


def test_connect_sqlite_rw_does_not_create_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "crm.db"
    with pytest.raises(DatabaseUnreachableError, match="database file not found"):
        connect_sqlite_rw(missing, timeout_s=1)
    assert not missing.exists()


def test_connect_sqlite_rw_classifies_junk_and_locks(tmp_path: Path, crm_db: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"PK\x03\x04" + bytes(4092))
    with pytest.raises(NotADatabaseError):
        connect_sqlite_rw(junk, timeout_s=1)
    holder = sqlite3.connect(crm_db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DatabaseLockedError, match=r"waited 0\.1 s"):
            connect_sqlite_rw(crm_db, timeout_s=0.1)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_postgres_without_psycopg_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what "not installed" looks like
    url = parse_database_url("postgresql://u@127.0.0.1:1/crm")
    for call in (
        lambda: probe_database(url),
        lambda: connect_postgres(url, timeout_s=1),
    ):
        with pytest.raises(DatabaseError) as caught:
            call()
        assert type(caught.value) is DatabaseError
        assert "pip install 'nfdoctor[postgres]'" in str(caught.value)


# --- demo ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[DemoSummary, sqlite3.Connection]]:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    summary = build_demo_database(path, now=NOW)
    conn = sqlite3.connect(path)
    yield summary, conn
    conn.close()


def rows(conn: sqlite3.Connection, query: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(query, params).fetchall()


def ascii_spelling(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def demo_state() -> SimulatorState:
    """The simulator whose data ``build_demo_database(seed=7, now=NOW)`` holds."""
    return SimulatorState(
        7,
        lambda: NOW,
        accounts_per_platform=DEMO_ACCOUNTS_PER_PLATFORM,
        orders_per_shop=DEMO_ORDERS_PER_SHOP,
        conversations_per_account=DEMO_CONVERSATIONS_PER_ACCOUNT,
        shared_message_ids=1,
    )


def test_demo_is_built_quickly(tmp_path: Path) -> None:
    started = time.perf_counter()
    build_demo_database(tmp_path / "demo.db", now=NOW)
    assert time.perf_counter() - started < 2


def test_demo_counts_match_the_summary(demo: tuple[DemoSummary, sqlite3.Connection]) -> None:
    summary, conn = demo
    counted = {
        table: rows(conn, f"SELECT count(*) FROM {table}")[0][0]
        for table in (
            "shops",
            "customers",
            "customer_identities",
            "conversations",
            "messages",
            "message_attachments",
            "orders",
        )
    }
    assert counted == {
        "shops": summary.shops,
        "customers": summary.customers,
        "customer_identities": summary.identities,
        "conversations": summary.conversations,
        "messages": summary.messages,
        "message_attachments": summary.attachments,
        "orders": summary.orders,
    }
    # Everything the demo's simulator serves, and on top only what the CRM adds: the
    # copies of retried deliveries, and the second threads late retries opened.
    state = demo_state()
    accounts = [a for spec in SIM_PLATFORMS for a in state.accounts[spec.name]]
    served_conversations = [c for a in accounts for c in a.conversations]
    assert summary.shops == len(accounts) == 10
    assert summary.orders == sum(len(a.orders) for a in accounts) == 600
    assert len(served_conversations) == 400
    assert summary.conversations == 400 + summary.closed_thread_groups
    served_messages = sum(len(c.messages) for c in served_conversations)
    assert summary.messages == served_messages + summary.duplicate_rows
    assert 1800 <= summary.messages <= 2300
    buyers = {(a.platform, o.buyer_user_id) for a in accounts for o in a.orders}
    chat_users = {(a.platform, c.user_id) for a in accounts for c in a.conversations}
    assert summary.identities == len(buyers | chat_users)
    merged = rows(conn, "SELECT count(*) FROM customers WHERE merged_into_id IS NOT NULL")
    assert merged == [(8,)]
    assert summary.customers <= summary.identities + 8


def test_demo_duplicates_counted_by_sql(demo: tuple[DemoSummary, sqlite3.Connection]) -> None:
    summary, conn = demo
    groups = rows(
        conn,
        "SELECT shop_id, external_id, count(*) FROM messages"
        " GROUP BY shop_id, external_id HAVING count(*) > 1",
    )
    assert len(groups) == summary.duplicate_groups == 40
    assert sum(n - 1 for _, _, n in groups) == summary.duplicate_rows
    assert {n for _, _, n in groups} == {2, 3}
    for shop_id, external_id, _ in groups:
        copies = rows(
            conn,
            "SELECT id, direction, sender_external_id, body, sent_at, received_at"
            " FROM messages WHERE shop_id = ? AND external_id = ? ORDER BY id",
            shop_id,
            external_id,
        )
        first = copies[0]
        for later in copies[1:]:
            assert later[1:5] == first[1:5]  # the same platform message, delivered again
            assert later[5] > first[5]  # ...received later (text order is time order)


def test_demo_reused_external_id_on_another_shop_is_not_a_duplicate(
    demo: tuple[DemoSummary, sqlite3.Connection],
) -> None:
    summary, conn = demo
    reused = rows(
        conn,
        "SELECT external_id FROM messages GROUP BY external_id HAVING count(DISTINCT shop_id) > 1",
    )
    assert len(reused) == summary.cross_shop_reuses == 1
    per_shop = rows(
        conn,
        "SELECT shop_id, count(*) FROM messages WHERE external_id = ? GROUP BY shop_id",
        reused[0][0],
    )
    assert [n for _, n in per_shop] == [1, 1]
    # a dedupe that grouped by external_id alone would find one group too many
    naive = rows(
        conn,
        "SELECT count(*) FROM (SELECT 1 FROM messages GROUP BY external_id HAVING count(*) > 1)",
    )
    assert naive == [(summary.duplicate_groups + 1,)]


def test_demo_replies_and_attachments_point_at_first_copies(
    demo: tuple[DemoSummary, sqlite3.Connection],
) -> None:
    _, conn = demo
    later_copies = """
        SELECT m.id FROM messages m
        WHERE EXISTS (SELECT 1 FROM messages f WHERE f.shop_id = m.shop_id
                      AND f.external_id = m.external_id AND f.id < m.id)"""
    first_copies = """
        SELECT m.id FROM messages m
        WHERE NOT EXISTS (SELECT 1 FROM messages f WHERE f.shop_id = m.shop_id
                          AND f.external_id = m.external_id AND f.id < m.id)
          AND EXISTS (SELECT 1 FROM messages l WHERE l.shop_id = m.shop_id
                      AND l.external_id = m.external_id AND l.id > m.id)"""
    for column, table in (("reply_to_id", "messages"), ("message_id", "message_attachments")):
        to_later = rows(conn, f"SELECT count(*) FROM {table} WHERE {column} IN ({later_copies})")
        to_first = rows(conn, f"SELECT count(*) FROM {table} WHERE {column} IN ({first_copies})")
        assert to_later == [(0,)], f"{table}.{column} points at a later copy"
        assert to_first[0][0] >= 3, f"too few {table}.{column} on duplicated messages"


def test_demo_late_retries_opened_a_second_conversation(
    demo: tuple[DemoSummary, sqlite3.Connection],
) -> None:
    summary, conn = demo
    split = rows(
        conn,
        "SELECT shop_id, external_id, min(id) FROM messages GROUP BY shop_id, external_id"
        " HAVING count(DISTINCT conversation_id) > 1",
    )
    assert len(split) == summary.closed_thread_groups == 4
    for shop_id, external_id, first_id in split:
        conversations = rows(
            conn,
            "SELECT DISTINCT c.id, c.shop_id, c.customer_id, c.status, c.created_at,"
            " c.last_message_at, c.external_thread_id"
            " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " WHERE m.shop_id = ? AND m.external_id = ? ORDER BY c.id",
            shop_id,
            external_id,
        )
        assert len(conversations) == 2
        first, second = conversations
        assert first[3] == "closed"
        assert first[1:3] == second[1:3]  # same shop, same customer
        assert first[6] == second[6]  # the same platform thread
        assert second[4] > first[5]  # opened after the first thread's last message
        (first_conversation,) = rows(
            conn, "SELECT conversation_id FROM messages WHERE id = ?", first_id
        )
        assert first_conversation[0] == first[0]


def test_demo_times_are_utc_iso_with_microseconds(
    demo: tuple[DemoSummary, sqlite3.Connection],
) -> None:
    _, conn = demo
    latest = NOW.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for table, columns in TIME_COLUMNS.items():
        for column in columns:
            values = [v for (v,) in rows(conn, f"SELECT {column} FROM {table}") if v is not None]
            assert values, f"{table}.{column} is empty"
            bad = [v for v in values if not TIME_FORMAT.match(v) or v > latest]
            assert not bad, f"{table}.{column}: {bad[:3]}"
    assert rows(conn, "SELECT count(*) FROM messages WHERE received_at < sent_at") == [(0,)]
    assert rows(
        conn,
        "SELECT count(*) FROM orders"
        " WHERE NOT (created_at <= updated_at AND updated_at <= synced_at)",
    ) == [(0,)]


def test_demo_shops_and_messages_are_the_ones_the_simulator_serves(
    demo: tuple[DemoSummary, sqlite3.Connection],
) -> None:
    _, conn = demo
    state = demo_state()
    shops = rows(conn, "SELECT channel, external_id, name FROM shops ORDER BY id")
    assert shops == [
        (spec.name, a.account_id, a.name)
        for spec in SIM_PLATFORMS
        for a in state.accounts[spec.name]
    ]
    assert sorted({channel for channel, _, _ in shops}) == sorted(channels())
    served = {
        (
            a.account_id,
            m.message_id,
            "in" if m.from_customer else "out",
            m.sender_id,
            m.text,
            sqlite_time(m.time),
        )
        for spec in SIM_PLATFORMS
        for a in state.accounts[spec.name]
        for c in a.conversations
        for m in c.messages
    }
    stored = rows(
        conn,
        "SELECT s.external_id, m.external_id, m.direction, m.sender_external_id, m.body,"
        " m.sent_at FROM messages m JOIN shops s ON s.id = m.shop_id",
    )
    assert set(stored) == served  # the same messages, ids, senders and times
    assert {shop for shop, *_ in stored} == {
        a.account_id for spec in SIM_PLATFORMS if spec.chat for a in state.accounts[spec.name]
    }
    for spec in SIM_PLATFORMS:
        if spec.chat is None:
            continue
        threads = {
            t
            for (t,) in rows(
                conn,
                "SELECT c.external_thread_id FROM conversations c JOIN shops s ON s.id = c.shop_id"
                " WHERE s.channel = ?",
                spec.name,
            )
        }
        expected = {
            c.conversation_id if spec.chat.crm_thread_ids else None
            for a in state.accounts[spec.name]
            for c in a.conversations
        }
        assert threads == expected, spec.name


def test_demo_people_are_the_users_the_simulator_serves(
    demo: tuple[DemoSummary, sqlite3.Connection],
) -> None:
    _, conn = demo
    state = demo_state()
    accounts = [a for spec in SIM_PLATFORMS for a in state.accounts[spec.name]]
    served = {(a.platform, c.user_id, c.user_name) for a in accounts for c in a.conversations}
    served |= {(a.platform, o.buyer_user_id, o.buyer_name) for a in accounts for o in a.orders}
    identities = rows(
        conn, "SELECT channel, external_user_id, display_name FROM customer_identities"
    )
    assert set(identities) == served and len(identities) == len(served)
    # A customer message comes from the conversation's customer, as the platform says.
    strangers = rows(
        conn,
        "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        " JOIN shops s ON s.id = m.shop_id LEFT JOIN customer_identities i"
        " ON i.customer_id = c.customer_id AND i.channel = s.channel"
        " WHERE m.direction = 'in'"
        " AND (i.external_user_id IS NULL OR i.external_user_id != m.sender_external_id)",
    )
    assert strangers == [(0,)]
    # Some people are known on several channels; merged-away records share a phone.
    several = rows(
        conn,
        "SELECT count(*) FROM (SELECT customer_id FROM customer_identities"
        " GROUP BY customer_id HAVING count(DISTINCT channel) > 1)",
    )
    assert several[0][0] > 0
    assert rows(
        conn,
        "SELECT count(*) FROM customers c JOIN customers t ON t.id = c.merged_into_id"
        " WHERE c.phone IS NOT t.phone OR c.created_at < t.created_at",
    ) == [(0,)]
    names = {n for (n,) in rows(conn, "SELECT display_name FROM customers") if n}
    served_names = {name for _, _, name in served}
    # Merged-away records spell a served name without diacritics; no other name is new.
    assert names - served_names <= {ascii_spelling(n) for n in served_names}
    assert sum(not n.isascii() for n in names) > len(names) / 2  # Vietnamese diacritics
    phones = [p for (p,) in rows(conn, "SELECT phone FROM customers") if p]
    assert phones and all(re.fullmatch(r"\+849\d{8}", p) for p in phones)
    bodies = {b for (b,) in rows(conn, "SELECT body FROM messages")}
    assert "Shop ơi, đơn của mình bao giờ giao ạ?" in bodies


def test_demo_orders_are_the_simulators(demo: tuple[DemoSummary, sqlite3.Connection]) -> None:
    _, conn = demo
    state = demo_state()
    served = {
        (a.account_id, o.order_id): (spec, o)
        for spec in SIM_PLATFORMS
        for a in state.accounts[spec.name]
        for o in a.orders
    }
    orders = rows(
        conn,
        "SELECT s.channel, s.external_id, o.external_id, o.platform_status, o.status,"
        " o.total_amount, o.currency, o.created_at, o.updated_at, o.raw, i.external_user_id"
        " FROM orders o JOIN shops s ON s.id = o.shop_id"
        " JOIN customer_identities i ON i.customer_id = o.customer_id AND i.channel = s.channel",
    )
    assert len(orders) == len(served) == 600  # every order is linked to its buyer
    assert {o[0] for o in orders} == {"shopee", "lazada", "tiktok"}  # marketplaces only
    mapping: dict[tuple[str, str], set[str]] = {}
    for channel, shop, external_id, platform_status, status, total, currency, *rest in orders:
        created, updated, raw, buyer = rest
        spec, order = served[(shop, external_id)]
        assert spec.orders is not None and channel == spec.name
        mapping.setdefault((channel, platform_status), set()).add(status)
        assert platform_status == order.status
        assert status == spec.orders.crm_status[order.status]
        assert (total, currency) == (order.amount, order.currency)
        assert isinstance(total, int) and total % 1000 == 0 and total > 0
        assert (created, updated) == (
            sqlite_time(order.create_time),
            sqlite_time(order.update_time),
        )
        assert buyer == order.buyer_user_id
        assert json.loads(raw) == spec.orders.payload(order)
        assert external_id in raw and platform_status in raw
    assert all(len(statuses) == 1 for statuses in mapping.values())  # a platform status maps once
    # Every status the simulator serves, normalised as the CRM does (platforms.md).
    assert {key: statuses.pop() for key, statuses in mapping.items()} == {
        ("shopee", "UNPAID"): "pending",
        ("shopee", "READY_TO_SHIP"): "paid",
        ("shopee", "PROCESSED"): "paid",
        ("shopee", "SHIPPED"): "shipped",
        ("shopee", "COMPLETED"): "delivered",
        ("shopee", "CANCELLED"): "cancelled",
        ("lazada", "unpaid"): "pending",
        ("lazada", "pending"): "paid",
        ("lazada", "ready_to_ship"): "paid",
        ("lazada", "shipped"): "shipped",
        ("lazada", "delivered"): "delivered",
        ("lazada", "canceled"): "cancelled",
        ("tiktok", "UNPAID"): "pending",
        ("tiktok", "AWAITING_SHIPMENT"): "paid",
        ("tiktok", "AWAITING_COLLECTION"): "paid",
        ("tiktok", "IN_TRANSIT"): "shipped",
        ("tiktok", "COMPLETED"): "delivered",
    }
    statuses = {status for (status,) in rows(conn, "SELECT DISTINCT status FROM orders")}
    # No simulated platform serves a return, so no order is "returned" (yet).
    assert statuses == set(ORDER_STATUSES) - {"returned"}


def test_demo_is_consistent_and_probes_clean(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    build_demo_database(path, now=NOW)
    with opened(path) as conn:
        assert rows(conn, "PRAGMA foreign_key_check") == []
    probe = probe_database(sqlite_url(path))
    assert probe.schema_ok and probe.integrity == "ok"


def test_demo_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    build_demo_database(first, seed=11, now=NOW)
    build_demo_database(second, seed=11, now=NOW)
    build_demo_database(other, seed=12, now=NOW)
    assert dump_hash(first) == dump_hash(second)
    assert dump_hash(first) != dump_hash(other)


def test_demo_does_not_depend_on_string_hashing(tmp_path: Path) -> None:
    # A set iterated during generation would change the data between processes.
    script = (
        "import sys; from datetime import datetime, timezone; from pathlib import Path;"
        "from nfdoctor.simulator.crm_data import build_demo_database;"
        "build_demo_database(Path(sys.argv[1]), now=datetime(2026, 11, 26, 9, tzinfo=timezone.utc))"
    )
    hashes = set()
    for hash_seed in ("1", "2"):
        path = tmp_path / f"demo-{hash_seed}.db"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
        subprocess.run([sys.executable, "-c", script, str(path)], check=True, env=env)
        hashes.add(dump_hash(path))
    build_demo_database(tmp_path / "here.db", now=NOW)
    hashes.add(dump_hash(tmp_path / "here.db"))
    assert len(hashes) == 1


def test_demo_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    path.write_bytes(b"precious")
    entries = set(tmp_path.iterdir())
    with pytest.raises(UsageError, match="already exists"):
        build_demo_database(path, now=NOW)
    assert path.read_bytes() == b"precious"
    Path(f"{path}-journal").write_bytes(b"stale journal of the old file")
    summary = build_demo_database(path, now=NOW, overwrite=True)
    assert summary.path == path
    assert probe_database(sqlite_url(path)).schema_ok
    assert set(tmp_path.iterdir()) == entries  # no temp file left


def test_demo_file_mode_follows_the_umask(tmp_path: Path) -> None:
    if not hasattr(os, "umask"):
        pytest.skip("no umask on this platform")
    path = tmp_path / "demo.db"
    build_demo_database(path, now=NOW)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_demo_leaves_nothing_when_it_fails(tmp_path: Path) -> None:
    entries = set(tmp_path.iterdir())
    with pytest.raises(ValueError, match="timezone-aware"):
        build_demo_database(tmp_path / "demo.db", now=datetime(2026, 11, 26))
    with pytest.raises(UsageError, match="does not exist"):
        build_demo_database(tmp_path / "no" / "demo.db", now=NOW)
    with pytest.raises(UsageError, match="is a directory"):
        build_demo_database(tmp_path, now=NOW)
    assert set(tmp_path.iterdir()) == entries


# --- PostgreSQL ---------------------------------------------------------------------------


def assert_no_password(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for shown in (str(exc), repr(exc), text, *map(str, exc.args)):
        assert PASSWORD not in shown


def test_unreachable_postgres_fails_fast_without_the_password() -> None:
    pytest.importorskip("psycopg")
    url = parse_database_url(f"postgresql://nextflow:{PASSWORD}@127.0.0.1:1/crm")
    started = time.perf_counter()
    with pytest.raises(DatabaseUnreachableError) as caught:
        probe_database(url, timeout_s=2)
    assert time.perf_counter() - started < 3
    assert str(caught.value).startswith("cannot connect to PostgreSQL at 127.0.0.1:1: ")
    assert "Connection refused" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert_no_password(caught.value)


def test_password_given_apart_from_the_url_is_never_shown() -> None:
    pytest.importorskip("psycopg")
    url = parse_database_url("postgresql://nextflow@127.0.0.1:1/crm").with_password(PASSWORD)
    assert url.password == PASSWORD
    for shown in (repr(url), str(url), url.redacted(), url.location):
        assert PASSWORD not in shown
    with pytest.raises(DatabaseUnreachableError) as caught:
        probe_database(url, timeout_s=2)
    assert_no_password(caught.value)
    broken = parse_database_url("postgresql://nextflow@[::1/crm").with_password(PASSWORD)
    with pytest.raises(DatabaseError) as invalid:
        connect_postgres(broken, timeout_s=1)
    assert_no_password(invalid.value)


def test_with_password_leaves_sqlite_alone(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "crm.db")
    assert url.with_password(PASSWORD) == url


@pytest.mark.parametrize(
    "text",
    [
        # libpq quotes these fragments of the URL in its own message
        f"postgresql://nextflow:{PASSWORD}%zz@127.0.0.1:1/crm",
        f"postgresql://nextflow:{PASSWORD}@[::1/crm",
        f"postgresql://nextflow@127.0.0.1:1/crm?password={PASSWORD}%zz",
        f"postgresql://nextflow:{PASSWORD}@127.0.0.1:1/crm?no_such_option=1",
        f"postgresql://nextflow:{PASSWORD}@127.0.0.1:notaport/crm",
    ],
)
def test_bad_postgres_urls_never_echo_the_password(text: str) -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(DatabaseError) as caught:
        probe_database(parse_database_url(text), timeout_s=1)
    assert_no_password(caught.value)


@pytest.mark.postgres
def test_postgres_refusal_by_the_server_never_echoes_the_password(pg_server_url: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(pg_server_url)
    user = params.get("user") or "root"
    host = str(params.get("host") or "")
    port = params.get("port") or "5432"
    # Trust auth accepts any password, so ask for a database that does not exist instead.
    if host and not host.startswith("/"):
        text = f"postgresql://{user}:{PASSWORD}@{host}:{port}/nfd_no_such_db"
    else:
        text = f"postgresql://{user}:{PASSWORD}@:{port}/nfd_no_such_db" + (
            f"?host={host}" if host else ""
        )
    with pytest.raises(DatabaseUnreachableError, match="does not exist") as caught:
        probe_database(parse_database_url(text), timeout_s=3)
    assert_no_password(caught.value)


@pytest.mark.postgres
def test_postgres_probe_of_a_correct_schema(pg_crm_schema: Any) -> None:
    url = parse_database_url(pg_crm_schema.url)
    probe = probe_database(url, timeout_s=5)
    assert probe.backend == "postgresql"
    assert probe.schema_name == pg_crm_schema.name
    assert probe.missing_tables == ()
    assert probe.missing_columns == ()
    assert probe.schema_ok
    assert probe.integrity is None and probe.integrity_check is None
    assert re.match(r"\d+", probe.server_version)
    assert 0 < probe.latency_s < 5
    assert probe.location == url.redacted()
    assert probe.path is None


@pytest.mark.postgres
def test_postgres_probe_with_a_separate_password(pg_crm_schema: Any) -> None:
    # trust auth ignores the password: this proves it is passed without breaking the URL
    probe = probe_database(parse_database_url(pg_crm_schema.url).with_password(PASSWORD))
    assert probe.schema_ok
    assert PASSWORD not in repr(probe)


@pytest.mark.postgres
def test_postgres_probe_of_an_empty_schema(pg_schema: Any) -> None:
    probe = probe_database(parse_database_url(pg_schema.url))
    assert probe.missing_tables == tuple(EXPECTED_TABLES)


@pytest.mark.postgres
def test_postgres_probe_detects_drift(pg_crm_schema: Any) -> None:
    with pg_crm_schema.connect() as conn:
        conn.execute("ALTER TABLE messages DROP COLUMN received_at")
        conn.execute("DROP TABLE message_attachments")
    probe = probe_database(parse_database_url(pg_crm_schema.url))
    assert probe.missing_tables == ("message_attachments",)
    assert probe.missing_columns == ("messages.received_at",)


@pytest.mark.postgres
def test_postgres_ddl_types_and_constraints(pg_crm_schema: Any) -> None:
    import psycopg

    with pg_crm_schema.connect() as conn:
        found = conn.execute(
            "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale"
            " FROM information_schema.columns WHERE table_schema = current_schema()"
            " ORDER BY table_name, ordinal_position"
        ).fetchall()
        types = {(table, column): rest for table, column, *rest in found}
        columns = {table: tuple(c for t, c, *_ in found if t == table) for table in EXPECTED_TABLES}
        assert columns == EXPECTED_TABLES
        assert types[("messages", "id")][0] == "bigint"
        assert types[("messages", "reply_to_id")][0] == "bigint"
        assert types[("messages", "received_at")][0] == "timestamp with time zone"
        assert types[("orders", "total_amount")] == ["numeric", 18, 2]
        assert types[("orders", "raw")][0] == "jsonb"
        indexes = {
            name
            for (name,) in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            ).fetchall()
        }
        assert {
            "messages_shop_external",
            "messages_conversation",
            "message_attachments_message",
            "orders_shop_created",
        } <= indexes
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO shops (channel, external_id, name, created_at)"
                " VALUES ('instagram', '1', 'x', now())"
            )
        conn.execute(
            "INSERT INTO shops (channel, external_id, name, created_at)"
            " VALUES ('zalo', '1', 'x', now())"
        )
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO shops (channel, external_id, name, created_at)"
                " VALUES ('zalo', '1', 'y', now())"
            )


@pytest.mark.postgres
def test_connect_postgres_read_only_and_statement_timeout(pg_crm_schema: Any) -> None:
    import psycopg

    url = parse_database_url(pg_crm_schema.url)
    with (
        connect_postgres(url, timeout_s=3, autocommit=True, read_only=True) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute(
            "INSERT INTO shops (channel, external_id, name, created_at)"
            " VALUES ('zalo', '1', 'x', now())"
        )
    with connect_postgres(url, timeout_s=3, statement_timeout_s=0.2) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("200ms",)
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(2)")


# --- the schema's vocabulary, and writing whole row sets (seeding) ---------------------------


def test_channels_and_statuses_come_from_the_ddl_check_constraints() -> None:
    from nfdoctor.simulator.registry import NAMES

    assert channels() == NAMES  # the simulator's platforms are exactly the CRM's channels
    assert check_values("orders", "status") == ORDER_STATUSES
    assert check_values("conversations", "status") == ("open", "pending", "closed")
    for ddl in (sqlite_ddl(), postgres_ddl()):
        found = re.search(r"CHECK \(channel IN \(([^)]*)\)\)", ddl)
        assert found is not None
        assert tuple(re.findall(r"'(\w+)'", found.group(1))) == channels()
    with pytest.raises(ValueError, match="no CHECK"):
        check_values("orders", "currency")


def test_store_holds_no_platform_names_outside_its_sql() -> None:
    from nfdoctor.simulator.registry import NAMES

    store = REPO / "nfdoctor" / "store"
    for source in store.glob("*.py"):
        text = source.read_text(encoding="utf-8")
        for name in NAMES:
            assert f'"{name}"' not in text and f"'{name}'" not in text, (source.name, name)


@pytest.mark.parametrize(
    ("dsn", "url", "password"),
    [
        ("postgresql://crm:p%40ss@db:5432/crm", "postgresql://crm@db:5432/crm", "p@ss"),
        ("postgresql://crm:p@ss@word@db/crm", "postgresql://crm@db/crm", "p@ss@word"),
        (
            f"postgres://crm@db/crm?sslmode=require&password={PASSWORD}",
            "postgres://crm@db/crm?sslmode=require",
            PASSWORD,
        ),
        ("postgresql://crm:a@db/crm?password=b", "postgresql://crm@db/crm", "b"),
        ("postgresql://crm@db/crm?application_name=a@b", None, None),
        ("postgresql:///crm?host=/var/run/postgresql", None, None),
    ],
)
def test_split_password(dsn: str, url: str | None, password: str | None) -> None:
    from nfdoctor.store.database import split_password

    assert split_password(dsn) == (url or dsn, password)


def test_seed_target_checks_sqlite_files_before_any_work(tmp_path: Path) -> None:
    from nfdoctor.store.seeding import check_seed_target, database_target

    existing = tmp_path / "crm.db"
    existing.write_bytes(b"precious")
    for target, message in (
        (existing, "--database: .*crm.db already exists; refusing to overwrite it"),
        (tmp_path, "--database: .* is a directory, not a regular file"),
        (tmp_path / "no" / "crm.db", "--database: directory .*no does not exist"),
    ):
        with pytest.raises(UsageError, match=message):
            check_seed_target(database_target(str(target)), option="--database")
    assert existing.read_bytes() == b"precious"
    check_seed_target(database_target(f"sqlite:///{tmp_path / 'new.db'}"))
    assert not (tmp_path / "new.db").exists()
    assert database_target("~/crm.db").path == Path.home() / "crm.db"
    with pytest.raises(ValueError, match="unsupported database URL"):
        database_target("mysql://crm@db/crm")


def small_demo_state(seed: int = 3) -> SimulatorState:
    return SimulatorState(
        seed,
        lambda: NOW,
        accounts_per_platform=2,
        orders_per_shop=12,
        conversations_per_account=15,
        shared_message_ids=1,
    )


def table_rows(conn: Any, table: str) -> list[tuple[Any, ...]]:
    """Every row of a CRM table in id order, values compared as SQLite stores them (times,
    integral amounts) and JSON as documents (jsonb does not keep key order)."""
    from decimal import Decimal

    out = []
    for row in conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall():
        values: list[Any] = []
        for column, value in zip(EXPECTED_TABLES[table], row, strict=True):
            if isinstance(value, datetime):
                value = sqlite_time(value)
            elif isinstance(value, Decimal):
                value = int(value) if value == value.to_integral_value() else value
            elif column == "raw" and isinstance(value, str):
                value = json.loads(value)
            values.append(value)
        out.append(tuple(values))
    return out


@pytest.mark.postgres
def test_demo_crm_in_postgres_holds_what_sqlite_holds(pg_schema: Any, tmp_path: Path) -> None:
    from nfdoctor.simulator.crm_data import write_demo_crm

    state = small_demo_state()
    url = parse_database_url(pg_schema.url)
    in_postgres = write_demo_crm(url, state)
    in_sqlite = write_demo_crm(sqlite_url(tmp_path / "crm.db"), state)
    assert in_postgres.location == url.redacted() and in_postgres.path is None
    assert dataclasses_without(in_postgres, "location", "path") == dataclasses_without(
        in_sqlite, "location", "path"
    )
    assert in_postgres.duplicate_groups > 0 and in_postgres.cross_shop_reuses == 1
    probe = probe_database(url)
    assert probe.schema_ok and probe.schema_name == pg_schema.name  # created where asked
    with pg_schema.connect() as pg, opened(tmp_path / "crm.db") as lite:
        for table in EXPECTED_TABLES:
            pg_rows = table_rows(pg, table)
            assert pg_rows == table_rows(lite, table), table
            assert (
                len(pg_rows)
                == in_postgres.__dict__[
                    {"customer_identities": "identities", "message_attachments": "attachments"}.get(
                        table, table
                    )
                ]
            )
        # The CRM's own next row must not collide with a demo id.
        (shop_id,) = pg.execute(
            "INSERT INTO shops (channel, external_id, name, created_at)"
            " VALUES ('zalo', 'new', 'Nhà Thuốc Mới', now()) RETURNING id"
        ).fetchone()
        assert shop_id == in_postgres.shops + 1


def dataclasses_without(summary: DemoSummary, *names: str) -> dict[str, Any]:
    return {k: v for k, v in summary.__dict__.items() if k not in names}


@pytest.mark.postgres
def test_empty_crm_tables_in_postgres_are_filled(pg_crm_schema: Any) -> None:
    from nfdoctor.simulator.crm_data import write_demo_crm

    summary = write_demo_crm(parse_database_url(pg_crm_schema.url), small_demo_state())
    with pg_crm_schema.connect() as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (summary.messages,)


@pytest.mark.postgres
def test_postgres_schema_with_crm_rows_is_refused_untouched(pg_crm_schema: Any) -> None:
    from nfdoctor.simulator.crm_data import write_demo_crm
    from nfdoctor.store.seeding import check_seed_target

    with pg_crm_schema.connect() as conn:
        conn.execute("INSERT INTO customers (display_name, created_at) VALUES ('Khách cũ', now())")
    url = parse_database_url(pg_crm_schema.url).with_password(PASSWORD)
    for attempt in (
        lambda: check_seed_target(url, option="--database"),
        lambda: write_demo_crm(url, small_demo_state(), option="--database"),
    ):
        with pytest.raises(UsageError) as caught:
            attempt()
        message = str(caught.value)
        assert message.startswith(f"--database: {url.redacted()}: schema {pg_crm_schema.name}")
        assert "already holds CRM data (rows in customers)" in message
        assert "\n" not in message and PASSWORD not in message
    with pg_crm_schema.connect() as conn:
        counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in EXPECTED_TABLES]
    assert counts == [1 if t == "customers" else 0 for t in EXPECTED_TABLES]


@pytest.mark.postgres
def test_postgres_schema_with_some_crm_tables_is_refused(pg_schema: Any) -> None:
    from nfdoctor.simulator.crm_data import write_demo_crm

    with pg_schema.connect() as conn:
        conn.execute("CREATE TABLE shops (id bigserial PRIMARY KEY)")
    with pytest.raises(UsageError, match="has some CRM tables but not customers, "):
        write_demo_crm(parse_database_url(pg_schema.url), small_demo_state())
    with pg_schema.connect() as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
    assert tables == [("shops",)]


@pytest.mark.postgres
def test_postgres_without_a_schema_to_write_in_is_refused(pg_server_url: str) -> None:
    from nfdoctor.store.seeding import check_seed_target
    from tests.conftest_pg import with_search_path

    url = parse_database_url(with_search_path(pg_server_url, "nfd_no_such_schema"))
    with pytest.raises(UsageError, match="no schema of its search_path exists"):
        check_seed_target(url)
