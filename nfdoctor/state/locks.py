"""Locks over nfdoctor's state, behind one interface: a lock file, or a PostgreSQL advisory lock.

A :class:`StateLock` is a context manager: ``with lock:`` holds it, or raises
:class:`~nfdoctor.errors.StateError` after ``timeout_s`` with one line naming the lock and how
to find its holder. Both kinds are tied to the holder's life, never to a file's contents or a
row: ``flock`` is released when the process's last descriptor closes, and a session-level
advisory lock when the PostgreSQL session ends. A run killed with SIGKILL therefore never
leaves a lock behind, and there is no stale-lock cleanup to get wrong.

Holders exclude each other even inside one process: every ``with`` takes a fresh hold (a new
open file for flock; for PostgreSQL a check that the session does not already hold the key,
since PostgreSQL counts a session's advisory locks instead of refusing them). Entering the
same lock object again, in the same thread or another, waits like any other holder.

- :class:`FileStateLock`: ``flock`` on a lock file (through ``filelock``), 0600 in a
  directory created 0700 when missing. For one host.
- :class:`PostgresAdvisoryLock`: ``pg_try_advisory_lock(key)`` polled until the timeout, the
  key derived from a name by :func:`advisory_key`. For several hosts sharing the CRM's
  database. psycopg is imported only when one is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import filelock

from nfdoctor.errors import StateError

if TYPE_CHECKING:
    import psycopg

    PgConnection = psycopg.Connection[Any]
    #: a connection the lock borrows, or a factory whose connections it opens and closes
    PgConnectionSource = PgConnection | Callable[[], PgConnection]

__all__ = [
    "FileStateLock",
    "PostgresAdvisoryLock",
    "StateLock",
    "advisory_key",
    "ensure_private_dir",
    "pg_holder_query",
]

#: how often a waiting PostgreSQL lock asks again (flock waits are filelock's, 0.05 s too)
PG_POLL_INTERVAL_S = 0.05


class StateLock(Protocol):
    """An exclusive lock on part of nfdoctor's state; ``with lock:`` holds it or raises."""

    #: what the lock protects, in words that fit "… is locked by another nfdoctor run"
    what: str
    #: how long ``with`` waits for another holder before StateError; 0 tries once
    timeout_s: float

    def __enter__(self) -> None:
        """Wait up to ``timeout_s`` for the lock; StateError naming it and its holder after."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release the lock taken by the matching ``__enter__``."""
        ...


def _check_timeout(timeout_s: float) -> float:
    if not isinstance(timeout_s, (int, float)) or math.isnan(timeout_s) or timeout_s < 0:
        raise ValueError(f"a lock timeout is a number of seconds >= 0 (got {timeout_s!r})")
    return float(timeout_s)


class _Holds:
    """The holds taken through one lock object, per thread, innermost last."""

    def __init__(self) -> None:
        self._local = threading.local()

    def push(self, hold: Any) -> None:
        self._stack().append(hold)

    def pop(self) -> Any:
        stack = self._stack()
        if not stack:
            raise RuntimeError("a lock was released that this thread does not hold")
        return stack.pop()

    def _stack(self) -> list[Any]:
        stack: list[Any] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack


