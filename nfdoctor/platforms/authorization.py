"""Authorising a shop again: the consent link and the code exchange, declared per platform.

The runbook's "re-authorize the application" (platforms.md §2.3, §3.3, §4.3, §5.3, §6.3):
the seller approves the app on the platform's consent page, the platform redirects the
browser to a callback with a single-use, short-lived ``code``, and the app exchanges the code
for tokens. Each platform module declares how, in a section ``# --- authorization (§x.3) ---``
ending in an :class:`AuthorizationSpec` that its ``PlatformSpec`` references:

- ``consent_url`` builds the link the seller opens (Shopee's signed partner link, Lazada's and
  Facebook's OAuth dialogs, TikTok's service link, Zalo's with a PKCE challenge);
- ``exchange`` spends the code once (never retried: a second try cannot succeed) and returns
  a :class:`Grant`: the tokens in the platform's units and the accounts they are for.

Everything around it (the state, the loopback catcher, the paste, which account, storing,
the verifying ping) is the service's (:mod:`nfdoctor.services.token_authorize`), the same for
all five.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from nfdoctor.errors import NfdoctorError
from nfdoctor.platforms.base import PlatformClient, TokenSet

__all__ = [
    "AccountSource",
    "AuthorizationError",
    "AuthorizationSpec",
    "ConsentInputs",
    "ExchangeInputs",
    "Grant",
    "StateReturn",
    "code_challenge",
    "new_code_verifier",
    "new_state",
    "with_query",
]

S = TypeVar("S")

#: how the ``state`` comes back on the redirect:
#: ``echoed``: the platform documents echoing it; a missing or different one is refused.
#: ``if_echoed``: not documented (Shopee has no state parameter: nfdoctor carries it in the
#: redirect URL; Zalo's echo is disputed, §6.3): a different one is refused, a missing one
#: accepted, because something else binds the code to this run (Shopee: the shop id the
#: code is exchanged with; Zalo: the PKCE verifier that never leaves this process).
StateReturn = Literal["echoed", "if_echoed"]

#: where the account a code is for is known from:
#: ``callback``: the redirect names it (Shopee ``shop_id``, Zalo ``oa_id``);
#: ``exchange``: the token response names it (Lazada's ``country_user_info``);
#: ``asked``: neither does, so it must be known before the consent (``--shop``, or the only
#: configured account), and the exchange checks the tokens reach it (Facebook's Page token,
#: TikTok's authorised shops).
AccountSource = Literal["callback", "exchange", "asked"]


class AuthorizationError(NfdoctorError):
    """The authorization did not complete: refused, denied, timed out, for another account.

    Nothing was stored. The message says what happened and that the code (if any was
    spent) cannot be used again.
    """


def new_state() -> str:
    """A fresh ``state``: 32 random bytes, URL-safe (``secrets.token_urlsafe``)."""
    return secrets.token_urlsafe(32)


def new_code_verifier() -> str:
    """A PKCE ``code_verifier``: base64url without padding of 32 random bytes (43 chars)."""
    return base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode("ascii")


def code_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url without padding of SHA-256 of the verifier (vector V6)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query (existing parameters kept, same-named
    ones replaced)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass(frozen=True, kw_only=True)
class ConsentInputs(Generic[S]):
    """What a consent link is built from."""

    section: S
    #: a resolved secret of the section by field name (Shopee signs the link)
    secret: Callable[[str], str]
    #: where the platform is asked to send the browser back (TikTok ignores it: its
    #: callback is fixed in Partner Center)
    redirect_uri: str
    state: str
    #: the PKCE S256 challenge, for platforms that take one
    code_challenge: str | None
    now: datetime


@dataclass(frozen=True, kw_only=True)
class ExchangeInputs(Generic[S]):
    """What a code exchange needs: a client of the platform (no token yet) and the code."""

    section: S
    #: a client built through the platform's spec for the account asked or named (or "")
    client: PlatformClient
    code: str = field(repr=False)
    #: the redirect URI the consent link carried (Facebook sends it again)
    redirect_uri: str
    code_verifier: str | None = field(default=None, repr=False)
    #: the account asked (``--shop``) or named by the redirect; None when neither
    account_id: str | None
    #: called with every token the exchange sees (intermediate ones too), as soon as it sees
    #: it, so that nothing printed afterwards (``--debug`` logs included) can show it
    secret_found: Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class Grant:
    """What a code bought: the tokens, and the accounts the platform says they are for."""

    tokens: TokenSet
    #: the accounts the platform names for these tokens; empty when it does not say
    account_ids: tuple[str, ...]
    #: the access token has no expiry (a Facebook Page token from a long-lived User token)
    never_expires: bool = False
    #: what else the platform said worth showing (granted scopes, the seller's name)
    details: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AuthorizationSpec(Generic[S]):
    """How a platform's seller authorises the app, and how the code becomes tokens."""

    #: the link the seller opens
    consent_url: Callable[[ConsentInputs[S]], str]
    #: the code exchange, once (raises the platform's classified error when refused)
    exchange: Callable[[ExchangeInputs[S]], Awaitable[Grant]]
    #: the callback registered in the platform's console, from the config section
    redirect_uri: Callable[[S], str | None]
    #: whether the link carries the redirect URI (False: fixed in the console, TikTok)
    sends_redirect_uri: bool = True
    state: StateReturn = "echoed"
    #: the link carries a PKCE S256 challenge and the exchange its verifier (Zalo)
    pkce: bool = False
    account_source: AccountSource
    #: the redirect's parameter naming the account (``account_source == "callback"``)
    account_param: str | None = None
    #: the exchange must name the account (Shopee's ``shop_id``): without one from the
    #: redirect or ``--shop``, only a platform with one configured account can go on
    exchange_needs_account: bool = False
    #: how long a code lives (for messages)
    code_lifetime: timedelta
    #: where the callback is registered, in the platform's words (for messages)
    console: str
    #: the config keys a consent link needs that the section lacks, each with what to put
    #: there (``{"service_id": "the service id of …"}``); checked before anything is done
    missing: Callable[[S], dict[str, str]] = field(default=lambda section: {})
