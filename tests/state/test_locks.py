"""State locks: a lock file and a PostgreSQL advisory lock, each proven with real processes.

Exclusion is proven by workers that increment a counter under the lock and fail if they ever
find another worker inside; release on death by SIGKILLing a holder and taking the lock.
The PostgreSQL tests use the real server (tests/conftest_pg.py), never a mock.
"""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nfdoctor.errors import StateError
from nfdoctor.state.locks import (
    FileStateLock,
    PostgresAdvisoryLock,
    advisory_key,
    pg_holder_query,
)
from tests.state.workers import first_line, kill, release_together

Spawn = Callable[..., "subprocess.Popen[str]"]


def _lock_name() -> str:
    # Advisory keys are shared by the whole database: every test takes its own.
    import secrets

    return f"nfdoctor:test:{secrets.token_hex(6)}"


def _times_out(lock: Any) -> StateError:
    """Entering ``lock`` fails with StateError after its timeout (and not much later)."""
    started = time.monotonic()
    with pytest.raises(StateError) as caught, lock:
        pytest.fail("the lock was taken while another holder had it")
    elapsed = time.monotonic() - started
    assert lock.timeout_s <= elapsed < lock.timeout_s + 3
    assert "\n" not in str(caught.value)
    return caught.value


def _in_thread(target: Callable[[], None]) -> list[BaseException]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    return errors


# --- the file lock ------------------------------------------------------------------------


def test_file_lock_held_by_another_process_times_out_naming_the_lock(
    tmp_path: Path, spawn: Spawn
) -> None:
    path = tmp_path / "sync.lock"
    holder = spawn("hold", "file", str(path))
    assert first_line(holder) == "held"
    error = _times_out(FileStateLock(path, timeout_s=0.3, what="the sync of shopee"))
    assert str(error) == (
        f"the sync of shopee is locked by another nfdoctor run: {path} was not released within "
        f"0.3 s; wait for that run to finish (`fuser -v {path}` shows it)"
    )
    assert holder.stdin is not None
    holder.stdin.close()  # the holder leaves its `with`
    assert holder.wait(timeout=10) == 0
    with FileStateLock(path, timeout_s=5):
        pass


def test_file_lock_is_released_when_its_holder_is_killed(tmp_path: Path, spawn: Spawn) -> None:
    path = tmp_path / "state" / "tokens.json.lock"
    holder = spawn("hold", "file", str(path))
    assert first_line(holder) == "held"
    _times_out(FileStateLock(path, timeout_s=0.2))
    assert FileStateLock(path).held_elsewhere()
    kill(holder)
    # The file stays: the kernel dropped the flock with the process, nobody cleaned up.
    assert path.exists()
    assert not FileStateLock(path).held_elsewhere()
    started = time.monotonic()
    with FileStateLock(path, timeout_s=5):
        assert time.monotonic() - started < 1


@pytest.mark.parametrize(("kind", "excludes"), [("file", True), ("none", False)])
def test_file_lock_serialises_processes(
    tmp_path: Path, spawn: Spawn, kind: str, excludes: bool
) -> None:
    # "none" is the control: the same workers without a lock must be caught overlapping,
    # or this test could not tell a lock that works from one that does nothing.
    counter_dir = tmp_path / "counter"
    counter_dir.mkdir()
    lock_path = tmp_path / "count.lock"
    workers = [spawn("count", kind, str(lock_path), "-", str(counter_dir), "30") for _ in range(3)]
    codes = release_together(workers)
    total = int((counter_dir / "counter").read_text())
    if excludes:
        assert codes == [0, 0, 0] and total == 90
    else:
        assert codes != [0, 0, 0] or total < 90


