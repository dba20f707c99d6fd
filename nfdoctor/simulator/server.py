"""Serving the simulator on loopback, and writing an nfdoctor config that points at it.

The simulator accepts any request signed with the credentials it issued, so it must never
be reachable from another machine: the server binds 127.0.0.1 and refuses anything else.

With ``--tls`` the same app is also served over HTTPS on a second loopback port, where each
platform's CRM receiver has its own host name (``<platform>.crm.nfdoctor.test``) and the
certificate of the kind the fault plan names for it (:class:`CrmTlsSites`). The certificate
is chosen from the server name in the client's ClientHello, read (``MSG_PEEK``) before the
TLS handshake starts, rather than in an SNI callback: OpenSSL picks the protocol version
before it calls the SNI callback, so a callback could switch the certificate but never make
one host speak TLS 1.1 at most (the ``tls11`` kind). The accepted socket is then handed to
uvicorn's own HTTP protocol with that host's context (``loop.connect_accepted_socket``), in
the same event loop as the plain port, so both start and stop together. A ClientHello whose
server name cannot be read gets a default context whose SNI callback still switches the
certificate.
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
import ssl
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp

from nfdoctor.errors import StateError, UsageError, WriteTargetError
from nfdoctor.fsutil import check_write_target, write_atomically
from nfdoctor.net.connect import parse_connect_to
from nfdoctor.secrets.redaction import Redactor
from nfdoctor.simulator.certs import CERT_KINDS, DEFAULT_CERT_KIND, SimulatorPki
from nfdoctor.simulator.crm import CRM_PREFIX
from nfdoctor.simulator.emitter import WebhookEmitter, emitter_for
from nfdoctor.simulator.faults import SimulatedConnectionReset
from nfdoctor.simulator.registry import SIM_PLATFORMS
from nfdoctor.simulator.spec import ConfigContext
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.store.database import DatabaseUrl, split_password
from nfdoctor.tokens.store import FORMAT as TOKEN_FILE_FORMAT

__all__ = [
    "CRM_TLS_DOMAIN",
    "LOOPBACK",
    "TOKENS_FORMAT",
    "CrmTlsSites",
    "SimulatorServer",
    "check_loopback",
    "client_hello_server_name",
    "connect_to_rules",
    "crm_tls_host",
    "platform_emitter",
    "tokens_document",
    "webhook_urls",
    "write_config",
]

LOOPBACK = "127.0.0.1"
#: the CRM receivers' HTTPS host names are ``<platform>.crm.nfdoctor.test`` (nothing
#: resolves them: clients reach them through ``connect_to`` rules)
CRM_TLS_DOMAIN = "crm.nfdoctor.test"


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


def crm_tls_host(platform: str) -> str:
    """The HTTPS host name of a platform's CRM receiver: ``lazada.crm.nfdoctor.test``."""
    return f"{platform}.{CRM_TLS_DOMAIN}"


def webhook_urls(base_url: str, *, https: bool) -> dict[str, str]:
    """Every platform's webhook URL: where the platform delivers, what its config says.

    ``https``: ``https://<platform>.crm.nfdoctor.test/crm/webhooks/<platform>`` (no port:
    TikTok and Zalo refuse URLs with one; ``connect_to`` rules say where the name goes);
    else ``<base_url>/crm/webhooks/<platform>`` on the plain port.
    """
    if https:
        return {
            spec.name: f"https://{crm_tls_host(spec.name)}{CRM_PREFIX}/webhooks/{spec.name}"
            for spec in SIM_PLATFORMS
        }
    base = base_url.rstrip("/")
    return {spec.name: f"{base}{CRM_PREFIX}/webhooks/{spec.name}" for spec in SIM_PLATFORMS}


def platform_emitter(
    state: SimulatorState, server: SimulatorServer, root_pem: bytes | None
) -> WebhookEmitter | None:
    """The platforms' webhook emitter the fault plan asks for (``emitter:``), delivering to
    the receivers ``server`` serves: over HTTPS through the ``connect_to`` rules, trusting
    the run's CA, when it serves them so. None when the plan has no emitter."""
    if server.tls_port is None or root_pem is None:
        return emitter_for(state)
    return emitter_for(
        state,
        # As a platform does: the receiver's certificate is verified.
        ssl_context=ssl.create_default_context(cadata=root_pem.decode("ascii")),
        connect_to=[parse_connect_to(rule) for rule in connect_to_rules(server.tls_port)],
    )


