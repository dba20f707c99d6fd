"""The demo CRM's data, made from what the simulator serves, with the CRM's duplicates.

Every ``shops`` row is an account of the simulator (the same Shopee shop ids, Lazada seller
ids, TikTok shop ids, Facebook page ids and Zalo OA ids); customers and their identities
are the users the simulator serves (chat users of pages and OAs, marketplace buyers);
conversations and messages are the simulator's chats, with the same message ids; orders are
its orders, their status normalised as each platform's module declares; ``channel_credentials``
holds, for every shop, the tokens the simulator issued for it (what ``tokens.json`` says, as
the CRM wrote them: ``updated_by='crm'``, version 1, no lease). What only the CRM
knows (when it stored a delivery, phones, e-mails, merges, replies, attachments, thread
status) comes from a random stream of its own, so the simulator's data is untouched.

The duplicates are planted the way ``crm-schema.md`` says the CRM produces them: a webhook
retry the CRM failed to acknowledge in time becomes a second (or third) ``messages`` row with
the same ``(shop_id, external_id)`` and a later ``received_at``; replies and attachments
point at the first copy; a retry that came after the thread was closed landed in a second
conversation for the same customer. A message id the simulator serves on two shops
(``shared_message_ids``) is kept as it is: the same id on another shop, not a duplicate.

The rows go to SQLite or PostgreSQL through :mod:`nfdoctor.store.seeding`; this module
writes no SQL.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from nfdoctor.simulator.model import Account, Order
from nfdoctor.simulator.registry import SIM_PLATFORMS
from nfdoctor.simulator.spec import SimPlatform
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.store.database import DatabaseUrl
from nfdoctor.store.repository import (
    AttachmentRow,
    ConversationRow,
    CredentialRow,
    CrmRows,
    CustomerRow,
    IdentityRow,
    MessageRow,
    OrderRow,
    ShopRow,
)
from nfdoctor.store.seeding import check_seed_target, seed_database

__all__ = [
    "DEMO_ACCOUNTS_PER_PLATFORM",
    "DEMO_CONVERSATIONS_PER_ACCOUNT",
    "DEMO_ORDERS_PER_SHOP",
    "DemoCrm",
    "DemoSummary",
    "build_demo_database",
    "demo_crm",
    "write_demo_crm",
]

#: the demo database's own simulator: 10 shops, 600 orders, 400 conversations
DEMO_ACCOUNTS_PER_PLATFORM = 2
DEMO_ORDERS_PER_SHOP = 100
DEMO_CONVERSATIONS_PER_ACCOUNT = 100

#: at most this many duplicated messages, of which this many after their thread closed
DUPLICATE_GROUPS = 40
CLOSED_THREAD_GROUPS = 4
#: customer records merged away into another (the same phone, found later)
MERGED_CUSTOMERS = 8

_SETTLED = timedelta(hours=6)  # retries of older messages have all landed by now


@dataclass(frozen=True, kw_only=True)
class DemoSummary:
    """What a demo CRM database holds, and the duplicates planted in it."""

    #: the file, or the PostgreSQL URL with its password masked
    location: str
    #: the SQLite file; None on PostgreSQL
    path: Path | None
    seed: int
    shops: int
    customers: int
    identities: int
    conversations: int
    messages: int
    attachments: int
    orders: int
    #: ``(shop_id, external_id)`` values held by more than one ``messages`` row
    duplicate_groups: int
    #: surplus copies: the rows a dedupe keeping one row per group would remove
    duplicate_rows: int
    #: groups whose late retry opened a second conversation for the same customer
    closed_thread_groups: int
    #: message ids used on more than one shop: same id, different shop, not duplicates
    cross_shop_reuses: int
    #: ``channel_credentials`` rows: one per shop with a live token
    credentials: int = 0


@dataclass(frozen=True)
class DemoCrm:
    """The demo CRM's rows, and what was planted in them."""

    rows: CrmRows
    seed: int
    duplicate_groups: int
    duplicate_rows: int
    closed_thread_groups: int
    cross_shop_reuses: int

    def summary(self, location: str, path: Path | None = None) -> DemoSummary:
        """The summary of these rows, written to ``location``."""
        counts = self.rows.counts()
        return DemoSummary(
            location=location,
            path=path,
            seed=self.seed,
            shops=counts["shops"],
            customers=counts["customers"],
            identities=counts["customer_identities"],
            conversations=counts["conversations"],
            messages=counts["messages"],
            attachments=counts["message_attachments"],
            orders=counts["orders"],
            duplicate_groups=self.duplicate_groups,
            duplicate_rows=self.duplicate_rows,
            closed_thread_groups=self.closed_thread_groups,
            cross_shop_reuses=self.cross_shop_reuses,
            credentials=counts["channel_credentials"],
        )


