"""The token store: file and keyring stores, atomic writes, locking, corruption, no leaks.

Everything runs against real files in tmp_path and real keyring backends (small in-memory
ones set with keyring.set_keyring, and keyring's own fail and null backends).
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import filelock
import keyring
import keyring.backends.fail
import keyring.backends.null
import keyring.errors
import pytest
from keyring.backend import KeyringBackend

from nfdoctor.config.model import TokensConfig
from nfdoctor.errors import KeyringUnavailableError, StateError
from nfdoctor.platforms.base import TokenSet
from nfdoctor.secrets.redaction import Redactor
from nfdoctor.tokens import (
    FORMAT,
    FileTokenStore,
    KeyringTokenStore,
    StoredToken,
    open_token_store,
)

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=timezone.utc)
ACCESS = "ACCESS-7f3a9c51e0-secret"
REFRESH = "REFRESH-5d2e81b4aa-secret"
SECRETS = (ACCESS, REFRESH)


def _token(
    platform: str = "shopee",
    account_id: str = "12345678",
    *,
    access: str = ACCESS,
    refresh: str | None = REFRESH,
) -> StoredToken:
    return StoredToken(
        platform=platform,
        account_id=account_id,
        access_token=access,
        access_expires_at=NOW + timedelta(hours=4),
        refresh_token=refresh,
        refresh_expires_at=NOW + timedelta(days=30),
        updated_at=NOW,
    )


def _assert_no_secrets(exc: BaseException, *values: str) -> None:
    # Without the top traceback (its source lines are this file's, literals included), but
    # with any chained exception a traceback would print.
    shown = "".join([str(exc), repr(exc), *traceback.format_exception(type(exc), exc, None)])
    for value in values or SECRETS:
        assert value not in shown


def _temp_files(directory: Path) -> list[str]:
    # write_atomically's temp files: ".tokens.json.XXXX" beside the target
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".tokens.json."))


# --- StoredToken --------------------------------------------------------------------------


def test_stored_token_repr_and_str_mask_both_tokens() -> None:
    token = _token()
    for text in (repr(token), str(token), f"{token}", repr([token])):
        assert ACCESS not in text and REFRESH not in text
        assert f"access_token=***({len(ACCESS)} chars)" in text
        assert "platform='shopee'" in text and "account_id='12345678'" in text


def test_stored_token_normalises_to_utc_and_refuses_naive_times() -> None:
    plus7 = timezone(timedelta(hours=7))
    token = replace(_token(), access_expires_at=datetime(2026, 11, 26, 13, 0, tzinfo=plus7))
    assert token.access_expires_at == NOW and token.access_expires_at.tzinfo == timezone.utc
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(_token(), updated_at=datetime(2026, 11, 26, 6, 0))
    with pytest.raises(ValueError, match="without '/'"):
        _token(platform="sho/pee")


def test_from_token_set_and_secret_values_feed_the_redactor() -> None:
    tokens = TokenSet(
        access_token=ACCESS,
        refresh_token="",  # a platform without refresh tokens
        access_expires_at=NOW + timedelta(days=60),
        refresh_expires_at=None,
    )
    token = StoredToken.from_token_set("facebook", "1001", tokens, now=NOW)
    assert token.refresh_token is None and token.updated_at == NOW
    assert token.access_expires_at == NOW + timedelta(days=60)
    assert token.secret_values() == (ACCESS,)
    redactor = Redactor()
    for value in _token().secret_values():
        redactor.add(value)
    assert redactor.redact(f"a={ACCESS} r={REFRESH}") == "a=*** r=***"


# --- the file store -----------------------------------------------------------------------


def test_file_round_trip_keeps_other_accounts(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    assert store.get("shopee", "12345678") is None  # no file yet
    first = _token()
    never_expires = replace(
        _token("facebook", "1001", refresh=None),
        access_expires_at=None,
        refresh_expires_at=None,
    )
    store.put(first)
    store.put(never_expires)
    store.put(_token("shopee", "999", access="ACCESS-other-shop"))
    assert store.get("shopee", "12345678") == first
    assert store.get("facebook", "1001") == never_expires
    assert store.get("shopee", "999") is not None
    assert store.get("lazada", "12345678") is None
    assert store.kind == "file" and store.describe() == f"file store {tmp_path / 'tokens.json'}"


def test_file_format_on_disk_is_v1(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    FileTokenStore(path).put(_token())
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "format": "nfdoctor.tokens/v1",
        "tokens": {
            "shopee": {
                "12345678": {
                    "access_token": ACCESS,
                    "access_expires_at": "2026-11-26T10:00:00+00:00",
                    "refresh_token": REFRESH,
                    "refresh_expires_at": "2026-12-26T06:00:00+00:00",
                    "updated_at": "2026-11-26T06:00:00+00:00",
                }
            }
        },
    }
    assert FORMAT == "nfdoctor.tokens/v1"


def test_file_is_0600_in_a_new_0700_directory(tmp_path: Path) -> None:
    path = tmp_path / "state" / "nfdoctor" / "tokens.json"
    store = FileTokenStore(path)
    store.put(_token())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert store.permissions_problem() is None


def test_existing_directory_is_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    FileTokenStore(shared / "tokens.json").put(_token())
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755


def test_wide_mode_is_reported_and_tightened_on_write(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    store.put(_token())
    os.chmod(path, 0o644)
    assert store.permissions_problem() == (
        f"{path}: mode 0644: readable by group and others (run: chmod 600 {path})"
    )
    os.chmod(path, 0o620)
    assert store.permissions_problem() == (
        f"{path}: mode 0620: writable by group (run: chmod 600 {path})"
    )
    store.put(_token(access="ACCESS-rotated"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.permissions_problem() is None


def test_new_file_is_never_briefly_wider_than_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Watch the file at the moment it is renamed into place: it must already be private.
    modes: list[int] = []
    real_replace = os.replace

    def watching_replace(src: str, dst: str) -> None:
        modes.append(stat.S_IMODE(os.stat(src).st_mode))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watching_replace)
    FileTokenStore(tmp_path / "tokens.json").put(_token())
    assert modes == [0o600]


def test_failed_serialisation_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    store.put(_token())
    before = path.read_bytes()

    def broken_dumps(*args: object, **kwargs: object) -> str:
        raise RuntimeError("serialiser died")

    monkeypatch.setattr(json, "dumps", broken_dumps)
    with pytest.raises(RuntimeError, match="serialiser died"):
        store.put(_token(access="ACCESS-new"))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _temp_files(tmp_path) == []


def test_failed_rename_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    store.put(_token())
    before = path.read_bytes()

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(StateError, match="No space left on device") as caught:
        store.put(_token(access="ACCESS-new-value"))
    monkeypatch.undo()
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before
    assert _temp_files(tmp_path) == []
    _assert_no_secrets(caught.value, ACCESS, REFRESH, "ACCESS-new-value")


CORRUPT = (
    "{\n"
    '  "format": "nfdoctor.tokens/v1",\n'
    '  "tokens": {"shopee": {"12345678": {"access_token": "' + ACCESS + '",\n'
    '    "refresh_token": "' + REFRESH + '" "updated_at": null}}}\n'
    "}\n"
)


def test_corrupt_file_is_an_error_with_position_and_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(CORRUPT, encoding="utf-8")
    store = FileTokenStore(path)
    column = CORRUPT.splitlines()[3].index('"updated_at"') + 1
    for attempt in (
        lambda: store.get("shopee", "12345678"),
        lambda: store.put(_token("lazada", "1")),
        lambda: store.update("shopee", "12345678", lambda current: _token()),
    ):
        with pytest.raises(StateError) as caught:
            attempt()
        message = str(caught.value)
        assert message.startswith(f"{path}:4:{column}: not valid JSON (Expecting ',' delimiter)")
        assert "nothing was changed" in message and "\n" not in message
        _assert_no_secrets(caught.value)
    assert path.read_text(encoding="utf-8") == CORRUPT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('["not", "an", "object"]', "expected a JSON object, got a list"),
        ('{"format": "nfdoctor.tokens/v1", "tokens": []}', "tokens: expected an object"),
        ('{"format": "nfdoctor.tokens/v1"}', "tokens: expected an object of platforms, got null"),
        ('{"shopee": "' + ACCESS + '"}', "tokens.shopee: expected an object of accounts"),
        ('{"format": "nfdoctor.tokens/v9", "tokens": {}}', "unknown token file format"),
        (b"\xff\xfe{}", "not UTF-8 (byte 0)"),
    ],
)
def test_unusable_documents_are_errors_and_left_alone(
    tmp_path: Path, text: str | bytes, expected: str
) -> None:
    path = tmp_path / "tokens.json"
    data = text if isinstance(text, bytes) else text.encode()
    path.write_bytes(data)
    store = FileTokenStore(path)
    with pytest.raises(StateError, match=re.escape(expected)) as caught:
        store.put(_token("lazada", "1"))
    assert str(path) in str(caught.value)
    _assert_no_secrets(caught.value)
    assert path.read_bytes() == data


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"refresh_token": REFRESH}, "tokens.shopee.1.access_token: missing"),
        ({"access_token": 5}, "tokens.shopee.1.access_token: missing or not a non-empty string"),
        ({"access_token": "a-token", "refresh_token": 7}, "refresh_token: expected a string"),
        (
            {"access_token": "a-token", "updated_at": "2026-11-26T06:00:00"},
            "tokens.shopee.1.updated_at: time has no UTC offset",
        ),
        # A token pasted into a time field: the error must not quote it.
        ({"access_token": "a-token", "access_expires_at": ACCESS}, "not an ISO 8601 time"),
        ({"access_token": "a-token", "refresh_expires_at": 1700000000}, "got a number"),
    ],
)
def test_bad_records_name_the_key_and_never_quote_values(
    tmp_path: Path, record: dict[str, object], expected: str
) -> None:
    path = tmp_path / "tokens.json"
    text = json.dumps({"format": FORMAT, "tokens": {"shopee": {"1": record}}})
    path.write_text(text, encoding="utf-8")
    store = FileTokenStore(path)
    with pytest.raises(StateError, match=expected) as caught:
        store.get("shopee", "1")
    assert str(caught.value).startswith(f"{path}: tokens.shopee.1")
    _assert_no_secrets(caught.value)
    with pytest.raises(StateError):
        store.update("shopee", "1", lambda current: _token("shopee", "1"))
    assert path.read_text(encoding="utf-8") == text


def test_times_with_offsets_and_z_are_read_as_utc(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    record = {
        "access_token": ACCESS,
        "access_expires_at": "2026-11-26T13:00:00+07:00",
        "refresh_token": None,
        "refresh_expires_at": "2026-11-26T06:00:00Z",
        "updated_at": None,
    }
    path.write_text(json.dumps({"format": FORMAT, "tokens": {"zalo": {"9": record}}}))
    token = FileTokenStore(path).get("zalo", "9")
    assert token is not None
    assert token.access_expires_at == NOW and token.refresh_expires_at == NOW
    assert token.refresh_token is None and token.updated_at is None


def test_legacy_bare_mapping_is_read_and_rewritten_as_v1(tmp_path: Path) -> None:
    # The shape `nfdoctor simulator --write-config` wrote: platforms at the top, no updated_at.
    path = tmp_path / "tokens.json"
    legacy = {
        "shopee": {
            "123": {
                "access_token": ACCESS,
                "access_expires_at": "2026-11-26T10:00:00+00:00",
                "refresh_token": REFRESH,
                "refresh_expires_at": "2026-12-26T06:00:00+00:00",
            }
        },
        "facebook": {"1001": {"access_token": "PAGE-TOKEN-1001", "access_expires_at": None}},
    }
    path.write_text(json.dumps(legacy), encoding="utf-8")
    store = FileTokenStore(path)
    token = store.get("shopee", "123")
    assert token == replace(_token("shopee", "123"), updated_at=None)
    page = store.get("facebook", "1001")
    assert page is not None and page.access_expires_at is None and page.refresh_token is None

    store.put(_token("lazada", "7"))
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["format"] == FORMAT
    assert document["tokens"]["shopee"]["123"] == legacy["shopee"]["123"]
    assert set(document["tokens"]) == {"shopee", "facebook", "lazada"}


def test_unknown_keys_are_kept_on_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    record = {**json.loads(json.dumps(_record_json())), "scopes": ["order.read"]}
    path.write_text(
        json.dumps(
            {"format": FORMAT, "written_by": "nfdoctor 9", "tokens": {"shopee": {"1": record}}}
        )
    )
    store = FileTokenStore(path)
    store.update("shopee", "1", lambda current: _token("shopee", "1", access="ACCESS-rotated"))
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["written_by"] == "nfdoctor 9"
    assert document["tokens"]["shopee"]["1"]["scopes"] == ["order.read"]
    assert document["tokens"]["shopee"]["1"]["access_token"] == "ACCESS-rotated"


def _record_json() -> dict[str, object]:
    return {
        "access_token": ACCESS,
        "access_expires_at": "2026-11-26T10:00:00+00:00",
        "refresh_token": REFRESH,
        "refresh_expires_at": "2026-12-26T06:00:00+00:00",
        "updated_at": "2026-11-26T06:00:00+00:00",
    }


# --- locking ------------------------------------------------------------------------------

_HOLD_LOCK = """
import sys, filelock
lock = filelock.FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def lock_held_elsewhere() -> Iterator[Callable[[Path], None]]:
    """Hold a lock file from a second process until the test ends."""
    holders: list[subprocess.Popen[str]] = []

    def hold(lock_path: Path) -> None:
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_LOCK, str(lock_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        holders.append(holder)
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"

    yield hold
    for holder in holders:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.wait(timeout=10)
        holder.stdout.close()


def test_lock_held_by_another_process_is_a_state_error_naming_the_lock(
    tmp_path: Path, lock_held_elsewhere: Callable[[Path], None]
) -> None:
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path, lock_timeout_s=0.3)
    store.put(_token())
    before = path.read_bytes()
    lock_held_elsewhere(tmp_path / "tokens.json.lock")
    started = time.monotonic()
    with pytest.raises(StateError) as caught:
        store.update("shopee", "12345678", lambda current: _token(access="ACCESS-x"))
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert f"{tmp_path / 'tokens.json.lock'} was not released within 0.3 s" in message
    assert "locked by another nfdoctor run" in message and "\n" not in message
    with pytest.raises(StateError, match="locked by another nfdoctor run"):
        store.put(_token(access="ACCESS-y"))
    assert path.read_bytes() == before
    assert store.get("shopee", "12345678") == _token()  # reading needs no lock