def connect_to_rules(tls_port: int) -> list[str]:
    """One ``HOST:443:127.0.0.1:PORT`` rule per platform receiver (curl's --connect-to)."""
    return [f"{crm_tls_host(spec.name)}:443:{LOOPBACK}:{tls_port}" for spec in SIM_PLATFORMS]


class CrmTlsSites:
    """The CRM receivers' HTTPS sites: a server context per platform host name.

    ``kinds``: platform -> certificate kind (:data:`~nfdoctor.simulator.certs.CERT_KINDS`);
    a platform not named gets ``valid``. An unknown platform or kind is a UsageError. A
    client naming no known host (no SNI, ``https://127.0.0.1:PORT``) gets a valid
    certificate for 127.0.0.1.
    """

    def __init__(self, pki: SimulatorPki, kinds: Mapping[str, str] | None = None) -> None:
        names = [spec.name for spec in SIM_PLATFORMS]
        for platform, kind in (kinds or {}).items():
            if platform not in names:
                raise UsageError(
                    f"tls: {platform!r} is not a simulated platform (expected one of "
                    f"{', '.join(names)})"
                )
            if kind not in CERT_KINDS:
                raise UsageError(
                    f"tls: {platform}: unknown certificate kind {kind!r} (expected one of "
                    f"{', '.join(CERT_KINDS)})"
                )
        self.pki = pki
        #: platform -> the kind its host serves
        self.kinds: dict[str, str] = {
            name: (kinds or {}).get(name, DEFAULT_CERT_KIND) for name in names
        }
        self._contexts = {
            crm_tls_host(platform): pki.server_context(kind, crm_tls_host(platform))
            for platform, kind in self.kinds.items()
        }
        self.default_context = pki.server_context(DEFAULT_CERT_KIND, LOOPBACK)
        self.default_context.sni_callback = self._switch_certificate

    def context_for(self, server_name: str | None) -> ssl.SSLContext:
        """The context for a ClientHello naming ``server_name`` (None: it named none)."""
        return self._contexts.get((server_name or "").lower(), self.default_context)

    def _switch_certificate(
        self, ssl_object: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext
    ) -> None:
        chosen = self._contexts.get((server_name or "").lower())
        if chosen is not None:
            ssl_object.context = chosen


#: what a client gets to send its ClientHello (and then to finish the handshake)
_HANDSHAKE_TIMEOUT_S = 10.0
#: a TLS record header and the largest record: a ClientHello fits in one
_CLIENT_HELLO_MAX = 5 + 16384
_TLS_HANDSHAKE_RECORD = 0x16
_CLIENT_HELLO = 0x01
_SERVER_NAME_EXTENSION = 0x0000


def client_hello_server_name(data: bytes) -> str | None:
    """The host name a TLS ClientHello (its first record, as received) asks for, lower case.

    None when ``data`` is not a ClientHello, carries no server_name extension, or is cut
    short before it.
    """
    try:
        if data[0] != _TLS_HANDSHAKE_RECORD:
            return None
        record = data[5 : 5 + int.from_bytes(data[3:5], "big")]
        if record[0] != _CLIENT_HELLO:
            return None
        hello = record[4 : 4 + int.from_bytes(record[1:4], "big")]
        at = 2 + 32  # client_version, random
        at += 1 + hello[at]  # session_id
        at += 2 + int.from_bytes(hello[at : at + 2], "big")  # cipher_suites
        at += 1 + hello[at]  # compression_methods
        end = min(at + 2 + int.from_bytes(hello[at : at + 2], "big"), len(hello))
        at += 2
        while at + 4 <= end:
            kind = int.from_bytes(hello[at : at + 2], "big")
            size = int.from_bytes(hello[at + 2 : at + 4], "big")
            body = hello[at + 4 : at + 4 + size]
            at += 4 + size
            if kind != _SERVER_NAME_EXTENSION:
                continue
            entry = 2  # server_name_list length
            while entry + 3 <= len(body):
                name_type = body[entry]
                length = int.from_bytes(body[entry + 1 : entry + 3], "big")
                name = body[entry + 3 : entry + 3 + length]
                if name_type == 0 and len(name) == length:  # host_name
                    return name.decode("ascii").rstrip(".").lower()
                entry += 3 + length
            return None
    except (IndexError, UnicodeDecodeError):
        return None
    return None


