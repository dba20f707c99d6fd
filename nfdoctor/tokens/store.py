"""The token store: each platform account's access and refresh tokens, kept between runs.

Tokens are state, not config. nfdoctor rewrites them on every refresh, and Shopee's and Zalo's
refresh tokens are single use: each refresh spends the stored refresh token and returns the
only one that works next time. A store therefore has to make three promises:

- a write is durable before ``put``/``update`` return (a crash right after a refresh must not
  lose the new refresh token);
- ``update`` runs read, refresh and write under one lock, so two cron runs never both
  present the same single-use refresh token;
- a store that cannot keep a token says so *before* a refresh token is rotated into it.

Two stores implement :class:`TokenStore`:

- :class:`FileTokenStore`: one JSON file (``nfdoctor.tokens/v1``, mode 0600), replaced
  atomically, locked through ``<file>.lock``. For headless servers and cron.
- :class:`KeyringTokenStore`: one OS keyring entry per account, every write read back;
  ``update`` is locked through a lock file in the state dir.

Neither ever overwrites data it could not read: a corrupt file or keyring entry is a
:class:`~nfdoctor.errors.StateError` naming where, and stays as it is for the operator.

The locks, the bounded read, the JSON decoding and the atomic write are
:mod:`nfdoctor.state`'s; the format, its legacy shape and the record checks are this module's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from nfdoctor.errors import (
    KeyringUnavailableError,
    LeaseBusyError,
    StateError,
    TokenKeyringUnavailableError,
    VersionConflictError,
)
from nfdoctor.fsutil import expand_user

# The bounded keyring helpers; keyring_access has no public bounded write or delete yet, and
# its own "unusable backend" hint points at secret references, not at the token store.
from nfdoctor.secrets.keyring_access import (
    UNUSABLE_BACKENDS,
    call_bounded,
    keyring_backend_name,
)
from nfdoctor.state.documents import decode_json, json_type, read_state_bytes, write_json
from nfdoctor.state.locks import FileStateLock, ensure_private_dir

if TYPE_CHECKING:
    from nfdoctor.config.model import TokensConfig
    from nfdoctor.platforms.base import TokenSet
    from nfdoctor.store.database import DatabaseUrl

__all__ = [
    "FORMAT",
    "MAX_TOKEN_FILE_BYTES",
    "FileTokenStore",
    "KeyringTokenStore",
    "LeaseBusyError",
    "StoredToken",
    "TokenStore",
    "VersionConflictError",
    "check_account",
    "open_token_store",
    "record_from_json",
    "record_to_json",
    "token_document",
    "token_format_problem",
]

T = TypeVar("T")

#: the file format's name and version, the ``format`` key of a token file
FORMAT = "nfdoctor.tokens/v1"
DEFAULT_FILE_NAME = "tokens.json"
DEFAULT_KEYRING_SERVICE = "nfdoctor-tokens"
#: a token record is about 500 bytes: this holds thousands of shops, and stops /dev/zero
MAX_TOKEN_FILE_BYTES = 16 * 1024 * 1024
#: times outside these are not expiries of a token but damage (or a calendar-edge test)
MIN_TIME = datetime(1970, 1, 2, tzinfo=timezone.utc)
MAX_TIME = datetime(9000, 1, 1, tzinfo=timezone.utc)

_RECORD_KEYS = (
    "access_token",
    "access_expires_at",
    "refresh_token",
    "refresh_expires_at",
    "updated_at",
)
_TIME_KEYS = ("access_expires_at", "refresh_expires_at", "updated_at")

_SWITCH_TO_FILE = (
    "set `tokens: {store: file}` in the config to keep tokens in a 0600 file instead "
    "(see docs/tokens.md)"
)


def _mask(value: str | None) -> str:
    if value is None:
        return "None"
    return f"***({len(value)} chars)" if value else "''"


def _require_utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"StoredToken.{name} must be timezone-aware")
    return value.astimezone(timezone.utc)


def token_format_problem(value: str) -> str | None:
    """Why ``value`` cannot be a platform token (every platform's are printable ASCII with no
    spaces), or None. A pasted line break otherwise reaches the platform and comes back as
    its "server overload" or "invalid token", blaming the wrong side."""
    for char in value:
        if char in "\r\n":
            return "it contains a line break"
        if char in " \t":
            return "it contains a space or a tab"
        if unicodedata.category(char) == "Cc":
            return f"it contains a control character (U+{ord(char):04X})"
        if not char.isascii():
            return f"it contains a non-ASCII character (U+{ord(char):04X})"
    return None


def check_account(platform: str, account_id: str) -> None:
    # The keyring entry name is "platform/account_id": a "/" in the platform would make two
    # accounts share one name.
    if not platform or "/" in platform or not account_id:
        raise ValueError(
            f"a token needs a platform without '/' and an account id (got {platform!r}, "
            f"{account_id!r})"
        )


@dataclass(frozen=True, kw_only=True)
class StoredToken:
    """One account's tokens and their expiries (aware UTC); ``repr`` masks both tokens."""

    platform: str
    account_id: str
    access_token: str = field(repr=False)
    access_expires_at: datetime | None  # None: never expires (Facebook long-lived page tokens)
    refresh_token: str | None = field(repr=False)  # None: the platform has none (Facebook)
    refresh_expires_at: datetime | None
    updated_at: datetime | None  # None: written by something that did not say (older files)
    #: who wrote this pair ("crm", "nfdoctor@host:pid"…); None where the store does not say
    updated_by: str | None = None
    #: incremented by every save; compare-and-set against it (0: never saved with a version)
    version: int = 0

    def __post_init__(self) -> None:
        check_account(self.platform, self.account_id)
        for name in _TIME_KEYS:
            # Stored and compared in UTC; a naive time would be read in the machine's zone.
            object.__setattr__(self, name, _require_utc(getattr(self, name), name))

    def __repr__(self) -> str:
        return (
            f"StoredToken(platform={self.platform!r}, account_id={self.account_id!r},"
            f" access_token={_mask(self.access_token)},"
            f" access_expires_at={self.access_expires_at!r},"
            f" refresh_token={_mask(self.refresh_token)},"
            f" refresh_expires_at={self.refresh_expires_at!r},"
            f" updated_at={self.updated_at!r}, updated_by={self.updated_by!r},"
            f" version={self.version})"
        )

    @classmethod
    def from_token_set(
        cls, platform: str, account_id: str, tokens: TokenSet, *, now: datetime
    ) -> StoredToken:
        """The record to store for a platform's token response, stamped ``now``."""
        return cls(
            platform=platform,
            account_id=account_id,
            access_token=tokens.access_token,
            access_expires_at=tokens.access_expires_at,
            # TokenSet uses "" where a platform issues no refresh token.
            refresh_token=tokens.refresh_token or None,
            refresh_expires_at=tokens.refresh_expires_at,
            updated_at=now,
        )

    def secret_values(self) -> tuple[str, ...]:
        """The token values, for :meth:`nfdoctor.secrets.redaction.Redactor.add`."""
        return tuple(value for value in (self.access_token, self.refresh_token) if value)