def test_file_lock_creates_a_private_directory_and_a_0600_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "state" / "runs.json.lock"
    with FileStateLock(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    with FileStateLock(shared / "x.lock"):
        pass
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # an existing directory is not ours


def test_one_lock_object_excludes_its_own_threads_and_nested_use(tmp_path: Path) -> None:
    lock = FileStateLock(tmp_path / "x.lock", timeout_s=0.2)

    def must_wait() -> None:
        _times_out(lock)

    def takes_it() -> None:
        with lock:
            pass

    with lock:
        # flock belongs to an open file: a second hold, even from this process, must wait.
        must_wait()
        assert _in_thread(must_wait) == []
    # Released once the outer hold ends: another thread can take it now.
    assert _in_thread(takes_it) == []


def test_held_elsewhere_creates_nothing(tmp_path: Path) -> None:
    lock = FileStateLock(tmp_path / "missing" / "x.lock")
    assert not lock.held_elsewhere()
    assert not (tmp_path / "missing").exists()


def test_file_lock_where_no_directory_can_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(StateError) as caught, FileStateLock(tmp_path / "a-file" / "x.lock"):
        pass
    assert str(caught.value).startswith(f"cannot create {tmp_path / 'a-file'}: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("timeout", [-1, float("nan")])
def test_lock_timeouts_are_seconds_from_zero(tmp_path: Path, timeout: float) -> None:
    with pytest.raises(ValueError, match="seconds >= 0"):
        FileStateLock(tmp_path / "x.lock", timeout_s=timeout)
    with pytest.raises(ValueError, match="seconds >= 0"):
        PostgresAdvisoryLock("n", lambda: None, timeout_s=timeout)


def test_importing_the_state_package_does_not_import_psycopg(tmp_path: Path) -> None:
    code = (
        "import sys, pathlib; import nfdoctor.state as s; "
        "l = s.FileStateLock(pathlib.Path(sys.argv[1])); l.__enter__(); "
        "s.PostgresAdvisoryLock('n', lambda: None); print('psycopg' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "x.lock")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == "False\n"


# --- the PostgreSQL advisory lock ---------------------------------------------------------


@pytest.mark.postgres
def test_advisory_key_is_sha256_as_postgresql_computes_it_too(pg_server_url: str) -> None:
    # A second, independent derivation: PostgreSQL's own sha256 and bit casts.
    import psycopg

    assert advisory_key("nfdoctor:sync:shopee") == -5952322981641655744
    names = ["nfdoctor:sync:shopee", "nfdoctor:dedupe", "nfdoctor:đồng bộ:zalo", "x"]
    with psycopg.connect(pg_server_url) as conn:
        for name in names:
            row = conn.execute(
                "SELECT ('x' || substr(encode(sha256(convert_to(%s, 'UTF8')), 'hex'), 1, 16))"
                "::bit(64)::bigint",
                (name,),
            ).fetchone()
            assert row is not None and row[0] == advisory_key(name)
    assert len({advisory_key(name) for name in names}) == len(names)
    with pytest.raises(ValueError, match="non-empty name"):
        advisory_key("")


@pytest.fixture
def pg_connect(pg_server_url: str) -> Iterator[Callable[..., Any]]:
    """Open psycopg connections to the test server; all closed at the end."""
    import psycopg

    opened: list[Any] = []

    def connect(**kwargs: Any) -> Any:
        kwargs.setdefault("autocommit", True)
        conn = psycopg.connect(pg_server_url, application_name="nfdoctor", **kwargs)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


@pytest.mark.postgres
def test_pg_lock_held_by_another_process_names_the_holder_query(
    pg_server_url: str, pg_connect: Callable[..., Any], spawn: Spawn
) -> None:
    name = _lock_name()
    holder = spawn("hold", "pg", pg_server_url, name)
    assert first_line(holder) == "held"
    error = _times_out(PostgresAdvisoryLock(name, pg_connect(), timeout_s=0.3, what="the sync"))
    message = str(error)
    key = advisory_key(name)
    assert message.startswith(
        f"the sync is locked by another nfdoctor run: PostgreSQL advisory lock {key} "
        f"({name!r}) was not released within 0.3 s; "
    )
    assert "application_name 'nfdoctor'" in message
    # The query in the message, run as an operator would paste it, finds the holder.
    query = message.split("find the holder with: ", 1)[1]
    assert query == pg_holder_query(key)
    rows = pg_connect().execute(query).fetchall()
    assert len(rows) == 1 and rows[0][1] == "nfdoctor"
    assert holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(timeout=10) == 0
    with PostgresAdvisoryLock(name, pg_connect(), timeout_s=5):
        pass


@pytest.mark.postgres
def test_pg_lock_is_released_when_its_holder_is_killed(
    pg_server_url: str, pg_connect: Callable[..., Any], spawn: Spawn
) -> None:
    name = _lock_name()
    holder = spawn("hold", "pg", pg_server_url, name)
    assert first_line(holder) == "held"
    conn = pg_connect()
    _times_out(PostgresAdvisoryLock(name, conn, timeout_s=0.2))
    kill(holder)
    # The server ends the session when the client's socket closes, and the lock with it.
    started = time.monotonic()
    with PostgresAdvisoryLock(name, conn, timeout_s=5):
        assert time.monotonic() - started < 5
        assert conn.execute(pg_holder_query(advisory_key(name))).fetchall()[0][0] == (
            conn.info.backend_pid
        )


@pytest.mark.postgres
def test_pg_lock_serialises_processes(tmp_path: Path, pg_server_url: str, spawn: Spawn) -> None:
    counter_dir = tmp_path / "counter"
    counter_dir.mkdir()
    name = _lock_name()
    workers = [spawn("count", "pg", pg_server_url, name, str(counter_dir), "30") for _ in range(3)]
    assert release_together(workers) == [0, 0, 0]
    assert (counter_dir / "counter").read_text() == "90"


@pytest.mark.postgres
def test_pg_holders_sharing_a_connection_still_exclude_each_other(
    pg_connect: Callable[..., Any],
) -> None:
    # PostgreSQL grants a session's second request for a key it holds; the lock must not.
    conn = pg_connect()
    lock = PostgresAdvisoryLock(_lock_name(), conn, timeout_s=0.2)

    def must_wait() -> None:
        _times_out(lock)

    with lock:
        _times_out(PostgresAdvisoryLock(lock.name, conn, timeout_s=0.2))
        assert _in_thread(must_wait) == []
    with lock:  # one unlock per hold: free again
        pass
    rows = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    ).fetchone()
    assert rows == (0,)


@pytest.mark.postgres
def test_pg_lock_from_a_factory_closes_its_connection(pg_connect: Callable[..., Any]) -> None:
    opened: list[Any] = []

    def factory() -> Any:
        opened.append(pg_connect())
        return opened[-1]

    lock = PostgresAdvisoryLock(_lock_name(), factory, timeout_s=0.2)
    with lock:
        assert len(opened) == 1 and not opened[0].closed
        with pytest.raises(StateError, match=r"was not released within 0\.2 s"), lock:
            pass
        assert len(opened) == 2 and opened[1].closed  # the failed attempt's, closed at once
    assert opened[0].closed
    with PostgresAdvisoryLock(lock.name, pg_connect(), timeout_s=0.2):
        pass

    def refused() -> Any:
        raise ConnectionRefusedError("no server")

    with pytest.raises(ConnectionRefusedError), PostgresAdvisoryLock("n", refused):
        pass


@pytest.mark.postgres
def test_pg_lock_leaves_a_borrowed_connection_as_it_found_it(
    pg_connect: Callable[..., Any],
) -> None:
    from psycopg.pq import TransactionStatus

    idle = pg_connect(autocommit=False)
    with PostgresAdvisoryLock(_lock_name(), idle):
        # Not "idle in transaction" for the whole hold: the query's transaction was ended.
        assert idle.info.transaction_status == TransactionStatus.IDLE
    assert idle.info.transaction_status == TransactionStatus.IDLE

    busy = pg_connect(autocommit=False)
    busy.execute("CREATE TEMP TABLE t (x int)")
    with PostgresAdvisoryLock(_lock_name(), busy):
        busy.execute("INSERT INTO t VALUES (1)")
    assert busy.info.transaction_status == TransactionStatus.INTRANS  # not committed for it
    busy.rollback()
    with pytest.raises(Exception, match='relation "t" does not exist'):
        busy.execute("SELECT * FROM t")


@pytest.mark.postgres
def test_pg_lock_in_a_failed_transaction_is_still_released(
    pg_connect: Callable[..., Any],
) -> None:
    import psycopg

    conn = pg_connect(autocommit=False)
    name = _lock_name()
    with pytest.raises(psycopg.errors.DivisionByZero), PostgresAdvisoryLock(name, conn):
        conn.execute("SELECT 1 / 0")
    with PostgresAdvisoryLock(name, pg_connect(), timeout_s=0.2):
        pass


@pytest.mark.postgres
def test_pg_lock_lost_with_its_session_is_an_error_on_release(
    pg_connect: Callable[..., Any],
) -> None:
    holder, admin = pg_connect(), pg_connect()
    lock = PostgresAdvisoryLock(_lock_name(), holder, what="the dedupe")
    with pytest.raises(StateError) as caught, lock:
        admin.execute("SELECT pg_terminate_backend(%s)", (holder.info.backend_pid,))
        # Another run could take it now, while this one still thinks it holds it.
        with PostgresAdvisoryLock(lock.name, admin, timeout_s=2):
            pass
    assert str(caught.value).startswith(
        f"the dedupe: PostgreSQL advisory lock {lock.key} ({lock.name!r}) was lost while held ("
    )
    assert "another run may have overlapped" in str(caught.value)

    # An error inside the block is the one that propagates, not the lost lock's.
    again = pg_connect()
    other = PostgresAdvisoryLock(_lock_name(), again)
    with pytest.raises(RuntimeError, match="sync failed"), other:
        admin.execute("SELECT pg_terminate_backend(%s)", (again.info.backend_pid,))
        raise RuntimeError("sync failed")


@pytest.mark.postgres
def test_pg_lock_on_a_broken_connection_is_one_line(pg_connect: Callable[..., Any]) -> None:
    conn = pg_connect()
    conn.close()
    with pytest.raises(StateError) as caught, PostgresAdvisoryLock("n", conn, what="the sync"):
        pass
    assert re.match(r"cannot take the sync \(PostgreSQL advisory lock -?\d+\): ", str(caught.value))
    assert "\n" not in str(caught.value)
