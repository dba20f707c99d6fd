"""Time one HTTP(S) request phase by phase, to show where a connection drops.

The runbook's "verify internet connectivity" and "Lazada connection drop: show where it
drops" need more than "the request failed": they need to know whether DNS, the TCP
connect, the TLS handshake, sending the request or waiting for the answer is the step
that fails or is slow. :func:`probe_url` does each of these steps itself with asyncio and
the standard library (no HTTP client in between) and times each one:

``dns`` → ``connect`` → ``tls`` (https only) → ``request`` → ``response`` (first byte and
status line).

Network failures never raise: they become a :class:`ConnectionTiming` whose
``failed_phase`` and ``error`` say what failed and where, with the phases that did
complete timed. Bad arguments (a URL that is not http/https, an odd method) raise
ValueError, as they are the caller's mistake, not the network's.

Query strings are never recorded nor sent: Shopee and Lazada carry access tokens and
signatures there (``design.md``, Known pitfalls). Nor is a URL's ``user:password@``.
Proxy variables are ignored on purpose: the probe measures the direct path.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
import socket
import ssl
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypeVar

__all__ = [
    "PHASES",
    "ConnectionTiming",
    "Resolver",
    "default_ssl_context",
    "origin_of",
    "probe_many",
    "probe_url",
]

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Turns ``(host, port)`` into IP addresses, best first; raises :class:`socket.gaierror`."""

PHASES = ("dns", "connect", "tls", "request", "response")
"""The steps of a probe in order; ``failed_phase`` is one of them."""

_T = TypeVar("_T")

_DEFAULT_PORTS = {"http": 80, "https": 443}
# design.md: concurrency stays bounded (20 by default, 50 at most).
_DEFAULT_CONCURRENCY = 20
_MAX_CONCURRENCY = 50
# Closing is not measured; a peer that never acknowledges a TLS close_notify must not hold
# the probe (asyncio would wait 30 s for it), so the graceful close gets this long at most.
_CLOSE_GRACE_S = 1.0
# RFC 9110 method token characters; anything else could smuggle a header into the request.
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_STATUS_LINE = re.compile(rb"HTTP/\d(?:\.\d)? (\d{3})(?: [^\r\n]*)?\r?\n")
# "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)" → "wrong version number"
_SSL_NOISE = re.compile(r"^\[[A-Z0-9_]+: [A-Z0-9_]+\] |\s*\(_ssl\.c:\d+\)$")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


@dataclass(frozen=True, kw_only=True)
class ConnectionTiming:
    """How one probe went: each phase's duration in seconds and, on failure, where it stopped.

    Durations are ``None`` for the phases that were not reached (and ``tls_s`` for http).
    ``total_s`` is set on failure too: how long after the start the connection dropped.
    """

    url: str
    host: str
    port: int
    scheme: str
    addresses: tuple[str, ...]
    dns_s: float | None
    tcp_s: float | None
    tls_s: float | None
    ttfb_s: float | None
    total_s: float | None
    http_status: int | None
    tls_version: str | None
    peer_cert_not_after: datetime | None
    failed_phase: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        """True when the server answered with a status line, whatever the status.

        A 503 still proves the path works; judging the status is the caller's business.
        """
        return self.failed_phase is None


@dataclass(frozen=True)
class _Target:
    """A URL taken apart, without its query, fragment and credentials."""

    scheme: str
    host: str  # ASCII (IDNA) form, without IPv6 brackets
    port: int
    path: str
    is_ip: bool

    @property
    def where(self) -> str:
        """``host:port`` as written in messages, IPv6 in brackets."""
        return f"{_bracketed(self.host)}:{self.port}"

    @property
    def origin(self) -> str:
        """``scheme://host:port``."""
        return f"{self.scheme}://{self.where}"

    @property
    def host_header(self) -> str:
        """The Host header: the port only when it is not the scheme's default."""
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return _bracketed(self.host)
        return self.where


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _parse_target(url: str) -> _Target:
    """Split ``url``; raises ValueError (never quoting the query) when it cannot be probed."""
    parts = urllib.parse.urlsplit(url.strip())
    shown = urllib.parse.urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"{shown!r} is not an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError(f"{shown!r} has no host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"{shown!r} has an invalid port")
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
    except ValueError:
        is_ip = False
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"{shown!r} has a host name that cannot be encoded") from None
    else:
        is_ip = True
    path = urllib.parse.quote(parts.path or "/", safe=_PATH_SAFE)
    if not path.startswith("/"):
        path = "/" + path
    port = port or _DEFAULT_PORTS[scheme]
    return _Target(scheme=scheme, host=host, port=port, path=path, is_ip=is_ip)


