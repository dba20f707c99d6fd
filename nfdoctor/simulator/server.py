"""Serving the simulator on loopback, and writing an nfdoctor config that points at it.

The simulator accepts any request signed with the credentials it issued, so it must never
be reachable from another machine: the server binds 127.0.0.1 and refuses anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp

from nfdoctor.errors import UsageError, WriteTargetError
from nfdoctor.fsutil import check_write_target, write_atomically
from nfdoctor.secrets.redaction import Redactor
from nfdoctor.simulator.crm import CRM_PREFIX
from nfdoctor.simulator.faults import SimulatedConnectionReset
from nfdoctor.simulator.registry import SIM_PLATFORMS
from nfdoctor.simulator.spec import ConfigContext
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.store.database import DatabaseUrl, split_password
from nfdoctor.tokens.store import FORMAT as TOKEN_FILE_FORMAT

__all__ = [
    "LOOPBACK",
    "TOKENS_FORMAT",
    "SimulatorServer",
    "check_loopback",
    "tokens_document",
    "write_config",
]

LOOPBACK = "127.0.0.1"


class _HideSimulatedResets(logging.Filter):
    """Drop uvicorn's traceback for resets the fault plan asked for: they are not bugs."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        # A client that gave up (its timeout) is what the timeout fault is for; a request
        # held by a fault is cancelled on purpose when the simulator stops.
        expected = (SimulatedConnectionReset, ClientDisconnect, asyncio.CancelledError)
        return not isinstance(exc, expected)


_RESET_FILTER = _HideSimulatedResets()


class _MaskIssuedSecrets(logging.Filter):
    """Mask, in uvicorn's access and error logs, every secret the simulator issued.

    Access log lines carry the query string, where Shopee, Lazada and Facebook send tokens,
    signatures and Facebook's ``ID|SECRET`` app token. The redactor masks them by value (the
    token table grows as the simulator issues tokens) and by parameter name.
    """

    def __init__(self, state: SimulatorState | None) -> None:
        super().__init__()
        self.state = state
        self.redactor = Redactor()
        self._known = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if self.state is not None:
            values = self.state.secret_values()
            if len(values) != self._known:
                for value in values:
                    self.redactor.add(value)
                self._known = len(values)
        redact = self.redactor.redact
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            # uvicorn's access formatter unpacks the arguments: mask them where they are.
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


class SimulatorStopped(Exception):
    """SIGTERM asked the simulator to stop: a normal end, not an interruption."""


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """While serving from the main thread, SIGTERM ends the run cleanly.

    uvicorn catches SIGTERM itself, shuts down (cancelling held requests after
    :data:`GRACEFUL_SHUTDOWN_S`) and then raises the signal again under the handler that was
    there before: this one, which ends :meth:`SimulatorServer.run` normally.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SimulatorStopped()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except SimulatorStopped:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


#: requests held by a latency or timeout fault are cancelled this long after a stop request
GRACEFUL_SHUTDOWN_S = 1


def check_loopback(host: str) -> None:
    """Refuse any host but 127.0.0.1."""
    if host != LOOPBACK:
        raise UsageError(
            f"the simulator serves on {LOOPBACK} only (got {host!r}): it accepts the "
            "credentials it issued and must not be reachable from other machines"
        )


class SimulatorServer:
    """A uvicorn server on a socket bound before start, so port 0 gives a known port."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        log_level: str = "warning",
        state: SimulatorState | None = None,
    ) -> None:
        check_loopback(host)
        if not 0 <= port <= 65535:
            raise UsageError(f"--port: expected 0-65535, got {port}")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Restarting on the same --port right after Ctrl-C must not wait out TIME_WAIT.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        # The simulated apps send their own (skewable) Date header; uvicorn's would duplicate it.
        config = uvicorn.Config(
            app,
            log_level=log_level,
            date_header=False,
            server_header=False,
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        self.server = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").addFilter(_RESET_FILTER)  # idempotent for one object
        masking = _MaskIssuedSecrets(state)
        for name in ("uvicorn.access", "uvicorn.error"):
            logger = logging.getLogger(name)
            for old in [f for f in logger.filters if isinstance(f, _MaskIssuedSecrets)]:
                logger.removeFilter(old)
            logger.addFilter(masking)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self.host}:{self.port}"

    def run(self) -> None:
        """Serve until interrupted (Ctrl-C: KeyboardInterrupt), SIGTERM or :meth:`stop`."""
        try:
            with _stop_on_sigterm():
                self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()

    def start_in_thread(self, timeout: float = 10.0) -> None:
        """Serve from a background thread; return once it accepts connections."""
        self._thread = threading.Thread(target=self.run, name="nfdoctor-simulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the simulator server did not start")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)


#: ``format`` of the tokens file: the file token store's own
TOKENS_FORMAT = TOKEN_FILE_FORMAT


def tokens_document(state: SimulatorState) -> dict[str, Any]:
    """Every account's current tokens, in the token store's file format.

    ``{"format": "nfdoctor.tokens/v1", "tokens": {platform: {account_id: {access_token,
    access_expires_at, refresh_token, refresh_expires_at, updated_at}}}}``; times are ISO 8601
    in UTC, ``null`` where there is no refresh token or no expiry (Facebook).
    """

    def iso(moment: datetime | None) -> str | None:
        return moment.astimezone(timezone.utc).isoformat() if moment is not None else None

    updated = iso(state.clock())
    tokens: dict[str, dict[str, dict[str, Any]]] = {}
    for platform, accounts in state.accounts.items():
        for account in accounts:
            access = state.current(platform, account.account_id, "access")
            refresh = state.current(platform, account.account_id, "refresh")
            if access is None:
                continue
            tokens.setdefault(platform, {})[account.account_id] = {
                "access_token": access.value,
                "access_expires_at": iso(access.expires_at),
                "refresh_token": refresh.value if refresh else None,
                "refresh_expires_at": iso(refresh.expires_at) if refresh else None,
                "updated_at": updated,
            }
    return {"format": TOKENS_FORMAT, "tokens": tokens}


