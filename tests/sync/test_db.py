"""The sync's database work, on SQLite and on the real PostgreSQL: nfdoctor's own tables
(runs, checkpoints, leases, the shared rate limit, bookmarks) and its writes to the CRM's."""

from __future__ import annotations

import itertools
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from nfdoctor.errors import DatabaseError, StateError
from nfdoctor.platforms.sync import Buyer, SyncedMessage, SyncedOrder, Window
from nfdoctor.store.database import DatabaseUrl, parse_database_url
from nfdoctor.store.inbox import InboundMessage, store_inbound
from nfdoctor.store.schema import create_schema_postgres, create_schema_sqlite
from nfdoctor.sync.db import SyncDatabase

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
WINDOW = Window(
    datetime(2026, 11, 30, tzinfo=timezone.utc), datetime(2026, 12, 1, tzinfo=timezone.utc)
)


class Crm:
    """A fresh CRM database with one Lazada shop and one Zalo OA; raw SQL to look inside."""

    def __init__(self, url: DatabaseUrl, connect: Any) -> None:
        self.url = url
        self._connect = connect

    def query(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self._connect()
        try:
            if not isinstance(conn, sqlite3.Connection):
                statement = statement.replace("?", "%s")
            cursor = conn.execute(statement, params)
            rows = cursor.fetchall() if cursor.description else []
            conn.commit()
            return [tuple(r) for r in rows]
        finally:
            conn.close()

    def db(self) -> SyncDatabase:
        return SyncDatabase(self.url, timeout_s=5)


def _seed(conn: Any) -> None:
    p = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    for channel, external in (("lazada", "S1"), ("zalo", "OA1")):
        conn.execute(
            "INSERT INTO shops (channel, external_id, name, created_at) "
            f"VALUES ({p}, {p}, {p}, {p})",
            (
                channel,
                external,
                f"{channel} shop",
                "2026-01-01T00:00:00.000000Z" if p == "?" else NOW,
            ),
        )


@pytest.fixture(params=["sqlite", "postgres"])
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Crm]:
    if request.param == "sqlite":
        path = tmp_path / "crm.db"
        conn = sqlite3.connect(path)
        create_schema_sqlite(conn)
        _seed(conn)
        conn.commit()
        conn.close()
        yield Crm(parse_database_url(f"sqlite:///{path}"), lambda: sqlite3.connect(path))
        return
    schema = request.getfixturevalue("pg_schema")
    with schema.connect() as conn:
        create_schema_postgres(conn)
        _seed(conn)
    yield Crm(parse_database_url(schema.url), lambda: schema.connect())


def order(
    external_id: str, *, status: str = "paid", amount: str = "125000", buyer: str = "B1"
) -> SyncedOrder:
    return SyncedOrder(
        external_id=external_id,
        platform_status=status.upper(),
        status=status,  # type: ignore[arg-type]
        total_amount=Decimal(amount),
        currency="VND",
        created_at=NOW - timedelta(hours=5),
        updated_at=NOW - timedelta(hours=2),
        buyer=Buyer(external_user_id=buyer, display_name="Nguyễn Văn A"),
        raw={"order_id": external_id, "price": amount},
    )


def message(external_id: str, *, user: str = "U1") -> SyncedMessage:
    return SyncedMessage(
        external_id=external_id,
        thread_id=None,
        customer=Buyer(external_user_id=user, display_name="Trần Thị B"),
        direction="in",
        sender_external_id=user,
        body="Shop ơi còn hàng không?",
        sent_at=NOW - timedelta(hours=3),
        raw={"message_id": external_id},
    )


def write_orders(db: SyncDatabase, shop_id: int, records: list[SyncedOrder], **kw: Any) -> Any:
    options: dict[str, Any] = {"run_id": None, "next_cursor": None, "total": None, **kw}
    return db.write_orders(
        shop_id=shop_id, channel="lazada", window=WINDOW, records=records, now=NOW, **options
    )