def origin_of(url: str) -> str:
    """``scheme://host:port`` of ``url``, port always written: the key for deduping probes."""
    return _parse_target(url).origin


def default_ssl_context() -> ssl.SSLContext:
    """The system trust store, hostname checked against the SAN only, ALPN http/1.1.

    Python otherwise falls back to the certificate's CN when it has no SAN, which browsers
    and the platforms refuse (``design.md``, Known pitfalls).
    """
    context = ssl.create_default_context()
    context.hostname_checks_common_name = False
    context.set_alpn_protocols(["http/1.1"])
    return context


async def _resolve_with_system(host: str, port: int) -> list[str]:
    """The system resolver's addresses for ``host``, in its preference order, each once."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _PhaseFailed(Exception):
    """A phase went wrong; carries the phase name and the one-line message."""

    def __init__(self, phase: str, message: str) -> None:
        super().__init__(message)
        self.phase = phase
        self.message = message


def _seconds(value: float) -> str:
    return f"{value:.3g}"


def _describe_os_error(exc: OSError) -> str:
    """``connection refused``, ``network is unreachable``: the OS's words, lower case."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by peer"
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


def _describe_ssl_error(exc: ssl.SSLError) -> str:
    """The verification message (``certificate has expired``) or OpenSSL's reason."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return str(exc.verify_message).rstrip(".")
    text = _SSL_NOISE.sub("", str(exc.strerror or exc)).strip()
    return text or str(exc.reason or type(exc).__name__)


def _not_after(ssl_object: ssl.SSLObject | None) -> datetime | None:
    """The peer certificate's expiry, aware UTC; None when it was not verified.

    ``getpeercert()`` only decodes a certificate that was verified, so a caller's context
    with ``CERT_NONE`` gets None here.
    """
    if ssl_object is None:
        return None
    value = (ssl_object.getpeercert() or {}).get("notAfter")
    if not isinstance(value, str):
        return None
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(value), tz=timezone.utc)


def _discard(step: Awaitable[object]) -> None:
    """Drop a step that will not run, without a "never awaited" warning."""
    if isinstance(step, Coroutine):
        step.close()
    elif isinstance(step, asyncio.Future):
        step.cancel()


class _Probe:
    """One probe's mutable state while it runs; :meth:`result` freezes it."""

    def __init__(
        self, target: _Target, *, timeout_s: float, monotonic: Callable[[], float]
    ) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.monotonic = monotonic
        self.started = monotonic()
        self.deadline = self.started + timeout_s
        self.addresses: tuple[str, ...] = ()
        self.dns_s: float | None = None
        self.tcp_s: float | None = None
        self.tls_s: float | None = None
        self.ttfb_s: float | None = None
        self.http_status: int | None = None
        self.tls_version: str | None = None
        self.peer_cert_not_after: datetime | None = None

    def budget(self, phase: str, what: str) -> float:
        """What is left of the overall timeout for the next phase; raises when nothing is."""
        left = self.deadline - self.monotonic()
        if left <= 0:
            raise _PhaseFailed(
                phase, f"{what} not attempted: the {_seconds(self.timeout_s)} s timeout was used up"
            )
        return left

    async def within(self, phase: str, what: str, step: Awaitable[_T]) -> _T:
        """Await ``step`` inside the phase's budget; a timeout becomes a phase failure."""
        try:
            budget = self.budget(phase, what)
        except _PhaseFailed:
            _discard(step)
            raise
        try:
            return await asyncio.wait_for(step, timeout=budget)
        except asyncio.TimeoutError:
            raise _PhaseFailed(phase, f"{what} timed out after {_seconds(budget)} s") from None

    def result(self, failure: _PhaseFailed | None = None) -> ConnectionTiming:
        """The frozen outcome; ``failure`` None means the status line arrived."""
        target = self.target
        return ConnectionTiming(
            url=f"{target.origin}{target.path}",
            host=target.host,
            port=target.port,
            scheme=target.scheme,
            addresses=self.addresses,
            dns_s=self.dns_s,
            tcp_s=self.tcp_s,
            tls_s=self.tls_s,
            ttfb_s=self.ttfb_s,
            total_s=self.monotonic() - self.started,
            http_status=self.http_status,
            tls_version=self.tls_version,
            peer_cert_not_after=self.peer_cert_not_after,
            failed_phase=failure.phase if failure else None,
            error=failure.message if failure else None,
        )