def test_lock_held_by_another_thread_times_out(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json", lock_timeout_s=0.2)
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with filelock.FileLock(str(tmp_path / "tokens.json.lock")):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(StateError, match=re.escape("tokens.json.lock was not released")):
            store.put(_token())
    finally:
        release.set()
        thread.join(10)
    store.put(_token())  # free again


def _increment(current: StoredToken | None) -> StoredToken:
    count = int(current.refresh_token or "0") if current else 0
    # Widen the window between read and write: without the lock, updates would be lost.
    time.sleep(0.002)
    return _token(refresh=str(count + 1))


def _run_in_threads(target: Callable[[], None], n: int = 2) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # surfaced in the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


def test_update_serialises_concurrent_updaters_in_threads(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"

    def fifty_increments() -> None:
        store = FileTokenStore(path)  # one store each, as two runs would have
        for _ in range(50):
            store.update("shopee", "12345678", _increment)

    _run_in_threads(fifty_increments)
    token = FileTokenStore(path).get("shopee", "12345678")
    assert token is not None and token.refresh_token == "100"


_INCREMENT_IN_PROCESS = """
import sys
from pathlib import Path
from nfdoctor.tokens import FileTokenStore
from tests.test_token_store import _increment
store = FileTokenStore(Path(sys.argv[1]))
sys.stdin.readline()  # start together, so the two runs really overlap
for _ in range(40):
    store.update("shopee", "12345678", _increment)
"""


def test_update_serialises_two_processes(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    env = dict(os.environ)  # PYTHONPATH already holds the project root and the loopback guard
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _INCREMENT_IN_PROCESS, str(path)],
            env=env,
            stdin=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.close()
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0]
    token = FileTokenStore(path).get("shopee", "12345678")
    assert token is not None and token.refresh_token == "80"


def test_a_refresh_killed_mid_update_leaves_the_file_and_no_lock(tmp_path: Path) -> None:
    # SIGKILL while fn holds the lock (a refresh under way): nothing written, nothing held.
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path, lock_timeout_s=0.3)
    store.put(_token())
    before = path.read_bytes()
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.state.workers", "token-hold", str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline() == "inside\n"
        with pytest.raises(StateError, match="locked by another nfdoctor run"):
            store.put(_token(access="ACCESS-while-held"))
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert worker.stdout is not None
        worker.stdout.close()
    assert worker.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    started = time.monotonic()
    store.put(_token(access="ACCESS-after-kill"))
    assert time.monotonic() - started < 1
    assert store.get("shopee", "12345678") == _token(access="ACCESS-after-kill")