def test_orders_are_upserted_and_a_second_write_changes_nothing(crm: Crm) -> None:
    db = crm.db()
    db.check_crm_schema()
    shop = db.shop_id("lazada", "S1")
    assert shop is not None
    first = write_orders(db, shop, [order("O1"), order("O2", buyer="B2")])
    assert (first.inserted, first.updated, first.unchanged, first.customers_created) == (2, 0, 0, 2)
    again = write_orders(db, shop, [order("O1"), order("O2", buyer="B2")])
    assert (again.inserted, again.updated, again.unchanged, again.customers_created) == (0, 0, 2, 0)
    changed = write_orders(db, shop, [order("O1", status="shipped"), order("O2", buyer="B2")])
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 1)
    rows = crm.query("SELECT external_id, status, customer_id FROM orders ORDER BY external_id")
    assert [(r[0], r[1]) for r in rows] == [("O1", "shipped"), ("O2", "paid")]
    assert all(r[2] is not None for r in rows)
    identities = crm.query("SELECT channel, external_user_id FROM customer_identities ORDER BY 2")
    assert identities == [("lazada", "B1"), ("lazada", "B2")]
    db.close()


def test_a_buyer_merged_away_is_linked_to_the_surviving_customer(crm: Crm) -> None:
    db = crm.db()
    shop = db.shop_id("lazada", "S1")
    assert shop is not None
    write_orders(db, shop, [order("O1")])
    crm.query(
        "INSERT INTO customers (display_name, created_at) VALUES (?, ?)",
        ("Survivor", "2026-01-01T00:00:00.000000Z" if db.is_sqlite else NOW),
    )
    survivor = crm.query("SELECT MAX(id) FROM customers")[0][0]
    crm.query("UPDATE customers SET merged_into_id = ? WHERE id <> ?", (survivor, survivor))
    write_orders(db, shop, [order("O2")])
    assert crm.query("SELECT customer_id FROM orders WHERE external_id = 'O2'") == [(survivor,)]
    db.close()


def test_a_dry_run_compares_and_writes_nothing(crm: Crm) -> None:
    db = crm.db()
    shop = db.shop_id("lazada", "S1")
    assert shop is not None
    write_orders(db, shop, [order("O1")])
    counts = write_orders(db, shop, [order("O1", status="cancelled"), order("O9")], dry_run=True)
    assert (counts.inserted, counts.updated, counts.unchanged) == (1, 1, 0)
    assert crm.query("SELECT external_id, status FROM orders") == [("O1", "paid")]
    db.close()


def test_messages_are_inserted_only_where_absent(crm: Crm) -> None:
    db = crm.db()
    shop = db.shop_id("zalo", "OA1")
    assert shop is not None
    # The CRM's webhook already stored M1.
    _inbox(crm, "M1")
    page = [message("M1"), message("M2"), message("M3", user="U2")]
    counts = db.write_messages(
        run_id=None,
        shop_id=shop,
        channel="zalo",
        window=WINDOW,
        records=page,
        next_cursor=None,
        total=None,
        now=NOW,
    )
    assert (counts.inserted, counts.unchanged) == (2, 1)
    again = db.write_messages(
        run_id=None,
        shop_id=shop,
        channel="zalo",
        window=WINDOW,
        records=page,
        next_cursor=None,
        total=None,
        now=NOW,
    )
    assert (again.inserted, again.unchanged) == (0, 3)
    copies = crm.query("SELECT external_id, COUNT(*) FROM messages GROUP BY external_id ORDER BY 1")
    assert copies == [("M1", 1), ("M2", 1), ("M3", 1)]
    # M2 joined the conversation the webhook opened for U1; U2 got one of its own.
    threads = crm.query("SELECT COUNT(DISTINCT conversation_id) FROM messages")
    assert threads == [(2,)]
    db.close()


