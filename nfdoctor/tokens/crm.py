"""The CRM's own tokens as a token store: ``channel_credentials`` (crm-schema.md v1.1).

The CRM sends these tokens to the platforms. Shopee's and Zalo's refresh tokens are single
use, so nfdoctor must refresh *these* (not a copy) and follow the CRM's refresh protocol,
or one refresher spends the other's token:

1. take the lease: ``UPDATE … SET lease_owner = :me, lease_until = :now + :lease WHERE
   shop_id = :shop AND (lease_owner IS NULL OR lease_until < :now)`` — one row: it is yours;
2. re-read the row, and refresh only if still due;
3. call the platform's refresh endpoint;
4. write the new pair with ``version = version + 1`` ``WHERE version = :read AND lease_owner
   = :me``, clearing the lease — one row: saved;
5. on failure, release the lease without touching the tokens.

The lease lives in the shared database, so nfdoctor on two hosts, or nfdoctor and the CRM's
own refresh job, never refresh one shop at once. Each operation opens its own short
connection: a lease is a row, not a session, and outlives nothing but its ``lease_until``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone
from typing import Any

from nfdoctor.errors import DatabaseError, LeaseBusyError, StateError, VersionConflictError
from nfdoctor.store.database import DatabaseUrl, connect_postgres, connect_sqlite_rw, postgres_error
from nfdoctor.store.repository import sqlite_time
from nfdoctor.store.schema import OPTIONAL_TABLES
from nfdoctor.tokens.owners import dead_here
from nfdoctor.tokens.store import StoredToken, check_account

__all__ = ["CREDENTIALS_TABLE", "CrmTokenStore", "has_credentials_table"]

CREDENTIALS_TABLE = "channel_credentials"
_COLUMNS = OPTIONAL_TABLES[CREDENTIALS_TABLE]
#: how often a waiting refresher looks at a lease again
_POLL_S = 0.2

_SELECT = (
    "SELECT c.shop_id, c.access_token, c.access_expires_at, c.refresh_token, "
    "c.refresh_expires_at, c.updated_at, c.updated_by, c.version, c.lease_owner, c.lease_until "
    "FROM channel_credentials c JOIN shops s ON s.id = c.shop_id "
    "WHERE s.channel = {p} AND s.external_id = {p}"
)
_SHOP = "SELECT id FROM shops WHERE channel = {p} AND external_id = {p}"
_TAKE = (
    "UPDATE channel_credentials SET lease_owner = {p}, lease_until = {p} WHERE shop_id = {p} "
    "AND (lease_owner IS NULL OR lease_until IS NULL OR lease_until < {p} OR lease_owner = {p})"
)
_RELEASE = (
    "UPDATE channel_credentials SET lease_owner = NULL, lease_until = NULL "
    "WHERE shop_id = {p} AND lease_owner = {p}"
)
_SAVE = (
    "UPDATE channel_credentials SET access_token = {p}, access_expires_at = {p}, "
    "refresh_token = {p}, refresh_expires_at = {p}, updated_at = {p}, updated_by = {p}, "
    "version = version + 1, lease_owner = NULL, lease_until = NULL "
    "WHERE shop_id = {p} AND version = {p} AND (lease_owner IS NULL OR lease_owner = {p})"
)
_PUT = (
    "UPDATE channel_credentials SET access_token = {p}, access_expires_at = {p}, "
    "refresh_token = {p}, refresh_expires_at = {p}, updated_at = {p}, updated_by = {p}, "
    "version = version + 1 WHERE shop_id = {p}"
)
_INSERT = (
    "INSERT INTO channel_credentials (shop_id, access_token, access_expires_at, refresh_token, "
    "refresh_expires_at, updated_at, updated_by, version) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, "
    "{p}, 1)"
)


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = str(value).strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise StateError(f"channel_credentials: {value!r} is not an ISO 8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def has_credentials_table(url: DatabaseUrl, *, timeout_s: float = 5.0) -> bool:
    """Whether the CRM database has ``channel_credentials`` (v1.1). A database that cannot
    be reached counts as having it: its tokens are there, and reading them says why not."""
    try:
        if url.backend == "sqlite":
            assert url.path is not None
            conn = sqlite3.connect(
                f"{url.path.absolute().as_uri()}?mode=ro", uri=True, timeout=timeout_s
            )
            try:
                row = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                    (CREDENTIALS_TABLE,),
                ).fetchone()
            finally:
                conn.close()
            return row is not None
        pg = connect_postgres(url, timeout_s=timeout_s, read_only=True)
        try:
            found = pg.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
                "AND table_name = %s",
                (CREDENTIALS_TABLE,),
            ).fetchone()
        finally:
            pg.close()
        return found is not None
    except (sqlite3.Error, DatabaseError):
        return True


class CrmTokenStore:
    """Tokens in the CRM database's ``channel_credentials``, leased as the CRM leases them."""

    kind = "crm"

    def __init__(
        self,
        url: DatabaseUrl,
        *,
        timeout_s: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._checked = False

    def __repr__(self) -> str:
        return f"CrmTokenStore({self.url.redacted()!r})"

    def describe(self) -> str:
        """``the CRM's channel_credentials in /var/lib/crm.db``."""
        return f"the CRM's channel_credentials in {self.url.location}"

    # -- the protocol

    def get(self, platform: str, account_id: str) -> StoredToken | None:
        """The pair the CRM uses for this shop; None when it has no credentials row."""
        check_account(platform, account_id)
        with self._connection() as (conn, p):
            row = self._row(conn, p, platform, account_id)
        return None if row is None else self._token(platform, account_id, row)

    def put(self, token: StoredToken) -> None:
        """Replace the shop's pair whatever its version (import, authorize)."""
        with self._connection() as (conn, p):
            shop_id = self._shop_id(conn, p, token.platform, token.account_id)
            values = self._values(token)
            cursor = conn.execute(
                _PUT.format(p=p), (*values, token.updated_by or "nfdoctor", shop_id)
            )
            if cursor.rowcount == 0:
                conn.execute(
                    _INSERT.format(p=p),
                    (shop_id, *values, token.updated_by or "nfdoctor"),
                )
            self._commit(conn)

    def update(
        self,
        platform: str,
        account_id: str,
        fn: Callable[[StoredToken | None], StoredToken],
    ) -> StoredToken:
        """Read, apply ``fn``, compare-and-set: as :meth:`save`, without a lease."""
        current = self.get(platform, account_id)
        new = fn(current)
        if new == current:
            return new
        return self.save(new, expected_version=current.version if current else 0, owner="nfdoctor")

    def hold(
        self, platform: str, account_id: str, *, owner: str, lease_s: float, wait_s: float
    ) -> AbstractContextManager[None]:
        """The shop's lease in ``channel_credentials`` (step 1 of the protocol)."""
        return self._lease(platform, account_id, owner, lease_s, wait_s)

    def save(self, token: StoredToken, *, expected_version: int, owner: str) -> StoredToken:
        """Step 4: the new pair, ``version + 1``, the lease cleared; only if the row is still
        at ``expected_version`` and the lease is ours (or nobody's)."""
        now = self.clock()
        saved = StoredToken(
            platform=token.platform,
            account_id=token.account_id,
            access_token=token.access_token,
            access_expires_at=token.access_expires_at,
            refresh_token=token.refresh_token,
            refresh_expires_at=token.refresh_expires_at,
            updated_at=token.updated_at or now,
            updated_by=owner,
            version=expected_version + 1,
        )
        with self._connection() as (conn, p):
            shop_id = self._shop_id(conn, p, token.platform, token.account_id)
            values = self._values(saved)
            if expected_version == 0:
                exists = conn.execute(
                    f"SELECT version FROM channel_credentials WHERE shop_id = {p}", (shop_id,)
                ).fetchone()
                if exists is None:
                    conn.execute(_INSERT.format(p=p), (shop_id, *values, owner))
                    self._commit(conn)
                    return saved
            cursor = conn.execute(
                _SAVE.format(p=p), (*values, owner, shop_id, expected_version, owner)
            )
            if cursor.rowcount != 1:
                self._rollback(conn)
                row = self._row(conn, p, token.platform, token.account_id)
                found = "no row" if row is None else f"version {row[7]}"
                holder = f", lease held by {row[8]}" if row is not None and row[8] else ""
                raise VersionConflictError(
                    f"{token.platform} {token.account_id}: channel_credentials changed while "
                    f"this run refreshed it ({found}{holder}; expected version "
                    f"{expected_version}); nothing was written"
                )
            self._commit(conn)
        return saved

    # -- internals

    @contextlib.contextmanager
    def _lease(
        self, platform: str, account_id: str, owner: str, lease_s: float, wait_s: float
    ) -> Iterator[None]:
        deadline = time.monotonic() + wait_s
        shop_id: int | None = None
        while True:
            now = self.clock()
            until = now + timedelta(seconds=lease_s)
            with self._connection() as (conn, p):
                shop_id = self._shop_id(conn, p, platform, account_id)
                taken = conn.execute(
                    _TAKE.format(p=p),
                    (owner, self._time(until), shop_id, self._time(now), owner),
                ).rowcount
                exists = (
                    taken
                    or conn.execute(
                        f"SELECT 1 FROM channel_credentials WHERE shop_id = {p}", (shop_id,)
                    ).fetchone()
                )
                holder = None
                if not taken and exists:
                    holder = conn.execute(
                        f"SELECT lease_owner, lease_until FROM channel_credentials "
                        f"WHERE shop_id = {p}",
                        (shop_id,),
                    ).fetchone()
                self._commit(conn)
            if taken or not exists:
                # No row yet (a shop never authorised): nothing to spend, nothing to lease.
                break
            if holder is not None and dead_here(holder[0]):
                # Its refresher died on this host (a kill, a crash): nothing can still be in
                # flight from it, so its lease need not run out first.
                with self._connection() as (conn, p):
                    conn.execute(
                        f"UPDATE channel_credentials SET lease_owner = NULL, lease_until = NULL "
                        f"WHERE shop_id = {p} AND lease_owner = {p}",
                        (shop_id, holder[0]),
                    )
                    self._commit(conn)
                continue
            if time.monotonic() >= deadline:
                who, until_value = holder if holder else ("?", None)
                ends = _utc(until_value)
                raise LeaseBusyError(
                    f"the refresh lease of {platform} {account_id} is held by {who} until "
                    f"{ends:%Y-%m-%d %H:%M:%S} UTC (waited {wait_s:g} s); it is refreshing "
                    "that shop now"
                    if ends
                    else f"the refresh lease of {platform} {account_id} is held by {who}"
                )
            time.sleep(_POLL_S)
        try:
            yield
        finally:
            # Step 5 (or after step 4, a no-op): release without touching the tokens.
            with contextlib.suppress(DatabaseError), self._connection() as (conn, p):
                conn.execute(_RELEASE.format(p=p), (shop_id, owner))
                self._commit(conn)

    def _values(self, token: StoredToken) -> tuple[Any, ...]:
        return (
            token.access_token,
            self._time(token.access_expires_at),
            token.refresh_token,
            self._time(token.refresh_expires_at),
            self._time(token.updated_at or self.clock()),
        )

    def _time(self, moment: datetime | None) -> Any:
        if moment is None:
            return None
        return sqlite_time(moment) if self.url.backend == "sqlite" else moment

    def _token(self, platform: str, account_id: str, row: tuple[Any, ...]) -> StoredToken:
        return StoredToken(
            platform=platform,
            account_id=account_id,
            access_token=str(row[1]),
            access_expires_at=_utc(row[2]),
            refresh_token=str(row[3]) if row[3] else None,
            refresh_expires_at=_utc(row[4]),
            updated_at=_utc(row[5]),
            updated_by=str(row[6]) if row[6] is not None else None,
            version=int(row[7]),
        )

    def _row(self, conn: Any, p: str, platform: str, account_id: str) -> tuple[Any, ...] | None:
        row = conn.execute(_SELECT.format(p=p), (platform, account_id)).fetchone()
        return tuple(row) if row is not None else None

    def _shop_id(self, conn: Any, p: str, platform: str, account_id: str) -> int:
        row = conn.execute(_SHOP.format(p=p), (platform, account_id)).fetchone()
        if row is None:
            raise StateError(
                f"the CRM database ({self.url.location}) has no {platform} shop {account_id} "
                "(shops.channel, shops.external_id): connect the shop in the CRM first"
            )
        return int(row[0])

    @staticmethod
    def _commit(conn: Any) -> None:
        if isinstance(conn, sqlite3.Connection):
            if conn.in_transaction:
                conn.execute("COMMIT")
        else:
            conn.commit()

    @staticmethod
    def _rollback(conn: Any) -> None:
        if isinstance(conn, sqlite3.Connection):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        else:
            conn.rollback()

    @contextlib.contextmanager
    def _connection(self) -> Iterator[tuple[Any, str]]:
        """A connection and its placeholder; the table checked once per store."""
        if self.url.backend == "sqlite":
            assert self.url.path is not None
            conn: Any = connect_sqlite_rw(self.url.path, timeout_s=self.timeout_s)
            try:
                # Autocommit connection: every write below is one statement, or BEGIN is
                # explicit; IMMEDIATE takes the write lock up front.
                conn.execute("BEGIN IMMEDIATE")
                if not self._checked:
                    self._check_table(conn, "?")
                yield conn, "?"
                self._commit(conn)
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise DatabaseError(f"{self.url.location}: {exc}") from None
            finally:
                conn.close()
            return
        pg = connect_postgres(
            self.url, timeout_s=self.timeout_s, statement_timeout_s=self.timeout_s
        )
        try:
            if not self._checked:
                self._check_table(pg, "%s")
            yield pg, "%s"
            pg.commit()
        except DatabaseError:
            raise
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.Error):
                raise postgres_error(exc, self.url, self.timeout_s) from None
            raise
        finally:
            pg.close()

    def _check_table(self, conn: Any, p: str) -> None:
        """``channel_credentials`` exists with the v1.1 columns: else a clear error."""
        if p == "?":
            rows = conn.execute(f'PRAGMA table_info("{CREDENTIALS_TABLE}")').fetchall()
            columns = {str(r[1]) for r in rows}
        else:
            rows = conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s",
                (CREDENTIALS_TABLE,),
            ).fetchall()
            columns = {str(r[0]) for r in rows}
        if not columns:
            raise StateError(
                f"the CRM database ({self.url.location}) has no {CREDENTIALS_TABLE} table "
                "(CRM schema v1.1): tokens.store: crm needs it; upgrade the CRM, or use "
                "tokens.store: file"
            )
        missing = [c for c in _COLUMNS if c not in columns]
        if missing:
            raise StateError(
                f"the CRM database's {CREDENTIALS_TABLE} ({self.url.location}) lacks "
                f"{', '.join(missing)} (CRM schema v1.1 has them): it drifted from the "
                "contract; nothing was read or written"
            )
        self._checked = True
