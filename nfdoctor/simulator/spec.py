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
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from starlette.types import ASGIApp

from nfdoctor.simulator.model import Account, Order, TokenKind, alnum
from nfdoctor.store.inbox import InboundMessage

if TYPE_CHECKING:
    from nfdoctor.simulator.state import SimulatorState

__all__ = [
    "CRM_PREFIX",
    "ChatEventSource",
    "ChatSpec",
    "ConfigContext",
    "EmittedEvent",
    "ErrorBody",
    "Host",
    "InboundMessage",
    "MarketChatSpec",
    "OrderSpec",
    "RateLimitAnswer",
    "RegistrationKind",
    "RequestView",
    "SimPlatform",
    "WebhookDelivery",
    "WebhookSpec",
    "answered_by_2xx",
    "configured_webhook_url",
]

#: where the CRM is mounted (its receivers are ``/crm/webhooks/{platform}``)
CRM_PREFIX = "/crm"

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
    #: paths (globs, after the prefix) a browser opens rather than an API client: consent
    #: pages and their links. The rate limiter does not count them.
    browser_paths: tuple[str, ...] = ()


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


@dataclass(frozen=True, kw_only=True)
class MarketChatSpec:
    """A marketplace's chat with its buyers (Lazada IM, TikTok Shop customer service).

    The buyers are the platform's (their user ids as the orders carry them); the data comes
    from a random stream of its own, so declaring it changes no other seeded data.
    """

    #: the conversation (session) id of ``(account id, buyer id)``: no draw, so the webhook
    #: emitter derives the same id for the same buyer
    conversation_id: Callable[[str, str], str]
    new_message_id: Callable[[random.Random], str]


@dataclass(frozen=True)
class RequestView:
    """What the fault injector saw of a request: path after the prefix, query, body, headers."""

    path: str
    query: Mapping[str, str]
    #: a form or JSON object body; empty otherwise
    fields: Mapping[str, Any]
    #: lowercase names
    headers: Mapping[str, str]


#: ``(state, request) -> (status, JSON body)``: the platform's answer to a request its rate
#: limiter refused (the body in its own envelope; the simulator adds ``Retry-After``)
RateLimitAnswer = Callable[["SimulatorState", "RequestView"], tuple[int, dict[str, Any]]]


@dataclass(frozen=True)
class WebhookDelivery:
    """One delivery to the CRM's webhook receiver: the URL it was sent to, headers, raw body."""

    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, kw_only=True)
class ChatEventSource:
    """What one chat message event is about: who wrote what to which account, and when."""

    account: Account
    user_id: str
    user_name: str
    text: str
    sent_at: datetime
    #: the user's conversation with the account where the simulator serves one
    conversation_id: str | None = None


@dataclass(frozen=True)
class EmittedEvent:
    """One event as the platform delivers it: its message id and its body, byte for byte."""

    message_id: str
    body: bytes


#: what a ``registrations:`` value of the fault plan may be: a URL (or null), a list of
#: strings (or null), a list of whole numbers, a line of text
RegistrationKind = Literal["url", "strings", "ints", "text"]


def configured_webhook_url(
    state: SimulatorState, platform: str, origin: str | None = None
) -> str | None:
    """The URL the platform's side is configured to deliver to: ``state.webhook_urls``
    (filled when the server starts); else, when a request to the simulator gives its own
    origin (``http://127.0.0.1:PORT``), that origin's receiver, which is what the config the
    simulator writes says without ``--tls``."""
    url = state.webhook_urls.get(platform)
    if url is None and origin is not None:
        url = f"{origin}{CRM_PREFIX}/webhooks/{platform}"
    return url


def answered_by_2xx(status: int, body: bytes) -> bool:
    """Most platforms count any 2xx as answered (platforms.md §2.8, §3.8, §5.8, §6.8)."""
    return 200 <= status < 300


