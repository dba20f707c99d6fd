"""What a simulated platform declares about itself, once, in its own module.

Each of ``shopee.py``, ``lazada.py``, ``tiktok.py``, ``facebook.py`` and ``zalo.py`` ends
with one :class:`SimPlatform`; :mod:`nfdoctor.simulator.registry` lists them. The rest of
the simulator (state, app, faults, CRM, config writer, demo CRM data) asks the declaration
instead of comparing platform names.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from starlette.types import ASGIApp

from nfdoctor.simulator.model import Account, Order, TokenKind

if TYPE_CHECKING:
    from nfdoctor.simulator.state import SimulatorState

__all__ = [
    "ChatSpec",
    "ConfigContext",
    "ErrorBody",
    "Host",
    "OrderSpec",
    "RequestView",
    "SimPlatform",
    "WebhookDelivery",
]

#: ``(kind, status) -> (status, JSON body)`` in the platform's own error envelope;
#: kind is ``"rate_limit"`` or ``"server"``
ErrorBody = Callable[[str, int], tuple[int, dict[str, Any]]]

S = TypeVar("S")


@dataclass(frozen=True, kw_only=True)
class Host:
    """One real host of a platform, served by the simulator under ``prefix``."""

    prefix: str
    real_host: str
    build: Callable[[SimulatorState], ASGIApp]


@dataclass(frozen=True, kw_only=True)
class OrderSpec:
    """A marketplace's orders: how ids and statuses look, and how the CRM stores them."""

    #: the statuses the simulator serves, as the platform spells them (order is seeded data)
    statuses: tuple[str, ...]
    #: the platform's status -> one of the CRM's six ``orders.status`` values
    crm_status: Mapping[str, str]
    new_order_id: Callable[[random.Random, datetime], str]
    new_buyer_id: Callable[[random.Random], str]
    #: the order as the platform's API returns it (what the CRM keeps in ``orders.raw``)
    payload: Callable[[Order], dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class ChatSpec:
    """A chat platform's conversations: id formats, and what the CRM sees of them."""

    new_user_id: Callable[[random.Random], str]
    #: the conversation id, given the user id (may be the user id itself, with no draw)
    new_conversation_id: Callable[[random.Random, str], str]
    new_message_id: Callable[[random.Random], str]
    #: whether the CRM stores the conversation id as ``conversations.external_thread_id``
    crm_thread_ids: bool
    #: the span between two webhook deliveries of one message (the platform's retry schedule)
    webhook_retry_gap: tuple[timedelta, timedelta]
    #: a file's URL on the platform's CDN, for an attachment of ``kind`` (image, video, file)
    attachment_url: Callable[[random.Random, str], str]


@dataclass(frozen=True)
class RequestView:
    """What the fault injector saw of a request: path after the prefix, query, body, headers."""

    path: str
    query: Mapping[str, str]
    #: a form or JSON object body; empty otherwise
    fields: Mapping[str, Any]
    #: lowercase names
    headers: Mapping[str, str]


@dataclass(frozen=True)
class WebhookDelivery:
    """One delivery to the CRM's webhook receiver: the URL it was sent to, headers, raw body."""

    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class ConfigContext:
    """What a platform's config section needs from the config writer."""

    #: the simulator's base URL, without a trailing slash
    base: str
    #: the CRM receiver this platform's webhooks go to
    webhook_url: str
    #: ``secret(file_name, value)`` writes a 0600 file and returns its ``file:`` reference
    secret: Callable[[str, str], str]

    def url(self, prefix: str) -> str:
        """The simulator URL of a mount prefix (``/lazada-auth`` -> ``http://…/lazada-auth``)."""
        return self.base + prefix


@dataclass(frozen=True, kw_only=True)
class SimPlatform(Generic[S]):
    """One simulated platform: its hosts, tokens, accounts, data, config and webhooks.

    ``S`` is the platform's settings: its app credentials (drawn from the seed) and the
    knobs tests turn (``state.<name>_<field>`` reads and sets them, for compatibility).
    """

    name: str
    #: how operators call it ("TikTok Shop"), for messages
    label: str
    hosts: tuple[Host, ...]
    error_body: ErrorBody
    access_lifetime: timedelta | None
    #: None: the platform has no refresh token
    refresh_lifetime: timedelta | None
    #: refresh deadlines that rotation does not move (the grant's end, not the token's)
    fixed_refresh_deadline: bool = False
    #: whether ``state.require_appsecret_proof`` applies (Meta-style ``appsecret_proof``)
    appsecret_proof: bool = False
    first_account_name: str
    #: categories of the names of accounts after the first ("Thời Trang" + a brand)
    shop_categories: tuple[str, ...]
    settings_type: type[S]
    new_settings: Callable[[random.Random], S]
    new_account: Callable[[random.Random, str], Account]
    new_token: Callable[[random.Random, TokenKind], str]
    #: ``Account.extra`` keys that identify an account as its id does (TikTok's cipher)
    identifying_extras: tuple[str, ...] = ()
    orders: OrderSpec | None = None
    chat: ChatSpec | None = None
    #: every secret of the platform the state holds (app secrets, per-account secrets)
    secrets: Callable[[SimulatorState], list[str]]
    #: the platform's section of an nfdoctor config pointing at the simulator
    config_section: Callable[[SimulatorState, ConfigContext], dict[str, Any]]
    #: whether a webhook delivery carries the signature this platform would have made
    verify_webhook: Callable[[SimulatorState, WebhookDelivery], bool]
    #: the CRM's answer to the platform's GET subscription handshake: (status, text)
    webhook_handshake: Callable[[SimulatorState, Mapping[str, str]], tuple[int, str]] | None = None
    #: account ids a request names beyond the tokens it presents (see faults.request_accounts)
    request_accounts: Callable[[SimulatorState, RequestView], set[str]] | None = None

    def settings(self, state: SimulatorState) -> S:
        """This platform's settings in ``state``."""
        value = state.platform_settings[self.name]
        if not isinstance(value, self.settings_type):
            raise TypeError(f"{self.name} settings are a {type(value).__name__}")
        return value

    def setting_names(self) -> tuple[str, ...]:
        """The fields of the settings (``state.<name>_<field>`` are their legacy names)."""
        if not dataclasses.is_dataclass(self.settings_type):
            return ()
        return tuple(f.name for f in dataclasses.fields(self.settings_type))

    def accounts(self, state: SimulatorState) -> Sequence[Account]:
        """This platform's accounts in ``state``."""
        return state.accounts[self.name]