def _client_hello_complete(data: bytes) -> bool:
    """Whether ``data`` holds the whole first record (or is plainly not TLS)."""
    if not data or data[0] != _TLS_HANDSHAKE_RECORD:
        return True
    return len(data) >= 5 and len(data) >= 5 + int.from_bytes(data[3:5], "big")


async def _readable(conn: socket.socket, timeout: float) -> None:
    """Wait until ``conn`` has bytes to read (or is closed); TimeoutError after ``timeout``."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(conn.fileno(), wake)
    try:
        await asyncio.wait_for(ready, timeout)
    finally:
        loop.remove_reader(conn.fileno())


async def _peek_client_hello(conn: socket.socket, timeout: float) -> bytes:
    """The client's first TLS record, left unread in the socket for the handshake."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + timeout
    while True:
        await _readable(conn, max(ends - loop.time(), 0.0))
        data = conn.recv(_CLIENT_HELLO_MAX, socket.MSG_PEEK)
        if _client_hello_complete(data) or len(data) >= _CLIENT_HELLO_MAX:
            return data
        if loop.time() >= ends:
            raise asyncio.TimeoutError
        # Part of the record is in: the socket stays readable, so wait for the rest
        # rather than spin on the same bytes.
        await asyncio.sleep(0.005)


class _HttpsListener:
    """Accepts on the HTTPS socket; starts TLS with the context the ClientHello names."""

    def __init__(self, sock: socket.socket, sites: CrmTlsSites) -> None:
        self.sock = sock
        self.sites = sites
        self._accepting: asyncio.Task[None] | None = None
        self._opening: set[asyncio.Task[None]] = set()
        self._transports: weakref.WeakSet[asyncio.Transport] = weakref.WeakSet()

    def start(self, protocol_factory: Callable[[], asyncio.Protocol]) -> None:
        """Start accepting in the running loop; connections go to ``protocol_factory``."""
        self._accepting = asyncio.get_running_loop().create_task(self._accept(protocol_factory))

    async def _accept(self, protocol_factory: Callable[[], asyncio.Protocol]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self.sock)
            except OSError:
                # EMFILE, ECONNABORTED …: this connection is lost, not the listener.
                await asyncio.sleep(0.05)
                continue
            task = loop.create_task(self._open(conn, protocol_factory))
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)

    async def _open(
        self, conn: socket.socket, protocol_factory: Callable[[], asyncio.Protocol]
    ) -> None:
        handed_over = False
        try:
            hello = await _peek_client_hello(conn, _HANDSHAKE_TIMEOUT_S)
            context = self.sites.context_for(client_hello_server_name(hello))
            handed_over = True  # the transport closes the socket if the handshake fails
            transport, _ = await asyncio.get_running_loop().connect_accepted_socket(
                protocol_factory, conn, ssl=context, ssl_handshake_timeout=_HANDSHAKE_TIMEOUT_S
            )
            self._transports.add(transport)
        except (OSError, asyncio.TimeoutError):
            # A client that is not TLS, sends nothing, or fails its handshake: its own
            # business (the inspector's tests do all three), not the server's.
            pass
        finally:
            if not handed_over:
                conn.close()

    def close(self) -> None:
        """Stop accepting and drop the connections still before their handshake."""
        for task in (self._accepting, *self._opening):
            if task is not None:
                task.cancel()

    async def wait_closed(self) -> None:
        """Wait for the tasks :meth:`close` cancelled; drop the connections still open.

        A TLS connection that uvicorn asked to close waits for the client's close_notify
        (30 s at most); the loop ends before that, so it is aborted instead.
        """
        tasks = [t for t in (self._accepting, *self._opening) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        for transport in list(self._transports):
            transport.abort()
        await asyncio.sleep(0)  # let the aborted transports close their sockets


class _ServerWithHttps(uvicorn.Server):
    """uvicorn's server, also serving the same app over HTTPS from the same event loop."""

    def __init__(self, config: uvicorn.Config, https: _HttpsListener | None) -> None:
        super().__init__(config)
        self.https = https

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.https is None or not self.started:
            return
        config = self.config
        loop = asyncio.get_running_loop()

        def create_protocol() -> asyncio.Protocol:
            # What uvicorn's own startup builds for each connection of its listeners.
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
                _loop=loop,
            )

        self.https.start(create_protocol)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.https is not None:
            self.https.close()
        # uvicorn asks every open connection, plain or HTTPS, to finish, then waits.
        await super().shutdown(sockets=sockets)
        if self.https is not None:
            await self.https.wait_closed()


