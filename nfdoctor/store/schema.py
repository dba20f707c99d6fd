"""The CRM schema v1 (``crm-schema.md``): its DDL for both backends and the expected columns.

The CRM owns these tables; nfdoctor ships the same DDL for the demo, the simulator and the
tests, and compares a live database against :data:`EXPECTED_TABLES` before it writes.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

#: version of the CRM schema contract this module describes (crm-schema.md, "schema v1";
#: v1.1 adds the optional ``channel_credentials``)
SCHEMA_VERSION = 1

#: every CRM table nfdoctor touches → its columns, in DDL order (crm-schema.md)
EXPECTED_TABLES: dict[str, tuple[str, ...]] = {
    "shops": ("id", "channel", "external_id", "name", "created_at"),
    "customers": ("id", "display_name", "phone", "email", "created_at", "merged_into_id"),
    "customer_identities": (
        "id",
        "customer_id",
        "channel",
        "external_user_id",
        "display_name",
    ),
    "conversations": (
        "id",
        "shop_id",
        "customer_id",
        "external_thread_id",
        "status",
        "created_at",
        "last_message_at",
    ),
    "messages": (
        "id",
        "conversation_id",
        "shop_id",
        "external_id",
        "direction",
        "sender_external_id",
        "body",
        "sent_at",
        "received_at",
        "reply_to_id",
    ),
    "message_attachments": ("id", "message_id", "kind", "url"),
    "orders": (
        "id",
        "shop_id",
        "external_id",
        "customer_id",
        "platform_status",
        "status",
        "total_amount",
        "currency",
        "created_at",
        "updated_at",
        "synced_at",
        "raw",
    ),
}

#: tables of a later contract version a CRM database may lack (crm-schema.md v1.1)
OPTIONAL_TABLES: dict[str, tuple[str, ...]] = {
    "channel_credentials": (
        "shop_id",
        "access_token",
        "access_expires_at",
        "refresh_token",
        "refresh_expires_at",
        "updated_at",
        "updated_by",
        "version",
        "lease_owner",
        "lease_until",
    ),
}

#: every table the DDL creates, v1 and optional ones
ALL_TABLES: dict[str, tuple[str, ...]] = {**EXPECTED_TABLES, **OPTIONAL_TABLES}

#: the six normalised values of ``orders.status``
ORDER_STATUSES: tuple[str, ...] = (
    "pending",
    "paid",
    "shipped",
    "delivered",
    "cancelled",
    "returned",
)


@functools.cache
def channels() -> tuple[str, ...]:
    """The channels ``shops.channel`` accepts, read from the DDL's CHECK constraint."""
    return check_values("shops", "channel")


def check_values(table: str, column: str) -> tuple[str, ...]:
    """The values a ``CHECK (column IN (…))`` of ``table`` allows, in DDL order."""
    for statement in ddl_statements(sqlite_ddl()):
        if not re.match(rf"CREATE TABLE {re.escape(table)}\b", statement):
            continue
        found = re.search(rf"CHECK \(\s*{re.escape(column)} IN \(([^)]*)\)\s*\)", statement)
        if found is None:
            break
        return tuple(re.findall(r"'([^']*)'", found.group(1)))
    raise ValueError(f"the CRM DDL has no CHECK ({column} IN (…)) on {table}")


@functools.cache
def sqlite_ddl() -> str:
    """The SQLite DDL of the CRM schema (``schema_sqlite.sql``)."""
    return _read_sql("schema_sqlite.sql")


@functools.cache
def postgres_ddl() -> str:
    """The PostgreSQL DDL of the CRM schema (``schema_postgres.sql``)."""
    return _read_sql("schema_postgres.sql")


def ddl_statements(ddl: str) -> list[str]:
    """Split a DDL script into complete statements (comment lines dropped)."""
    statements: list[str] = []
    pending = ""
    for line in ddl.splitlines():
        if line.lstrip().startswith("--"):
            continue
        pending += line + "\n"
        # complete_statement knows about quotes, so a ';' inside a literal does not split.
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement at the end of the DDL: {pending.strip()!r}")
    return statements


def create_schema_sqlite(conn: sqlite3.Connection) -> None:
    """Create the CRM tables and indexes on a SQLite connection (caller commits)."""
    # Statement by statement rather than executescript(): executescript() commits whatever
    # transaction the caller had open, which would break "one transaction" callers.
    for statement in ddl_statements(sqlite_ddl()):
        conn.execute(statement)


def create_schema_postgres(conn: psycopg.Connection[Any]) -> None:
    """Create the CRM tables and indexes in the connection's current schema (caller commits)."""
    for statement in ddl_statements(postgres_ddl()):
        conn.execute(statement)


def optional_table_statements(ddl: str, table: str) -> list[str]:
    """The DDL statements that create the optional ``table`` (and its indexes)."""
    return [
        statement
        for statement in ddl_statements(ddl)
        if re.match(rf"CREATE (TABLE|INDEX \w+ ON) {re.escape(table)}\b", statement)
    ]


def _read_sql(name: str) -> str:
    return resources.files("nfdoctor.store").joinpath(name).read_text(encoding="utf-8")