def test_update_that_raises_writes_nothing_and_releases_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path, lock_timeout_s=0.5)
    store.put(_token())
    before = path.read_bytes()

    def refresh_rejected(current: StoredToken | None) -> StoredToken:
        raise RuntimeError("platform said no")

    with pytest.raises(RuntimeError, match="platform said no"):
        store.update("shopee", "12345678", refresh_rejected)
    assert path.read_bytes() == before
    store.put(_token(access="ACCESS-after"))  # the lock was released
    assert store.get("shopee", "12345678") == _token(access="ACCESS-after")


def test_update_that_changes_nothing_does_not_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    store.put(_token())
    inode = path.stat().st_ino
    seen: list[StoredToken | None] = []

    def not_due(current: StoredToken | None) -> StoredToken:
        seen.append(current)
        assert current is not None
        return current

    assert store.update("shopee", "12345678", not_due) == _token()
    assert seen == [_token()]
    assert path.stat().st_ino == inode  # a rewrite would have renamed a new file in


def test_update_refuses_a_token_for_another_account(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    with pytest.raises(ValueError, match="got a token for 'lazada'"):
        store.update("shopee", "1", lambda current: _token("lazada", "1"))
    assert not (tmp_path / "tokens.json").exists()


# --- the keyring store --------------------------------------------------------------------


class MemoryKeyring(KeyringBackend):
    """A keyring that keeps entries in a dict, as a working OS keyring would."""

    priority = -1  # never chosen by keyring on its own, only through set_keyring

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def get_password(self, service: str, username: str) -> str | None:
        with self._lock:
            return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._lock:
            self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        with self._lock:
            if self.entries.pop((service, username), None) is None:
                raise keyring.errors.PasswordDeleteError(username)


class DroppingKeyring(MemoryKeyring):
    """Accepts every write and keeps none (a misconfigured backend)."""

    def set_password(self, service: str, username: str, password: str) -> None:
        pass


class FirstWriteOnlyKeyring(MemoryKeyring):
    """Keeps an entry's first value and silently ignores later writes."""

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._lock:
            self.entries.setdefault((service, username), password)


class ComplainingKeyring(MemoryKeyring):
    """Fails every write with a message that quotes the value (some backends do)."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError(f"cannot store {password!r}: collection locked")


class HangingKeyring(MemoryKeyring):
    """Never answers a read (until released), as a D-Bus keyring without a session bus can."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait(30)
        return None


@pytest.fixture
def use_keyring() -> Iterator[Callable[[KeyringBackend], None]]:
    """Set a keyring backend for the test; the previous one is restored afterwards."""
    previous = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(previous)


def _keyring_store(tmp_path: Path, **kwargs: float) -> KeyringTokenStore:
    return KeyringTokenStore(lock_dir=tmp_path / "state", **kwargs)


def test_keyring_round_trip_one_entry_per_account(
    tmp_path: Path, use_keyring: Callable[[KeyringBackend], None]
) -> None:
    backend = MemoryKeyring()
    use_keyring(backend)
    store = _keyring_store(tmp_path)
    assert store.get("shopee", "12345678") is None
    store.put(_token())
    store.put(_token("zalo", "42", access="ACCESS-zalo"))
    assert store.get("shopee", "12345678") == _token()
    assert set(backend.entries) == {
        ("nfdoctor-tokens", "shopee/12345678"),
        ("nfdoctor-tokens", "zalo/42"),
    }
    assert json.loads(backend.entries[("nfdoctor-tokens", "shopee/12345678")]) == _record_json()
    assert store.kind == "keyring"
    assert store.describe() == (
        "OS keyring (backend tests.test_token_store.MemoryKeyring, service nfdoctor-tokens)"
    )


def test_keyring_update_proves_the_backend_then_writes(
    tmp_path: Path, use_keyring: Callable[[KeyringBackend], None]
) -> None:
    backend = MemoryKeyring()
    use_keyring(backend)
    store = _keyring_store(tmp_path)
    store.put(_token())
    result = store.update("shopee", "12345678", lambda current: _token(access="ACCESS-rotated"))
    assert result == store.get("shopee", "12345678") == _token(access="ACCESS-rotated")
    assert ("nfdoctor-tokens", KeyringTokenStore.PROBE_NAME) not in backend.entries


def test_keyring_update_serialises_concurrent_updaters(
    tmp_path: Path, use_keyring: Callable[[KeyringBackend], None]
) -> None:
    use_keyring(MemoryKeyring())

    def fifty_increments() -> None:
        store = _keyring_store(tmp_path)
        for _ in range(50):
            store.update("shopee", "12345678", _increment)

    _run_in_threads(fifty_increments)
    token = _keyring_store(tmp_path).get("shopee", "12345678")
    assert token is not None and token.refresh_token == "100"


@pytest.mark.parametrize("backend_class", [DroppingKeyring, FirstWriteOnlyKeyring])
def test_keyring_that_does_not_keep_writes_is_refused(
    tmp_path: Path,
    use_keyring: Callable[[KeyringBackend], None],
    backend_class: type[MemoryKeyring],
) -> None:
    backend = backend_class()
    backend.entries[("nfdoctor-tokens", "shopee/12345678")] = json.dumps(_record_json())
    backend.entries[("nfdoctor-tokens", KeyringTokenStore.PROBE_NAME)] = "an old probe"
    use_keyring(backend)
    store = _keyring_store(tmp_path)
    with pytest.raises(StateError) as caught:
        store.put(_token(access="ACCESS-rotated"))
    message = str(caught.value)
    assert "the keyring did not keep the token for shopee/12345678" in message
    assert "refusing to rotate into it" in message and "tokens: {store: file}" in message
    _assert_no_secrets(caught.value, ACCESS, REFRESH, "ACCESS-rotated")

    # update checks the backend before fn can spend a single-use refresh token
    called: list[StoredToken | None] = []

    def refresh(current: StoredToken | None) -> StoredToken:
        called.append(current)
        return _token(access="ACCESS-rotated")

    with pytest.raises(StateError, match="did not keep a test entry"):
        store.update("shopee", "12345678", refresh)
    assert called == []


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        (keyring.backends.fail.Keyring(), "no usable backend"),
        (keyring.backends.null.Keyring(), "discards everything"),
    ],
)
def test_unusable_keyring_backends_say_how_to_switch(
    tmp_path: Path,
    use_keyring: Callable[[KeyringBackend], None],
    backend: KeyringBackend,
    expected: str,
) -> None:
    use_keyring(backend)
    store = _keyring_store(tmp_path)
    for attempt in (
        lambda: store.get("shopee", "12345678"),
        lambda: store.put(_token()),
        lambda: store.update("shopee", "12345678", lambda current: _token()),
    ):
        with pytest.raises(KeyringUnavailableError) as caught:
            attempt()
        message = str(caught.value)
        assert expected in message and "set `tokens: {store: file}` in the config" in message
        assert "env:VAR" not in message  # that hint is for secret references, not tokens
        _assert_no_secrets(caught.value)
    assert "unusable" in store.describe()