async def probe_url(
    url: str,
    *,
    timeout_s: float = 10.0,
    method: str = "HEAD",
    ssl_context: ssl.SSLContext | None = None,
    resolver: Resolver | None = None,
    monotonic: Callable[[], float] = time.perf_counter,
) -> ConnectionTiming:
    """Resolve, connect, handshake and send one request to ``url``, timing each phase.

    ``timeout_s`` bounds the whole probe: each phase gets what the earlier ones left of it.
    Connects to the first resolved address only (all are recorded), so a failure is the
    failure of one path, not hidden by a fallback. Network failures are returned, not raised.
    """
    target = _parse_target(url)
    _check_arguments(method=method, timeout_s=timeout_s)
    if target.scheme == "https" and ssl_context is None:
        ssl_context = default_ssl_context()
    probe = _Probe(target, timeout_s=timeout_s, monotonic=monotonic)
    try:
        await _resolve(probe, resolver or _resolve_with_system)
        sock = await _connect(probe)
        reader, writer = await _open_stream(probe, sock, ssl_context)
    except _PhaseFailed as failure:
        return probe.result(failure)
    try:
        await _exchange(probe, reader, writer, method)
    except _PhaseFailed as failure:
        timing = probe.result(failure)
    else:
        timing = probe.result()
    finally:
        # Results are taken first: closing is not part of any phase, nor of total_s.
        await _close(probe, writer)
    return timing


def _check_arguments(*, method: str, timeout_s: float) -> None:
    """Refuse a method that would break the request line, and a timeout that is no time."""
    if not _METHOD.fullmatch(method):
        raise ValueError(f"{method!r} is not an HTTP method")
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise ValueError(f"timeout_s must be a positive number of seconds, not {timeout_s!r}")


async def _resolve(probe: _Probe, resolver: Resolver) -> None:
    target = probe.target
    if target.is_ip:
        probe.addresses, probe.dns_s = (target.host,), 0.0
        return
    what = f"DNS lookup for {target.host}"
    began = probe.monotonic()
    try:
        found = await probe.within("dns", what, resolver(target.host, target.port))
    except socket.gaierror as exc:
        raise _PhaseFailed("dns", f"{what} failed: {exc.strerror or exc}") from None
    except (OSError, UnicodeError) as exc:
        detail = _describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        raise _PhaseFailed("dns", f"{what} failed: {detail}") from None
    if not found:
        raise _PhaseFailed("dns", f"{what} returned no addresses")
    probe.addresses = tuple(dict.fromkeys(found))
    probe.dns_s = probe.monotonic() - began


async def _connect(probe: _Probe) -> socket.socket:
    """A connected non-blocking socket to the first address (the TCP handshake alone)."""
    target = probe.target
    address = probe.addresses[0]
    what = f"TCP connect to {target.where}"
    if address != target.host:
        what += f" ({address})"
    began = probe.monotonic()
    sock: socket.socket | None = None
    try:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await probe.within("connect", what, loop.sock_connect(sock, (address, target.port)))
    except _PhaseFailed:
        if sock is not None:
            sock.close()
        raise
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise _PhaseFailed("connect", f"{what} failed: {_describe_os_error(exc)}") from None
    probe.tcp_s = probe.monotonic() - began
    return sock


