"""How a platform delivers webhooks, declared once in its module (platforms.md §x.8).

A :class:`WebhookSpec` says how the platform signs a delivery (:class:`SignatureScheme`),
how it encodes the JSON body, how long it waits for the acknowledgement and how it retries,
what it requires of the receiver's URL and certificate, the events nfdoctor can deliver in
its name (a chat message the CRM stores, a probe the CRM acknowledges and drops, …), where a
payload carries its message ids, and how to ask the platform which URL it delivers to.

The signing here is nfdoctor's own; the simulator verifies with code written separately
(``nfdoctor/simulator/verify.py``), so one shared mistake cannot pass both.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nfdoctor.errors import UsageError

__all__ = [
    "DeliveryInputs",
    "EventInputs",
    "EventType",
    "Handshake",
    "SignatureScheme",
    "WebhookKeys",
    "WebhookRegistration",
    "WebhookSpec",
    "alnum_id",
    "ascii_json",
    "digits_id",
    "hmac_sha256_hex",
    "require_secret",
    "utf8_json",
]


def require_secret(secret: Callable[[str], str | None], key_path: str) -> str:
    """The secret at ``key_path``, or a UsageError saying it is not configured."""
    value = secret(key_path)
    if not value:
        raise UsageError(f"{key_path}: not configured; webhook deliveries are signed with it")
    return value


def digits_id(seed: bytes, n: int) -> str:
    """An ``n``-digit id without a leading zero, from random bytes (ids above 2**53 must
    stay strings: §2.9, §4.9, §6.8)."""
    low = 10 ** (n - 1)
    return str(low + int.from_bytes(hashlib.sha256(seed).digest(), "big") % (9 * low))


def alnum_id(seed: bytes, n: int) -> str:
    """An ``n``-character letters-and-digits id, from random bytes."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    number = int.from_bytes(hashlib.sha512(seed).digest(), "big")
    chars = []
    for _ in range(n):
        number, index = divmod(number, len(alphabet))
        chars.append(alphabet[index])
    return "".join(chars)


def hmac_sha256_hex(key: str, message: bytes) -> str:
    """Lower-case hex HMAC-SHA256, as every platform but Zalo signs its deliveries."""
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def utf8_json(payload: Any) -> bytes:
    """Compact JSON, non-ASCII text as UTF-8 (Shopee, Lazada, TikTok, Zalo)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def ascii_json(payload: Any) -> bytes:
    """Compact JSON with every non-ASCII character as ``\\uXXXX`` (lower-case hex), as Meta
    sends it and signs it (§5.8): ``Tiên`` travels as ``Ti\\u00ean``."""
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode("ascii")


@dataclass(frozen=True, kw_only=True)
class WebhookKeys:
    """What signs one account's deliveries.

    ``secret`` is a secret value: it is never put into text. ``secret_path`` names where the
    config holds it, which is what messages say.
    """

    secret: str
    secret_path: str
    #: the non-secret first term: Lazada's and TikTok's app_key, Zalo's app_id (or OA id)
    app_key: str | None = None
    #: other secrets of the config (path, value) a sender may have used by mistake
    others: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        return f"WebhookKeys(secret_path={self.secret_path!r}, app_key={self.app_key!r})"


@dataclass(frozen=True)
class DeliveryInputs:
    """What a signature covers: the URL (Shopee), the raw body, the timestamp (Zalo)."""

    url: str
    body: bytes
    timestamp: str | None = None


@dataclass(frozen=True, kw_only=True)
class SignatureScheme:
    """One platform's delivery signature: header, prefix and the digest over its inputs."""

    header: str
    #: ``sha256=`` (Facebook), ``mac=`` (Zalo), or nothing
    prefix: str
    #: lower-case hex of the digest (without the prefix)
    digest: Callable[[WebhookKeys, DeliveryInputs], str]
    #: in words, for reports and ``--help`` (platforms.md)
    describe: str
    #: whether the URL is signed (Shopee): a different URL is a different signature
    signs_url: bool = False
    #: where the signed timestamp comes from (Zalo: the body's ``timestamp`` field)
    timestamp: Callable[[bytes], str | None] | None = None
    #: digits of the hex digest
    hex_length: int = 64

    def header_value(self, keys: WebhookKeys, delivery: DeliveryInputs) -> str:
        """The header's value as the platform sends it."""
        return self.prefix + self.digest(keys, delivery)

    def timestamp_of(self, body: bytes) -> str | None:
        """The signed timestamp a body carries (None where the scheme signs none)."""
        return self.timestamp(body) if self.timestamp is not None else None