def demo_crm(state: SimulatorState, *, now: datetime | None = None) -> DemoCrm:
    """The CRM rows for everything ``state`` serves, as of ``now`` (default: when the state
    made its data). The same state and ``now`` always give the same rows."""
    moment = now or state.started_at
    if moment.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return _Builder(state, moment).build()


def write_demo_crm(
    url: DatabaseUrl,
    state: SimulatorState,
    *,
    now: datetime | None = None,
    option: str | None = None,
    overwrite: bool = False,
    timeout_s: float = 5.0,
) -> DemoSummary:
    """Write the demo CRM of ``state`` into a new SQLite file or an empty PostgreSQL schema
    (see :mod:`nfdoctor.store.seeding`); ``option`` prefixes refusals (``--database``)."""
    demo = demo_crm(state, now=now)
    seed_database(url, demo.rows, option=option, overwrite=overwrite, timeout_s=timeout_s)
    return demo.summary(url.redacted() if url.path is None else str(url.path), url.path)


def build_demo_database(
    path: Path,
    *,
    seed: int = 7,
    now: datetime,
    overwrite: bool = False,
    accounts_per_platform: int = DEMO_ACCOUNTS_PER_PLATFORM,
    orders_per_shop: int = DEMO_ORDERS_PER_SHOP,
    conversations_per_account: int = DEMO_CONVERSATIONS_PER_ACCOUNT,
) -> DemoSummary:
    """Write a new demo SQLite database at ``path`` (atomically) and say what is in it.

    Its data is that of ``SimulatorState(seed)`` at ``now`` with these sizes, one message
    id shared by two pages (so the CRM has a same-id-other-shop case to get right).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    url = DatabaseUrl("sqlite", path=path)
    check_seed_target(url, overwrite=overwrite)  # before the data is made
    state = SimulatorState(
        seed,
        lambda: now,
        accounts_per_platform=accounts_per_platform,
        orders_per_shop=orders_per_shop,
        conversations_per_account=conversations_per_account,
        shared_message_ids=1,
    )
    return write_demo_crm(url, state, now=now, overwrite=overwrite)


# --- building ---------------------------------------------------------------------------------


@dataclass(eq=False)
class _Shop:
    spec: SimPlatform[Any]
    account: Account
    id: int
    created: datetime


@dataclass(eq=False)
class _Customer:
    seq: int
    display_name: str | None
    phone: str | None
    email: str | None
    channels: set[str] = field(default_factory=set)
    created: datetime | None = None
    merged_into: _Customer | None = None
    id: int = 0


@dataclass(eq=False)
class _Identity:
    seq: int
    channel: str
    external_user_id: str
    display_name: str
    first_seen: datetime
    customer: _Customer | None = None
    id: int = 0


@dataclass(eq=False)
class _Conversation:
    seq: int
    shop: _Shop
    identity: _Identity
    external_thread_id: str | None
    created: datetime
    last: datetime
    status: str = "open"
    messages: list[_Message] = field(default_factory=list)
    id: int = 0


@dataclass(eq=False)
class _Message:
    seq: int
    conversation: _Conversation
    external_id: str
    direction: str
    sender: str
    body: str
    sent: datetime
    received: datetime
    reply_to: _Message | None = None
    copy_of: _Message | None = None
    id: int = 0


@dataclass(eq=False)
class _Attachment:
    seq: int
    message: _Message
    kind: str
    url: str


@dataclass(eq=False)
class _Order:
    seq: int
    shop: _Shop
    order: Order
    identity: _Identity
    synced: datetime
    id: int = 0


class _Builder:
    """Turns one simulator state into CRM rows; every CRM-side choice from one stream."""

    def __init__(self, state: SimulatorState, now: datetime) -> None:
        self.state = state
        self.now = now
        # A stream of its own: the simulator's streams, and so its data, stay untouched.
        self.rng = random.Random(f"nfdoctor-simulator/{state.seed}/crm")
        self.seq = 0
        self.shops: list[_Shop] = []
        self.identities: dict[tuple[str, str], _Identity] = {}
        self.customers: list[_Customer] = []
        self.conversations: list[_Conversation] = []
        self.messages: list[_Message] = []
        self.attachments: list[_Attachment] = []
        self.orders: list[_Order] = []
        self.duplicate_groups = 0
        self.duplicate_rows = 0
        self.closed_thread_groups = 0

    def build(self) -> DemoCrm:
        self._make_shops()
        self._make_identities()
        self._make_customers()
        self._make_conversations()
        self._make_orders()
        shared = self._shared_ids()
        self._plant_duplicates(shared)
        self._merge_some_customers()
        self._assign_ids()
        return DemoCrm(
            rows=self._rows(),
            seed=self.state.seed,
            duplicate_groups=self.duplicate_groups,
            duplicate_rows=self.duplicate_rows,
            closed_thread_groups=self.closed_thread_groups,
            cross_shop_reuses=len(shared),
        )

    # -- helpers --------------------------------------------------------------------------

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def _between(self, low: timedelta, high: timedelta) -> timedelta:
        span = self.rng.randint(low // timedelta(microseconds=1), high // timedelta(microseconds=1))
        return timedelta(microseconds=span)

    def _stored(self, sent: datetime) -> datetime:
        """When the CRM stored a webhook delivery of something sent at ``sent``."""
        return min(
            self.now, sent + self._between(timedelta(milliseconds=150), timedelta(seconds=2.5))
        )

    # -- shops and people -----------------------------------------------------------------

    def _make_shops(self) -> None:
        for spec in SIM_PLATFORMS:
            for account in self.state.accounts[spec.name]:
                # Connected long before the 30 days of data the simulator serves.
                age = self._between(timedelta(days=120), timedelta(days=540))
                self.shops.append(_Shop(spec, account, len(self.shops) + 1, self.now - age))

    def _identity(self, channel: str, user_id: str, name: str, seen: datetime) -> None:
        identity = self.identities.get((channel, user_id))
        if identity is None:
            identity = _Identity(self._next(), channel, user_id, name, seen)
            self.identities[(channel, user_id)] = identity
        identity.first_seen = min(identity.first_seen, seen)

    def _make_identities(self) -> None:
        # Marketplace buyer ids are per platform (one buyer, several shops); Messenger PSIDs
        # and Zalo user ids are scoped to a page or OA, so a person has one per page.
        for shop in self.shops:
            channel = shop.spec.name
            for conversation in shop.account.conversations:
                first = conversation.messages[0].time
                self._identity(channel, conversation.user_id, conversation.user_name, first)
            for order in shop.account.orders:
                self._identity(channel, order.buyer_user_id, order.buyer_name, order.create_time)

    def _make_customers(self) -> None:
        for identity in self.identities.values():
            customer: _Customer | None = None
            if self.customers and self.rng.random() < 0.12:
                # Known on another channel already: the CRM matched the phone number.
                candidate = self.rng.choice(self.customers)
                if identity.channel not in candidate.channels:
                    customer = candidate
            if customer is None:
                customer = self._new_customer(identity.display_name)
            customer.channels.add(identity.channel)
            identity.customer = customer
            # A customer exists from their first message or order on any channel.
            seen = identity.first_seen
            customer.created = seen if customer.created is None else min(customer.created, seen)

    def _new_customer(self, name: str) -> _Customer:
        phone = None
        if self.rng.random() < 0.85:
            phone = "+849" + self.rng.choice("01346789") + _digits(self.rng, 7)
        email = None
        if self.rng.random() < 0.3:
            parts = _ascii(name).lower().split()
            email = f"{''.join(parts[-1:] + parts[:1])}{self.rng.randint(1, 999)}@gmail.com"
        customer = _Customer(
            seq=self._next(),
            display_name=name if self.rng.random() < 0.97 else None,
            phone=phone,
            email=email,
        )
        self.customers.append(customer)
        return customer

    def _merge_some_customers(self) -> None:
        # A record created later for someone already known, merged once the phone matched.
        known = [c for c in self.customers if c.phone is not None and c.merged_into is None]
        for target in self.rng.sample(known, min(MERGED_CUSTOMERS, len(known))):
            assert target.created is not None
            name = target.display_name
            merged = _Customer(
                seq=self._next(),
                display_name=_ascii(name) if name is not None else None,
                phone=target.phone,
                email=None,
                created=min(
                    self.now, target.created + self._between(timedelta(hours=1), timedelta(days=20))
                ),
                merged_into=target,
            )
            self.customers.append(merged)

    # -- chats ----------------------------------------------------------------------------

    def _make_conversations(self) -> None:
        for shop in self.shops:
            chat = shop.spec.chat
            if chat is None:
                continue
            for served in shop.account.conversations:
                identity = self.identities[(shop.spec.name, served.user_id)]
                first = served.messages[0]
                conversation = _Conversation(
                    seq=self._next(),
                    shop=shop,
                    identity=identity,
                    external_thread_id=served.conversation_id if chat.crm_thread_ids else None,
                    created=self._stored(first.time),
                    last=served.messages[-1].time,
                )
                last_in: _Message | None = None
                for sent in served.messages:
                    message = _Message(
                        seq=self._next(),
                        conversation=conversation,
                        external_id=sent.message_id,
                        direction="in" if sent.from_customer else "out",
                        sender=sent.sender_id,
                        body=sent.text,
                        sent=sent.time,
                        received=(
                            conversation.created if sent is first else self._stored(sent.time)
                        ),
                    )
                    if message.direction == "in":
                        last_in = message
                    elif last_in is not None and self.rng.random() < 0.15:
                        message.reply_to = last_in  # the agent used "reply"
                    if self.rng.random() < (0.07 if message.direction == "in" else 0.04):
                        self._attach(
                            message, self.rng.choices(("image", "video", "file"), (8, 1, 1))[0]
                        )
                    conversation.messages.append(message)
                    self.messages.append(message)
                conversation.status = self._status(conversation)
                self.conversations.append(conversation)

    def _status(self, conversation: _Conversation) -> str:
        idle = self.now - conversation.last
        choices: tuple[str, ...]
        weights: tuple[int, ...]
        if idle > timedelta(days=2):
            choices, weights = ("closed", "pending"), (92, 8)
        elif idle > timedelta(hours=6):
            choices, weights = ("closed", "pending", "open"), (2, 1, 1)
        else:
            choices, weights = ("open", "pending"), (7, 3)
        return self.rng.choices(choices, weights)[0]

    def _attach(self, message: _Message, kind: str) -> None:
        chat = message.conversation.shop.spec.chat
        assert chat is not None
        url = chat.attachment_url(self.rng, kind)
        self.attachments.append(_Attachment(self._next(), message, kind, url))

    # -- orders ---------------------------------------------------------------------------

    def _make_orders(self) -> None:
        for shop in self.shops:
            for order in shop.account.orders:
                synced = order.update_time + self._between(
                    timedelta(seconds=5), timedelta(minutes=15)
                )
                identity = self.identities[(shop.spec.name, order.buyer_user_id)]
                self.orders.append(
                    _Order(self._next(), shop, order, identity, min(synced, self.now))
                )

    # -- planted duplicates ---------------------------------------------------------------

    def _shared_ids(self) -> list[str]:
        """Message ids the simulator serves on more than one shop (not duplicates)."""
        shops: dict[str, set[int]] = {}
        for message in self.messages:
            shops.setdefault(message.external_id, set()).add(message.conversation.shop.id)
        return sorted(external_id for external_id, on in shops.items() if len(on) > 1)

    def _plant_duplicates(self, shared: list[str]) -> None:
        settled = self.now - _SETTLED  # room for every retry to land before now
        kept_apart = set(shared)  # a shared id stays one row per shop

        def eligible(message: _Message) -> bool:
            return message.received < settled and message.external_id not in kept_apart

        closed = [
            c
            for c in self.conversations
            if c.status == "closed"
            and c.last < settled
            and any(m.direction == "in" and eligible(m) for m in c.messages)
        ]
        late = [
            [m for m in c.messages if m.direction == "in" and eligible(m)][-1]
            for c in self.rng.sample(closed, min(CLOSED_THREAD_GROUPS, len(closed)))
        ]
        chosen = {m.seq for m in late}
        pool = [m for m in self.messages if eligible(m) and m.seq not in chosen]
        incoming = [m for m in pool if m.direction == "in"]
        outgoing = [m for m in pool if m.direction == "out"]
        prompt: list[_Message] = []
        wanted = min(DUPLICATE_GROUPS - len(late), len(pool) // 5)
        while len(prompt) < wanted:
            # Mostly customer messages; echoes of the shop's own replies are redelivered too.
            source = outgoing if self.rng.random() < 0.15 else incoming
            left = [m for m in source if m.seq not in chosen] or [
                m for m in pool if m.seq not in chosen
            ]
            candidate = self.rng.choice(left)
            chosen.add(candidate.seq)
            prompt.append(candidate)
        # Before any copy exists, make sure some originals carry what a careless dedupe would
        # orphan: an attachment, a reply pointing at them. Copies inherit reply_to as sent.
        for index, original in enumerate(late + prompt):
            if index % 3 == 0 and not any(a.message is original for a in self.attachments):
                self._attach(original, "image")
            if index % 3 == 1 and original.direction == "in":
                later = [
                    m
                    for m in original.conversation.messages
                    if m.direction == "out" and m.sent > original.sent
                ]
                if later:
                    later[0].reply_to = original
        for original in late:
            self._retry_after_close(original)
        for original in prompt:
            self._retry(original, copies=self.rng.choices((1, 2), (7, 3))[0])

    def _retry_gap(self, message: _Message) -> timedelta:
        chat = message.conversation.shop.spec.chat
        assert chat is not None
        return self._between(*chat.webhook_retry_gap)

    def _retry(self, original: _Message, *, copies: int) -> None:
        received = original.received
        for _ in range(copies):
            received += self._retry_gap(original)
            self._copy(original, original.conversation, received)
        self.duplicate_groups += 1

    def _retry_after_close(self, original: _Message) -> None:
        first = original.conversation
        received = max(first.last, original.received) + self._between(
            timedelta(minutes=20), timedelta(hours=3)
        )
        # The thread was closed, so the CRM opened a second one for the same customer.
        second = _Conversation(
            seq=self._next(),
            shop=first.shop,
            identity=first.identity,
            external_thread_id=first.external_thread_id,
            created=received,
            last=original.sent,
            status=self.rng.choice(("open", "pending")),
        )
        self.conversations.append(second)
        for _ in range(self.rng.choices((1, 2), (7, 3))[0]):
            self._copy(original, second, received)
            received += self._retry_gap(original)
        self.duplicate_groups += 1
        self.closed_thread_groups += 1

    def _copy(self, original: _Message, conversation: _Conversation, received: datetime) -> None:
        copy = _Message(
            seq=self._next(),
            conversation=conversation,
            external_id=original.external_id,
            direction=original.direction,
            sender=original.sender,
            body=original.body,
            sent=original.sent,
            received=received,
            reply_to=original.reply_to,
            copy_of=original,
        )
        conversation.messages.append(copy)
        self.messages.append(copy)
        self.duplicate_rows += 1

    # -- rows -----------------------------------------------------------------------------

    def _assign_ids(self) -> None:
        # Ids in insertion order, as the CRM would have inserted them: by time.
        self.customers.sort(key=lambda c: (c.created or self.now, c.seq))
        for number, customer in enumerate(self.customers, start=1):
            customer.id = number
        for number, identity in enumerate(
            sorted(self.identities.values(), key=lambda i: (i.first_seen, i.seq)), start=1
        ):
            identity.id = number
        self.conversations.sort(key=lambda c: (c.created, c.seq))
        for number, conversation in enumerate(self.conversations, start=1):
            conversation.id = number
        self.messages.sort(key=lambda m: (m.received, m.seq))
        for number, message in enumerate(self.messages, start=1):
            message.id = number
        self.orders.sort(key=lambda o: (o.order.create_time, o.seq))
        for number, order in enumerate(self.orders, start=1):
            order.id = number
        self.attachments.sort(key=lambda a: (a.message.id, a.seq))

    def _rows(self) -> CrmRows:
        def customer_id(identity: _Identity) -> int:
            assert identity.customer is not None
            return identity.customer.id

        shops = [
            ShopRow(
                id=s.id,
                channel=s.spec.name,
                external_id=s.account.account_id,
                name=s.account.name,
                created_at=s.created,
            )
            for s in self.shops
        ]
        customers = [
            CustomerRow(
                id=c.id,
                display_name=c.display_name,
                phone=c.phone,
                email=c.email,
                created_at=c.created or self.now,
                merged_into_id=c.merged_into.id if c.merged_into else None,
            )
            for c in self.customers
        ]
        identities = [
            IdentityRow(
                id=i.id,
                customer_id=customer_id(i),
                channel=i.channel,
                external_user_id=i.external_user_id,
                display_name=i.display_name,
            )
            for i in sorted(self.identities.values(), key=lambda i: i.id)
        ]
        conversations = [
            ConversationRow(
                id=c.id,
                shop_id=c.shop.id,
                customer_id=customer_id(c.identity),
                external_thread_id=c.external_thread_id,
                status=c.status,
                created_at=c.created,
                last_message_at=c.last,
            )
            for c in self.conversations
        ]
        messages = [
            MessageRow(
                id=m.id,
                conversation_id=m.conversation.id,
                shop_id=m.conversation.shop.id,
                external_id=m.external_id,
                direction=m.direction,
                sender_external_id=m.sender,
                body=m.body,
                sent_at=m.sent,
                received_at=m.received,
                reply_to_id=m.reply_to.id if m.reply_to else None,
            )
            for m in self.messages
        ]
        attachments = [
            AttachmentRow(id=number, message_id=a.message.id, kind=a.kind, url=a.url)
            for number, a in enumerate(self.attachments, start=1)
        ]
        orders = []
        for o in self.orders:
            spec = o.shop.spec.orders
            assert spec is not None
            orders.append(
                OrderRow(
                    id=o.id,
                    shop_id=o.shop.id,
                    external_id=o.order.order_id,
                    customer_id=customer_id(o.identity),
                    platform_status=o.order.status,
                    status=spec.crm_status[o.order.status],
                    total_amount=o.order.amount,
                    currency=o.order.currency,
                    created_at=o.order.create_time,
                    updated_at=o.order.update_time,
                    synced_at=o.synced,
                    raw=spec.payload(o.order),
                )
            )
        return CrmRows(
            shops=shops,
            customers=customers,
            identities=identities,
            conversations=conversations,
            messages=messages,
            attachments=attachments,
            orders=orders,
            credentials=self._credentials(),
        )

    def _credentials(self) -> list[CredentialRow]:
        """The tokens the CRM holds for each shop: the ones the simulator issued (and that
        the written tokens.json holds), stored by the CRM when it got them."""
        credentials = []
        for shop in self.shops:
            platform, account = shop.spec.name, shop.account.account_id
            access = self.state.current(platform, account, "access")
            if access is None:  # revoked: a CRM would have nothing usable to store
                continue
            refresh = self.state.current(platform, account, "refresh")
            credentials.append(
                CredentialRow(
                    shop_id=shop.id,
                    access_token=access.value,
                    access_expires_at=access.expires_at,
                    refresh_token=refresh.value if refresh is not None else None,
                    refresh_expires_at=refresh.expires_at if refresh is not None else None,
                    updated_at=access.issued_at,
                    updated_by="crm",
                    version=1,
                )
            )
        return credentials


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _ascii(text: str) -> str:
    """Vietnamese without diacritics, as many people type their names online."""
    decomposed = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
