"""The simulator's platform-neutral data: tokens, accounts, orders, chats, and seeded ids.

Every platform module builds its accounts, ids and tokens from these and from a
``random.Random`` it is handed, so nothing here knows any platform.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = [
    "Account",
    "AuthCode",
    "Clock",
    "CodeStatus",
    "Consent",
    "Conversation",
    "Message",
    "Order",
    "Token",
    "TokenEvent",
    "TokenEventKind",
    "TokenKind",
    "TokenStatus",
    "alnum",
    "digits",
    "hex_string",
]

Clock = Callable[[], datetime]
#: ``user``: a token for a person rather than an account (Facebook's User token, from which
#: Page tokens are made)
TokenKind = Literal["access", "refresh", "user"]
TokenStatus = Literal["ok", "unknown", "expired", "revoked", "used", "wrong_owner"]
#: how an authorization code presented for exchange was judged
CodeStatus = Literal[
    "ok", "unknown", "used", "expired", "wrong_account", "wrong_redirect", "wrong_verifier"
]
#: what a token request asked for: a code exchanged, a refresh token (or Facebook's
#: ``fb_exchange_token``) spent, a Page token made from a User token
TokenEventKind = Literal["exchange", "refresh", "page_token"]


@dataclass
class Token:
    """One issued token; refresh tokens remember whether they were already used."""

    value: str
    platform: str
    kind: TokenKind
    owner: str
    issued_at: datetime
    expires_at: datetime | None
    revoked: bool = False
    used: bool = False
    #: the accounts a user-level token reaches (the Pages a Facebook user granted)
    grants: tuple[str, ...] = ()


@dataclass(kw_only=True)
class Consent:
    """An authorize request whose consent page was shown: its links name it, so approving
    redirects where the request said, with its ``state`` and PKCE challenge."""

    consent_id: str
    platform: str
    redirect_uri: str
    state: str | None
    code_challenge: str | None
    expires_at: datetime


@dataclass(kw_only=True)
class AuthCode:
    """An authorization code: single use, short-lived, bound to one account (Facebook: one
    user, with the Pages granted), the redirect URI and the PKCE challenge of its request."""

    value: str
    platform: str
    account: str
    redirect_uri: str
    code_challenge: str | None
    issued_at: datetime
    expires_at: datetime
    used: bool = False
    grants: tuple[str, ...] = ()


@dataclass(kw_only=True)
class TokenEvent:
    """One token request a platform judged: what it asked, for whom, and how it ended."""

    platform: str
    #: the account (Facebook: the Page, or the user for User tokens) when known
    account: str | None
    kind: TokenEventKind
    #: ``issued`` (a new token was made) or ``refused`` (the platform's error, in ``error``)
    outcome: Literal["issued", "refused"]
    #: the platform's time of the request (the simulator's clock, skew included)
    at: datetime
    error: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    #: the refresh token or code this request consumed
    spent: str | None = None
    #: False when a ``drop_after_issue`` fault cut the connection before the answer left
    delivered: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class Order:
    """One marketplace order, in platform-neutral form; each app renders its own shape.

    Slotted: a simulator may hold millions of them (``--orders`` × ``--shops`` × 3).
    """

    order_id: str
    status: str
    create_time: datetime
    update_time: datetime
    amount: int
    #: the buyer's user id on the platform (the same buyer may order from several shops)
    buyer_user_id: str
    buyer_name: str
    currency: str = "VND"


@dataclass(frozen=True)
class Message:
    """One chat message; ``from_customer`` tells direction."""

    message_id: str
    sender_id: str
    recipient_id: str
    text: str
    time: datetime
    from_customer: bool


@dataclass
class Conversation:
    """One chat thread with one customer, messages oldest first."""

    conversation_id: str
    user_id: str
    user_name: str
    messages: list[Message] = field(default_factory=list)

    @property
    def updated_time(self) -> datetime:
        """Time of the newest message."""
        return self.messages[-1].time


@dataclass
class Account:
    """One shop / seller / page / OA with the data the simulator serves for it."""

    platform: str
    account_id: str
    name: str
    orders: list[Order] = field(default_factory=list)
    conversations: list[Conversation] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    #: a marketplace's chats with its buyers (Lazada IM sessions, TikTok Shop customer
    #: service conversations), newest first; kept apart from ``conversations`` (the chat
    #: platforms'), which the demo CRM and the emitter read
    chats: list[Conversation] = field(default_factory=list)


# One rng.choice per character: the seeded streams depend on exactly these draws.


def hex_string(rng: random.Random, n: int) -> str:
    """``n`` lowercase hex digits."""
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def alnum(rng: random.Random, n: int) -> str:
    """``n`` ASCII letters and digits."""
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def digits(rng: random.Random, n: int) -> str:
    """``n`` decimal digits (a leading zero is possible)."""
    return "".join(rng.choice(string.digits) for _ in range(n))