@dataclass(frozen=True, kw_only=True)
class WebhookSpec:
    """How a platform delivers its events to the CRM: deadline, retries, payloads, signing.

    What the emitter (``emitter.py``) needs to deliver as the platform would, and what the
    platform's own webhook APIs report (``registration_fields``, lost pushes).
    """

    #: a delivery not answered within this is a failure (real time, never compressed)
    ack_deadline: timedelta
    #: the gaps between attempts after each failure; its length is the number of retries
    retry_schedule: tuple[timedelta, ...]
    #: whether ``(status, body)`` counts as answered
    answered: Callable[[int, bytes], bool] = answered_by_2xx
    #: one chat message event, its ids drawn from the random stream given
    message_event: Callable[[SimulatorState, ChatEventSource, random.Random], EmittedEvent]
    #: an event the CRM acknowledges and drops (a read receipt, a metadata change …)
    probe_event: Callable[[SimulatorState, Account, datetime], bytes]
    #: an order status event (marketplaces that keep lost pushes seed some)
    order_event: Callable[[SimulatorState, Account, Order, datetime], bytes] | None = None
    #: the headers that sign ``body`` sent to ``url`` for ``account``
    sign: Callable[[SimulatorState, Account, str, bytes], dict[str, str]]
    #: extra headers of the n-th retry (Zalo's ``num_retry``)
    retry_headers: Callable[[int], dict[str, str]] | None = None
    #: where the platform delivers ``account``'s message events, as its side is configured
    #: (None: not delivered); default: ``state.webhook_urls[name]``
    delivery_url: Callable[[SimulatorState, Account], str | None] | None = None
    #: the keys ``registrations:`` may set for this platform, and what each holds
    registration_fields: Mapping[str, RegistrationKind] = dataclasses.field(default_factory=dict)
    #: deliveries given up on are kept for the platform's lost-push API (Shopee)
    keeps_lost_pushes: bool = False


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


def _new_code(rng: random.Random) -> str:
    return alnum(rng, 40)


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
    #: refresh tokens documented as single use: a new authorization (a code exchanged)
    #: also revokes the account's previous refresh token
    single_use_refresh: bool = False
    #: how long an authorization code may be exchanged (single use)
    code_lifetime: timedelta
    #: an authorization code, as the platform's look (from the state's code stream)
    new_code: Callable[[random.Random], str] = _new_code
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
    #: a marketplace's buyer chat, served beside its orders (``Account.chats``)
    market_chat: MarketChatSpec | None = None
    #: every secret of the platform the state holds (app secrets, per-account secrets)
    secrets: Callable[[SimulatorState], list[str]]
    #: the platform's section of an nfdoctor config pointing at the simulator
    config_section: Callable[[SimulatorState, ConfigContext], dict[str, Any]]
    #: whether a webhook delivery carries the signature this platform would have made
    verify_webhook: Callable[[SimulatorState, WebhookDelivery], bool]
    #: the CRM's answer to the platform's GET subscription handshake: (status, text); the
    #: third argument is a ``wrong_challenge`` answer to give instead (None: answer right)
    webhook_handshake: (
        Callable[[SimulatorState, Mapping[str, str], str | None], tuple[int, str]] | None
    ) = None
    #: account ids a request names beyond the tokens it presents (see faults.request_accounts)
    request_accounts: Callable[[SimulatorState, RequestView], set[str]] | None = None
    #: the chat messages a delivery's raw body holds, as the CRM reads them into
    #: ``messages`` rows (empty: not a message event, acknowledged and dropped)
    read_message_event: Callable[[bytes], list[InboundMessage]] | None = None
    #: how the platform delivers events (emitter, retries, registration, lost pushes)
    webhooks: WebhookSpec | None = None
    #: the answer to a request over the rate limit (``rate_limits:``, ``--rate-limit``);
    #: default: ``error_body("rate_limit", 429)``
    rate_limit_answer: RateLimitAnswer | None = None

    def rate_limited(
        self, state: SimulatorState, request: RequestView
    ) -> tuple[int, dict[str, Any]]:
        """The platform's own answer to a request its rate limiter refused."""
        if self.rate_limit_answer is not None:
            return self.rate_limit_answer(state, request)
        return self.error_body("rate_limit", 429)

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