def test_keyring_errors_are_one_line_without_the_token(
    tmp_path: Path, use_keyring: Callable[[KeyringBackend], None]
) -> None:
    use_keyring(ComplainingKeyring())
    with pytest.raises(KeyringUnavailableError) as caught:
        _keyring_store(tmp_path).put(_token())
    message = str(caught.value)
    assert message.startswith(
        "the OS keyring failed writing shopee/12345678 in nfdoctor-tokens (PasswordSetError: "
    )
    assert "collection locked" in message and "tokens: {store: file}" in message
    _assert_no_secrets(caught.value)


def test_a_hanging_keyring_is_bounded(
    tmp_path: Path, use_keyring: Callable[[KeyringBackend], None]
) -> None:
    backend = HangingKeyring()
    use_keyring(backend)
    started = time.monotonic()
    try:
        with pytest.raises(KeyringUnavailableError) as caught:
            _keyring_store(tmp_path, timeout_s=0.2).get("shopee", "1")
    finally:
        backend.release.set()
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "did not answer within 0.2 s (reading shopee/1 in nfdoctor-tokens)" in message
    assert "tokens: {store: file}" in message


def test_corrupt_keyring_entry_is_an_error_and_left_alone(
    tmp_path: Path, use_keyring: Callable[[KeyringBackend], None]
) -> None:
    backend = MemoryKeyring()
    garbage = '{"access_token": "' + ACCESS + '",'
    backend.entries[("nfdoctor-tokens", "shopee/1")] = garbage
    use_keyring(backend)
    store = _keyring_store(tmp_path)
    with pytest.raises(StateError) as caught:
        store.update("shopee", "1", lambda current: _token("shopee", "1"))
    assert str(caught.value).startswith("keyring nfdoctor-tokens/shopee/1:1:")
    assert "keyring del nfdoctor-tokens shopee/1" in str(caught.value)
    _assert_no_secrets(caught.value)
    assert backend.entries[("nfdoctor-tokens", "shopee/1")] == garbage


