"""The CRM data layer: row types, and every SQL statement nfdoctor runs on CRM tables.

SQLite and PostgreSQL differ in placeholders (``?`` against ``%s``), in how a time and a
JSON document travel (ISO 8601 text with ``Z`` and microseconds against ``timestamptz``;
text against ``jsonb``) and in their catalogs. Each statement is written once per dialect in
a :class:`CrmSql`; a :class:`CrmRepository` runs them on one connection and never commits:
the caller owns the transaction. Features that read or repair CRM rows (sync, dedupe) add
their statements here, next to these.
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from nfdoctor.store.schema import (
    ALL_TABLES,
    EXPECTED_TABLES,
    OPTIONAL_TABLES,
    create_schema_postgres,
    create_schema_sqlite,
    optional_table_statements,
    postgres_ddl,
    sqlite_ddl,
)

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "POSTGRES_SQL",
    "SQLITE_SQL",
    "AttachmentRow",
    "ConversationRow",
    "CredentialRow",
    "CrmRepository",
    "CrmRows",
    "CrmSql",
    "CustomerRow",
    "Dialect",
    "IdentityRow",
    "MessageRow",
    "OrderRow",
    "PostgresCrmRepository",
    "ShopRow",
    "SqliteCrmRepository",
    "sqlite_time",
]

Dialect = Literal["sqlite", "postgresql"]


# --- rows -----------------------------------------------------------------------------------
# One dataclass per CRM table, fields in DDL order; times are timezone-aware datetimes.


@dataclass(frozen=True, kw_only=True)
class ShopRow:
    """A ``shops`` row: one connected shop, page or OA."""

    id: int
    channel: str
    external_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class CustomerRow:
    """A ``customers`` row: one person, possibly known on several channels."""

    id: int
    display_name: str | None
    phone: str | None
    email: str | None
    created_at: datetime
    merged_into_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class IdentityRow:
    """A ``customer_identities`` row: a customer's user id on one channel."""

    id: int
    customer_id: int
    channel: str
    external_user_id: str
    display_name: str | None


@dataclass(frozen=True, kw_only=True)
class ConversationRow:
    """A ``conversations`` row: one thread with a customer on one shop."""

    id: int
    shop_id: int
    customer_id: int | None
    external_thread_id: str | None
    status: str
    created_at: datetime
    last_message_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class MessageRow:
    """A ``messages`` row: one stored delivery of a chat message."""

    id: int
    conversation_id: int
    shop_id: int
    external_id: str
    direction: str
    sender_external_id: str | None
    body: str | None
    sent_at: datetime
    received_at: datetime
    reply_to_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class AttachmentRow:
    """A ``message_attachments`` row."""

    id: int
    message_id: int
    kind: str
    url: str


@dataclass(frozen=True, kw_only=True)
class OrderRow:
    """An ``orders`` row: one marketplace order, its status normalised, its payload kept."""

    id: int
    shop_id: int
    external_id: str
    customer_id: int | None
    platform_status: str
    status: str
    total_amount: int | Decimal
    currency: str
    created_at: datetime
    updated_at: datetime
    synced_at: datetime
    raw: dict[str, Any] | None


@dataclass(frozen=True, kw_only=True)
class CredentialRow:
    """A ``channel_credentials`` row (v1.1): the tokens the CRM uses for one shop, their
    version for compare-and-set, and the refresh lease."""

    shop_id: int
    access_token: str
    access_expires_at: datetime | None
    refresh_token: str | None
    refresh_expires_at: datetime | None
    updated_at: datetime
    updated_by: str
    version: int = 1
    lease_owner: str | None = None
    lease_until: datetime | None = None

    def __repr__(self) -> str:
        # Tokens never in a repr (a traceback, a log line).
        return f"CredentialRow(shop_id={self.shop_id}, version={self.version})"


@dataclass(frozen=True, kw_only=True)
class CrmRows:
    """Rows for every CRM table, each sequence in id order (references point backwards)."""

    shops: Sequence[ShopRow] = ()
    customers: Sequence[CustomerRow] = ()
    identities: Sequence[IdentityRow] = ()
    conversations: Sequence[ConversationRow] = ()
    messages: Sequence[MessageRow] = ()
    attachments: Sequence[AttachmentRow] = ()
    orders: Sequence[OrderRow] = ()
    credentials: Sequence[CredentialRow] = ()

    def counts(self) -> dict[str, int]:
        """Rows per CRM table name."""
        return {table: len(rows) for table, rows in self.by_table()}

    def by_table(self) -> list[tuple[str, Sequence[Any]]]:
        """``(table, rows)`` for every CRM table, each after the tables it references."""
        return [
            ("shops", self.shops),
            ("customers", self.customers),
            ("customer_identities", self.identities),
            ("conversations", self.conversations),
            ("messages", self.messages),
            ("message_attachments", self.attachments),
            ("orders", self.orders),
            ("channel_credentials", self.credentials),
        ]


# --- SQL ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CrmSql:
    """Every statement nfdoctor runs on the CRM tables, in one dialect."""

    dialect: Dialect
    #: the tables of the schema the CRM's unqualified names resolve to
    tables: str
    #: whether a table has a row; ``{table}`` is one of EXPECTED_TABLES, never input
    has_rows: str
    #: ``INSERT`` per CRM table, parameters in the row dataclass's field order
    insert: dict[str, str]
    #: after explicit ids: move a table's id sequence past them (None: nothing to move)
    advance_ids: str | None = None