class TokenStore(Protocol):
    """Where tokens live between runs: the OS keyring or a 0600 file."""

    #: "file" or "keyring", as in the config's ``tokens.store``
    kind: str

    def describe(self) -> str:
        """Where the tokens are, in words an operator can act on; never a secret."""
        ...

    def get(self, platform: str, account_id: str) -> StoredToken | None:
        """The account's stored tokens, or None when it has none."""
        ...

    def put(self, token: StoredToken) -> None:
        """Store ``token`` for its account, durably, replacing what was there."""
        ...

    def update(
        self,
        platform: str,
        account_id: str,
        fn: Callable[[StoredToken | None], StoredToken],
    ) -> StoredToken:
        """Read, apply ``fn`` and write back under one lock; returns what ``fn`` returned.

        ``fn`` receives the current record (None when there is none). If it raises, nothing
        is written; if it returns the record unchanged, nothing is written either. ``fn``
        must not call ``put`` or ``update`` on the store (the lock is not reentrant).
        """
        ...

    def hold(
        self, platform: str, account_id: str, *, owner: str, lease_s: float, wait_s: float
    ) -> AbstractContextManager[None]:
        """The account's refresh lease, for the body of a ``with``: whoever holds it may spend
        the refresh token. Another holder is waited for up to ``wait_s``, then
        :class:`LeaseBusyError`. A holder that died is taken over once its lease (``lease_s``
        for this one) has run out (the CRM store) or at once (a lock file: the dead process's
        lock is gone)."""
        ...

    def save(self, token: StoredToken, *, expected_version: int, owner: str) -> StoredToken:
        """Write ``token`` if the stored pair is still at ``expected_version`` (compare and
        set; 0: there was none); :class:`VersionConflictError` otherwise, nothing written.
        Returns what was stored (its version is the new one). Call it inside :meth:`hold`."""
        ...