# --- choosing a store ---------------------------------------------------------------------


def test_open_token_store_follows_the_config(tmp_path: Path) -> None:
    base, state = tmp_path / "etc", tmp_path / "state"
    default_file = open_token_store(TokensConfig(store="file"), base_dir=base, state_dir=state)
    assert isinstance(default_file, FileTokenStore) and default_file.path == state / "tokens.json"
    relative = open_token_store(
        TokensConfig(store="file", path="data/t.json"), base_dir=base, state_dir=state
    )
    assert isinstance(relative, FileTokenStore) and relative.path == base / "data" / "t.json"
    home = open_token_store(
        TokensConfig(store="file", path="~/t.json"), base_dir=base, state_dir=state
    )
    assert isinstance(home, FileTokenStore)
    assert home.path == Path(os.environ["HOME"]) / "t.json"
    absolute = open_token_store(
        TokensConfig(store="file", path=str(tmp_path / "abs.json")), base_dir=base, state_dir=state
    )
    assert isinstance(absolute, FileTokenStore) and absolute.path == tmp_path / "abs.json"
    default = open_token_store(TokensConfig(), base_dir=base, state_dir=state)
    assert isinstance(default, KeyringTokenStore) and default.service == "nfdoctor-tokens"
    assert default.lock_path.parent == state
    assert not state.exists() and not base.exists()  # opening touches nothing
