"""Finding the ``messages`` rows a delivery caused, and removing exactly those.

``webhook trace`` and ``webhook send --duplicate`` watch the CRM's inbox for the message id
they delivered: a row of ``messages`` whose shop is ``shops (channel, external_id)`` and whose
``external_id`` is the id (crm-schema.md: no unique key, so a retried delivery is a second
row). Reading never writes; :meth:`MessageLookup.delete` removes only rows whose id *and*
external id both match what the caller names, in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from nfdoctor.errors import DatabaseError
from nfdoctor.store.database import (
    DatabaseUrl,
    connect_postgres,
    connect_sqlite_rw,
    postgres_error,
)

__all__ = ["MessageLookup", "StoredMessage", "open_message_lookup"]

_FIND = """
SELECT m.id, m.shop_id, m.conversation_id, m.received_at, m.body
FROM messages m JOIN shops s ON s.id = m.shop_id
WHERE s.channel = {p} AND s.external_id = {p} AND m.external_id = {p}
ORDER BY m.received_at, m.id
"""
_SHOP = "SELECT id FROM shops WHERE channel = {p} AND external_id = {p}"
_DELETE_ATTACHMENTS = "DELETE FROM message_attachments WHERE message_id = {p}"
_DELETE = "DELETE FROM messages WHERE id = {p} AND external_id = {p}"


@dataclass(frozen=True, kw_only=True)
class StoredMessage:
    """One ``messages`` row a delivery caused."""

    id: int
    shop_id: int
    conversation_id: int
    received_at: datetime | None
    body: str | None


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


class MessageLookup:
    """Queries on one open connection (SQLite or PostgreSQL)."""

    def __init__(self, conn: Any, placeholder: str) -> None:
        self.conn = conn
        self.p = placeholder

    def _rows(self, statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        cursor = self.conn.execute(statement.format(p=self.p), tuple(params))
        rows = list(cursor.fetchall())
        if self.p == "%s":
            # Each look is its own snapshot: a PostgreSQL transaction left open would keep
            # showing the rows as they were when it began.
            self.conn.rollback()
        return rows

    def shop_exists(self, channel: str, shop_external_id: str) -> bool:
        """Whether the CRM has this shop (``shops (channel, external_id)``)."""
        return bool(self._rows(_SHOP, (channel, shop_external_id)))

    def find(self, channel: str, shop_external_id: str, external_id: str) -> list[StoredMessage]:
        """The rows of this message id on this shop, oldest first."""
        rows = self._rows(_FIND, (channel, shop_external_id, external_id))
        return [
            StoredMessage(
                id=int(row[0]),
                shop_id=int(row[1]),
                conversation_id=int(row[2]),
                received_at=_time(row[3]),
                body=row[4],
            )
            for row in rows
        ]

    def delete(self, rows: Sequence[StoredMessage], external_id: str) -> int:
        """Delete these rows (and their attachments) if they still carry ``external_id``; the
        count deleted. One transaction: all or nothing."""
        deleted = 0
        sqlite = self.p == "?"
        if sqlite:
            self.conn.execute("BEGIN IMMEDIATE")  # autocommit connection: take the lock now
        try:
            for row in rows:
                self.conn.execute(_DELETE_ATTACHMENTS.format(p=self.p), (row.id,))
                cursor = self.conn.execute(_DELETE.format(p=self.p), (row.id, external_id))
                deleted += cursor.rowcount
        except BaseException:
            if sqlite:
                self.conn.execute("ROLLBACK")
            else:
                self.conn.rollback()
            raise
        if sqlite:
            self.conn.execute("COMMIT")
        else:
            self.conn.commit()
        return deleted


@contextmanager
def open_message_lookup(url: DatabaseUrl, *, timeout_s: float = 5.0) -> Iterator[MessageLookup]:
    """A :class:`MessageLookup` on the CRM database; DatabaseError when it cannot be opened
    or a query fails (locked, missing table)."""
    if url.backend == "sqlite":
        assert url.path is not None
        conn = connect_sqlite_rw(url.path, timeout_s=timeout_s)
        try:
            yield MessageLookup(conn, "?")
        except sqlite3.Error as exc:
            raise DatabaseError(f"{url.location}: {exc}") from None
        finally:
            conn.close()
        return
    pg = connect_postgres(url, timeout_s=timeout_s, statement_timeout_s=timeout_s)
    try:
        yield MessageLookup(pg, "%s")
    except DatabaseError:
        raise
    except Exception as exc:
        import psycopg

        if isinstance(exc, psycopg.Error):
            raise postgres_error(exc, url, timeout_s) from None
        raise
    finally:
        pg.close()