def _inbox(crm: Crm, external_id: str, user: str = "U1") -> None:
    """What the CRM's webhook receiver does with a message (its own code path)."""
    store_inbound(
        crm.url,
        [
            InboundMessage(
                channel="zalo",
                shop_external_id="OA1",
                external_id=external_id,
                sender_external_id=user,
                sender_name="Trần Thị B",
                thread_id=None,
                body="Shop ơi còn hàng không?",
                sent_at=NOW - timedelta(hours=3),
            )
        ],
        clock=lambda: NOW - timedelta(hours=3) + timedelta(seconds=1),
        timeout_s=5,
    )


def test_a_killed_run_is_resumed_with_its_checkpoints(crm: Crm) -> None:
    db = crm.db()
    db.ensure_own_tables()
    db.ensure_own_tables()  # idempotent
    shop = db.shop_id("lazada", "S1")
    assert shop is not None
    key = ("lazada", "S1", "orders")
    since, until = NOW - timedelta(days=2), NOW
    run = db.start_run(key, run_id="r1", owner="a", since=since, until=until, now=NOW)
    assert not run.resumed
    write_orders(db, shop, [order("O1")], run_id=run.id, next_cursor="page-2")
    write_orders(db, shop, [order("O2")], run_id=run.id, next_cursor="page-3")
    assert db.checkpoints("r1")[WINDOW.key()].next_cursor == "page-3"
    assert db.checkpoints("r1")[WINDOW.key()].fetched == 2
    # The process died; the next run (a later "now") takes the same run over both ranges.
    later = db.start_run(
        key,
        run_id="r2",
        owner="b",
        since=since + timedelta(hours=1),
        until=until + timedelta(hours=1),
        now=NOW,
    )
    assert (later.id, later.resumed, later.since, later.until) == (
        "r1",
        True,
        since,
        until + timedelta(hours=1),
    )
    write_orders(db, shop, [order("O3")], run_id="r1", next_cursor=None)
    checkpoint = db.checkpoints("r1")[WINDOW.key()]
    assert checkpoint.done and checkpoint.fetched == 3
    assert set(db.seen("r1")) == {"O1", "O2", "O3"}
    db.finish_run("r1", outcome="ok", now=NOW)
    assert db.checkpoints("r1") == {} and db.seen("r1") == {}
    fresh = db.start_run(key, run_id="r3", owner="c", since=since, until=until, now=NOW)
    assert (fresh.id, fresh.resumed) == ("r3", False)
    db.close()


def test_the_lease_is_one_holders_and_a_dead_holders_is_taken_over(crm: Crm) -> None:
    db = crm.db()
    db.ensure_own_tables()
    key = ("lazada", "S1", "orders")
    assert db.take_lease(key, "nfdoctor sync@host-a:1:aa", 60) is None
    assert db.take_lease(key, "nfdoctor sync@host-b:2:bb", 60) == "nfdoctor sync@host-a:1:aa"
    assert db.renew_lease(key, "nfdoctor sync@host-a:1:aa", 60)
    assert not db.renew_lease(key, "nfdoctor sync@host-b:2:bb", 60)
    db.release_lease(key, "nfdoctor sync@host-a:1:aa")
    assert db.take_lease(key, "nfdoctor sync@host-b:2:bb", 60) is None
    # A process of this host that has exited: its lease is void before it runs out.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    owner = f"nfdoctor sync@{socket.gethostname()}:{dead.stdout.strip()}:cc"
    other = ("lazada", "S1", "messages")
    assert db.take_lease(other, owner, 600) is None
    assert db.take_lease(other, "nfdoctor sync@me:3:dd", 60) is None
    # An expired lease is anyone's.
    expired = ("zalo", "OA1", "messages")
    assert db.take_lease(expired, "nfdoctor sync@host-a:1:aa", -1) is None
    assert db.take_lease(expired, "nfdoctor sync@host-b:2:bb", 60) is None
    db.close()