# --- serialisation ------------------------------------------------------------------------


def _format_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).isoformat()


def _parse_time(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    # The offending value is not quoted: a token pasted into the wrong field would leak.
    if not isinstance(value, str):
        raise StateError(f"{where}: expected an ISO 8601 time or null, got {json_type(value)}")
    text = value.strip()
    if text.endswith(("Z", "z")):  # fromisoformat accepts "Z" only from Python 3.11
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise StateError(f"{where}: not an ISO 8601 time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise StateError(f"{where}: time has no UTC offset (write e.g. +00:00)")
    try:
        utc = parsed.astimezone(timezone.utc)
    except OverflowError:
        utc = None
    # The calendar's edges (0001-01-01, 9999-12-31) cannot even be shown in another zone.
    if utc is None or not MIN_TIME <= utc <= MAX_TIME:
        raise StateError(
            f"{where}: time out of range (expected a year from {MIN_TIME.year} to {MAX_TIME.year})"
        )
    return utc


def record_to_json(token: StoredToken) -> dict[str, Any]:
    """One record of the token-file format (a keyring entry holds the same JSON)."""
    record: dict[str, Any] = {
        "access_token": token.access_token,
        "access_expires_at": _format_time(token.access_expires_at),
        "refresh_token": token.refresh_token,
        "refresh_expires_at": _format_time(token.refresh_expires_at),
        "updated_at": _format_time(token.updated_at),
    }
    if token.updated_by is not None:
        record["updated_by"] = token.updated_by
    if token.version:
        record["version"] = token.version
    return record


def token_document(tokens: Iterable[StoredToken]) -> dict[str, Any]:
    """A whole token file of ``tokens`` (what ``token export`` and a recovery file write)."""
    document: dict[str, Any] = {"format": FORMAT, "tokens": {}}
    for token in tokens:
        document["tokens"].setdefault(token.platform, {})[token.account_id] = record_to_json(token)
    return document


def record_from_json(platform: str, account_id: str, raw: object, where: str) -> StoredToken:
    """A record read from a file or keyring entry; ``where`` locates problems."""
    if not isinstance(raw, dict):
        raise StateError(f"{where}: expected an object, got {json_type(raw)}")
    access = raw.get("access_token")
    if not isinstance(access, str) or not access:
        raise StateError(f"{where}.access_token: missing or not a non-empty string")
    refresh = raw.get("refresh_token")
    if refresh is not None and not isinstance(refresh, str):
        raise StateError(f"{where}.refresh_token: expected a string or null")
    times = {name: _parse_time(raw.get(name), f"{where}.{name}") for name in _TIME_KEYS}
    updated_by = raw.get("updated_by")
    if updated_by is not None and not isinstance(updated_by, str):
        raise StateError(f"{where}.updated_by: expected a string or null")
    version = raw.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise StateError(f"{where}.version: expected a whole number from 0")
    return StoredToken(
        platform=platform,
        account_id=account_id,
        access_token=access,
        refresh_token=refresh or None,
        access_expires_at=times["access_expires_at"],
        refresh_expires_at=times["refresh_expires_at"],
        updated_at=times["updated_at"],
        updated_by=updated_by,
        version=version,
    )


@contextlib.contextmanager
def _held(directory: Path, platform: str, account_id: str, wait_s: float) -> Iterator[None]:
    """One account's refresh lease as a lock file in ``directory`` (file and keyring
    stores): held while the body runs, released by the system if the process dies.

    Not a :class:`FileStateLock`: the refresher takes and releases it from worker threads,
    and a flock belongs to the open file, not to a thread.
    """
    import filelock

    ensure_private_dir(directory)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{platform}-{account_id}")
    lock = filelock.FileLock(
        str(directory / f"{safe}.lock"), timeout=wait_s, mode=0o600, thread_local=False
    )
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LeaseBusyError(
            f"the refresh lease of {platform} {account_id} is held by another nfdoctor run "
            f"(waited {wait_s:g} s); it is refreshing that account now"
        ) from None
    except OSError as exc:
        raise StateError(
            f"cannot take the refresh lease of {platform} {account_id}: {exc.strerror or exc}"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _check_version(current: StoredToken | None, expected: int, token: StoredToken) -> None:
    found = current.version if current is not None else 0
    if found != expected:
        by = f" by {current.updated_by}" if current is not None and current.updated_by else ""
        raise VersionConflictError(
            f"{token.platform} {token.account_id}: the stored pair changed while this run "
            f"refreshed it (version {found}{by}, expected {expected}); nothing was written"
        )


def _versioned(token: StoredToken, version: int, owner: str) -> StoredToken:
    return dataclasses.replace(token, version=version, updated_by=owner)


_RECOVER = "Fix it by hand, or move it aside and re-authorise the accounts it held"


def _decode_json(data: bytes, where: str, recover: str) -> object:
    """Parsed JSON, or StateError with line and column (never with the text: it holds tokens)."""
    return decode_json(data, where, recover=recover, kind="token document")


def _safe_text(text: str, token: StoredToken | None) -> str:
    """``text`` with the token's values masked: a backend's error message might quote them."""
    if token is not None:
        for value in token.secret_values():
            text = text.replace(value, "***")
    return text


# --- the file store -----------------------------------------------------------------------


class FileTokenStore:
    """Tokens in one 0600 JSON file, replaced atomically, locked through ``<file>.lock``."""

    kind = "file"

    def __init__(self, path: Path, *, lock_timeout_s: float = 10) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.lock_timeout_s = lock_timeout_s

    def __repr__(self) -> str:
        return f"FileTokenStore({str(self.path)!r})"

    def describe(self) -> str:
        """``file store /path/tokens.json``."""
        return f"file store {self.path}"

    def permissions_problem(self) -> str | None:
        """Why the file is readable or writable by others, or None when it is private/absent."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"cannot inspect {self.path}: {exc.strerror or exc}"
        mode = stat.S_IMODE(info.st_mode)
        problems: list[str] = []
        readers = [who for who, bit in (("group", 0o040), ("others", 0o004)) if mode & bit]
        writers = [who for who, bit in (("group", 0o020), ("others", 0o002)) if mode & bit]
        if readers:
            problems.append(f"readable by {' and '.join(readers)}")
        if writers:
            problems.append(f"writable by {' and '.join(writers)}")
        if problems:
            found = ", ".join(problems)
            return f"{self.path}: mode {mode:04o}: {found} (run: chmod 600 {self.path})"
        getuid = getattr(os, "geteuid", None)
        if getuid is not None and info.st_uid != getuid():
            # Its owner can read the tokens and replace them; this user cannot tighten it.
            return f"{self.path}: owned by uid {info.st_uid}, not by this user (uid {getuid()})"
        return None

    def get(self, platform: str, account_id: str) -> StoredToken | None:
        """The account's tokens from the file; None when the file or the account is absent."""
        # No lock: writers replace the file by rename, so a reader sees the old or the new.
        check_account(platform, account_id)
        document = self._read()
        raw = _tokens_of(document).get(platform, {}).get(account_id)
        if raw is None:
            return None
        return record_from_json(platform, account_id, raw, self._where(platform, account_id))

    def put(self, token: StoredToken) -> None:
        """Write ``token`` into the file under the lock (other accounts kept as they were)."""
        with self._lock():
            self._write(self._read(), token)

    def update(
        self,
        platform: str,
        account_id: str,
        fn: Callable[[StoredToken | None], StoredToken],
    ) -> StoredToken:
        """Read, apply ``fn`` and write back, all under the file's lock."""
        check_account(platform, account_id)
        with self._lock():
            document = self._read()
            raw = _tokens_of(document).get(platform, {}).get(account_id)
            current = (
                None
                if raw is None
                else record_from_json(platform, account_id, raw, self._where(platform, account_id))
            )
            new = _apply(fn, current, platform, account_id)
            if new != current:
                self._write(document, new)
            return new

    def hold(
        self, platform: str, account_id: str, *, owner: str, lease_s: float, wait_s: float
    ) -> AbstractContextManager[None]:
        """A lock file per account beside the token file (released when its process dies)."""
        check_account(platform, account_id)
        directory = self.path.with_name(self.path.name + ".leases")
        return _held(directory, platform, account_id, wait_s)

    def save(self, token: StoredToken, *, expected_version: int, owner: str) -> StoredToken:
        """Compare-and-set on the record's ``version`` under the file's lock."""
        with self._lock():
            document = self._read()
            raw = _tokens_of(document).get(token.platform, {}).get(token.account_id)
            where = self._where(token.platform, token.account_id)
            current = (
                None
                if raw is None
                else record_from_json(token.platform, token.account_id, raw, where)
            )
            _check_version(current, expected_version, token)
            saved = _versioned(token, expected_version + 1, owner)
            self._write(document, saved)
            return saved

    # -- internals

    def _lock(self) -> FileStateLock:
        what = f"the token file {self.path}"
        return FileStateLock(self.lock_path, timeout_s=self.lock_timeout_s, what=what)

    def _where(self, platform: str, account_id: str) -> str:
        return f"{self.path}: tokens.{platform}.{account_id}"

    def _read(self) -> dict[str, Any]:
        """The whole document in v1 shape (a legacy bare mapping is wrapped); empty if absent."""
        data = read_state_bytes(self.path, limit=MAX_TOKEN_FILE_BYTES, kind="token file")
        if data is None:
            return {"format": FORMAT, "tokens": {}}
        document = _decode_json(data, str(self.path), _RECOVER)
        if not isinstance(document, dict):
            raise StateError(
                f"{self.path}: expected a JSON object, got {json_type(document)}; nothing "
                f"was changed. {_RECOVER}"
            )
        if "format" not in document:
            # The legacy shape (what `nfdoctor simulator` wrote first): platforms at the top.
            document = {"format": FORMAT, "tokens": document}
        elif document["format"] != FORMAT:
            shown = document["format"] if isinstance(document["format"], str) else "?"
            raise StateError(
                f"{self.path}: unknown token file format {shown!r} (this nfdoctor reads "
                f"{FORMAT!r}); nothing was changed. A newer nfdoctor may have written it"
            )
        _validate_shape(document, str(self.path))
        return document

    def _write(self, document: dict[str, Any], token: StoredToken) -> None:
        tokens = document.setdefault("tokens", {})
        accounts = tokens.setdefault(token.platform, {})
        previous = accounts.get(token.account_id)
        # Keys this version does not know are kept: a newer writer may have added them.
        record = dict(previous) if isinstance(previous, dict) else {}
        record.update(record_to_json(token))
        accounts[token.account_id] = record
        document["format"] = FORMAT
        # The caller holds the lock, which created the directory. write_json serialises
        # before touching the disk, and its temp file is created 0600, so the tokens are
        # never briefly readable by others.
        write_json(self.path, document, mode=0o600)


def _validate_shape(document: dict[str, Any], where: str) -> None:
    tokens = document.get("tokens")
    if not isinstance(tokens, dict):
        raise StateError(
            f"{where}: tokens: expected an object of platforms, got {json_type(tokens)}; "
            f"nothing was changed. {_RECOVER}"
        )
    for platform, accounts in tokens.items():
        if not isinstance(accounts, dict):
            raise StateError(
                f"{where}: tokens.{platform}: expected an object of accounts, got "
                f"{json_type(accounts)}; nothing was changed. {_RECOVER}"
            )


def _tokens_of(document: Mapping[str, Any]) -> dict[str, dict[str, object]]:
    tokens: dict[str, dict[str, object]] = document["tokens"]
    return tokens


def _apply(
    fn: Callable[[StoredToken | None], StoredToken],
    current: StoredToken | None,
    platform: str,
    account_id: str,
) -> StoredToken:
    new = fn(current)
    if (new.platform, new.account_id) != (platform, account_id):
        raise ValueError(
            f"update({platform!r}, {account_id!r}) got a token for "
            f"{new.platform!r}, {new.account_id!r}"
        )
    return new


# --- the keyring store --------------------------------------------------------------------


class KeyringTokenStore:
    """Tokens in the OS keyring, one entry per account (``platform/account_id``)."""

    kind = "keyring"

    #: the entry written and read back before a refresh, to prove the backend keeps writes
    PROBE_NAME = "nfdoctor-probe"

    def __init__(
        self,
        service: str = DEFAULT_KEYRING_SERVICE,
        *,
        lock_dir: Path,
        timeout_s: float = 3.0,
        lock_timeout_s: float = 10,
    ) -> None:
        self.service = service
        self.timeout_s = timeout_s
        self.lock_timeout_s = lock_timeout_s
        safe_service = re.sub(r"[^A-Za-z0-9._-]", "_", service)
        self.lock_path = lock_dir / f"keyring-{safe_service}.lock"

    def __repr__(self) -> str:
        return f"KeyringTokenStore({self.service!r})"

    def describe(self) -> str:
        """``OS keyring (backend ..., service nfdoctor-tokens)``; says so if unusable."""
        try:
            backend = keyring_backend_name(self.timeout_s)
        except KeyringUnavailableError:
            return f"OS keyring (backend not answering, service {self.service})"
        unusable = " — unusable" if backend in UNUSABLE_BACKENDS else ""
        return f"OS keyring (backend {backend}{unusable}, service {self.service})"

    def get(self, platform: str, account_id: str) -> StoredToken | None:
        """The account's tokens from its keyring entry; None when there is no entry."""
        check_account(platform, account_id)
        self._ensure_usable()
        name = _entry_name(platform, account_id)
        value = self._call(lambda kr: kr.get_password(self.service, name), f"reading {name}")
        if value is None:
            return None
        where = f"keyring {self.service}/{name}"
        recover = (
            f"Fix the entry, or delete it (keyring del {self.service} {name}) and "
            "re-authorise the account"
        )
        raw = _decode_json(value.encode("utf-8"), where, recover)
        return record_from_json(platform, account_id, raw, where)

    def put(self, token: StoredToken) -> None:
        """Write the entry, read it back and compare; StateError if the keyring lost it."""
        self._ensure_usable()
        with self._lock():
            self._write(token)

    def update(
        self,
        platform: str,
        account_id: str,
        fn: Callable[[StoredToken | None], StoredToken],
    ) -> StoredToken:
        """Read, apply ``fn`` and write back under the lock; the backend is proven first."""
        check_account(platform, account_id)
        self._ensure_usable()
        with self._lock():
            # Prove the backend keeps writes before fn spends a single-use refresh token.
            self._verify_round_trip()
            current = self.get(platform, account_id)
            new = _apply(fn, current, platform, account_id)
            if new != current:
                self._write(new)
            return new

    def hold(
        self, platform: str, account_id: str, *, owner: str, lease_s: float, wait_s: float
    ) -> AbstractContextManager[None]:
        """A lock file per account in the state dir (released when its process dies)."""
        check_account(platform, account_id)
        directory = self.lock_path.with_name(self.lock_path.stem + ".leases")
        return _held(directory, platform, account_id, wait_s)

    def save(self, token: StoredToken, *, expected_version: int, owner: str) -> StoredToken:
        """Compare-and-set on the entry's ``version``; the backend proven and read back."""
        self._ensure_usable()
        with self._lock():
            self._verify_round_trip()
            current = self.get(token.platform, token.account_id)
            _check_version(current, expected_version, token)
            saved = _versioned(token, expected_version + 1, owner)
            self._write(saved)
            return saved

    # -- internals

    def _lock(self) -> FileStateLock:
        what = f"the keyring token store {self.service}"
        return FileStateLock(self.lock_path, timeout_s=self.lock_timeout_s, what=what)

    def _ensure_usable(self) -> None:
        backend = self._bounded(lambda: keyring_backend_name(self.timeout_s))
        problem = UNUSABLE_BACKENDS.get(backend)
        if problem:
            raise TokenKeyringUnavailableError(
                f"cannot keep tokens in the OS keyring: it has {problem}; {_SWITCH_TO_FILE}"
            )

    def _call(self, fn: Callable[[Any], T], what: str, token: StoredToken | None = None) -> T:
        """``fn(keyring)``, bounded; any backend failure becomes one line with the way out."""

        def call() -> T:
            import keyring

            try:
                return fn(keyring)
            # Backends raise more than keyring.errors.KeyringError (D-Bus, secretstorage,
            # macOS Security errors); each must be a message, never a crash.
            except Exception as exc:
                detail = _safe_text(f"{type(exc).__name__}: {exc}", token)
                raise TokenKeyringUnavailableError(
                    f"the OS keyring failed {what} in {self.service} ({detail}); {_SWITCH_TO_FILE}"
                ) from None

        where = f"{what} in {self.service}"
        return self._bounded(lambda: call_bounded(call, self.timeout_s, where))

    def _bounded(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except TokenKeyringUnavailableError:
            raise
        except KeyringUnavailableError as exc:
            # Reported by keyring_access with the advice for secret references; for tokens
            # the way out is the file store.
            raise TokenKeyringUnavailableError(f"{exc.detail}; {_SWITCH_TO_FILE}") from None

    def _write(self, token: StoredToken) -> None:
        name = _entry_name(token.platform, token.account_id)
        value = json.dumps(record_to_json(token), sort_keys=True)
        self._call(lambda kr: kr.set_password(self.service, name, value), f"writing {name}", token)
        stored = self._call(
            lambda kr: kr.get_password(self.service, name), f"reading back {name}", token
        )
        if stored != value:
            raise StateError(
                f"the keyring did not keep the token for {token.platform}/{token.account_id} "
                f"(service {self.service}: reading it back gave "
                f"{'nothing' if stored is None else 'a different value'}); refusing to rotate "
                f"into it; {_SWITCH_TO_FILE}"
            )

    def _verify_round_trip(self) -> None:
        nonce = os.urandom(8).hex()
        self._call(
            lambda kr: kr.set_password(self.service, self.PROBE_NAME, nonce), "writing a probe"
        )
        stored = self._call(
            lambda kr: kr.get_password(self.service, self.PROBE_NAME), "reading back a probe"
        )
        with contextlib.suppress(Exception):
            # Tidiness only: a leftover probe entry holds nothing secret.
            self._call(
                lambda kr: kr.delete_password(self.service, self.PROBE_NAME), "deleting a probe"
            )
        if stored != nonce:
            raise StateError(
                f"the keyring did not keep a test entry (service {self.service}); refusing to "
                f"rotate a refresh token into it; {_SWITCH_TO_FILE}"
            )


def _entry_name(platform: str, account_id: str) -> str:
    return f"{platform}/{account_id}"


# --- choosing a store ---------------------------------------------------------------------


def open_token_store(
    config: TokensConfig,
    *,
    base_dir: Path,
    state_dir: Path,
    database: DatabaseUrl | None = None,
    clock: Callable[[], datetime] | None = None,
) -> TokenStore:
    """The store the ``tokens`` config section names; opening touches nothing on disk.

    ``tokens.path`` is relative to ``base_dir`` (the config file's directory), ``~`` expanded;
    without it the file store is ``state_dir/tokens.json``. The keyring store keeps its lock
    file in ``state_dir``. ``crm``: the CRM database's ``channel_credentials`` (``database``,
    the configured CRM database, password attached). ``auto`` (the default): the CRM's table
    when a database is configured and has it, else the keyring.
    """
    if config.store == "crm" or (config.store == "auto" and database is not None):
        if database is None:
            raise StateError(
                "tokens.store: crm reads the CRM database's channel_credentials: set "
                "database.url (or choose tokens.store: file or keyring)"
            )
        from nfdoctor.tokens.crm import CrmTokenStore, has_credentials_table

        if config.store == "crm" or has_credentials_table(database):
            return CrmTokenStore(database, clock=clock)
    if config.store == "file":
        if config.path:
            try:
                path = expand_user(config.path)
            except ValueError as exc:
                raise StateError(f"tokens.path: {exc}") from None
            if not path.is_absolute():
                path = base_dir / path
        else:
            path = state_dir / DEFAULT_FILE_NAME
        return FileTokenStore(path)
    return KeyringTokenStore(lock_dir=state_dir)