def write_config(
    path: Path,
    base_url: str,
    state: SimulatorState,
    *,
    database_path: Path | None = None,
    database: DatabaseUrl | None = None,
) -> list[Path]:
    """Write a config pointing every platform at the simulator; secrets as 0600 ``file:`` refs.

    Every account of every platform is listed. Secret files go to ``<config stem>-secrets/``
    next to the config, together with ``tokens.json`` (see :func:`tokens_document`), which the
    config's ``tokens`` section names (``store: file``, path relative to the config). The token
    hosts are set too (Lazada and TikTok ``auth_url``, Zalo ``oauth_url``). Returns every file
    written, the config first.

    ``database_path`` (a SQLite file) or ``database`` (any database URL) becomes
    ``database.url``. A PostgreSQL password, in the URL or given apart, never goes into the
    config: it is written to ``database-password`` and named by ``database.password``.

    All or nothing: the target is checked before anything is written (a directory, a FIFO or
    a device is refused), the secrets are written into a staging directory that replaces the
    secrets directory only when complete, and any failure removes what was written.
    """
    base = base_url.rstrip("/")
    if database_path is not None:
        if database is not None:
            raise ValueError("give database_path or database, not both")
        database = DatabaseUrl("sqlite", path=database_path)
    try:
        check_write_target(path)
    except WriteTargetError as exc:
        raise UsageError(f"--write-config: {exc.reason}") from None
    secrets_dir = path.parent / f"{path.stem}-secrets"
    if secrets_dir.is_symlink() or (secrets_dir.exists() and not secrets_dir.is_dir()):
        raise UsageError(
            f"--write-config: {secrets_dir} exists and is not a directory; move it aside"
        )
    staging = Path(tempfile.mkdtemp(prefix=f".{path.stem}-secrets.", dir=path.parent))
    try:
        names = _write_secrets(staging, secrets_dir.name, base, state, database)
        text = names.pop("config.yaml")
        with _swapped_in(staging, secrets_dir):
            write_atomically(path, text)  # no secret in it: only file: references
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [path, *(secrets_dir / name for name in names)]


def _database_section(database: DatabaseUrl, secret: Callable[[str, str], str]) -> dict[str, str]:
    """``database:`` of the config: the URL, and the PostgreSQL password as a secret file."""
    if database.backend == "sqlite":
        assert database.path is not None
        return {"url": f"sqlite:///{database.path.resolve()}"}
    url, password = split_password(database.dsn or "")
    section = {"url": url}
    password = database.password or password
    if password:
        section["password"] = secret("database-password", password)
    return section


@contextlib.contextmanager
def _swapped_in(staging: Path, secrets_dir: Path) -> Iterator[None]:
    """Put ``staging`` in place of ``secrets_dir`` for the body; undo it if the body fails."""
    backup: Path | None = None
    if secrets_dir.exists():
        backup = Path(tempfile.mkdtemp(prefix=f".{secrets_dir.name}.old.", dir=secrets_dir.parent))
        os.rmdir(backup)
        os.rename(secrets_dir, backup)
    try:
        os.rename(staging, secrets_dir)
        try:
            yield
        except BaseException:
            os.rename(secrets_dir, staging)  # the caller removes it
            raise
    except BaseException:
        if backup is not None:
            os.rename(backup, secrets_dir)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def _write_secrets(
    staging: Path, dir_name: str, base: str, state: SimulatorState, database: DatabaseUrl | None
) -> dict[str, str]:
    """Write every secret file and tokens.json into ``staging``; return the file names written
    (in order) and, under ``config.yaml``, the config text that references them."""
    os.chmod(staging, 0o700)
    written: dict[str, str] = {}

    def secret(name: str, value: str) -> str:
        write_atomically(staging / name, value + "\n", mode=0o600)
        written[name] = name
        return f"file:{dir_name}/{name}"

    crm = base + CRM_PREFIX
    config: dict[str, Any] = {
        "crm": {
            "base_url": crm,
            "status_url": f"{crm}/api/status",
            "api_key": secret("crm-api-key", state.crm_api_key),
        },
        "ai": {
            "endpoint": f"{crm}/api/ai/reply",
            "api_key": secret("ai-api-key", state.crm_api_key),
        },
        "platforms": {
            spec.name: spec.config_section(
                state, ConfigContext(base, f"{crm}/webhooks/{spec.name}", secret)
            )
            for spec in SIM_PLATFORMS
        },
        "tokens": {"store": "file", "path": f"{dir_name}/tokens.json"},
    }
    if database is not None:
        config["database"] = _database_section(database, secret)

    tokens_path = staging / "tokens.json"
    write_atomically(tokens_path, json.dumps(tokens_document(state), indent=2) + "\n", mode=0o600)
    written["tokens.json"] = "tokens.json"

    count = state.accounts_per_platform
    accounts = f"{count} accounts" if count > 1 else "1 account"
    header = (
        "# Written by `nfdoctor simulator`: every platform points at the local simulator\n"
        f"# ({base}), {accounts} per platform, token hosts included (auth_url,\n"
        "# oauth_url). Secrets are file: references to 0600 files in\n"
        f"# {dir_name}/; the tokens the simulator issued at start are in\n"
        f"# {dir_name}/tokens.json, the file token store that `tokens:` names\n"
        "# (see nfdoctor/simulator/README.md).\n"
    )
    written["config.yaml"] = header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    return written
