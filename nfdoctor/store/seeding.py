"""Writing a whole set of CRM rows into a database of its own (the demo CRM, for now).

Two kinds of target, each checked before any work and then written in one transaction:

- a SQLite file that does not exist yet (or that may be replaced), built under a temporary
  name next to it and renamed into place at the end, so a half-built file never appears;
- the current schema of a PostgreSQL database that holds no CRM data: the CRM tables are
  created there when absent; a schema that already has CRM rows is refused rather than
  mixed with them, and so is one with only some of the tables.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from pathlib import Path

from nfdoctor.errors import UsageError, WriteTargetError
from nfdoctor.fsutil import check_write_target, expand_user
from nfdoctor.store.database import (
    DatabaseUrl,
    connect_postgres,
    parse_database_url,
    postgres_error,
)
from nfdoctor.store.repository import CrmRows, PostgresCrmRepository, SqliteCrmRepository
from nfdoctor.store.schema import EXPECTED_TABLES

__all__ = ["check_seed_target", "database_target", "seed_database"]


def database_target(text: str) -> DatabaseUrl:
    """``sqlite:///path``, ``postgresql://…`` or a plain path (a SQLite file); ValueError if
    none of these (one line, password masked)."""
    if "://" in text:
        return parse_database_url(text)
    if not text.strip():
        raise ValueError("the database path is empty")
    return DatabaseUrl("sqlite", path=expand_user(text))


def check_seed_target(
    url: DatabaseUrl, *, option: str | None = None, overwrite: bool = False, timeout_s: float = 5.0
) -> None:
    """Refuse, before any work, a target :func:`seed_database` would not write.

    SQLite: a path that is not a regular file, whose directory is missing or read-only, or
    that exists (unless ``overwrite``). PostgreSQL: a server that cannot be reached, or a
    current schema holding CRM data. Refusals are UsageError (prefixed with ``option``);
    connection failures DatabaseError.
    """
    if url.backend == "sqlite":
        _check_sqlite(_sqlite_path(url), option, overwrite)
        return
    conn = connect_postgres(url, timeout_s=timeout_s)  # a clear error without psycopg
    import psycopg

    try:
        _tables_to_create(PostgresCrmRepository(conn), url, option)
    except psycopg.Error as exc:
        raise postgres_error(exc, url, timeout_s) from None
    finally:
        conn.close()


def seed_database(
    url: DatabaseUrl,
    rows: CrmRows,
    *,
    option: str | None = None,
    overwrite: bool = False,
    timeout_s: float = 5.0,
) -> None:
    """Write ``rows`` (ids as given) into a new SQLite file or an empty PostgreSQL schema.

    Checks the target again (see :func:`check_seed_target`) inside the transaction that
    writes, so nothing is written where it was refused.
    """
    if url.backend == "sqlite":
        path = _sqlite_path(url)
        _check_sqlite(path, option, overwrite)
        _write_sqlite(path, rows, overwrite=overwrite)
        return
    conn = connect_postgres(url, timeout_s=timeout_s)
    import psycopg

    try:
        repository = PostgresCrmRepository(conn)
        if _tables_to_create(repository, url, option):
            repository.create_schema()
        else:
            # An empty v1 CRM: add v1.1's channel_credentials for the demo's pairs.
            repository.add_optional_tables()
        repository.insert(rows)
        conn.commit()
    except psycopg.Error as exc:
        raise postgres_error(exc, url, timeout_s) from None
    finally:
        conn.close()  # without a commit: the transaction is rolled back


def _prefix(option: str | None) -> str:
    return f"{option}: " if option else ""


def _sqlite_path(url: DatabaseUrl) -> Path:
    if url.path is None:
        raise ValueError("a sqlite DatabaseUrl needs a path")
    return url.path


def _check_sqlite(path: Path, option: str | None, overwrite: bool) -> None:
    try:
        check_write_target(path)
    except WriteTargetError as exc:
        raise UsageError(f"{_prefix(option)}{exc.reason}") from None
    if path.exists() and not overwrite:
        raise UsageError(f"{_prefix(option)}{path} already exists; refusing to overwrite it")


def _tables_to_create(
    repository: PostgresCrmRepository, url: DatabaseUrl, option: str | None
) -> bool:
    """Whether the CRM tables must be created; UsageError if the schema is not a place for
    demo rows (no schema, CRM rows in it, or only some of the CRM tables)."""
    where = f"{_prefix(option)}{url.redacted()}"
    schema = repository.current_schema()
    if schema is None:
        raise UsageError(
            f"{where}: no schema of its search_path exists, so there is nowhere to create "
            "the CRM tables; create the schema first or name another one"
        )
    full = repository.tables_with_rows()
    if full:
        tables = ", ".join(full[:2]) + (" …" if len(full) > 2 else "")
        raise UsageError(
            f"{where}: schema {schema} already holds CRM data (rows in {tables}); "
            "refusing to mix demo rows into it: name an empty database or schema"
        )
    present = repository.present_tables()
    if present and len(present) < len(EXPECTED_TABLES):
        missing = [table for table in EXPECTED_TABLES if table not in present]
        raise UsageError(
            f"{where}: schema {schema} has some CRM tables but not {', '.join(missing)}; "
            "refusing to guess what it is: name an empty database or schema"
        )
    return not present


def _write_sqlite(path: Path, rows: CrmRows, *, overwrite: bool) -> None:
    # Built under a temporary name next to the target and renamed at the end, so a crash or
    # Ctrl-C never leaves a half-built file where the database is expected.
    tmp = _create_temp_beside(path)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("BEGIN")
            repository = SqliteCrmRepository(conn)
            repository.create_schema()
            repository.insert(rows)
            conn.execute("COMMIT")
        finally:
            conn.close()
        _move_into_place(tmp, path, overwrite=overwrite)
    finally:
        for leftover in (tmp, Path(f"{tmp}-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _create_temp_beside(path: Path) -> Path:
    # Not tempfile.mkstemp(): its 0600 would survive the rename, and CRM demo data is no
    # secret; mode 0666 lets the umask decide, as for any file the user creates.
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise UsageError(f"cannot create {path}: {exc.strerror or exc}") from None
        os.close(fd)
        return tmp


def _move_into_place(tmp: Path, path: Path, *, overwrite: bool) -> None:
    if overwrite:
        # A -wal or -journal left by the old file would be replayed into the new one.
        for suffix in ("-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{path}{suffix}").unlink()
        os.replace(tmp, path)
        return
    try:
        # link() fails if the target appeared meanwhile: no check-then-rename race.
        os.link(tmp, path)
    except FileExistsError:
        raise UsageError(f"{path} already exists; refusing to overwrite it") from None
    except OSError:
        # Some filesystems (FAT, some network mounts) have no hard links.
        if path.exists():
            raise UsageError(f"{path} already exists; refusing to overwrite it") from None
        os.replace(tmp, path)
