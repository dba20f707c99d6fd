"""The sync's database work: nfdoctor's own tables, and its writes to the CRM's.

nfdoctor's tables live in the CRM database, prefixed ``nfdoctor_`` (crm-schema.md: "created
by nfdoctor on first use, and versioned"), so every process that syncs against one CRM —
cron on one host, an operator on another — shares them:

- ``nfdoctor_sync_runs``: one row per run of (platform, shop, stream): its range, its state
  (``running``/``finished``), who runs it. A run killed anywhere is *resumed* by the next one
  for the same (platform, shop, stream), over the union of both ranges.
- ``nfdoctor_sync_checkpoints``: per (run, window), the cursor of the next page to fetch and
  whether the window is done. A page's CRM writes and its checkpoint are one transaction, so
  a kill loses at most the page in flight, which the next run fetches again (upserts and
  inserts-where-absent make a page written twice the same as once).
- ``nfdoctor_sync_seen``: the records a run fetched (id, status, amount), for validation
  after a resumed run, dropped when the run finishes.
- ``nfdoctor_sync_bookmarks``: how far incremental sync has come per (platform, shop,
  stream); a ``--since/--until`` backfill leaves it alone unless ``--update-state``.
- ``nfdoctor_sync_leases``: the lease on (platform, shop, stream), taken and released as the
  CRM's token lease is (``UPDATE … WHERE lease_owner IS NULL OR lease_until < now``), so two
  runs never sync one shop's stream at once, across hosts.
- ``nfdoctor_rate_limits``: one row per platform, the shared rate limit's state
  (:mod:`nfdoctor.sync.limiter`).

Every statement is written once per dialect (``?`` against ``%s``).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from nfdoctor.errors import DatabaseError, StateError
from nfdoctor.platforms.sync import SyncedMessage, SyncedOrder, Window
from nfdoctor.store.database import (
    DatabaseUrl,
    connect_postgres,
    connect_sqlite_rw,
    postgres_error,
    sqlite_failure,
)
from nfdoctor.store.repository import sqlite_time
from nfdoctor.store.schema import EXPECTED_TABLES
from nfdoctor.tokens.owners import dead_here

__all__ = [
    "SYNC_SCHEMA_VERSION",
    "Checkpoint",
    "PageCounts",
    "RunRecord",
    "SyncDatabase",
    "open_sync_database",
]

#: the version of nfdoctor's own sync tables (``nfdoctor_meta``)
SYNC_SCHEMA_VERSION = 1
#: the CRM tables sync writes; their columns must be as the contract says (drift stops it)
_WRITES = ("shops", "customers", "customer_identities", "conversations", "messages", "orders")
_MERGE_HOPS = 16

_DDL = """
CREATE TABLE IF NOT EXISTS nfdoctor_meta (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS nfdoctor_sync_runs (
  id          TEXT PRIMARY KEY,
  platform    TEXT NOT NULL,
  shop        TEXT NOT NULL,
  stream      TEXT NOT NULL,
  since_at    TEXT NOT NULL,
  until_at    TEXT NOT NULL,
  state       TEXT NOT NULL,
  owner       TEXT NOT NULL,
  started_at  TEXT NOT NULL,
  finished_at TEXT,
  outcome     TEXT
);
CREATE INDEX IF NOT EXISTS nfdoctor_sync_runs_shop
  ON nfdoctor_sync_runs (platform, shop, stream, state);
CREATE TABLE IF NOT EXISTS nfdoctor_sync_checkpoints (
  run_id       TEXT NOT NULL,
  window_key   TEXT NOT NULL,
  next_cursor  TEXT,
  done         INTEGER NOT NULL DEFAULT 0,
  fetched      INTEGER NOT NULL DEFAULT 0,
  total        INTEGER,
  updated_at   TEXT NOT NULL,
  PRIMARY KEY (run_id, window_key)
);
CREATE TABLE IF NOT EXISTS nfdoctor_sync_seen (
  run_id          TEXT NOT NULL,
  external_id     TEXT NOT NULL,
  platform_status TEXT,
  total_amount    TEXT,
  buyer_id        TEXT,
  PRIMARY KEY (run_id, external_id)
);
CREATE TABLE IF NOT EXISTS nfdoctor_sync_bookmarks (
  platform     TEXT NOT NULL,
  shop         TEXT NOT NULL,
  stream       TEXT NOT NULL,
  synced_until TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  PRIMARY KEY (platform, shop, stream)
);
CREATE TABLE IF NOT EXISTS nfdoctor_sync_leases (
  platform    TEXT NOT NULL,
  shop        TEXT NOT NULL,
  stream      TEXT NOT NULL,
  lease_owner TEXT,
  lease_until DOUBLE PRECISION,
  PRIMARY KEY (platform, shop, stream)
);
CREATE TABLE IF NOT EXISTS nfdoctor_rate_limits (
  platform TEXT PRIMARY KEY,
  tat      DOUBLE PRECISION NOT NULL
);
"""
_OWN_TABLES = (
    "nfdoctor_meta",
    "nfdoctor_sync_runs",
    "nfdoctor_sync_checkpoints",
    "nfdoctor_sync_seen",
    "nfdoctor_sync_bookmarks",
    "nfdoctor_sync_leases",
    "nfdoctor_rate_limits",
)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One run of (platform, shop, stream) in ``nfdoctor_sync_runs``."""

    id: str
    since: datetime
    until: datetime
    resumed: bool


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """Where one window of a run stands."""

    next_cursor: str | None
    done: bool
    fetched: int
    total: int | None


@dataclass
class PageCounts:
    """What writing one page did."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    customers_created: int = 0

    def add(self, other: PageCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.customers_created += other.customers_created


@dataclass(frozen=True, kw_only=True)
class CrmOrder:
    """An order as the CRM holds it (for comparing and validating)."""

    external_id: str
    platform_status: str
    status: str
    total_amount: Decimal
    customer_id: int | None


class SyncDatabase:
    """nfdoctor's sync tables and the CRM writes, on one database (SQLite or PostgreSQL).

    Blocking: the engine calls it from worker threads. One connection for the page writes
    (serialised by a lock: SQLite has one writer anyway) and one for leases and the rate
    limit, so a slot is never queued behind a page's transaction on this side.
    """

    placeholder = "?"

    def __init__(self, url: DatabaseUrl, *, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._side_lock = threading.Lock()
        self._conn: Any = None
        self._side: Any = None

    # -- dialect ---------------------------------------------------------------------------

    @property
    def is_sqlite(self) -> bool:
        return self.url.backend == "sqlite"

    def _connect(self) -> Any:
        if self.is_sqlite:
            assert self.url.path is not None
            # Used from worker threads, one at a time (this class's locks serialise them).
            return connect_sqlite_rw(self.url.path, timeout_s=self.timeout_s, any_thread=True)
        return connect_postgres(self.url, timeout_s=self.timeout_s, autocommit=True)

    def _sql(self, statement: str) -> str:
        return statement if self.is_sqlite else statement.replace("?", "%s")

    def _time(self, moment: datetime) -> Any:
        return sqlite_time(moment) if self.is_sqlite else moment

    def _json(self, value: Any) -> Any:
        if self.is_sqlite:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        from psycopg.types.json import Jsonb

        return Jsonb(value)

    def _now_epoch(self, conn: Any) -> float:
        """The shared clock: the database server's on PostgreSQL (hosts share it), this
        machine's on SQLite (one file, one host)."""
        if self.is_sqlite:
            return time.time()
        row = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
        return float(row[0])

    def _failure(self, exc: Exception) -> DatabaseError:
        if isinstance(exc, sqlite3.Error):
            assert self.url.path is not None
            return sqlite_failure(exc, self.url.path, self.timeout_s)
        return postgres_error(exc, self.url, self.timeout_s)

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """One write transaction on the page connection (SQLite: ``BEGIN IMMEDIATE``)."""
        with self._lock, self._in_transaction("_conn") as conn:
            yield conn

    @contextmanager
    def _side_transaction(self) -> Iterator[Any]:
        """One transaction on the side connection (leases, the rate limit, lookups)."""
        with self._side_lock, self._in_transaction("_side") as conn:
            yield conn

    @contextmanager
    def _in_transaction(self, slot: str) -> Iterator[Any]:
        """A transaction on the connection kept in attribute ``slot`` (opened on first use);
        a driver error becomes a DatabaseError naming the database, never its password."""
        conn = getattr(self, slot)
        if conn is None:
            conn = self._connect()
            setattr(self, slot, conn)
        try:
            if self.is_sqlite:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            else:
                with conn.transaction():
                    yield conn
        except Exception as exc:
            if self.is_sqlite and conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, (StateError, DatabaseError)):
                raise
            if isinstance(exc, sqlite3.Error) or type(exc).__module__.startswith("psycopg"):
                raise self._failure(exc) from None
            raise

    def close(self) -> None:
        """Close both connections."""
        for conn in (self._conn, self._side):
            if conn is not None:
                with contextlib.suppress(Exception):  # closing is best effort
                    conn.close()
        self._conn = self._side = None

    # -- the schema ------------------------------------------------------------------------

    def check_crm_schema(self) -> None:
        """The CRM tables sync writes, with the contract's columns; drift stops the sync."""
        with self._transaction() as conn:
            columns = self._columns(conn, _WRITES)
        missing_tables = [t for t in _WRITES if not columns.get(t)]
        if missing_tables:
            raise StateError(
                f"the CRM database {self.url.location} has no {', '.join(missing_tables)} "
                "table: it is not a NextFlow CRM database (or not schema v1); nothing was "
                "written"
            )
        missing = [
            f"{table}.{column}"
            for table in _WRITES
            for column in EXPECTED_TABLES[table]
            if column not in columns[table]
        ]
        if missing:
            raise StateError(
                f"the CRM database {self.url.location} drifted from the CRM schema: "
                f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''} missing; sync "
                "writes nothing into a schema it does not know"
            )

    def _columns(self, conn: Any, tables: Sequence[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for table in tables:
            if self.is_sqlite:
                rows = conn.execute(f"PRAGMA table_info({table})").fetchall()
                found[table] = {str(r[1]) for r in rows}
            else:
                rows = conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = %s",
                    (table,),
                ).fetchall()
                found[table] = {str(r[0]) for r in rows}
        return found

    def has_own_tables(self) -> bool:
        """Whether nfdoctor's sync tables exist (a dry run creates nothing)."""
        with self._side_transaction() as conn:
            return bool(self._columns(conn, ("nfdoctor_meta",))["nfdoctor_meta"])

    def ensure_own_tables(self) -> None:
        """Create nfdoctor's sync tables on first use; refuse a newer version's."""
        with self._transaction() as conn:
            if self.is_sqlite:
                # One statement at a time: executescript would COMMIT this transaction.
                for statement in _DDL.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            else:
                conn.execute(_DDL)
            row = conn.execute(
                self._sql("SELECT value FROM nfdoctor_meta WHERE name = ?"), ("sync_schema",)
            ).fetchone()
            if row is None:
                conn.execute(
                    self._sql("INSERT INTO nfdoctor_meta (name, value) VALUES (?, ?)"),
                    ("sync_schema", str(SYNC_SCHEMA_VERSION)),
                )
            elif int(row[0]) > SYNC_SCHEMA_VERSION:
                raise StateError(
                    f"nfdoctor's sync tables in {self.url.location} are version {row[0]}, "
                    f"newer than this nfdoctor's ({SYNC_SCHEMA_VERSION}): upgrade nfdoctor"
                )

    def shop_id(self, channel: str, external_id: str) -> int | None:
        """The CRM's ``shops.id`` for a platform account, or None."""
        with self._transaction() as conn:
            row = conn.execute(
                self._sql("SELECT id FROM shops WHERE channel = ? AND external_id = ?"),
                (channel, external_id),
            ).fetchone()
        return None if row is None else int(row[0])

    # -- leases ----------------------------------------------------------------------------

    def take_lease(self, key: tuple[str, str, str], owner: str, lease_s: float) -> str | None:
        """Take the lease on (platform, shop, stream); None when taken, else its holder."""
        with self._side_transaction() as conn:
            now = self._now_epoch(conn)
            conn.execute(
                self._sql(
                    "INSERT INTO nfdoctor_sync_leases (platform, shop, stream, lease_owner, "
                    "lease_until) VALUES (?, ?, ?, NULL, NULL) ON CONFLICT DO NOTHING"
                ),
                key,
            )
            cursor = conn.execute(
                self._sql(
                    "UPDATE nfdoctor_sync_leases SET lease_owner = ?, lease_until = ? "
                    "WHERE platform = ? AND shop = ? AND stream = ? AND (lease_owner IS NULL "
                    "OR lease_until IS NULL OR lease_until < ? OR lease_owner = ?)"
                ),
                (owner, now + lease_s, *key, now, owner),
            )
            if cursor.rowcount == 1:
                return None
            row = conn.execute(
                self._sql(
                    "SELECT lease_owner FROM nfdoctor_sync_leases "
                    "WHERE platform = ? AND shop = ? AND stream = ?"
                ),
                key,
            ).fetchone()
            holder = str(row[0]) if row and row[0] else "?"
            if dead_here(holder):
                # An nfdoctor process on this host that no longer runs: its lease is void.
                conn.execute(
                    self._sql(
                        "UPDATE nfdoctor_sync_leases SET lease_owner = ?, lease_until = ? "
                        "WHERE platform = ? AND shop = ? AND stream = ? AND lease_owner = ?"
                    ),
                    (owner, now + lease_s, *key, holder),
                )
                return None
            return holder

    def renew_lease(self, key: tuple[str, str, str], owner: str, lease_s: float) -> bool:
        """Extend a held lease; False when it was lost (expired and taken)."""
        with self._side_transaction() as conn:
            now = self._now_epoch(conn)
            cursor = conn.execute(
                self._sql(
                    "UPDATE nfdoctor_sync_leases SET lease_until = ? WHERE platform = ? AND "
                    "shop = ? AND stream = ? AND lease_owner = ?"
                ),
                (now + lease_s, *key, owner),
            )
            return bool(cursor.rowcount == 1)

    def release_lease(self, key: tuple[str, str, str], owner: str) -> None:
        """Give the lease back (only if still ours)."""
        with self._side_transaction() as conn:
            conn.execute(
                self._sql(
                    "UPDATE nfdoctor_sync_leases SET lease_owner = NULL, lease_until = NULL "
                    "WHERE platform = ? AND shop = ? AND stream = ? AND lease_owner = ?"
                ),
                (*key, owner),
            )

    # -- the shared rate limit ---------------------------------------------------------------

    def reserve_slot(self, platform: str, interval_s: float) -> float:
        """Reserve the next request slot of ``platform``: seconds to wait before sending."""
        return self.reserve_slots(platform, interval_s, 1)[0]

    def reserve_slots(self, platform: str, interval_s: float, count: int) -> list[float]:
        """Reserve the next ``count`` request slots of ``platform``, one interval apart:
        seconds from now to each.

        GCRA in one row: ``tat`` (the theoretical arrival time of the next request) moves by
        one interval per slot, from now when the line is idle. One atomic UPDATE per batch,
        whoever sends it: the slots of every process sharing the database interleave and
        never come closer than the interval. Batches keep the writes few (SQLite has one
        writer at a time).
        """
        with self._side_transaction() as conn:
            now = self._now_epoch(conn)
            conn.execute(
                self._sql(
                    "INSERT INTO nfdoctor_rate_limits (platform, tat) VALUES (?, ?) "
                    "ON CONFLICT DO NOTHING"
                ),
                (platform, now),
            )
            greatest = "max" if self.is_sqlite else "GREATEST"
            row = conn.execute(
                self._sql(
                    f"UPDATE nfdoctor_rate_limits SET tat = {greatest}(tat, ?) + ? "
                    "WHERE platform = ? RETURNING tat"
                ),
                (now, interval_s * count, platform),
            ).fetchone()
        first = float(row[0]) - interval_s * count
        return [max(0.0, first + i * interval_s - now) for i in range(count)]

    # -- runs and checkpoints ----------------------------------------------------------------

    def start_run(
        self,
        key: tuple[str, str, str],
        *,
        run_id: str,
        owner: str,
        since: datetime,
        until: datetime,
        now: datetime,
    ) -> RunRecord:
        """Resume the unfinished run of ``key`` (over both ranges), or start a new one."""
        with self._transaction() as conn:
            row = conn.execute(
                self._sql(
                    "SELECT id, since_at, until_at FROM nfdoctor_sync_runs WHERE platform = ? "
                    "AND shop = ? AND stream = ? AND state = 'running' ORDER BY started_at DESC "
                    "LIMIT 1"
                ),
                key,
            ).fetchone()
            if row is not None:
                old_since, old_until = _parse_iso(str(row[1])), _parse_iso(str(row[2]))
                since, until = min(since, old_since), max(until, old_until)
                conn.execute(
                    self._sql(
                        "UPDATE nfdoctor_sync_runs SET since_at = ?, until_at = ?, owner = ? "
                        "WHERE id = ?"
                    ),
                    (_iso(since), _iso(until), owner, row[0]),
                )
                return RunRecord(id=str(row[0]), since=since, until=until, resumed=True)
            conn.execute(
                self._sql(
                    "INSERT INTO nfdoctor_sync_runs (id, platform, shop, stream, since_at, "
                    "until_at, state, owner, started_at) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)"
                ),
                (run_id, *key, _iso(since), _iso(until), owner, _iso(now)),
            )
        return RunRecord(id=run_id, since=since, until=until, resumed=False)

    def checkpoints(self, run_id: str) -> dict[str, Checkpoint]:
        """The run's windows and where each stands."""
        with self._transaction() as conn:
            rows = conn.execute(
                self._sql(
                    "SELECT window_key, next_cursor, done, fetched, total "
                    "FROM nfdoctor_sync_checkpoints WHERE run_id = ?"
                ),
                (run_id,),
            ).fetchall()
        return {
            str(r[0]): Checkpoint(
                next_cursor=None if r[1] is None else str(r[1]),
                done=bool(r[2]),
                fetched=int(r[3]),
                total=None if r[4] is None else int(r[4]),
            )
            for r in rows
        }

    def finish_run(self, run_id: str, *, outcome: str, now: datetime) -> None:
        """Mark the run finished; its checkpoints and seen ids go."""
        with self._transaction() as conn:
            conn.execute(
                self._sql(
                    "UPDATE nfdoctor_sync_runs SET state = 'finished', finished_at = ?, "
                    "outcome = ? WHERE id = ?"
                ),
                (_iso(now), outcome, run_id),
            )
            for table in ("nfdoctor_sync_checkpoints", "nfdoctor_sync_seen"):
                conn.execute(self._sql(f"DELETE FROM {table} WHERE run_id = ?"), (run_id,))

    def last_run(self, platform: str, shop: str, stream: str) -> tuple[str, str, str] | None:
        """The newest finished run of (platform, shop, stream): (finished_at, outcome, until)."""
        with self._side_transaction() as conn:
            row = conn.execute(
                self._sql(
                    "SELECT finished_at, outcome, until_at FROM nfdoctor_sync_runs WHERE "
                    "platform = ? AND shop = ? AND stream = ? AND state = 'finished' "
                    "ORDER BY finished_at DESC LIMIT 1"
                ),
                (platform, shop, stream),
            ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]))

    # -- bookmarks ---------------------------------------------------------------------------

    def bookmark(self, key: tuple[str, str, str]) -> datetime | None:
        """How far incremental sync of ``key`` has come, or None."""
        with self._transaction() as conn:
            row = conn.execute(
                self._sql(
                    "SELECT synced_until FROM nfdoctor_sync_bookmarks "
                    "WHERE platform = ? AND shop = ? AND stream = ?"
                ),
                key,
            ).fetchone()
        return None if row is None else _parse_iso(str(row[0]))

    def set_bookmark(self, key: tuple[str, str, str], until: datetime, now: datetime) -> None:
        """Move the bookmark forward to ``until`` (never back)."""
        with self._transaction() as conn:
            conn.execute(
                self._sql(
                    "INSERT INTO nfdoctor_sync_bookmarks (platform, shop, stream, synced_until, "
                    "updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (platform, shop, stream) DO "
                    "UPDATE SET synced_until = excluded.synced_until, updated_at = "
                    "excluded.updated_at WHERE nfdoctor_sync_bookmarks.synced_until < "
                    "excluded.synced_until"
                ),
                (*key, _iso(until), _iso(now)),
            )

    # -- one page: the CRM writes and the checkpoint, one transaction ---------------------------

    def write_orders(
        self,
        *,
        run_id: str | None,
        shop_id: int,
        channel: str,
        window: Window,
        records: Sequence[SyncedOrder],
        next_cursor: str | None,
        total: int | None,
        now: datetime,
        dry_run: bool = False,
        link_only: bool = False,
    ) -> PageCounts:
        """Upsert a page of orders (buyers linked) and move the window's checkpoint, at once.

        ``dry_run``: the same comparison, rolled back. ``link_only``: customers and
        identities only (``--stream customers``)."""
        counts = PageCounts()
        try:
            with self._transaction() as conn:
                existing = self._crm_orders(conn, shop_id, [o.external_id for o in records])
                buyers = self._link_buyers(
                    conn, channel, [o.buyer for o in records if o.buyer is not None], now, counts
                )
                for order in records:
                    current = existing.get(order.external_id)
                    if order.buyer is not None:
                        customer = buyers.get(order.buyer.external_user_id)
                    else:
                        # The platform names no buyer (Lazada's orders): the CRM's own link
                        # stays; sync never unlinks what it cannot see.
                        customer = None if current is None else _customer_of(current)
                    if link_only:
                        continue
                    values = (
                        order.platform_status,
                        order.status,
                        self._amount(order.total_amount),
                        order.currency,
                        self._time(order.created_at),
                        self._time(order.updated_at),
                        customer,
                        self._json(dict(order.raw)),
                    )
                    if current is None:
                        conn.execute(
                            self._sql(
                                "INSERT INTO orders (shop_id, external_id, customer_id, "
                                "platform_status, status, total_amount, currency, created_at, "
                                "updated_at, synced_at, raw) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                            ),
                            (
                                shop_id,
                                order.external_id,
                                customer,
                                values[0],
                                values[1],
                                values[2],
                                values[3],
                                values[4],
                                values[5],
                                self._time(now),
                                values[7],
                            ),
                        )
                        counts.inserted += 1
                    elif self._order_differs(current, order, customer):
                        conn.execute(
                            self._sql(
                                "UPDATE orders SET platform_status = ?, status = ?, "
                                "total_amount = ?, currency = ?, created_at = ?, "
                                "updated_at = ?, customer_id = ?, "
                                "raw = ?, synced_at = ? WHERE shop_id = ? AND external_id = ?"
                            ),
                            (*values, self._time(now), shop_id, order.external_id),
                        )
                        counts.updated += 1
                    else:
                        counts.unchanged += 1
                if run_id is not None:
                    self._seen(
                        conn,
                        run_id,
                        [
                            (
                                o.external_id,
                                o.platform_status,
                                str(o.total_amount),
                                o.buyer.external_user_id if o.buyer else None,
                            )
                            for o in records
                        ],
                    )
                    self._checkpoint(conn, run_id, window, next_cursor, len(records), total, now)
                if dry_run:
                    raise _Rollback(counts)
        except _Rollback:
            pass  # the dry run's comparison, undone
        return counts

    def write_messages(
        self,
        *,
        run_id: str | None,
        shop_id: int,
        channel: str,
        window: Window,
        records: Sequence[SyncedMessage],
        next_cursor: str | None,
        total: int | None,
        now: datetime,
        dry_run: bool = False,
        link_only: bool = False,
    ) -> PageCounts:
        """Insert the page's messages that the CRM does not hold, and move the checkpoint.

        On PostgreSQL the shop's row is locked first (``FOR UPDATE``): the CRM's webhook
        writer inserting a message of this shop takes a key-share lock on that row through
        its foreign key, so it waits for this page (and this page for it), and the check for
        an existing copy sees what it committed. SQLite's ``BEGIN IMMEDIATE`` does the same.
        """
        counts = PageCounts()
        try:
            with self._transaction() as conn:
                if not self.is_sqlite:
                    conn.execute("SELECT id FROM shops WHERE id = %s FOR UPDATE", (shop_id,))
                ids = [m.external_id for m in records]
                present = self._present_messages(conn, shop_id, ids)
                customers = self._link_buyers(
                    conn, channel, [m.customer for m in records], now, counts
                )
                for message in sorted(records, key=lambda m: m.sent_at):
                    if link_only:
                        continue
                    if message.external_id in present:
                        counts.unchanged += 1
                        continue
                    customer = customers[message.customer.external_user_id]
                    conversation = self._conversation(conn, shop_id, customer, message, now)
                    conn.execute(
                        self._sql(
                            "INSERT INTO messages (conversation_id, shop_id, external_id, "
                            "direction, sender_external_id, body, sent_at, received_at, "
                            "reply_to_id) VALUES "
                            "(?, ?, ?, ?, ?, ?, ?, ?, NULL)"
                        ),
                        (
                            conversation,
                            shop_id,
                            message.external_id,
                            message.direction,
                            message.sender_external_id,
                            message.body,
                            self._time(message.sent_at),
                            self._time(now),
                        ),
                    )
                    conn.execute(
                        self._sql(
                            "UPDATE conversations SET last_message_at = ? WHERE id = ? AND "
                            "(last_message_at IS NULL OR last_message_at < ?)"
                        ),
                        (self._time(message.sent_at), conversation, self._time(message.sent_at)),
                    )
                    present.add(message.external_id)
                    counts.inserted += 1
                if run_id is not None:
                    self._seen(conn, run_id, [(m.external_id, None, None, None) for m in records])
                    self._checkpoint(conn, run_id, window, next_cursor, len(records), total, now)
                if dry_run:
                    raise _Rollback(counts)
        except _Rollback:
            pass  # the dry run's comparison, undone
        return counts

    # -- validation ----------------------------------------------------------------------------

    def seen(self, run_id: str) -> dict[str, tuple[str | None, str | None, str | None]]:
        """What the run fetched: external id -> (platform status, amount, buyer id)."""
        with self._transaction() as conn:
            rows = conn.execute(
                self._sql(
                    "SELECT external_id, platform_status, total_amount, buyer_id "
                    "FROM nfdoctor_sync_seen WHERE run_id = ?"
                ),
                (run_id,),
            ).fetchall()
        return {str(r[0]): (r[1], r[2], r[3]) for r in rows}

    def crm_orders_between(
        self, shop_id: int, since: datetime, until: datetime
    ) -> dict[str, CrmOrder]:
        """The CRM's orders of a shop updated in ``[since, until)``."""
        with self._transaction() as conn:
            rows = conn.execute(
                self._sql(
                    "SELECT external_id, platform_status, status, total_amount, customer_id "
                    "FROM orders WHERE shop_id = ? AND updated_at >= ? AND updated_at < ?"
                ),
                (shop_id, self._time(since), self._time(until)),
            ).fetchall()
        return {str(r[0]): self._crm_order(r) for r in rows}

    def crm_orders(self, shop_id: int, ids: Iterable[str]) -> dict[str, CrmOrder]:
        """The CRM's orders of a shop with these external ids."""
        with self._transaction() as conn:
            rows = self._crm_orders(conn, shop_id, list(ids))
        return {key: self._crm_order(row) for key, row in rows.items()}

    def crm_orders_updated(self, shop_id: int, ids: Iterable[str]) -> dict[str, datetime]:
        """When the CRM's copy of each of these orders was last updated (absent: not held)."""
        wanted = list(ids)
        found: dict[str, datetime] = {}
        with self._side_transaction() as conn:
            for chunk in _chunks(wanted, 500):
                rows = conn.execute(
                    self._sql(
                        "SELECT external_id, updated_at FROM orders WHERE shop_id = ? AND "
                        f"external_id IN ({', '.join('?' for _ in chunk)})"
                    ),
                    (shop_id, *chunk),
                ).fetchall()
                for external_id, updated in rows:
                    when = updated if isinstance(updated, datetime) else _parse_iso(str(updated))
                    found[str(external_id)] = when
        return found

    # -- helpers ---------------------------------------------------------------------------------

    def _amount(self, amount: Decimal) -> Any:
        return str(amount) if self.is_sqlite else amount

    def _crm_order(self, row: Sequence[Any]) -> CrmOrder:
        try:
            amount = Decimal(str(row[3]))
        except InvalidOperation:
            amount = Decimal("NaN")
        return CrmOrder(
            external_id=str(row[0]),
            platform_status=str(row[1]),
            status=str(row[2]),
            total_amount=amount,
            customer_id=None if row[4] is None else int(row[4]),
        )

    def _crm_orders(self, conn: Any, shop_id: int, ids: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for chunk in _chunks(list(ids), 500):
            rows = conn.execute(
                self._sql(
                    "SELECT external_id, platform_status, status, total_amount, customer_id, "
                    "currency, created_at, updated_at, raw FROM orders WHERE shop_id = ? AND "
                    f"external_id IN ({', '.join('?' for _ in chunk)})"
                ),
                (shop_id, *chunk),
            ).fetchall()
            for r in rows:
                found[str(r[0])] = r
        return found

    def _order_differs(self, row: Sequence[Any], order: SyncedOrder, customer: int | None) -> bool:
        """Whether the CRM's order differs from the platform's in what the CRM uses: status,
        platform status, amount, currency, times, customer. ``raw`` alone does not count:
        it is the payload as whoever stored it fetched it (the CRM may ask for other
        optional fields), and is rewritten with the rest when the order really changed."""
        current = self._crm_order(row)
        created, updated = row[6], row[7]
        if not isinstance(created, datetime):
            created = _parse_iso(str(created))
        if not isinstance(updated, datetime):
            updated = _parse_iso(str(updated))
        return (
            current.platform_status != order.platform_status
            or current.status != order.status
            or current.total_amount != order.total_amount
            or str(row[5]) != order.currency
            or current.customer_id != customer
            or created != order.created_at
            or updated != order.updated_at
        )

    def _present_messages(self, conn: Any, shop_id: int, ids: Sequence[str]) -> set[str]:
        present: set[str] = set()
        for chunk in _chunks(list(ids), 500):
            rows = conn.execute(
                self._sql(
                    "SELECT DISTINCT external_id FROM messages WHERE shop_id = ? AND "
                    f"external_id IN ({', '.join('?' for _ in chunk)})"
                ),
                (shop_id, *chunk),
            ).fetchall()
            present.update(str(r[0]) for r in rows)
        return present

    def _link_buyers(
        self, conn: Any, channel: str, buyers: Sequence[Any], now: datetime, counts: PageCounts
    ) -> dict[str, int]:
        """external user id -> the CRM customer (created with its identity when new; a
        merged-away customer followed to the surviving record)."""
        linked: dict[str, int] = {}
        for buyer in buyers:
            if buyer.external_user_id in linked:
                continue
            row = conn.execute(
                self._sql(
                    "SELECT customer_id FROM customer_identities WHERE channel = ? AND "
                    "external_user_id = ?"
                ),
                (channel, buyer.external_user_id),
            ).fetchone()
            if row is not None:
                linked[buyer.external_user_id] = self._surviving(conn, int(row[0]))
                continue
            customer = self._insert_id(
                conn,
                "INSERT INTO customers (display_name, phone, email, created_at, merged_into_id) "
                "VALUES (?, ?, NULL, ?, NULL)",
                (buyer.display_name, buyer.phone, self._time(now)),
            )
            conn.execute(
                self._sql(
                    "INSERT INTO customer_identities (customer_id, channel, external_user_id, "
                    "display_name) VALUES (?, ?, ?, ?)"
                ),
                (customer, channel, buyer.external_user_id, buyer.display_name),
            )
            counts.customers_created += 1
            linked[buyer.external_user_id] = customer
        return linked

    def _surviving(self, conn: Any, customer: int) -> int:
        for _ in range(_MERGE_HOPS):
            row = conn.execute(
                self._sql("SELECT merged_into_id FROM customers WHERE id = ?"), (customer,)
            ).fetchone()
            if row is None or row[0] is None:
                return customer
            customer = int(row[0])
        return customer

    def _conversation(
        self, conn: Any, shop_id: int, customer: int, message: SyncedMessage, now: datetime
    ) -> int:
        """The thread the message belongs to: by the platform's thread id where it has one,
        else the customer's latest thread on the shop that is not closed; else a new one."""
        row = None
        if message.thread_id is not None:
            row = conn.execute(
                self._sql(
                    "SELECT id FROM conversations WHERE shop_id = ? AND external_thread_id = ? "
                    "ORDER BY id DESC LIMIT 1"
                ),
                (shop_id, message.thread_id),
            ).fetchone()
        if row is None:
            row = conn.execute(
                self._sql(
                    "SELECT id FROM conversations WHERE shop_id = ? AND customer_id = ? AND "
                    "status <> 'closed' ORDER BY COALESCE(last_message_at, created_at) DESC, "
                    "id DESC LIMIT 1"
                ),
                (shop_id, customer),
            ).fetchone()
        if row is not None:
            return int(row[0])
        return self._insert_id(
            conn,
            "INSERT INTO conversations (shop_id, customer_id, external_thread_id, status, "
            "created_at, last_message_at) VALUES (?, ?, ?, 'open', ?, ?)",
            (
                shop_id,
                customer,
                message.thread_id,
                self._time(message.sent_at),
                self._time(message.sent_at),
            ),
        )

    def _insert_id(self, conn: Any, statement: str, params: Sequence[Any]) -> int:
        if self.is_sqlite:
            cursor = conn.execute(statement, params)
            return int(cursor.lastrowid)
        row = conn.execute(self._sql(statement) + " RETURNING id", params).fetchone()
        return int(row[0])

    def _seen(self, conn: Any, run_id: str, rows: Sequence[tuple[str, Any, Any, Any]]) -> None:
        statement = self._sql(
            "INSERT INTO nfdoctor_sync_seen (run_id, external_id, platform_status, total_amount,"
            " buyer_id) VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, external_id) DO UPDATE SET "
            "platform_status = excluded.platform_status, total_amount = excluded.total_amount,"
            " buyer_id = excluded.buyer_id"
        )
        for external_id, status, amount, buyer in rows:
            conn.execute(statement, (run_id, external_id, status, amount, buyer))

    def _checkpoint(
        self,
        conn: Any,
        run_id: str,
        window: Window,
        next_cursor: str | None,
        fetched: int,
        total: int | None,
        now: datetime,
    ) -> None:
        conn.execute(
            self._sql(
                "INSERT INTO nfdoctor_sync_checkpoints (run_id, window_key, next_cursor, done, "
                "fetched, total, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, "
                "window_key) DO UPDATE SET next_cursor = excluded.next_cursor, done = "
                "excluded.done, fetched = nfdoctor_sync_checkpoints.fetched + excluded.fetched,"
                " total = COALESCE(excluded.total, nfdoctor_sync_checkpoints.total), "
                "updated_at = excluded.updated_at"
            ),
            (
                run_id,
                window.key(),
                next_cursor,
                1 if next_cursor is None else 0,
                fetched,
                total,
                _iso(now),
            ),
        )


class _Rollback(Exception):
    """Raised inside a dry run's transaction: undo it, keep the counts."""

    def __init__(self, counts: PageCounts) -> None:
        super().__init__("dry run")
        self.counts = counts


def _customer_of(row: Sequence[Any]) -> int | None:
    """The customer of an order row read by ``_crm_orders`` (its fifth column)."""
    return None if row[4] is None else int(row[4])


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def open_sync_database(url: DatabaseUrl, *, timeout_s: float) -> SyncDatabase:
    """The sync's view of the CRM database (connections open on first use)."""
    return SyncDatabase(url, timeout_s=timeout_s)
