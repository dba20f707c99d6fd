"""One webhook delivery, made and sent as the platform makes and sends it.

:func:`make_delivery` builds the request a platform would send for a payload: the body in
the platform's encoding, its signature header (and any header the event carries), the URL
it goes to. :class:`WebhookSender` sends it the way the platforms do: a fresh connection
each time (so the TLS handshake counts against the deadline, as it does for them), no
redirect followed, the receiver's certificate checked against the system store or the
configured CA bundle, ``connect_to`` applied. It measures how long the receiver took to
answer, and keeps waiting past the platform's deadline (up to its own timeout) so a late
acknowledgement is measured rather than guessed.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from nfdoctor.config.loader import LoadedConfig
from nfdoctor.errors import UsageError
from nfdoctor.fsutil import FileRefusedError, os_reason, read_regular_file
from nfdoctor.net.connect import ConnectToTransport, parse_connect_to
from nfdoctor.platforms.webhook import DeliveryInputs, EventInputs, EventType, WebhookKeys
from nfdoctor.webhooks.target import Receiver

__all__ = [
    "MAX_ANSWER_BYTES",
    "Answer",
    "Delivery",
    "WebhookSender",
    "event_payload",
    "load_ca_bundle",
    "make_delivery",
    "read_event_file",
    "webhook_ssl_context",
]

#: what is kept of a receiver's answer: enough to show it, never a whole error page
MAX_ANSWER_BYTES = 4096
#: the largest event file ``webhook send --event`` reads
MAX_EVENT_BYTES = 1024 * 1024
_WRONG_KEY = "nfdoctor-deliberately-wrong-key"


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """A delivery ready to send: method, URL, headers and the exact body bytes."""

    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    method: str = "POST"
    #: the event type's name, when nfdoctor made the payload
    event: str | None = None
    #: (account id, message id) of every chat message in the body
    message_ids: tuple[tuple[str, str], ...] = ()
    #: whether the signature was spoiled on purpose (a probe the receiver must refuse)
    wrongly_signed: bool = False

    def header(self, name: str) -> str | None:
        """A header's value (case-insensitive name)."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def describe(self) -> list[str]:
        """The request as lines, for ``--debug``: method, URL, headers, body."""
        lines = [f"{self.method} {self.url}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines += ["", self.body.decode("utf-8", errors="replace")]
        return lines


def event_payload(
    receiver: Receiver,
    event: EventType,
    *,
    now: datetime,
    text: str,
    message_id: str,
    sender_id: str | None = None,
) -> dict[str, Any]:
    """A payload of ``event`` for the receiver's account, as the platform would send it."""
    return event.build(
        EventInputs(
            account_id=receiver.account.account_id,
            message_id=message_id,
            text=text,
            sender_id=sender_id or receiver.webhook.trace_sender,
            now=now,
            app_id=getattr(receiver.section, "app_id", None),
        )
    )


def make_delivery(
    receiver: Receiver,
    payload: Any,
    *,
    event: EventType | None = None,
    wrongly_signed: bool = False,
) -> Delivery:
    """The request the platform sends for ``payload``: its encoding, its signature."""
    webhook = receiver.webhook
    body = webhook.encode(payload)
    scheme = webhook.signature
    keys = receiver.keys
    if wrongly_signed:
        keys = WebhookKeys(
            secret=_WRONG_KEY, secret_path="(wrong on purpose)", app_key=keys.app_key
        )
    signed = DeliveryInputs(url=receiver.url, body=body, timestamp=scheme.timestamp_of(body))
    headers = [
        ("Content-Type", "application/json"),
        (scheme.header, scheme.header_value(keys, signed)),
        *((event.headers.items()) if event is not None else ()),
    ]
    return Delivery(
        url=receiver.url,
        headers=tuple(headers),
        body=body,
        event=event.name if event is not None else None,
        message_ids=tuple(webhook.message_ids(payload)),
        wrongly_signed=wrongly_signed,
    )


def read_event_file(path: Path) -> Any:
    """The JSON payload in ``path`` (``webhook send --event``); UsageError saying what is wrong."""
    try:
        data = read_regular_file(path, limit=MAX_EVENT_BYTES)
    except FileRefusedError as exc:
        raise UsageError(f"--event {path}: {exc.reason}") from None
    except FileNotFoundError:
        raise UsageError(f"--event {path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"--event {path}: cannot be read: {os_reason(exc)}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"--event {path}: not UTF-8 text (byte {exc.start})") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--event {path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from None
    if not isinstance(payload, dict):
        raise UsageError(
            f"--event {path}: expected a JSON object (an event), got {type(payload).__name__}"
        )
    return payload


def load_ca_bundle(loaded: LoadedConfig) -> Path | None:
    """The configured CA bundle, checked to be a PEM file with at least one certificate; a
    located ConfigError otherwise. None: trust the system store."""
    configured = loaded.config.webhooks.ca_bundle
    if configured is None:
        return None
    from cryptography import x509  # only when a bundle is configured: ~30 ms to import

    path = Path(configured).expanduser()
    if not path.is_absolute():
        path = loaded.base_dir / path
    key = ("webhooks", "ca_bundle")
    try:
        data = read_regular_file(path, limit=10 * 1024 * 1024)
    except FileRefusedError as exc:
        raise loaded.error_at(key, f"{path} {exc.reason}") from None
    except FileNotFoundError:
        raise loaded.error_at(key, f"{path} does not exist") from None
    except OSError as exc:
        raise loaded.error_at(key, f"{path} cannot be read: {os_reason(exc)}") from None
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if not certificates:
        raise loaded.error_at(
            key, f"{path} is not a PEM certificate bundle (no -----BEGIN CERTIFICATE----- block)"
        )
    return path


def webhook_ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """Verification as the platforms do it: the system store (or the bundle), the host name
    against the certificate's subjectAltName only (no fallback to its CN)."""
    context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    context.hostname_checks_common_name = False
    return context


@dataclass(frozen=True, kw_only=True)
class Answer:
    """How the receiver answered one delivery."""

    status: int | None = None
    #: the first :data:`MAX_ANSWER_BYTES` of the body
    body: bytes = b""
    #: from sending the request to the end of the answer (connection set-up included)
    latency_s: float | None = None
    #: where a redirect points
    location: str | None = None
    #: a failure: timeout, tls, refused, dns, reset, protocol
    error_kind: str | None = None
    error: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        """Whether an HTTP answer came at all."""
        return self.status is not None

    def acknowledged(self, *, unauthorized_is_answer: bool = False) -> bool:
        """Whether the platform counts this as delivered: a 2xx (TikTok: also a 401 with an
        empty body, which it counts as answered, §4.8)."""
        if self.status is None:
            return False
        if 200 <= self.status < 300:
            return True
        return unauthorized_is_answer and self.status == 401 and not self.body

    def in_time(self, deadline_s: float) -> bool:
        """Whether the answer came within ``deadline_s``."""
        return self.latency_s is not None and self.latency_s <= deadline_s


class WebhookSender:
    """Sends deliveries the way the platforms do (one connection each, no redirects)."""

    def __init__(
        self,
        *,
        connect_to: Sequence[str] = (),
        ca_bundle: Path | None = None,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        inner = transport or httpx.AsyncHTTPTransport(
            verify=webhook_ssl_context(ca_bundle),
            # A fresh connection per delivery, as the platforms open them.
            limits=httpx.Limits(max_keepalive_connections=0),
            retries=0,
        )
        rules = [parse_connect_to(rule) for rule in connect_to]
        self.client = httpx.AsyncClient(
            transport=ConnectToTransport(inner, rules) if rules else inner,
            follow_redirects=False,
            timeout=timeout_s,
            trust_env=False,
            headers={"User-Agent": "nfdoctor-webhook"},
        )

    async def __aenter__(self) -> WebhookSender:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.client.aclose()

    async def send(self, delivery: Delivery, *, timeout_s: float | None = None) -> Answer:
        """Send ``delivery``; the answer, or what failed. Never raises for the network."""
        return await self.request(
            delivery.method,
            delivery.url,
            headers=delivery.headers,
            content=delivery.body,
            timeout_s=timeout_s,
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Answer:
        """Any request to a receiver (Facebook's GET handshake too), timed."""
        timeout = timeout_s or self.timeout_s
        started = time.perf_counter()
        try:
            request = self.client.build_request(
                method, url, headers=list(headers), content=content, params=params, timeout=timeout
            )
            response = await self.client.send(request, stream=True)
            try:
                body = await _read_some(response)
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            elapsed = time.perf_counter() - started
            return Answer(
                error_kind="timeout",
                error=f"no answer within {elapsed:.1f} s",
                latency_s=None,
            )
        except httpx.TransportError as exc:
            kind, text = _describe_failure(exc)
            return Answer(error_kind=kind, error=text)
        latency = time.perf_counter() - started
        return Answer(
            status=response.status_code,
            body=body,
            latency_s=latency,
            location=response.headers.get("location"),
            headers=dict(response.headers),
        )


async def _read_some(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_ANSWER_BYTES:
            break
    return b"".join(chunks)[:MAX_ANSWER_BYTES]


def _describe_failure(exc: httpx.TransportError) -> tuple[str, str]:
    """(kind, one line) for a failed delivery, from the cause chain."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "tls", f"TLS: the certificate was refused: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return "tls", f"TLS handshake failed: {cause.reason or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return "refused", "connection refused: nothing listens there"
        if isinstance(cause, ConnectionResetError):
            return "reset", "the connection was reset by the receiver"
        if isinstance(cause, socket.gaierror):
            return "dns", "the host name does not resolve (DNS)"
        if isinstance(cause, OSError) and cause.errno is not None:
            return "connect", f"cannot connect: {os_reason(cause)}"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.RemoteProtocolError):
        return "reset", f"the receiver closed the connection without a full answer ({exc})"
    if isinstance(exc, httpx.ConnectError):
        return "connect", f"cannot connect: {exc or type(exc).__name__}"
    return "protocol", f"{type(exc).__name__}: {exc}"