def test_rate_limit_slots_are_one_interval_apart_across_connections(crm: Crm) -> None:
    first, second = crm.db(), crm.db()
    first.ensure_own_tables()
    waits = []
    for index in range(10):
        db = first if index % 2 else second
        waits.append(db.reserve_slot("lazada", 0.05))
    # Reserved back to back, each slot is one interval after the previous one.
    gaps = [b - a for a, b in itertools.pairwise(waits)]
    assert all(0.03 < gap <= 0.0501 for gap in gaps), gaps
    # Another platform has its own line.
    assert first.reserve_slot("zalo", 0.05) == pytest.approx(0.0, abs=0.01)
    first.close()
    second.close()


def test_the_bookmark_never_moves_back(crm: Crm) -> None:
    db = crm.db()
    db.ensure_own_tables()
    key = ("lazada", "S1", "orders")
    assert db.bookmark(key) is None
    db.set_bookmark(key, NOW, NOW)
    db.set_bookmark(key, NOW - timedelta(days=1), NOW)
    assert db.bookmark(key) == NOW
    db.set_bookmark(key, NOW + timedelta(hours=1), NOW)
    assert db.bookmark(key) == NOW + timedelta(hours=1)
    db.close()


def test_schema_drift_stops_before_any_write(crm: Crm) -> None:
    db = crm.db()
    if db.is_sqlite:
        crm.query("ALTER TABLE orders RENAME COLUMN synced_at TO synced")
    else:
        crm.query("ALTER TABLE orders RENAME COLUMN synced_at TO synced")
    with pytest.raises(StateError, match=r"drifted from the CRM schema: orders\.synced_at missing"):
        db.check_crm_schema()
    db.close()


def test_concurrent_webhook_writes_of_the_same_messages_never_make_sync_add_a_copy(
    crm: Crm,
) -> None:
    """The CRM's webhook writer stores messages while sync writes pages holding them: every
    message ends up once (sync inserts only what the CRM had not stored when its page ran)."""
    db = crm.db()
    shop = db.shop_id("zalo", "OA1")
    assert shop is not None
    ids = [f"M{i}" for i in range(60)]
    errors: list[BaseException] = []

    def webhook() -> None:
        # A delivery the CRM fails to store (a unique identity both created at once) is
        # answered 5xx and delivered again by the platform: retried here the same way.
        try:
            for external_id in ids[::2]:
                for attempt in range(3):
                    try:
                        _inbox(crm, external_id)
                        break
                    except DatabaseError:
                        if attempt == 2:
                            raise
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    writer = threading.Thread(target=webhook)
    writer.start()
    for start in range(0, len(ids), 5):
        db.write_messages(
            run_id=None,
            shop_id=shop,
            channel="zalo",
            window=WINDOW,
            records=[message(i) for i in ids[start : start + 5]],
            next_cursor=None,
            total=None,
            now=NOW,
        )
    writer.join()
    assert not errors
    rows = crm.query("SELECT external_id, id, received_at FROM messages ORDER BY id")
    assert {r[0] for r in rows} == set(ids)
    by_id: dict[str, list[tuple[int, bool]]] = {}
    for external_id, row_id, received in rows:
        # sync stamps received_at with its run's "now"; the webhook with its own time
        by_sync = str(received).startswith("2026-12-01T08:00") or received == NOW
        by_id.setdefault(external_id, []).append((row_id, by_sync))
    for external_id, copies in by_id.items():
        synced = [row for row, by_sync in copies if by_sync]
        hooked = [row for row, by_sync in copies if not by_sync]
        assert len(synced) <= 1 and len(hooked) <= 1, (external_id, copies)
        # Sync never adds a copy of what the CRM already held: where both wrote, sync's row
        # came first (a webhook arriving later is the CRM's own duplicate, which the settle
        # window keeps sync away from in practice).
        if synced and hooked:
            assert synced[0] < hooked[0], (external_id, copies)
    assert all(len(by_id[i]) == 1 for i in ids[1::2])
    db.close()