# --- the file lock ------------------------------------------------------------------------


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` (and each missing parent) 0700; existing ones are left as they are."""
    if directory.is_dir():
        return
    missing = [directory, *(p for p in directory.parents if not p.exists())]
    try:
        # Each one 0700, not only the last: ~/.local/state created by us is private too, as
        # the XDG spec asks. mkdir's mode is filtered by the umask, hence the chmod.
        for path in reversed(missing):
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                if path.is_dir():  # another run made it meanwhile: theirs, left alone
                    continue
                raise
            os.chmod(path, 0o700)
    except OSError as exc:
        raise StateError(f"cannot create {directory}: {exc.strerror or exc}") from None


class FileStateLock:
    """``flock`` on ``path`` (mode 0600; its directory created 0700 when missing)."""

    def __init__(self, path: Path, *, timeout_s: float = 10, what: str | None = None) -> None:
        self.path = path
        self.timeout_s = _check_timeout(timeout_s)
        self.what = what or f"the lock {path.name}"
        self._holds = _Holds()

    def __repr__(self) -> str:
        return f"FileStateLock({str(self.path)!r})"

    def __enter__(self) -> None:
        """Hold the lock file, or StateError naming it after ``timeout_s``."""
        ensure_private_dir(self.path.parent)
        # One filelock object per hold: flock belongs to an open file, so two holds in one
        # process (two threads, or a nested `with`) exclude each other as two processes do.
        # filelock's own objects are reentrant, which would let a nested hold through.
        lock = filelock.FileLock(str(self.path), timeout=self.timeout_s, mode=0o600)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise StateError(
                f"{self.what} is locked by another nfdoctor run: {self.path} was not released "
                f"within {self.timeout_s:g} s; wait for that run to finish "
                f"(`fuser -v {self.path}` shows it)"
            ) from None
        except OSError as exc:
            raise StateError(
                f"cannot lock {self.what}: {self.path}: {exc.strerror or exc}"
            ) from None
        self._holds.push(lock)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release this thread's innermost hold."""
        lock: filelock.BaseFileLock = self._holds.pop()
        lock.release()

    def held_elsewhere(self) -> bool:
        """True when some holder (another process, thread or ``with``) has the lock now.

        Never creates the lock file's directory; a missing lock file is not held. Used to
        tell a running command from one that was killed: only a live process holds a flock.
        """
        if not self.path.exists():
            return False
        probe = filelock.FileLock(str(self.path), timeout=0, mode=0o600)
        try:
            probe.acquire()
        except filelock.Timeout:
            return True
        except OSError as exc:
            raise StateError(
                f"cannot check {self.what}: {self.path}: {exc.strerror or exc}"
            ) from None
        probe.release()
        return False


# --- the PostgreSQL advisory lock ---------------------------------------------------------


def advisory_key(name: str) -> int:
    """The advisory-lock key for ``name``: SHA-256 of its UTF-8, first 8 bytes, signed bigint.

    Stable across hosts, processes and Python versions (unlike ``hash()``), so every host
    that names the same lock takes the same key.
    """
    if not name:
        raise ValueError("an advisory lock needs a non-empty name")
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _key_halves(key: int) -> tuple[int, int]:
    """``(classid, objid)`` as pg_locks shows a bigint advisory key (objsubid is 1)."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


def pg_holder_query(key: int) -> str:
    """SQL an operator can paste to see who holds advisory lock ``key`` (one line)."""
    classid, objid = _key_halves(key)
    return (
        "SELECT a.pid, a.application_name, a.client_addr, a.backend_start FROM pg_locks l "
        "JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND l.granted "
        f"AND l.classid = {classid} AND l.objid = {objid} AND l.objsubid = 1"
    )


# Takes the key unless this session already holds it: PostgreSQL would grant it again (and
# count it), which would let two holders sharing a connection both in.
_TRY_LOCK = """
SELECT CASE WHEN EXISTS (
    SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
      AND classid::bigint = %(classid)s AND objid::bigint = %(objid)s AND objsubid = 1
) THEN false ELSE pg_try_advisory_lock(%(key)s) END
"""


class PostgresAdvisoryLock:
    """A session-level PostgreSQL advisory lock on :func:`advisory_key` of ``name``.

    ``connection`` is a psycopg connection the lock borrows while held, or a factory called
    once per hold whose connection the lock closes on release. A factory's own errors pass
    through unchanged: use :func:`nfdoctor.store.database.connect_postgres`, whose errors
    never show the password and whose sessions are named "nfdoctor" in pg_stat_activity.
    """

    def __init__(
        self,
        name: str,
        connection: PgConnectionSource,
        *,
        timeout_s: float = 10,
        what: str | None = None,
    ) -> None:
        self.name = name
        self.key = advisory_key(name)
        self.timeout_s = _check_timeout(timeout_s)
        self.what = what or f"the lock {name!r}"
        self._source = connection
        self._holds = _Holds()

    def __repr__(self) -> str:
        return f"PostgresAdvisoryLock({self.name!r}, key={self.key})"

    def __enter__(self) -> None:
        """Poll ``pg_try_advisory_lock`` until it is granted or ``timeout_s`` has passed."""
        owned = callable(self._source)
        conn: PgConnection = self._source() if callable(self._source) else self._source
        try:
            self._acquire(conn)
        except BaseException:
            if owned:
                with contextlib.suppress(Exception):
                    conn.close()
            raise
        self._holds.push((conn, owned))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release the key; StateError if the session lost it (unless the block already failed)."""
        import psycopg
        from psycopg.pq import TransactionStatus

        conn, owned = self._holds.pop()
        try:
            if conn.info.transaction_status == TransactionStatus.INERROR:
                # A failed transaction can only be rolled back, and until it is no query (the
                # unlock included) runs: the lock would stay held for the session's life.
                conn.rollback()
            released = bool(self._query(conn, "SELECT pg_advisory_unlock(%s)", (self.key,)))
            problem = None if released else "the session no longer held it"
        except psycopg.Error as error:
            problem = _first_line(error)
        finally:
            if owned:
                with contextlib.suppress(Exception):
                    conn.close()
        if problem is not None and exc is None:
            # The session ended while held (a restart, pg_terminate_backend, a dropped
            # connection), so another run may have held the lock at the same time.
            raise StateError(
                f"{self.what}: PostgreSQL advisory lock {self.key} ({self.name!r}) was lost "
                f"while held ({problem}); another run may have overlapped with this one"
            )

    def _acquire(self, conn: PgConnection) -> None:
        import psycopg

        classid, objid = _key_halves(self.key)
        params = {"classid": classid, "objid": objid, "key": self.key}
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                if self._query(conn, _TRY_LOCK, params):
                    return
            except psycopg.Error as error:
                raise StateError(
                    f"cannot take {self.what} (PostgreSQL advisory lock {self.key}): "
                    f"{_first_line(error)}"
                ) from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StateError(
                    f"{self.what} is locked by another nfdoctor run: PostgreSQL advisory lock "
                    f"{self.key} ({self.name!r}) was not released within {self.timeout_s:g} s; "
                    f"wait for that run to finish (nfdoctor's sessions show application_name "
                    f"'nfdoctor'); find the holder with: {pg_holder_query(self.key)}"
                )
            time.sleep(min(PG_POLL_INTERVAL_S, remaining))

    @staticmethod
    def _query(conn: PgConnection, sql: str, params: Any) -> Any:
        """The first column of the one row ``sql`` returns, leaving an idle session idle."""
        from psycopg.pq import TransactionStatus

        # A session-level lock outlives the transaction, so a transaction this query opens
        # is committed at once rather than left "idle in transaction" for the hold; one the
        # caller had open is the caller's.
        was_idle = conn.info.transaction_status == TransactionStatus.IDLE
        row = conn.execute(sql, params).fetchone()
        if not conn.autocommit and was_idle:
            conn.commit()
        return None if row is None else row[0]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines() or [type(error).__name__])[0]


if TYPE_CHECKING:

    def _both_kinds(file: FileStateLock, pg: PostgresAdvisoryLock) -> list[StateLock]:
        return [file, pg]  # mypy checks both against the protocol here
