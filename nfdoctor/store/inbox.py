"""The CRM's own writes of inbound chat messages: what its webhook receivers do with one.

This is the CRM's side, not nfdoctor's: the simulator's CRM receivers store every message
event they accept through it, the way ``crm-schema.md`` ("How the CRM fills it") says the
real CRM does, so the duplicates a slow acknowledgement produces land in the database as
they would in production. The rest of nfdoctor never calls it.

For each message, in the caller's one transaction:

1. the shop by ``shops (channel, external_id)``; none: the message is dropped (None);
2. the customer by ``customer_identities (channel, external_user_id)`` (following
   ``merged_into_id`` to the surviving record), else a new customer and identity;
3. the customer's latest conversation on that shop that is not closed, else a new one
   (``external_thread_id`` = the platform's thread id, where it has one);
4. a ``messages`` row (direction ``in``, ``received_at`` = when stored) and the
   conversation's ``last_message_at`` moved forward to the message's ``sent_at``.

Every statement is written once per dialect (``?`` against ``%s``; SQLite times as the CRM's
ISO 8601 text, PostgreSQL's as ``timestamptz``).
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from nfdoctor.store.database import (
    DatabaseUrl,
    connect_postgres,
    connect_sqlite_rw,
    postgres_error,
    sqlite_failure,
)
from nfdoctor.store.repository import sqlite_time

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "POSTGRES_INBOX_SQL",
    "SQLITE_INBOX_SQL",
    "InboundMessage",
    "InboxSql",
    "StoredMessage",
    "store_inbound",
]

#: how many ``merged_into_id`` hops are followed before giving up on a merge cycle
MAX_MERGE_HOPS = 16


@dataclass(frozen=True, kw_only=True)
class InboundMessage:
    """One chat message a platform delivered, as the CRM reads it from the event."""

    channel: str
    #: the shop / seller / page / OA id the event names
    shop_external_id: str
    #: the platform's message id (what a dedupe groups on, with the shop)
    external_id: str
    #: the customer's user id on the platform (PSID, buyer id …)
    sender_external_id: str
    #: the customer's name, where the event carries it (Shopee's ``from_user_name``)
    sender_name: str | None = None
    body: str | None
    sent_at: datetime
    #: the platform's conversation id, where the event carries one
    thread_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class StoredMessage:
    """Where one inbound message went."""

    message_id: int
    shop_id: int
    conversation_id: int
    customer_id: int
    new_customer: bool
    new_conversation: bool


@dataclass(frozen=True, kw_only=True)
class InboxSql:
    """The statements of one delivery, in one dialect."""

    find_shop: str
    find_identity: str
    merged_into: str
    insert_customer: str
    insert_identity: str
    find_conversation: str
    insert_conversation: str
    insert_message: str
    touch_conversation: str


def _inbox_sql(p: str) -> InboxSql:
    return InboxSql(
        find_shop=f"SELECT id FROM shops WHERE channel = {p} AND external_id = {p}",
        find_identity=(
            "SELECT customer_id FROM customer_identities"
            f" WHERE channel = {p} AND external_user_id = {p}"
        ),
        merged_into=f"SELECT merged_into_id FROM customers WHERE id = {p}",
        insert_customer=(
            "INSERT INTO customers (display_name, phone, email, created_at, merged_into_id)"
            f" VALUES ({p}, NULL, NULL, {p}, NULL)"
        ),
        insert_identity=(
            "INSERT INTO customer_identities (customer_id, channel, external_user_id,"
            f" display_name) VALUES ({p}, {p}, {p}, {p})"
        ),
        # The latest thread that is not closed: a reply after "closed" opens a new one.
        find_conversation=(
            "SELECT id FROM conversations"
            f" WHERE shop_id = {p} AND customer_id = {p} AND status <> 'closed'"
            " ORDER BY COALESCE(last_message_at, created_at) DESC, id DESC LIMIT 1"
        ),
        insert_conversation=(
            "INSERT INTO conversations (shop_id, customer_id, external_thread_id, status,"
            f" created_at, last_message_at) VALUES ({p}, {p}, {p}, 'open', {p}, {p})"
        ),
        insert_message=(
            "INSERT INTO messages (conversation_id, shop_id, external_id, direction,"
            " sender_external_id, body, sent_at, received_at, reply_to_id)"
            f" VALUES ({p}, {p}, {p}, 'in', {p}, {p}, {p}, {p}, NULL)"
        ),
        touch_conversation=(
            f"UPDATE conversations SET last_message_at = {p}"
            f" WHERE id = {p} AND (last_message_at IS NULL OR last_message_at < {p})"
        ),
    )


SQLITE_INBOX_SQL = _inbox_sql("?")
POSTGRES_INBOX_SQL = _inbox_sql("%s")


class _Inbox(ABC):
    """The inbox statements on one connection, inside the caller's transaction."""

    sql: InboxSql

    @abstractmethod
    def _one(self, statement: str, params: Sequence[Any]) -> Any:
        """The first column of the first row, or None."""

    @abstractmethod
    def _insert(self, statement: str, params: Sequence[Any]) -> int:
        """Run an INSERT; the new row's id."""

    @abstractmethod
    def _write(self, statement: str, params: Sequence[Any]) -> None:
        """Run an UPDATE."""

    @abstractmethod
    def _time(self, moment: datetime) -> Any:
        """A time as this dialect stores it."""

    def store(self, message: InboundMessage, received_at: datetime) -> StoredMessage | None:
        """Write one message; None when the CRM has no such shop (dropped, as the CRM does)."""
        sql = self.sql
        shop = self._one(sql.find_shop, (message.channel, message.shop_external_id))
        if shop is None:
            return None
        stored = self._time(received_at)
        sent = self._time(message.sent_at)
        customer = self._one(sql.find_identity, (message.channel, message.sender_external_id))
        new_customer = customer is None
        if customer is None:
            customer = self._insert(sql.insert_customer, (message.sender_name, stored))
            self._insert(
                sql.insert_identity,
                (customer, message.channel, message.sender_external_id, message.sender_name),
            )
        else:
            customer = self._surviving(int(customer))
        conversation = self._one(sql.find_conversation, (shop, customer))
        new_conversation = conversation is None
        if conversation is None:
            conversation = self._insert(
                sql.insert_conversation, (shop, customer, message.thread_id, stored, sent)
            )
        row = self._insert(
            sql.insert_message,
            (
                conversation,
                shop,
                message.external_id,
                message.sender_external_id,
                message.body,
                sent,
                stored,
            ),
        )
        self._write(sql.touch_conversation, (sent, conversation, sent))
        return StoredMessage(
            message_id=row,
            shop_id=int(shop),
            conversation_id=int(conversation),
            customer_id=int(customer),
            new_customer=new_customer,
            new_conversation=new_conversation,
        )

    def _surviving(self, customer: int) -> int:
        """The record a merged-away customer was merged into (the CRM writes to that one)."""
        for _ in range(MAX_MERGE_HOPS):
            merged = self._one(self.sql.merged_into, (customer,))
            if merged is None:
                return customer
            customer = int(merged)
        return customer