def _listening_socket(host: str, port: int, option: str) -> socket.socket:
    """A TCP socket bound to ``host:port`` (UsageError naming ``option`` if it cannot be)."""
    if not 0 <= port <= 65535:
        raise UsageError(f"{option}: expected 0-65535, got {port}")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Restarting on the same port right after Ctrl-C must not wait out TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


class SimulatorServer:
    """A uvicorn server on a socket bound before start, so port 0 gives a known port.

    ``tls``: also serve the app over HTTPS on ``tls_port`` (0 picks one), each CRM receiver
    host with its own certificate; both ports start and stop together.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        log_level: str = "warning",
        state: SimulatorState | None = None,
        tls: CrmTlsSites | None = None,
        tls_port: int = 0,
    ) -> None:
        check_loopback(host)
        self.sock = _listening_socket(host, port, "--port")
        self.tls_sock: socket.socket | None = None
        https: _HttpsListener | None = None
        if tls is not None:
            try:
                self.tls_sock = _listening_socket(host, tls_port, "tls_port")
                self.tls_sock.listen(socket.SOMAXCONN)
                self.tls_sock.setblocking(False)
            except BaseException:
                self.sock.close()
                if self.tls_sock is not None:
                    self.tls_sock.close()
                raise
            https = _HttpsListener(self.tls_sock, tls)
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        #: the HTTPS port (None without ``tls``)
        self.tls_port: int | None = self.tls_sock.getsockname()[1] if self.tls_sock else None
        self.tls = tls
        # The simulated apps send their own (skewable) Date header; uvicorn's would duplicate it.
        config = uvicorn.Config(
            app,
            log_level=log_level,
            date_header=False,
            server_header=False,
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        self.server = _ServerWithHttps(config, https)
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

    @property
    def tls_url(self) -> str | None:
        """The HTTPS base URL by address, e.g. ``https://127.0.0.1:41235`` (None without TLS)."""
        return f"https://{self.host}:{self.tls_port}" if self.tls_port is not None else None

    def run(self) -> None:
        """Serve until interrupted (Ctrl-C: KeyboardInterrupt), SIGTERM or :meth:`stop`."""
        try:
            with _stop_on_sigterm():
                self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()
            if self.tls_sock is not None:
                self.tls_sock.close()

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
    tls_port: int | None = None,
    ca_pem: bytes | None = None,
    crm_tokens: bool = False,
) -> list[Path]:
    """Write a config pointing every platform at the simulator; secrets as 0600 ``file:`` refs.

    Every account of every platform is listed. Secret files go to ``<config stem>-secrets/``
    next to the config, together with ``tokens.json`` (see :func:`tokens_document`), which the
    config's ``tokens`` section names (``store: file``, path relative to the config). The token
    hosts are set too (Lazada and TikTok ``auth_url``, Zalo ``oauth_url``). Returns every file
    written, the config first.

    ``crm_tokens`` (with a database whose demo CRM holds ``channel_credentials``): the config's
    ``tokens`` section names the CRM's own tokens (``store: crm``) instead of the file, as
    a production config does; ``tokens.json`` is written all the same.

    ``database_path`` (a SQLite file) or ``database`` (any database URL) becomes
    ``database.url``. A PostgreSQL password, in the URL or given apart, never goes into the
    config: it is written to ``database-password`` and named by ``database.password``.

    ``tls_port`` and ``ca_pem`` (together: the simulator serves HTTPS): every platform's
    ``webhook_url`` is its https one (:func:`webhook_urls`), the trusted root is written to
    ``<config stem>-ca.pem`` next to the config (0644: not a secret), and a ``webhooks:``
    section names it (``ca_bundle``, relative to the config) with one ``connect_to`` rule
    per receiver host. That file comes last in the list returned.

    All or nothing: the targets are checked before anything is written (a directory, a FIFO
    or a device is refused), the secrets are written into a staging directory that replaces
    the secrets directory only when complete, and any failure removes what was written (and
    puts back the CA file it replaced).
    """
    base = base_url.rstrip("/")
    if database_path is not None:
        if database is not None:
            raise ValueError("give database_path or database, not both")
        database = DatabaseUrl("sqlite", path=database_path)
    if (tls_port is None) != (ca_pem is None):
        raise ValueError("give tls_port and ca_pem together")
    ca_path = path.parent / f"{path.stem}-ca.pem" if tls_port is not None else None
    for target in (path, ca_path):
        if target is None:
            continue
        try:
            check_write_target(target)
        except WriteTargetError as exc:
            raise UsageError(f"--write-config: {exc.reason}") from None
    secrets_dir = path.parent / f"{path.stem}-secrets"
    if secrets_dir.is_symlink() or (secrets_dir.exists() and not secrets_dir.is_dir()):
        raise UsageError(
            f"--write-config: {secrets_dir} exists and is not a directory; move it aside"
        )
    https = None
    if ca_path is not None and tls_port is not None:
        https = _HttpsConfig(tls_port=tls_port, ca_file=ca_path.name)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.stem}-secrets.", dir=path.parent))
    try:
        if crm_tokens and database is None:
            raise ValueError("crm_tokens needs a database")
        names = _write_secrets(
            staging, secrets_dir.name, base, state, database, https, crm_tokens=crm_tokens
        )
        text = names.pop("config.yaml")
        with _swapped_in(staging, secrets_dir), _replaced_file(ca_path, ca_pem):
            write_atomically(path, text)  # no secret in it: only file: references
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    written = [path, *(secrets_dir / name for name in names)]
    return [*written, ca_path] if ca_path is not None else written