@dataclass(frozen=True, kw_only=True)
class EventInputs:
    """What an event nfdoctor delivers is made of."""

    account_id: str
    #: a unique id for the message or notification (the platform's own format)
    message_id: str
    text: str
    #: the customer the message comes from, in the platform's id format
    sender_id: str
    now: datetime
    #: the platform app's public id, where the payload names it (Zalo's app_id)
    app_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class EventType:
    """An event nfdoctor can deliver in a platform's name."""

    name: str
    #: what the platform calls it ("code 10, webchat"), for reports
    describe: str
    #: whether the CRM stores it as a ``messages`` row (a chat message)
    stored: bool
    build: Callable[[EventInputs], dict[str, Any]]
    #: headers the platform adds to this event's delivery (Zalo's ZNS events)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Handshake:
    """A GET the platform sends to verify the URL (Facebook's ``hub.challenge``)."""

    #: the config key of the token the receiver must check (``verify_token``)
    token_key: str
    #: query parameters for one handshake: (token, challenge) -> params
    params: Callable[[str, str], dict[str, str]]


@dataclass(frozen=True, kw_only=True)
class WebhookRegistration:
    """What the platform says it delivers to, for one account."""

    #: every URL the platform delivers this account's events to (empty: it did not say)
    urls: tuple[str, ...]
    #: whether chat messages are among the subscribed events (None: the API does not say)
    messages_subscribed: bool | None
    #: what the platform said, one line each (status, subscribed fields…)
    details: tuple[str, ...] = ()
    #: trouble the platform reports (a suspended push, a disabled subscription)
    problems: tuple[str, ...] = ()
    #: what it warns about (Shopee's live_push_status Warning)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class WebhookSpec:
    """How a platform delivers webhooks, and what it requires of the receiver."""

    signature: SignatureScheme
    #: the body as the platform encodes a payload
    encode: Callable[[Any], bytes]
    #: the platform gives up on a delivery not acknowledged within this many seconds
    deadline_s: float
    #: how the platform retries, in words, with platforms.md's confidence
    retries: str
    #: whether the URL may carry a port (TikTok and Zalo: a domain only)
    port_allowed: bool = True
    #: the certificate validation levels the platform accepts (Lazada: OV or EV); None: any
    certificate_levels: frozenset[str] | None = None
    #: whether 401 with an empty body counts as answered (TikTok)
    unauthorized_is_answer: bool = False
    #: the events nfdoctor can deliver; ``message`` and ``probe`` always exist
    events: Mapping[str, EventType]
    #: (account id, message id) of every chat message a payload carries
    message_ids: Callable[[Any], list[tuple[str, str]]]
    #: a new message id, unique, in the platform's format (from 16 random bytes)
    new_message_id: Callable[[bytes], str]
    #: the sender nfdoctor's trace messages come from, in the platform's id format
    trace_sender: str
    #: the signing keys of one account: (section, account id, secret getter by key path,
    #: the section's key path) -> keys; raises UsageError when one is not configured
    keys: Callable[[Any, str, Callable[[str], str | None], str], WebhookKeys]
    handshake: Handshake | None = None
    #: the platform API that says where it delivers, in words; None: it has none
    registration_api: str | None = None
    #: asks it, through the account's client
    registration: Callable[[Any], Awaitable[WebhookRegistration]] | None = None
    #: the registration is the app's, the same for every account: asking one is enough
    registration_per_app: bool = False
    #: the platform keeps the pushes it gave up on, for ``nfdoctor webhook lost`` to fetch
    lost_push_api: bool = False

    def event(self, name: str) -> EventType:
        """The event type ``name`` (KeyError if the platform has none)."""
        return self.events[name]