class _SqliteInbox(_Inbox):
    sql = SQLITE_INBOX_SQL

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _one(self, statement: str, params: Sequence[Any]) -> Any:
        row = self.conn.execute(statement, tuple(params)).fetchone()
        return None if row is None else row[0]

    def _insert(self, statement: str, params: Sequence[Any]) -> int:
        # lastrowid rather than RETURNING: SQLite before 3.35 (still shipped) has no RETURNING.
        rowid = self.conn.execute(statement, tuple(params)).lastrowid
        assert rowid is not None
        return int(rowid)

    def _write(self, statement: str, params: Sequence[Any]) -> None:
        self.conn.execute(statement, tuple(params))

    def _time(self, moment: datetime) -> Any:
        return sqlite_time(moment)


class _PostgresInbox(_Inbox):
    sql = POSTGRES_INBOX_SQL

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def _one(self, statement: str, params: Sequence[Any]) -> Any:
        row = self.conn.execute(statement, tuple(params)).fetchone()
        return None if row is None else row[0]

    def _insert(self, statement: str, params: Sequence[Any]) -> int:
        row = self.conn.execute(statement + " RETURNING id", tuple(params)).fetchone()
        assert row is not None
        return int(row[0])

    def _write(self, statement: str, params: Sequence[Any]) -> None:
        self.conn.execute(statement, tuple(params))

    def _time(self, moment: datetime) -> Any:
        if moment.tzinfo is None:
            raise ValueError(f"naive time {moment!r}: CRM times are UTC")
        return moment


def store_inbound(
    url: DatabaseUrl,
    messages: Sequence[InboundMessage],
    *,
    clock: Callable[[], datetime],
    timeout_s: float = 5.0,
) -> list[StoredMessage | None]:
    """Store the messages of one delivery in one transaction; per message, where it went
    (None: no such shop). Blocking: call it from a worker thread.

    ``clock`` is read once the write lock is held, so ``received_at`` is when the row was
    stored. ``timeout_s`` bounds connecting and waiting for a busy database (SQLite's busy
    timeout, PostgreSQL's ``connect_timeout`` and ``statement_timeout``). Failures raise
    :class:`~nfdoctor.errors.DatabaseError` (no password in it); nothing is written then.
    """
    if url.backend == "sqlite":
        return _store_sqlite(url, messages, clock, timeout_s)
    return _store_postgres(url, messages, clock, timeout_s)


def _store_sqlite(
    url: DatabaseUrl,
    messages: Sequence[InboundMessage],
    clock: Callable[[], datetime],
    timeout_s: float,
) -> list[StoredMessage | None]:
    if url.path is None:
        raise ValueError("a sqlite DatabaseUrl needs a path")
    conn = connect_sqlite_rw(url.path, timeout_s=timeout_s)
    try:
        # IMMEDIATE: take the write lock up front (waiting up to the busy timeout), so a
        # delivery never fails half-way because another writer got in between.
        conn.execute("BEGIN IMMEDIATE")
        try:
            inbox = _SqliteInbox(conn)
            received_at = clock()
            stored = [inbox.store(message, received_at) for message in messages]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise sqlite_failure(exc, url.path, timeout_s) from None
    finally:
        conn.close()
    return stored


def _store_postgres(
    url: DatabaseUrl,
    messages: Sequence[InboundMessage],
    clock: Callable[[], datetime],
    timeout_s: float,
) -> list[StoredMessage | None]:
    conn = connect_postgres(url, timeout_s=timeout_s, statement_timeout_s=timeout_s)
    import psycopg

    try:
        inbox = _PostgresInbox(conn)
        received_at = clock()
        stored = [inbox.store(message, received_at) for message in messages]
        conn.commit()
    except psycopg.Error as exc:
        raise postgres_error(exc, url, timeout_s) from None
    finally:
        conn.close()  # without a commit: rolled back
    return stored