@dataclass(frozen=True)
class _HttpsConfig:
    """What the config says when the simulator serves HTTPS."""

    tls_port: int
    ca_file: str  # relative to the config


@contextlib.contextmanager
def _replaced_file(target: Path | None, data: bytes | None) -> Iterator[None]:
    """``data`` at ``target`` (0644) for the body; the old content back if the body fails."""
    if target is None or data is None:
        yield
        return
    previous = target.read_bytes() if target.is_file() else None
    write_atomically(target, data.decode("ascii"), mode=0o644)
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError, StateError):
            if previous is None:
                target.unlink()
            else:
                write_atomically(target, previous.decode("ascii", "replace"), mode=0o644)
        raise


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
    staging: Path,
    dir_name: str,
    base: str,
    state: SimulatorState,
    database: DatabaseUrl | None,
    https: _HttpsConfig | None,
    *,
    crm_tokens: bool = False,
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
    hooks = webhook_urls(base, https=https is not None)
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
            spec.name: spec.config_section(state, ConfigContext(base, hooks[spec.name], secret))
            for spec in SIM_PLATFORMS
        },
        "tokens": {"store": "crm"}
        if crm_tokens
        else {"store": "file", "path": f"{dir_name}/tokens.json"},
    }
    if https is not None:
        config["webhooks"] = {
            "ca_bundle": https.ca_file,
            "connect_to": connect_to_rules(https.tls_port),
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
        + (
            "# the demo CRM's channel_credentials, which `tokens: {store: crm}` names,\n"
            f"# and in {dir_name}/tokens.json (see nfdoctor/simulator/README.md).\n"
            if crm_tokens
            else f"# {dir_name}/tokens.json, the file token store that `tokens:` names\n"
            "# (see nfdoctor/simulator/README.md).\n"
        )
    )
    if https is not None:
        header += (
            "# The CRM's webhook receivers are served over HTTPS as\n"
            f"# https://<platform>.{CRM_TLS_DOMAIN}: webhooks.connect_to sends those names to\n"
            f"# {LOOPBACK}:{https.tls_port}, and webhooks.ca_bundle ({https.ca_file}) is the\n"
            "# simulator's root CA, made at start (--tls).\n"
        )
    written["config.yaml"] = header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    return written
