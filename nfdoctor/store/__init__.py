"""The CRM database: URLs, read-only probing, connections, the schema contract, and the data
layer every statement on CRM tables goes through (``repository``, ``seeding``)."""

from __future__ import annotations

from nfdoctor.store.database import (
    DatabaseProbe,
    DatabaseUrl,
    connect_postgres,
    connect_sqlite_rw,
    parse_database_url,
    probe_database,
    redact_url,
)
from nfdoctor.store.schema import (
    ALL_TABLES,
    EXPECTED_TABLES,
    OPTIONAL_TABLES,
    SCHEMA_VERSION,
    channels,
    create_schema_postgres,
    create_schema_sqlite,
)

__all__ = [
    "ALL_TABLES",
    "EXPECTED_TABLES",
    "OPTIONAL_TABLES",
    "SCHEMA_VERSION",
    "DatabaseProbe",
    "DatabaseUrl",
    "channels",
    "connect_postgres",
    "connect_sqlite_rw",
    "create_schema_postgres",
    "create_schema_sqlite",
    "parse_database_url",
    "probe_database",
    "redact_url",
]
