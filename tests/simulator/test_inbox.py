"""The CRM's own writes of inbound messages (nfdoctor/store/inbox.py), on real SQLite files
and on PostgreSQL: shop, customer, conversation and message, the way crm-schema.md says."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from nfdoctor.errors import DatabaseLockedError, DatabaseUnreachableError
from nfdoctor.store.database import DatabaseUrl
from nfdoctor.store.inbox import InboundMessage, store_inbound
from nfdoctor.store.schema import create_schema_sqlite

SENT = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)
STORED = datetime(2026, 11, 26, 2, 0, 1, 250000, tzinfo=timezone.utc)
TEXT = "Shop ơi, đơn của mình bao giờ giao ạ?"


def message(**changes: Any) -> InboundMessage:
    fields: dict[str, Any] = {
        "channel": "lazada",
        "shop_external_id": "200300400",
        "external_id": "1zYOS7N0cuIqw96026",
        "sender_external_id": "801337460",
        "sender_name": None,
        "body": TEXT,
        "sent_at": SENT,
        "thread_id": "2100969665537412",
    }
    fields.update(changes)
    return InboundMessage(**fields)


class Crm:
    """A CRM database with two shops, on either backend, and a way to read it back."""

    def __init__(self, url: DatabaseUrl, query: Callable[[str], list[tuple[Any, ...]]]):
        self.url = url
        self.query = query

    def store(self, *messages: InboundMessage, at: datetime = STORED) -> list[Any]:
        return store_inbound(self.url, list(messages), clock=lambda: at, timeout_s=2)

    def count(self, table: str) -> int:
        return int(self.query(f"SELECT count(*) FROM {table}")[0][0])


SHOPS = (
    "INSERT INTO shops (channel, external_id, name, created_at) VALUES "
    "('lazada', '200300400', 'Mỹ Phẩm Thảo Nguyên', '2026-01-01T00:00:00.000000Z'), "
    "('facebook', '100063726516761', 'Bánh Ngọt Sài Gòn', '2026-01-01T00:00:00.000000Z')"
)


@pytest.fixture
def sqlite_crm(tmp_path: Path) -> Crm:
    path = tmp_path / "crm.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    create_schema_sqlite(conn)
    conn.execute(SHOPS)
    conn.execute("COMMIT")
    conn.close()

    def query(sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as read:
            return read.execute(sql).fetchall()

    return Crm(DatabaseUrl("sqlite", path=path), query)


@pytest.fixture
def postgres_crm(pg_crm_schema: Any) -> Iterator[Crm]:
    with pg_crm_schema.connect() as conn:
        conn.execute(SHOPS.replace("'2026-01-01T00:00:00.000000Z'", "'2026-01-01T00:00:00Z'"))

    def query(sql: str) -> list[tuple[Any, ...]]:
        with pg_crm_schema.connect() as read:
            return list(read.execute(sql).fetchall())

    yield Crm(DatabaseUrl("postgresql", dsn=pg_crm_schema.url), query)


@pytest.fixture(params=["sqlite", "postgresql"])
def crm(request: pytest.FixtureRequest) -> Crm:
    fixture = "sqlite_crm" if request.param == "sqlite" else "postgres_crm"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


def as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert isinstance(value, datetime)
    return value.astimezone(timezone.utc)


def test_a_new_sender_becomes_customer_identity_conversation_and_message(crm: Crm) -> None:
    [stored] = crm.store(message(sender_name="Nguyễn Thị Lan"))
    assert stored is not None and stored.new_customer and stored.new_conversation
    [(shop_id,)] = crm.query("SELECT id FROM shops WHERE channel = 'lazada'")
    row = crm.query(
        "SELECT conversation_id, shop_id, external_id, direction, sender_external_id, body,"
        " sent_at, received_at, reply_to_id FROM messages"
    )
    assert len(row) == 1
    conversation, shop, external, direction, sender, body, sent, received, reply = row[0]
    assert (shop, external, direction, sender, body, reply) == (
        shop_id,
        "1zYOS7N0cuIqw96026",
        "in",
        "801337460",
        TEXT,
        None,
    )
    assert (as_utc(sent), as_utc(received)) == (SENT, STORED)
    identity = crm.query(
        "SELECT i.customer_id, i.channel, i.external_user_id, i.display_name, c.display_name"
        " FROM customer_identities i JOIN customers c ON c.id = i.customer_id"
    )
    assert identity == [
        (stored.customer_id, "lazada", "801337460", "Nguyễn Thị Lan", "Nguyễn Thị Lan")
    ]
    thread = crm.query(
        "SELECT id, shop_id, customer_id, external_thread_id, status, last_message_at"
        " FROM conversations"
    )
    assert [t[:5] for t in thread] == [
        (conversation, shop_id, stored.customer_id, "2100969665537412", "open")
    ]
    assert as_utc(thread[0][5]) == SENT


def test_a_known_sender_writes_to_the_open_conversation_and_moves_it_forward(crm: Crm) -> None:
    [first] = crm.store(message())
    later = SENT + timedelta(minutes=5)
    [second] = crm.store(message(external_id="second", sent_at=later), at=STORED + timedelta(1))
    assert second is not None and first is not None
    assert not second.new_customer and not second.new_conversation
    assert (second.customer_id, second.conversation_id) == (
        first.customer_id,
        first.conversation_id,
    )
    # A late message (sent earlier) does not move last_message_at back.
    crm.store(message(external_id="late", sent_at=SENT - timedelta(hours=1)))
    [(last,)] = crm.query("SELECT last_message_at FROM conversations")
    assert as_utc(last) == later
    assert (crm.count("customers"), crm.count("conversations"), crm.count("messages")) == (1, 1, 3)


def test_the_same_message_twice_is_two_rows_the_crm_has_no_unique_key(crm: Crm) -> None:
    crm.store(message())
    crm.store(message(), at=STORED + timedelta(seconds=30))
    rows = crm.query("SELECT shop_id, external_id, received_at FROM messages ORDER BY id")
    assert len(rows) == 2 and rows[0][:2] == rows[1][:2]
    assert as_utc(rows[1][2]) - as_utc(rows[0][2]) == timedelta(seconds=30)


def test_after_the_thread_closed_a_new_conversation_is_opened(crm: Crm) -> None:
    [first] = crm.store(message())
    assert first is not None
    _execute(
        crm.url, f"UPDATE conversations SET status = 'closed' WHERE id = {first.conversation_id}"
    )
    [retry] = crm.store(message(), at=STORED + timedelta(minutes=30))
    assert retry is not None and retry.new_conversation and not retry.new_customer
    assert retry.conversation_id != first.conversation_id
    assert crm.count("conversations") == 2


def test_a_merged_away_customer_is_written_to_the_surviving_record(crm: Crm) -> None:
    [first] = crm.store(message())
    assert first is not None
    _execute(
        crm.url,
        "INSERT INTO customers (display_name, created_at) VALUES ('Lan', '2026-01-01T00:00:00Z')",
    )
    [(survivor,)] = crm.query("SELECT max(id) FROM customers")
    _execute(
        crm.url, f"UPDATE customers SET merged_into_id = {survivor} WHERE id = {first.customer_id}"
    )
    [again] = crm.store(message(external_id="after-merge"))
    assert again is not None and again.customer_id == survivor and again.new_conversation


def test_an_unknown_shop_is_dropped_and_nothing_is_written(crm: Crm) -> None:
    assert crm.store(message(shop_external_id="999")) == [None]
    assert crm.store(message(channel="facebook")) == [None]  # the id is a Lazada seller's
    assert (crm.count("customers"), crm.count("messages")) == (0, 0)


def test_one_delivery_is_one_transaction(crm: Crm) -> None:
    # The second message cannot be written (a naive time): the first is not kept either.
    naive = message(external_id="bad", sent_at=SENT.replace(tzinfo=None))
    with pytest.raises(ValueError, match="naive"):
        crm.store(message(), naive)
    assert (crm.count("customers"), crm.count("messages")) == (0, 0)


def _execute(url: DatabaseUrl, sql: str) -> None:
    if url.backend == "sqlite":
        assert url.path is not None
        with sqlite3.connect(url.path) as conn:
            conn.execute(sql.replace("'2026-01-01T00:00:00Z'", "'2026-01-01T00:00:00.000000Z'"))
        return
    import psycopg

    with psycopg.connect(url.dsn or "", autocommit=True) as conn:
        conn.execute(sql)


def test_a_missing_file_is_a_database_error(tmp_path: Path) -> None:
    url = DatabaseUrl("sqlite", path=tmp_path / "nope.db")
    with pytest.raises(DatabaseUnreachableError, match="not found"):
        store_inbound(url, [message()], clock=lambda: STORED)
    assert not (tmp_path / "nope.db").exists()


def test_a_busy_database_waits_the_busy_timeout_then_fails(sqlite_crm: Crm) -> None:
    assert sqlite_crm.url.path is not None
    holder = sqlite3.connect(sqlite_crm.url.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseLockedError, match="locked"):
            store_inbound(sqlite_crm.url, [message()], clock=lambda: STORED, timeout_s=0.1)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert sqlite_crm.store(message())[0] is not None  # free again: it works