async def _open_stream(
    probe: _Probe, sock: socket.socket, ssl_context: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Streams over ``sock``; for https this is the TLS handshake, timed as its own phase."""
    target = probe.target
    if target.scheme == "http":
        try:
            return await asyncio.open_connection(sock=sock)
        except OSError as exc:
            sock.close()
            what = f"TCP connect to {target.where}"
            raise _PhaseFailed("connect", f"{what} failed: {_describe_os_error(exc)}") from None
    what = f"TLS handshake with {target.where}"
    began = probe.monotonic()
    opening = asyncio.open_connection(sock=sock, ssl=ssl_context, server_hostname=target.host)
    try:
        # From here the transport owns the socket and closes it when the handshake fails.
        reader, writer = await probe.within("tls", what, opening)
    except ssl.SSLError as exc:
        raise _PhaseFailed("tls", f"{what} failed: {_describe_ssl_error(exc)}") from None
    except OSError as exc:
        raise _PhaseFailed("tls", f"{what} failed: {_describe_os_error(exc)}") from None
    except _PhaseFailed:
        # Let the cancelled transport run its close callbacks before anything else.
        await asyncio.sleep(0)
        raise
    probe.tls_s = probe.monotonic() - began
    ssl_object = writer.get_extra_info("ssl_object")
    if isinstance(ssl_object, ssl.SSLObject):
        probe.tls_version = ssl_object.version()
        probe.peer_cert_not_after = _not_after(ssl_object)
    return reader, writer


async def _exchange(
    probe: _Probe, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str
) -> None:
    """Send the request and read up to the end of the status line."""
    target = probe.target
    request = (
        f"{method} {target.path} HTTP/1.1\r\n"
        f"Host: {target.host_header}\r\n"
        "User-Agent: nfdoctor\r\n"
        "Accept: */*\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode("ascii")
    sent = probe.monotonic()
    what = f"sending the request to {target.where}"
    try:
        writer.write(request)
        await probe.within("request", what, writer.drain())
    except OSError as exc:
        raise _PhaseFailed("request", f"{what} failed: {_describe_os_error(exc)}") from None

    first = await _read_response(
        probe, f"waiting for the response from {target.where}", reader.read(1)
    )
    if not first:
        raise _PhaseFailed("response", f"{target.where} closed the connection without responding")
    probe.ttfb_s = probe.monotonic() - sent
    try:
        rest = await _read_response(
            probe, f"reading the status line from {target.where}", reader.readuntil(b"\n")
        )
    except asyncio.IncompleteReadError as exc:
        raise _PhaseFailed(
            "response",
            f"{target.where} closed the connection in the middle of the status line "
            f"(got {(first + exc.partial)[:60]!r})",
        ) from None
    except asyncio.LimitOverrunError:
        raise _PhaseFailed(
            "response", f"{target.where} sent a status line longer than the reader's limit"
        ) from None
    status_line = first + rest
    match = _STATUS_LINE.fullmatch(status_line)
    if match is None:
        raise _PhaseFailed(
            "response",
            f"{target.where} did not answer with an HTTP status line (got {status_line[:60]!r})",
        )
    probe.http_status = int(match.group(1))


async def _read_response(probe: _Probe, what: str, step: Awaitable[bytes]) -> bytes:
    """One read of the response phase; a reset or TLS error there is a response failure."""
    try:
        return await probe.within("response", what, step)
    except ssl.SSLError as exc:
        raise _PhaseFailed("response", f"{what} failed: {_describe_ssl_error(exc)}") from None
    except OSError as exc:
        raise _PhaseFailed("response", f"{what} failed: {_describe_os_error(exc)}") from None


async def _close(probe: _Probe, writer: asyncio.StreamWriter) -> None:
    """Close politely if the peer lets us within a short grace, else abort; never raises."""
    writer.close()
    grace = min(_CLOSE_GRACE_S, max(probe.deadline - probe.monotonic(), 0.0))
    try:
        await asyncio.wait_for(writer.wait_closed(), timeout=grace)
    except (asyncio.TimeoutError, OSError, ssl.SSLError):
        writer.transport.abort()
        await asyncio.sleep(0)


async def probe_many(
    urls: Iterable[str],
    *,
    timeout_s: float = 10.0,
    method: str = "HEAD",
    ssl_context: ssl.SSLContext | None = None,
    resolver: Resolver | None = None,
    monotonic: Callable[[], float] = time.perf_counter,
    max_concurrency: int = _DEFAULT_CONCURRENCY,
) -> list[ConnectionTiming]:
    """Probe each origin once, concurrently; results in the order origins first appear.

    URLs sharing scheme, host and port are one probe (the first such URL's path is used).
    Every URL and argument is checked before any probe starts: a bad one raises ValueError.
    """
    if not 1 <= max_concurrency <= _MAX_CONCURRENCY:
        raise ValueError(f"max_concurrency must be between 1 and {_MAX_CONCURRENCY}")
    _check_arguments(method=method, timeout_s=timeout_s)
    first_by_origin: dict[str, str] = {}
    for url in urls:
        first_by_origin.setdefault(origin_of(url), url)
    gate = asyncio.Semaphore(max_concurrency)

    async def probe_one(url: str) -> ConnectionTiming:
        async with gate:
            return await probe_url(
                url,
                timeout_s=timeout_s,
                method=method,
                ssl_context=ssl_context,
                resolver=resolver,
                monotonic=monotonic,
            )

    return list(await asyncio.gather(*(probe_one(url) for url in first_by_origin.values())))