def _inserts(placeholder: str) -> dict[str, str]:
    # Columns in DDL order, which is also the row dataclasses' field order.
    return {
        table: f"INSERT INTO {table} ({', '.join(columns)})"
        f" VALUES ({', '.join([placeholder] * len(columns))})"
        for table, columns in ALL_TABLES.items()
    }


SQLITE_SQL = CrmSql(
    dialect="sqlite",
    tables="SELECT name FROM sqlite_master WHERE type = 'table'",
    has_rows='SELECT EXISTS (SELECT 1 FROM "{table}")',
    insert=_inserts("?"),
)

POSTGRES_SQL = CrmSql(
    dialect="postgresql",
    # pg_tables lists tables whatever the role's privileges on them, unlike
    # information_schema: a table we cannot read still means "not empty, not ours".
    tables="SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = current_schema()",
    has_rows='SELECT EXISTS (SELECT 1 FROM "{table}")',
    insert=_inserts("%s"),
    advance_ids="SELECT setval(pg_get_serial_sequence(%s, 'id'), max(id)) FROM \"{table}\"",
)


# --- repositories ---------------------------------------------------------------------------


class CrmRepository(ABC):
    """The CRM tables on one connection, through the statements of its dialect."""

    sql: CrmSql

    @abstractmethod
    def _execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; the rows it returned (empty for a write)."""

    @abstractmethod
    def _execute_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement per parameter row."""

    @abstractmethod
    def _value(self, value: Any) -> Any:
        """A row value as this dialect takes it (times, JSON documents, decimals)."""

    @abstractmethod
    def create_schema(self) -> None:
        """Create the CRM tables and indexes (CRM schema v1)."""

    def present_tables(self) -> tuple[str, ...]:
        """The CRM tables that exist, in contract order."""
        names = {str(row[0]) for row in self._execute(self.sql.tables)}
        return tuple(table for table in EXPECTED_TABLES if table in names)

    def tables_with_rows(self) -> tuple[str, ...]:
        """The CRM tables that exist and hold at least one row."""
        return tuple(
            table
            for table in self.present_tables()
            if self._execute(self.sql.has_rows.format(table=table))[0][0]
        )

    def add_optional_tables(self) -> tuple[str, ...]:
        """Create the optional tables (v1.1's ``channel_credentials``) a v1 database lacks;
        the names created."""
        names = {str(row[0]) for row in self._execute(self.sql.tables)}
        created = []
        for table in OPTIONAL_TABLES:
            if table in names:
                continue
            for statement in optional_table_statements(self._ddl(), table):
                self._execute(statement)
            created.append(table)
        return tuple(created)

    @abstractmethod
    def _ddl(self) -> str:
        """This dialect's DDL script."""

    def insert(self, rows: CrmRows) -> None:
        """Insert every row, ids as given, tables in reference order."""
        for table, items in rows.by_table():
            if not items:
                continue
            self._execute_many(self.sql.insert[table], [self._params(row) for row in items])
            if self.sql.advance_ids is not None and "id" in ALL_TABLES[table]:
                # Explicit ids leave the id sequence behind: the CRM's next insert would
                # collide with a demo row.
                self._execute(self.sql.advance_ids.format(table=table), (table,))

    def _params(self, row: Any) -> tuple[Any, ...]:
        return tuple(self._value(getattr(row, column.name)) for column in fields(row))


def sqlite_time(moment: datetime) -> str:
    """The CRM's SQLite time: UTC ISO 8601 with microseconds and ``Z`` (text order = time)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive time {moment!r}: CRM times are UTC")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SqliteCrmRepository(CrmRepository):
    """The CRM tables in a SQLite database."""

    sql = SQLITE_SQL

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(statement, tuple(params)).fetchall()

    def _execute_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(statement, rows)

    def _value(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return sqlite_time(value)
        if isinstance(value, dict):
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if isinstance(value, Decimal):
            # sqlite3 cannot bind a Decimal; as text, NUMERIC affinity stores the number.
            return str(value)
        return value

    def create_schema(self) -> None:
        """Create the CRM tables and indexes (in the caller's transaction)."""
        create_schema_sqlite(self.conn)

    def _ddl(self) -> str:
        return sqlite_ddl()


class PostgresCrmRepository(CrmRepository):
    """The CRM tables in the current schema of a PostgreSQL connection."""

    sql = POSTGRES_SQL

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def _execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self.conn.execute(statement, tuple(params))
        return list(cursor.fetchall()) if cursor.description is not None else []

    def _execute_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(statement, rows)

    def _value(self, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError(f"naive time {value!r}: CRM times are UTC")
        if isinstance(value, dict):
            from psycopg.types.json import Jsonb

            return Jsonb(value)
        return value

    def current_schema(self) -> str | None:
        """Where unqualified names resolve: the first existing schema of ``search_path``."""
        rows = self._execute("SELECT current_schema()")
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    def create_schema(self) -> None:
        """Create the CRM tables and indexes in the current schema (caller commits)."""
        create_schema_postgres(self.conn)

    def _ddl(self) -> str:
        return postgres_ddl()
