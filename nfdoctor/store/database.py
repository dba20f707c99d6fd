"""Database URLs, connections and the read-only probe of the CRM database.

SQLite is built in; PostgreSQL needs the optional ``psycopg`` extra, imported only when a
PostgreSQL URL is actually used. Every failure becomes one of nfdoctor's exceptions::

    DatabaseError                 anything else (corrupt file, hot journal, query timeout)
    ├── DatabaseUnreachableError  missing file, permission denied, refused, DNS, auth
    ├── DatabaseLockedError       another writer held the lock past the busy timeout
    └── NotADatabaseError         the file exists but is not SQLite

No message, ``repr`` or ``str`` produced here contains a PostgreSQL password.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

from nfdoctor.errors import (
    DatabaseError,
    DatabaseLockedError,
    DatabaseUnreachableError,
    NotADatabaseError,
)
from nfdoctor.fsutil import FileRefusedError, expand_user, os_reason, regular_file_size_unopened
from nfdoctor.store.schema import EXPECTED_TABLES

if TYPE_CHECKING:
    import psycopg

Backend = Literal["sqlite", "postgresql"]
IntegrityCheck = Literal["integrity_check", "quick_check"]

MASK = "***"
URL_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db "
    "or postgresql://user@host:5432/dbname (password in database.password)"
)
#: above this size a full integrity_check can take minutes; quick_check skips index checks
QUICK_CHECK_ABOVE_BYTES = 1 << 30
#: how many lines of integrity_check output a probe keeps
INTEGRITY_MAX_LINES = 10
_PG_INSTALL_HINT = "PostgreSQL support is not installed: pip install 'nfdoctor[postgres]'"

# SQLite primary result codes (extended code & 0xFF) and the extended ones we name.
_SQLITE_PERM = 3
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_CANTOPEN = 14
_SQLITE_AUTH = 23
_SQLITE_NOTADB = 26
_SQLITE_READONLY_RECOVERY = 264
_SQLITE_READONLY_ROLLBACK = 776
# Python 3.10 has no sqlite_errorcode on exceptions: fall back to SQLite's fixed messages.
_SQLITE_MESSAGE_CODES = (
    ("database is locked", _SQLITE_BUSY),
    ("database table is locked", _SQLITE_LOCKED),
    ("file is not a database", _SQLITE_NOTADB),
    ("database disk image is malformed", _SQLITE_CORRUPT),
    ("unable to open database file", _SQLITE_CANTOPEN),
    ("attempt to write a readonly database", _SQLITE_READONLY),
    ("disk i/o error", _SQLITE_IOERR),
)


@dataclass(frozen=True, repr=False)
class DatabaseUrl:
    """A parsed database URL: a SQLite file path or a PostgreSQL connection string."""

    backend: Backend
    path: Path | None = None
    dsn: str | None = None
    #: PostgreSQL password given apart from the URL (config ``database.password``); never shown
    password: str | None = None

    def with_password(self, password: str) -> DatabaseUrl:
        """A copy that connects with ``password``, overriding any in the URL (SQLite: unchanged)."""
        if self.backend == "sqlite":
            return self
        return dataclasses.replace(self, password=password)

    def redacted(self) -> str:
        """The URL with any password replaced by ``***``, safe to print and log."""
        if self.backend == "sqlite":
            return f"sqlite:///{self.path}"
        return redact_url(self.dsn or "")

    @property
    def location(self) -> str:
        """Where the database is, for messages: the file path, or PostgreSQL ``host:port``."""
        if self.backend == "sqlite":
            return str(self.path)
        return _pg_target(self.dsn or "")

    def __repr__(self) -> str:
        return f"DatabaseUrl({self.redacted()!r})"

    def __str__(self) -> str:
        return self.redacted()


@dataclass(frozen=True, kw_only=True)
class DatabaseProbe:
    """What a read-only look at the CRM database found."""

    backend: Backend
    #: the file path, or the PostgreSQL URL with its password masked
    location: str
    #: the SQLite file; None on PostgreSQL
    path: Path | None
    #: SQLite library version, or PostgreSQL's ``SHOW server_version``
    server_version: str
    #: seconds to connect and run one trivial query
    latency_s: float
    missing_tables: tuple[str, ...]
    #: ``table.column`` for columns missing from tables that exist
    missing_columns: tuple[str, ...]
    #: "ok", or the first lines the check reported; None if not run (or on PostgreSQL)
    integrity: str | None
    #: which SQLite pragma produced ``integrity`` (quick_check on files above 1 GiB)
    integrity_check: IntegrityCheck | None
    #: PostgreSQL: the schema the CRM tables were looked up in (first of search_path)
    schema_name: str | None = None
    #: SQLite: the file's size in bytes
    size_bytes: int | None = None

    @property
    def schema_ok(self) -> bool:
        """True when every expected table and column is present."""
        return not self.missing_tables and not self.missing_columns


def parse_database_url(url: str, base_dir: Path | None = None) -> DatabaseUrl:
    """Parse ``sqlite:///…`` or ``postgresql://…``; a relative SQLite path is under ``base_dir``.

    Raises ValueError (one line, password masked) naming the accepted forms.
    """
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if sep and scheme == "sqlite":
        return DatabaseUrl("sqlite", path=_sqlite_path(text, rest, base_dir))
    if sep and scheme in ("postgresql", "postgres"):
        if any(ch.isspace() for ch in text):
            raise ValueError(f"database URL {redact_url(text)!r} contains whitespace")
        for port in _pg_ports(text):
            # libpq refuses other malformed ports itself; a number out of range it would
            # only find at connect time, long after `config validate` said "valid".
            if port.isdigit() and not 1 <= int(port) <= 65535:
                raise ValueError(
                    f"database URL {redact_url(text)!r}: port {port} is not from 1 to 65535"
                )
        return DatabaseUrl("postgresql", dsn=text)
    if not text:
        raise ValueError(f"the database URL is empty: use {URL_FORMS}")
    raise ValueError(f"unsupported database URL {redact_url(text)!r}: use {URL_FORMS}")


def _sqlite_path(text: str, rest: str, base_dir: Path | None) -> Path:
    # "sqlite:///x.db" → rest "/x.db" → "x.db"; "sqlite:////abs.db" → "/abs.db". A host part
    # ("sqlite://host/x.db") means nothing for a local file, so it is refused.
    if not rest.startswith("/"):
        raise ValueError(f"sqlite URL {text!r} needs three slashes: use {URL_FORMS}")
    raw = rest[1:]
    if not raw:
        raise ValueError(f"sqlite URL {text!r} names no file: use {URL_FORMS}")
    if raw == ":memory:":
        raise ValueError("an in-memory sqlite database holds no CRM data: name a file")
    if "?" in raw:
        raise ValueError(
            f"sqlite URL {text!r} has query parameters, which nfdoctor does not use:"
            " name only the file"
        )
    path = expand_user(raw)  # ValueError for an unknown ~user
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    # "examples/../demo/crm.db" reads badly in reports; fold the dots (lexically: a symlinked
    # database path stays as the operator wrote it).
    return Path(os.path.normpath(path))


def redact_url(text: str) -> str:
    """``text`` with URL passwords and ``password=`` values replaced by ``***``."""
    scheme, sep, rest = text.partition("://")
    if sep:
        # The last '@' ends the user info: a raw '@' in a password is common in hand-written
        # URLs. Masking from the first ':' up to it may over-mask an odd URL, never under-mask.
        at = rest.rfind("@")
        if at >= 0:
            user, colon, _password = rest[:at].partition(":")
            if colon:
                rest = f"{user}:{MASK}{rest[at:]}"
        text = f"{scheme}{sep}{rest}"
    return _PASSWORD_PARAM.sub(lambda m: m.group("key") + MASK, text)


def split_password(dsn: str) -> tuple[str, str | None]:
    """A PostgreSQL URL without its password, and the password (percent-decoded), if any.

    Both places are looked at: the user info (``user:PASSWORD@``) and a ``password=`` query
    parameter, which libpq lets override the former. The URL keeps everything else as given.
    """
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        return dsn, None
    password: str | None = None
    # The last '@' before the query ends the user info (a raw '@' in a password is common).
    query_at = rest.find("?")
    at = rest.rfind("@", 0, query_at if query_at >= 0 else len(rest))
    if at >= 0:
        user, colon, secret = rest[:at].partition(":")
        if colon:
            password = unquote(secret)
            rest = f"{user}{rest[at:]}"
    base, question, query = rest.partition("?")
    if question:
        kept = []
        for item in query.split("&"):
            key, _eq, value = item.partition("=")
            if key.strip().lower() == "password":
                password = unquote(value)
            elif item:
                kept.append(item)
        rest = f"{base}?{'&'.join(kept)}" if kept else base
    return f"{scheme}{sep}{rest}", password or None


_PASSWORD_PARAM = re.compile(
    r"(?P<key>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^&\s#]*)", re.IGNORECASE
)


def probe_database(
    url: DatabaseUrl, *, timeout_s: float = 5.0, integrity: bool = True
) -> DatabaseProbe:
    """Open the database read-only, time a trivial query and compare its schema to the contract.

    Never writes to the database. ``timeout_s`` bounds connecting (and, on SQLite, waiting
    for a lock; on PostgreSQL, each statement).
    """
    if url.backend == "sqlite":
        if url.path is None:
            raise ValueError("a sqlite DatabaseUrl needs a path")
        return _probe_sqlite(url.path, timeout_s=timeout_s, integrity=integrity)
    return _probe_postgres(url, timeout_s=timeout_s)


# --- SQLite -------------------------------------------------------------------------------


def connect_sqlite_rw(
    path: Path, *, timeout_s: float, foreign_keys: bool = True, any_thread: bool = False
) -> sqlite3.Connection:
    """Open an existing SQLite file read-write (never creates it), in autocommit mode.

    Callers run ``BEGIN IMMEDIATE`` … ``COMMIT`` themselves, so a repair is one transaction
    that takes the write lock up front instead of failing half-way on a busy database.
    """
    _check_sqlite_file(path)
    if not os.access(path, os.W_OK):
        raise DatabaseUnreachableError(f"{path} is not writable by this user")
    conn = _open_sqlite(path, mode="rw", timeout_s=timeout_s, any_thread=any_thread)
    try:
        _read_header(conn, path, timeout_s)
        if foreign_keys:
            # Off by default in SQLite; on, a repair that deletes a row still referenced by a
            # reply or an attachment fails instead of leaving a dangling id behind.
            conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _probe_sqlite(path: Path, *, timeout_s: float, integrity: bool) -> DatabaseProbe:
    size = _check_sqlite_file(path)
    started = time.perf_counter()
    conn = _open_sqlite(path, mode="ro", timeout_s=timeout_s)
    try:
        # "SELECT 1" never touches the file in SQLite; reading the schema cookie does, so
        # the latency includes taking the shared lock, and NOTADB/BUSY surface right here.
        _read_header(conn, path, timeout_s)
        latency = time.perf_counter() - started
        columns = {
            table: _sqlite_columns(conn, table, path, timeout_s) for table in EXPECTED_TABLES
        }
        check: IntegrityCheck | None = None
        verdict: str | None = None
        if integrity:
            check = "quick_check" if size > QUICK_CHECK_ABOVE_BYTES else "integrity_check"
            verdict = _sqlite_integrity(conn, check, path, timeout_s)
    finally:
        conn.close()
    missing_tables, missing_columns = _compare_schema(columns)
    return DatabaseProbe(
        backend="sqlite",
        location=str(path),
        path=path,
        server_version=sqlite3.sqlite_version,
        latency_s=latency,
        missing_tables=missing_tables,
        missing_columns=missing_columns,
        integrity=verdict,
        integrity_check=check,
        size_bytes=size,
    )


def _check_sqlite_file(path: Path) -> int:
    """Classify a missing, unreadable or odd file before SQLite turns it into CANTOPEN (or,
    for a FIFO, blocks forever opening it)."""
    try:
        # Never open it here: closing that descriptor would drop the locks of this
        # process's SQLite connections to the same file (see regular_file_size_unopened).
        return regular_file_size_unopened(path)
    except FileRefusedError as exc:
        raise DatabaseUnreachableError(f"{path} {exc.reason}; expected a database file") from None
    except FileNotFoundError:
        raise DatabaseUnreachableError(f"database file not found: {path}") from None
    except PermissionError:
        raise DatabaseUnreachableError(f"permission denied reading {path}") from None
    except OSError as exc:
        raise DatabaseUnreachableError(f"cannot read {path}: {os_reason(exc)}") from None


def _open_sqlite(
    path: Path, *, mode: str, timeout_s: float, any_thread: bool = False
) -> sqlite3.Connection:
    # A URI with mode=ro/rw: plain sqlite3.connect() would create a missing file. as_uri()
    # percent-encodes the path, so '?', '#' or '%' in a file name cannot become URI syntax.
    uri = f"{path.absolute().as_uri()}?mode={mode}"
    try:
        return sqlite3.connect(
            uri,
            uri=True,
            timeout=timeout_s,
            isolation_level=None,
            check_same_thread=not any_thread,
        )
    except sqlite3.Error as exc:
        raise sqlite_failure(exc, path, timeout_s) from exc


def _read_header(conn: sqlite3.Connection, path: Path, timeout_s: float) -> None:
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as exc:
        raise sqlite_failure(exc, path, timeout_s) from exc


def _sqlite_columns(conn: sqlite3.Connection, table: str, path: Path, timeout_s: float) -> set[str]:
    try:
        # table comes from EXPECTED_TABLES, never from input; PRAGMA takes no parameters.
        rows = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    except sqlite3.Error as exc:
        raise sqlite_failure(exc, path, timeout_s) from exc
    return {str(row[1]) for row in rows}


def _sqlite_integrity(
    conn: sqlite3.Connection, check: IntegrityCheck, path: Path, timeout_s: float
) -> str:
    try:
        rows = conn.execute(f"PRAGMA {check}({INTEGRITY_MAX_LINES})").fetchall()
    except sqlite3.Error as exc:
        if _sqlite_code(exc) in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            # Damage bad enough to stop the check is still an answer about integrity.
            return str(exc)
        raise sqlite_failure(exc, path, timeout_s) from exc
    lines = [str(row[0]) for row in rows]
    if lines == ["ok"]:
        return "ok"
    # A row can hold several lines ("*** in database main ***\nOn tree page …").
    return "\n".join("\n".join(lines).splitlines()[:INTEGRITY_MAX_LINES])


def _sqlite_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code
    message = str(exc).lower()
    for text, fallback in _SQLITE_MESSAGE_CODES:
        if text in message:
            return fallback
    return None


def sqlite_failure(exc: sqlite3.Error, path: Path, timeout_s: float) -> DatabaseError:
    code = _sqlite_code(exc)
    primary = None if code is None else code & 0xFF
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return DatabaseLockedError(f"{path} is locked by another process (waited {timeout_s:g} s)")
    if primary == _SQLITE_NOTADB:
        return NotADatabaseError(f"{path} is not a SQLite database (file is not a database)")
    if primary == _SQLITE_CORRUPT:
        return DatabaseError(f"{path} is corrupt ({exc})")
    if code in (_SQLITE_READONLY_ROLLBACK, _SQLITE_READONLY_RECOVERY):
        return DatabaseError(
            f"{path} was left mid-write by a crashed process (hot journal or WAL needing "
            "recovery); a read-only open cannot recover it: let the CRM open it once first"
        )
    if primary == _SQLITE_READONLY:
        return DatabaseUnreachableError(f"{path} is read-only ({exc})")
    if primary in (_SQLITE_PERM, _SQLITE_AUTH):
        return DatabaseUnreachableError(f"permission denied opening {path} ({exc})")
    if primary == _SQLITE_CANTOPEN:
        if not path.exists():
            return DatabaseUnreachableError(f"database file not found: {path}")
        return DatabaseUnreachableError(f"cannot open {path} ({exc})")
    if primary == _SQLITE_IOERR:
        name = getattr(exc, "sqlite_errorname", None) or "SQLITE_IOERR"
        return DatabaseUnreachableError(f"I/O error on {path} ({exc}, {name})")
    name = getattr(exc, "sqlite_errorname", None)
    return DatabaseError(f"{path}: {exc}" + (f" ({name})" if name else ""))


# --- PostgreSQL ---------------------------------------------------------------------------


def connect_postgres(
    url: DatabaseUrl,
    *,
    timeout_s: float,
    autocommit: bool = False,
    read_only: bool = False,
    statement_timeout_s: float | None = None,
) -> psycopg.Connection[tuple[Any, ...]]:
    """Connect to the CRM's PostgreSQL; failures raise DatabaseError, never showing the password.

    ``timeout_s`` bounds connecting (libpq's ``connect_timeout``, whole seconds, at least 1);
    ``statement_timeout_s`` and ``read_only`` are set for the whole session.
    """
    try:
        import psycopg
    except ImportError:
        raise DatabaseError(_PG_INSTALL_HINT) from None
    dsn = _require_dsn(url)
    secrets = _url_secrets(url)
    try:
        # fallback_application_name: shows as "nfdoctor" in pg_stat_activity (who holds that
        # lock?) unless the URL names its own application_name.
        conn = psycopg.connect(
            dsn,
            connect_timeout=max(1, math.ceil(timeout_s)),
            fallback_application_name="nfdoctor",
            autocommit=autocommit,
            password=url.password,  # None keeps the URL's own, or .pgpass / PGPASSWORD
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnreachableError(
            f"cannot connect to PostgreSQL at {_pg_target(dsn)}: {_scrub(exc, secrets)}"
        ) from None  # the driver's exception may quote the connection string
    except psycopg.Error as exc:
        raise DatabaseError(
            f"invalid PostgreSQL URL {redact_url(dsn)}: {_scrub(exc, secrets)}",
            next_command="nfdoctor config validate",
        ) from None
    try:
        settings: list[tuple[str, str]] = []
        if statement_timeout_s is not None:
            milliseconds = max(1, math.ceil(statement_timeout_s * 1000))
            settings.append(("statement_timeout", str(milliseconds)))
        if read_only:
            # A session default rather than conn.read_only: it also holds in autocommit mode.
            settings.append(("default_transaction_read_only", "on"))
        for name, value in settings:
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        if settings and not autocommit:
            conn.commit()  # a rolled-back SET would be undone
    except psycopg.Error as exc:
        conn.close()
        raise _pg_failure(exc, dsn, secrets, timeout_s) from None
    return conn


def _probe_postgres(url: DatabaseUrl, *, timeout_s: float) -> DatabaseProbe:
    try:
        import psycopg  # before the clock starts: the first import alone takes ~100 ms
    except ImportError:
        raise DatabaseError(_PG_INSTALL_HINT) from None
    dsn = _require_dsn(url)
    started = time.perf_counter()
    conn = connect_postgres(
        url,
        timeout_s=timeout_s,
        autocommit=True,
        read_only=True,
        statement_timeout_s=timeout_s,
    )
    try:
        conn.execute("SELECT 1").fetchone()
        latency = time.perf_counter() - started
        version_row = conn.execute("SHOW server_version").fetchone()
        schema_row = conn.execute("SELECT current_schema()").fetchone()
        # current_schema() is the first existing schema of search_path: where the CRM's
        # unqualified table names resolve. NULL (no such schema) means nothing is there.
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema()"
        ).fetchall()
    except psycopg.Error as exc:
        raise _pg_failure(exc, dsn, _url_secrets(url), timeout_s) from None
    finally:
        conn.close()
    columns: dict[str, set[str]] = {table: set() for table in EXPECTED_TABLES}
    for table, column in rows:
        if table in columns:
            columns[str(table)].add(str(column))
    missing_tables, missing_columns = _compare_schema(columns)
    return DatabaseProbe(
        backend="postgresql",
        location=redact_url(dsn),
        path=None,
        server_version=str(version_row[0]) if version_row else "unknown",
        latency_s=latency,
        missing_tables=missing_tables,
        missing_columns=missing_columns,
        integrity=None,
        integrity_check=None,
        schema_name=str(schema_row[0]) if schema_row and schema_row[0] is not None else None,
    )


def postgres_error(exc: Exception, url: DatabaseUrl, timeout_s: float) -> DatabaseError:
    """A psycopg error as nfdoctor's DatabaseError (one line, every password masked)."""
    return _pg_failure(exc, _require_dsn(url), _url_secrets(url), timeout_s)


def _pg_failure(exc: Exception, dsn: str, secrets: set[str], timeout_s: float) -> DatabaseError:
    import psycopg

    target = _pg_target(dsn)
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return DatabaseError(
            f"PostgreSQL at {target} did not answer within {timeout_s:g} s (statement timeout)"
        )
    if isinstance(exc, psycopg.OperationalError):
        return DatabaseUnreachableError(
            f"lost the connection to PostgreSQL at {target}: {_scrub(exc, secrets)}"
        )
    return DatabaseError(f"querying PostgreSQL at {target} failed: {_scrub(exc, secrets)}")


def _require_dsn(url: DatabaseUrl) -> str:
    if url.backend != "postgresql" or not url.dsn:
        raise ValueError(f"not a PostgreSQL URL: {url.redacted()}")
    return url.dsn


def _scrub(exc: BaseException, secrets: set[str]) -> str:
    """The first line of a driver message with every password in it masked."""
    lines = str(exc).strip().splitlines()
    message = lines[0].strip() if lines else type(exc).__name__
    # libpq echoes fragments of a connection string it cannot parse; mask by value too.
    for secret in sorted(secrets, key=len, reverse=True):
        message = message.replace(secret, MASK)
    return redact_url(message)


def _url_secrets(url: DatabaseUrl) -> set[str]:
    found = _dsn_passwords(url.dsn or "")
    if url.password:
        found.add(url.password)
    return found


def _dsn_passwords(dsn: str) -> set[str]:
    found: set[str] = set()
    _scheme, _sep, rest = dsn.partition("://")
    at = rest.rfind("@")
    if at >= 0:
        _user, colon, password = rest[:at].partition(":")
        if colon:
            found.add(password)
    for match in re.finditer(r"\bpassword\s*=\s*([^&\s#]*)", rest, re.IGNORECASE):
        found.add(match.group(1))
    found |= {unquote(value) for value in found}
    found.discard("")
    return found


def _pg_ports(dsn: str) -> list[str]:
    """Every port a PostgreSQL URL names, in its hosts and in ``port=``, as written."""
    _scheme, _sep, rest = dsn.partition("://")
    at = rest.rfind("@")
    hostspec = re.split(r"[/?#]", rest[at + 1 :], maxsplit=1)[0]
    ports = []
    for item in unquote(hostspec).split(",") if hostspec else []:
        match = re.fullmatch(r"(\[[^\]]*\]|[^:]*)(?::(.*))?", item)
        if match and match.group(2) is not None:
            ports.append(match.group(2))
    query = rest.partition("?")[2]
    for key, _eq, value in (item.partition("=") for item in query.split("&") if item):
        if key.lower() == "port":
            ports += unquote(value).split(",")
    return ports


def _pg_target(dsn: str) -> str:
    """``host:port`` of a PostgreSQL URL, for messages (libpq's defaults where absent)."""
    _scheme, _sep, rest = dsn.partition("://")
    at = rest.rfind("@")
    hostspec = re.split(r"[/?#]", rest[at + 1 :], maxsplit=1)[0]
    query = rest.partition("?")[2]
    params = {
        key.lower(): unquote(value)
        for key, _eq, value in (item.partition("=") for item in query.split("&") if item)
    }
    default_host = params.get("host", "local socket")
    default_port = params.get("port", "5432")
    targets = []
    # libpq accepts several hosts ("h1:5432,h2:5433") and tries them in order.
    for item in unquote(hostspec).split(",") if hostspec else [""]:
        match = re.fullmatch(r"(\[[^\]]*\]|[^:]*)(?::(.*))?", item)
        host, port = (match.group(1), match.group(2)) if match else (item, None)
        targets.append(f"{host or default_host}:{port or default_port}")
    return ",".join(targets)


def _compare_schema(
    columns: dict[str, set[str]],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    missing_tables: list[str] = []
    missing_columns: list[str] = []
    for table, expected in EXPECTED_TABLES.items():
        present = columns.get(table, set())
        if not present:
            missing_tables.append(table)
            continue
        missing_columns.extend(f"{table}.{column}" for column in expected if column not in present)
    return tuple(missing_tables), tuple(missing_columns)
