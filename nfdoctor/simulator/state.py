"""The simulator's world: credentials, tokens with real lifetimes, shops, orders, chats.

Everything is derived from one seed through one ``random.Random``, so the same seed always
gives the same ids, secrets, tokens and data; time comes from an injected clock so tests can
move it forward and watch tokens expire. What is platform-specific (id and token formats,
lifetimes, statuses, credentials) each platform declares in its own module (see
:mod:`nfdoctor.simulator.registry`); this module only draws from the seed in a fixed order.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from nfdoctor.simulator.model import (
    Account,
    AuthCode,
    Clock,
    CodeStatus,
    Consent,
    Conversation,
    Message,
    Order,
    Token,
    TokenEvent,
    TokenKind,
    TokenStatus,
    alnum,
)
from nfdoctor.simulator.people import CHAT_NAMES, CHAT_TEXTS, SHOP_BRANDS, buyer_name
from nfdoctor.simulator.ratelimit import RequestRate
from nfdoctor.simulator.registry import NAMES, SIM_PLATFORMS, sim_platform
from nfdoctor.simulator.spec import SimPlatform
from nfdoctor.simulator.verify import pkce_s256, pkce_verifier_ok, verify_exact

if TYPE_CHECKING:
    # Annotations only: these modules import this one.
    from nfdoctor.simulator.crm import Delivery
    from nfdoctor.simulator.emitter import DeliveryAttempt
    from nfdoctor.simulator.faults import FaultPlan

__all__ = [
    "BUYERS_PER_PLATFORM",
    "DEFAULT_ORDERS_PER_SHOP",
    "LIFETIMES",
    "MAX_ACCOUNTS_PER_PLATFORM",
    "MAX_ORDERS_PER_SHOP",
    "MAX_RECORDS",
    "PLATFORMS",
    "Account",
    "AuthCode",
    "Clock",
    "Consent",
    "Conversation",
    "LostPush",
    "Message",
    "Order",
    "SimulatorState",
    "Token",
    "TokenEvent",
    "TokenStatus",
]

#: the simulated platforms' names (see :data:`nfdoctor.simulator.registry.NAMES`)
PLATFORMS = NAMES

#: (access, refresh) lifetime per platform; None = never expires / no refresh token
LIFETIMES: dict[str, tuple[timedelta | None, timedelta | None]] = {
    p.name: (p.access_lifetime, p.refresh_lifetime) for p in SIM_PLATFORMS
}

#: most accounts per platform the simulator makes (``nfdoctor simulator --shops``)
MAX_ACCOUNTS_PER_PLATFORM = 100  # benchmarks/sync.py shards 100 shops

#: orders per marketplace shop unless told (``nfdoctor simulator --orders``), and the most
DEFAULT_ORDERS_PER_SHOP = 250
MAX_ORDERS_PER_SHOP = 100_000

#: marketplace buyers per platform; every order is from one of them, so some order again
BUYERS_PER_PLATFORM = 200
# The share of orders placed by the first few buyers of the pool: regular customers.
_REGULARS = 20
_REGULAR_SHARE = 0.3

#: how many chats a marketplace account has with its buyers: [low, high)
_MARKET_CHATS = (4, 8)

#: the CRM's and the emitter's records keep this many entries (the oldest are forgotten)
MAX_RECORDS = 10_000


@dataclass(frozen=True, kw_only=True)
class LostPush:
    """An event a platform gave up delivering, kept for its lost-push API (Shopee, §2.8)."""

    #: increasing per platform; confirming an id consumes every push up to it
    push_id: int
    platform: str
    #: the event's own time (the lost-push API lists those of the last 3 days)
    at: datetime
    #: the event as it would have been delivered
    event: dict[str, Any]


class SimulatorState:
    """Credentials, tokens and data of every simulated platform, from one seed and a clock.

    ``accounts_per_platform`` shops / sellers / pages / OAs per platform (1-100), each with
    its own ids, tokens and data (TikTok its own cipher, Zalo its own OA secret). Account 0
    is the same whatever that number; account k depends only on the seed and k.

    ``shared_message_ids`` (default 0): that many message ids of the second page / OA of
    the first chat platform with two accounts repeat ids of the first one. Some platforms
    scope message ids per shop, and the CRM's dedupe must not merge such messages; the demo
    CRM database turns this on to have one. Off, the data is exactly what it always was.

    Each platform's app credentials and knobs live in ``platform_settings[name]`` (typed
    per platform); ``state.<platform>_<field>`` (``state.shopee_partner_key``,
    ``state.zalo_limit_per_minute = 1``) reads and sets them, as it always did.

    The data may change while the server runs, from any thread: :meth:`add_orders`,
    :meth:`update_order` and :meth:`add_message` take a lock and swap in new lists (a
    request that already holds the old list reads a consistent snapshot), and every
    endpoint and :meth:`ground_truth` see the change. The rate records are thread-safe too
    (:meth:`rate_counts`, :meth:`max_requests_in_window`). Anything else (tokens, settings)
    change only while the server is idle (readers of the token table take a snapshot, as a
    late request may still issue tokens).
    """

    def __init__(
        self,
        seed: int = 7,
        clock: Clock | None = None,
        *,
        accounts_per_platform: int = 1,
        orders_per_shop: int = DEFAULT_ORDERS_PER_SHOP,
        conversations_per_account: int = 40,
        shared_message_ids: int = 0,
    ) -> None:
        if not 1 <= accounts_per_platform <= MAX_ACCOUNTS_PER_PLATFORM:
            raise ValueError(
                f"accounts_per_platform must be 1-{MAX_ACCOUNTS_PER_PLATFORM}, "
                f"got {accounts_per_platform}"
            )
        if orders_per_shop < 0 or conversations_per_account < 0 or shared_message_ids < 0:
            raise ValueError(
                "orders_per_shop, conversations_per_account and shared_message_ids must be "
                "0 or more"
            )
        self.seed = seed
        self.accounts_per_platform = accounts_per_platform
        self.clock: Clock = clock or (lambda: datetime.now(timezone.utc))
        self.rng = random.Random(seed)
        self.tokens: dict[str, Token] = {}
        self.accounts: dict[str, list[Account]] = {p.name: [] for p in SIM_PLATFORMS}
        # Whether a used refresh token may be presented again. Shopee and Zalo document single
        # use; Lazada and TikTok do not say, so the strict answer is the default (a switch).
        self.refresh_reuse_allowed: dict[str, bool] = {p.name: False for p in SIM_PLATFORMS}
        self.require_appsecret_proof: dict[str, bool] = {
            p.name: False for p in SIM_PLATFORMS if p.appsecret_proof
        }
        self._calls: dict[str, list[datetime]] = {}
        #: platform -> the URL its side delivers webhooks to (what the config says, filled
        #: when the server starts; empty in unit tests unless a test sets it)
        self.webhook_urls: dict[str, str] = {}
        #: platform -> what the fault plan's ``registrations:`` says its side holds instead
        self.registrations: dict[str, dict[str, Any]] = {}
        #: the fault plan the simulator was built with (``tls:``, ``emitter:`` …)
        self.fault_plan: FaultPlan | None = None
        #: every delivery the CRM's receivers got (newest last)
        self.crm_deliveries: deque[Delivery] = deque(maxlen=MAX_RECORDS)
        #: every delivery attempt the platforms' emitter made (newest last)
        self.webhook_attempts: deque[DeliveryAttempt] = deque(maxlen=MAX_RECORDS)
        #: every token request a platform judged (refresh, code exchange, Page token),
        #: newest last: how many reached the platform and what each got
        self.token_events: deque[TokenEvent] = deque(maxlen=MAX_RECORDS)
        #: consent pages shown and authorization codes issued, by id / value (the oldest
        #: are forgotten past MAX_RECORDS)
        self.consents: dict[str, Consent] = {}
        self.auth_codes: dict[str, AuthCode] = {}
        # Codes and consent ids come from a stream of their own: the seeded data and the
        # tokens the main stream draws stay what they are whether or not a flow ran.
        self._code_rng = random.Random(f"nfdoctor-simulator/{seed}/authorization")
        self._lost: dict[str, list[LostPush]] = {}
        self._lost_ids: dict[str, int] = {}
        # The emitter thread adds lost pushes while the server lists and confirms them.
        self._lost_lock = threading.Lock()
        self._counter = 0
        self._buyer_pools: dict[str, list[tuple[str, str]]] = {}
        #: platform -> its API requests: the ceiling, counts and accepted times
        self.rates: dict[str, RequestRate] = {p.name: RequestRate() for p in SIM_PLATFORMS}
        # Changes to the data while the server runs (add_orders …) take this lock; orders by
        # id per account, rebuilt when the account's list is another one.
        self._data_lock = threading.RLock()
        self._order_index: dict[tuple[str, str], tuple[list[Order], dict[str, Order]]] = {}
        # New orders and messages come from a stream of their own: the seeded data and the
        # tokens stay what they are whatever a test adds.
        self._mutation_rng = random.Random(f"nfdoctor-simulator/{seed}/mutations")
        now = self.clock()
        #: the moment the data was made: every order and message is at or before it
        self.started_at = now
        # The draws below, in this order, are the seeded data: credentials, then account 0
        # of every platform, its orders, its chats, its tokens; only then other accounts.
        self.platform_settings: dict[str, object] = {
            p.name: p.new_settings(self.rng) for p in SIM_PLATFORMS
        }
        self.crm_api_key = "crm-" + alnum(self.rng, 24)

        # Account 0 of every platform comes first and from the main stream, exactly as when
        # there was only one account per platform; the others come from a stream of their
        # own, so adding accounts changes nothing about account 0 or the draws that follow.
        for spec in SIM_PLATFORMS:
            self.accounts[spec.name].append(spec.new_account(self.rng, spec.first_account_name))
        for spec in SIM_PLATFORMS:
            for account in self.accounts[spec.name] if spec.orders else ():
                account.orders = self._orders(spec, 0, now, orders_per_shop)
        for spec in SIM_PLATFORMS:
            for account in self.accounts[spec.name] if spec.chat else ():
                account.conversations = self._conversations(
                    spec, account, now, conversations_per_account
                )
        for spec in SIM_PLATFORMS:
            for account in self.accounts[spec.name]:
                self.issue_pair(spec.name, account.account_id)
        if accounts_per_platform > 1:
            main_rng = self.rng
            try:
                self._add_accounts(
                    now, accounts_per_platform, orders_per_shop, conversations_per_account
                )
            finally:
                self.rng = main_rng
        if shared_message_ids:
            self._share_message_ids(shared_message_ids)
        # Marketplace chats last, each account's from a stream of its own: nothing above
        # (ids, tokens, orders, the chat platforms' data) depends on them.
        for spec in SIM_PLATFORMS:
            for index, account in enumerate(self.accounts[spec.name]) if spec.market_chat else ():
                account.chats = self._market_chats(spec, account, index, now)

    # ---- settings under their old flat names -------------------------------------------------

    def _legacy_setting(self, name: str) -> tuple[object, str] | None:
        """``(settings, field)`` that ``state.<platform>_<field>`` names, if any."""
        settings = self.__dict__.get("platform_settings")
        if settings is None:
            return None
        for spec in SIM_PLATFORMS:
            prefix = spec.name + "_"
            if name.startswith(prefix) and name[len(prefix) :] in spec.setting_names():
                return settings[spec.name], name[len(prefix) :]
        return None

    if not TYPE_CHECKING:
        # Hidden from mypy on purpose: nfdoctor's own code goes through the typed
        # ``SPEC.settings(state)``; the flat names stay for tests and scripts.

        def __getattr__(self, name: str) -> Any:
            target = self._legacy_setting(name)
            if target is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            return getattr(*target)

        def __setattr__(self, name: str, value: Any) -> None:
            target = self._legacy_setting(name)
            if target is None:
                object.__setattr__(self, name, value)
            else:
                setattr(target[0], target[1], value)

    # ---- accounts --------------------------------------------------------------------------

    def _add_accounts(
        self, now: datetime, total: int, orders_per_shop: int, conversations_per_account: int
    ) -> None:
        """Accounts 1 … total-1 of every platform, each with its own data and tokens.

        Each comes from a random stream of its own (seed, platform, index) and the names from
        one per platform, so account k is the same whatever ``total`` (``--shops 3`` is the
        first three of ``--shops 5``) and its ids do not depend on the amount of data.
        Leaves ``self.rng`` on the last stream: the caller restores the main one.
        """
        names: dict[str, list[str]] = {}
        for spec in SIM_PLATFORMS:
            taken = {a.name for a in self.accounts[spec.name]}
            combos = [
                f"{category} {brand}"
                for category in spec.shop_categories
                for brand in SHOP_BRANDS
                if f"{category} {brand}" not in taken
            ]
            random.Random(f"nfdoctor-simulator/{self.seed}/{spec.name}/names").shuffle(combos)
            names[spec.name] = combos
        for index in range(1, total):
            for spec in SIM_PLATFORMS:
                self.rng = random.Random(f"nfdoctor-simulator/{self.seed}/{spec.name}/{index}")
                existing = self.accounts[spec.name]
                account = spec.new_account(self.rng, names[spec.name][index - 1])
                # Ids are random: draw again on the (unlikely) collision with an earlier one.
                while any(_same_account(spec, a, account) for a in existing):
                    account = spec.new_account(self.rng, account.name)
                if spec.orders:
                    account.orders = self._orders(spec, index, now, orders_per_shop)
                else:
                    account.conversations = self._conversations(
                        spec, account, now, conversations_per_account
                    )
                existing.append(account)
                self.issue_pair(spec.name, account.account_id)

    def _share_message_ids(self, count: int) -> None:
        """Give ``count`` messages of the second account the ids of messages of the first, on
        the first chat platform with two accounts (from a stream of their own)."""
        for spec in SIM_PLATFORMS:
            accounts = self.accounts[spec.name]
            if spec.chat is None or len(accounts) < 2:
                continue
            rng = random.Random(f"nfdoctor-simulator/{self.seed}/{spec.name}/shared-message-ids")
            sources = [m.message_id for c in accounts[0].conversations for m in c.messages]
            targets = [
                (conversation, index)
                for conversation in accounts[1].conversations
                for index in range(len(conversation.messages))
            ]
            count = min(count, len(sources), len(targets))
            for (conversation, index), message_id in zip(
                rng.sample(targets, count), rng.sample(sources, count), strict=True
            ):
                message = conversation.messages[index]
                conversation.messages[index] = dataclasses.replace(message, message_id=message_id)
            return

    def new_request_id(self) -> str:
        """A unique request id (sequence-based so responses stay deterministic)."""
        self._counter += 1
        return f"{self.seed:04d}{self._counter:012d}"

    # ---- data ------------------------------------------------------------------------------

    def _orders(self, spec: SimPlatform[Any], index: int, now: datetime, count: int) -> list[Order]:
        assert spec.orders is not None
        buyer = self._buyer_picker(spec, index)
        orders = []
        for _ in range(count):
            created = now - timedelta(seconds=self.rng.randrange(30 * 86400))
            updated = min(now, created + timedelta(seconds=self.rng.randrange(3 * 86400)))
            order_id = spec.orders.new_order_id(self.rng, created)
            status = self.rng.choice(spec.orders.statuses)
            amount = self.rng.randrange(50, 5000) * 1000
            buyer_id, name = buyer()
            orders.append(
                Order(
                    order_id=order_id,
                    status=status,
                    create_time=created.replace(microsecond=0),
                    update_time=updated.replace(microsecond=0),
                    amount=amount,
                    buyer_user_id=buyer_id,
                    buyer_name=name,
                )
            )
        orders.sort(key=lambda o: o.create_time)
        return orders

    def _buyer_picker(self, spec: SimPlatform[Any], index: int) -> Callable[[], tuple[str, str]]:
        """Who placed each order of account ``index``: a buyer of the platform's pool.

        Pool and picks come from streams of their own, so buyers change none of the ids,
        tokens or data the main stream draws; one pool per platform, so a buyer may order
        from several shops.
        """
        pool = self._buyer_pool(spec)
        picks = random.Random(f"nfdoctor-simulator/{self.seed}/{spec.name}/{index}/buyers")

        def pick() -> tuple[str, str]:
            regular = picks.random() < _REGULAR_SHARE
            return pool[picks.randrange(_REGULARS if regular else len(pool))]

        return pick

    def _buyer_pool(self, spec: SimPlatform[Any]) -> list[tuple[str, str]]:
        """The platform's buyers ``(user id, name)``, from a stream of their own."""
        assert spec.orders is not None
        pool = self._buyer_pools.get(spec.name)
        if pool is None:
            rng = random.Random(f"nfdoctor-simulator/{self.seed}/{spec.name}/buyers")
            ids: dict[str, str] = {}
            while len(ids) < BUYERS_PER_PLATFORM:
                buyer_id = spec.orders.new_buyer_id(rng)
                name = buyer_name(rng)
                ids.setdefault(buyer_id, name)
            pool = self._buyer_pools[spec.name] = list(ids.items())
        return pool

    def _conversations(
        self, spec: SimPlatform[Any], account: Account, now: datetime, count: int
    ) -> list[Conversation]:
        chat = spec.chat
        assert chat is not None
        conversations = []
        for _ in range(count):
            user_id = chat.new_user_id(self.rng)
            conv = Conversation(
                conversation_id=chat.new_conversation_id(self.rng, user_id),
                user_id=user_id,
                user_name=self.rng.choice(CHAT_NAMES),
            )
            t = now - timedelta(seconds=self.rng.randrange(30 * 86400))
            for _ in range(self.rng.randrange(2, 9)):
                t = min(now, t + timedelta(seconds=self.rng.randrange(30, 7200)))
                from_customer = self.rng.random() < 0.6
                conv.messages.append(
                    Message(
                        message_id=chat.new_message_id(self.rng),
                        sender_id=user_id if from_customer else account.account_id,
                        recipient_id=account.account_id if from_customer else user_id,
                        text=self.rng.choice(CHAT_TEXTS),
                        time=t.replace(microsecond=t.microsecond // 1000 * 1000),
                        from_customer=from_customer,
                    )
                )
            conversations.append(conv)
        conversations.sort(key=lambda c: c.updated_time, reverse=True)
        return conversations

    def _market_chats(
        self, spec: SimPlatform[Any], account: Account, index: int, now: datetime
    ) -> list[Conversation]:
        """A few chats of a marketplace account with its buyers (those of its orders first,
        else the platform's pool), each with messages from both sides in the last 30 days.

        From ``random.Random("nfdoctor-simulator/{seed}/{platform}/chat")`` (account 0) or
        ``…/{platform}/{index}/chat``: no other seeded data changes.
        """
        market = spec.market_chat
        assert market is not None and spec.orders is not None
        key = f"{spec.name}/chat" if index == 0 else f"{spec.name}/{index}/chat"
        rng = random.Random(f"nfdoctor-simulator/{self.seed}/{key}")
        buyers = list(dict.fromkeys((o.buyer_user_id, o.buyer_name) for o in account.orders))
        if len(buyers) < _MARKET_CHATS[1]:
            known = {b[0] for b in buyers}
            buyers += [b for b in self._buyer_pool(spec) if b[0] not in known]
        count = min(rng.randrange(*_MARKET_CHATS), len(buyers))
        taken: set[str] = set()
        conversations = []
        for user_id, user_name in rng.sample(buyers, count):
            conv = Conversation(
                conversation_id=market.conversation_id(account.account_id, user_id),
                user_id=user_id,
                user_name=user_name,
            )
            t = now - timedelta(seconds=rng.randrange(3600, 30 * 86400))
            for n in range(rng.randrange(2, 9)):
                t = min(now, t + timedelta(seconds=rng.randrange(30, 7200)))
                # the buyer opens, the seller answers; then either side
                from_customer = n == 0 or (n > 1 and rng.random() < 0.6)
                message_id = market.new_message_id(rng)
                while message_id in taken:
                    message_id = market.new_message_id(rng)
                taken.add(message_id)
                conv.messages.append(
                    Message(
                        message_id=message_id,
                        sender_id=user_id if from_customer else account.account_id,
                        recipient_id=account.account_id if from_customer else user_id,
                        text=rng.choice(CHAT_TEXTS),
                        time=t.replace(microsecond=t.microsecond // 1000 * 1000),
                        from_customer=from_customer,
                    )
                )
            conversations.append(conv)
        conversations.sort(key=lambda c: c.updated_time, reverse=True)
        return conversations

    def account(self, platform: str, account_id: str | None = None) -> Account | None:
        """The account with that id (or the first one when ``account_id`` is None)."""
        for account in self.accounts[platform]:
            if account_id is None or account.account_id == account_id:
                return account
        return None

    def _account_or_fail(self, platform: str, account_id: str) -> Account:
        if platform not in self.accounts:
            raise KeyError(f"no simulated platform {platform!r} (known: {', '.join(NAMES)})")
        account = self.account(platform, account_id)
        if account is None:
            known = ", ".join(a.account_id for a in self.accounts[platform])
            raise KeyError(f"no {platform} account {account_id!r} (known: {known})")
        return account

    def find_order(self, platform: str, account_id: str, order_id: str) -> Order | None:
        """The account's order with that id, or None (an index, rebuilt after a change)."""
        account = self.account(platform, account_id)
        if account is None:
            return None
        orders = account.orders
        key = (platform, account_id)
        cached = self._order_index.get(key)
        if cached is None or cached[0] is not orders:
            with self._data_lock:
                orders = account.orders
                cached = (orders, {o.order_id: o for o in orders})
                self._order_index[key] = cached
        return cached[1].get(order_id)

    # ---- changes while the server runs (incremental sync tests) -----------------------------

    def add_orders(
        self, platform: str, account_id: str, count: int = 1, *, status: str | None = None
    ) -> list[Order]:
        """``count`` new orders of the account, created (and updated) now, by buyers of the
        platform's pool, in the platform's first status (unless ``status``, one the platform
        serves); every endpoint and :meth:`ground_truth` list them from now on."""
        spec = sim_platform(platform)
        if spec.orders is None:
            raise ValueError(f"{spec.label} has no orders")
        if count < 0:
            raise ValueError("count must be 0 or more")
        status = spec.orders.statuses[0] if status is None else status
        if status not in spec.orders.crm_status:
            raise ValueError(
                f"{spec.label} has no order status {status!r} "
                f"(known: {', '.join(spec.orders.crm_status)})"
            )
        account = self._account_or_fail(platform, account_id)
        with self._data_lock:
            now = self.clock().replace(microsecond=0)
            taken = {o.order_id for o in account.orders}
            rng = self._mutation_rng
            pool = self._buyer_pool(spec)
            added: list[Order] = []
            for _ in range(count):
                order_id = spec.orders.new_order_id(rng, now)
                while order_id in taken:
                    order_id = spec.orders.new_order_id(rng, now)
                taken.add(order_id)
                regular = rng.random() < _REGULAR_SHARE
                buyer_id, name = pool[rng.randrange(_REGULARS if regular else len(pool))]
                added.append(
                    Order(
                        order_id=order_id,
                        status=status,
                        create_time=now,
                        update_time=now,
                        amount=rng.randrange(50, 5000) * 1000,
                        buyer_user_id=buyer_id,
                        buyer_name=name,
                    )
                )
            orders = [*account.orders, *added]
            orders.sort(key=lambda o: o.create_time)  # stable: ties keep their order
            account.orders = orders
        return added

    def update_order(
        self,
        platform: str,
        account_id: str,
        order_id: str,
        *,
        status: str | None = None,
        amount: int | None = None,
    ) -> Order:
        """Change an order (its status, its amount) and move its update time to now."""
        spec = sim_platform(platform)
        if spec.orders is None:
            raise ValueError(f"{spec.label} has no orders")
        if status is not None and status not in spec.orders.crm_status:
            raise ValueError(
                f"{spec.label} has no order status {status!r} "
                f"(known: {', '.join(spec.orders.crm_status)})"
            )
        account = self._account_or_fail(platform, account_id)
        with self._data_lock:
            orders = list(account.orders)
            index = next((i for i, o in enumerate(orders) if o.order_id == order_id), None)
            if index is None:
                raise KeyError(f"no order {order_id!r} in {platform} account {account_id}")
            order = orders[index]
            changed = dataclasses.replace(
                order,
                status=order.status if status is None else status,
                amount=order.amount if amount is None else amount,
                update_time=max(order.create_time, self.clock().replace(microsecond=0)),
            )
            orders[index] = changed
            account.orders = orders
        return changed

    def add_message(
        self,
        platform: str,
        account_id: str,
        *,
        text: str | None = None,
        user_id: str | None = None,
        user_name: str | None = None,
        from_customer: bool = True,
    ) -> tuple[Conversation, Message]:
        """A new message, sent now, in the conversation with ``user_id`` (a new conversation,
        with a new user, when that user has none or ``user_id`` is None); the conversation
        becomes the account's most recent. From the customer unless ``from_customer`` is
        False (the page / OA / seller answering). On a marketplace with a buyer chat
        (Lazada, TikTok Shop) it writes in ``Account.chats``."""
        spec = sim_platform(platform)
        chat = spec.chat
        if chat is None and spec.market_chat is not None:
            return self._add_market_message(
                spec, account_id, text, user_id, user_name, from_customer
            )
        if chat is None:
            raise ValueError(f"{spec.label} has no conversations")
        account = self._account_or_fail(platform, account_id)
        with self._data_lock:
            rng = self._mutation_rng
            t = self.clock()
            t = t.replace(microsecond=t.microsecond // 1000 * 1000)
            conversation = next(
                (c for c in account.conversations if user_id is not None and c.user_id == user_id),
                None,
            )
            if conversation is None:
                taken_users = {c.user_id for c in account.conversations}
                new_user = user_id or chat.new_user_id(rng)
                while user_id is None and new_user in taken_users:
                    new_user = chat.new_user_id(rng)
                conversation = Conversation(
                    conversation_id=chat.new_conversation_id(rng, new_user),
                    user_id=new_user,
                    user_name=user_name or rng.choice(CHAT_NAMES),
                )
            taken = {m.message_id for c in account.conversations for m in c.messages}
            message_id = chat.new_message_id(rng)
            while message_id in taken:
                message_id = chat.new_message_id(rng)
            customer = conversation.user_id
            message = Message(
                message_id=message_id,
                sender_id=customer if from_customer else account.account_id,
                recipient_id=account.account_id if from_customer else customer,
                text=text if text is not None else rng.choice(CHAT_TEXTS),
                # never before the conversation's last message (a clock set back)
                time=max(t, conversation.messages[-1].time) if conversation.messages else t,
                from_customer=from_customer,
            )
            conversation.messages = [*conversation.messages, message]
            others = [c for c in account.conversations if c is not conversation]
            account.conversations = [conversation, *others]
        return conversation, message

    def _add_market_message(
        self,
        spec: SimPlatform[Any],
        account_id: str,
        text: str | None,
        user_id: str | None,
        user_name: str | None,
        from_customer: bool,
    ) -> tuple[Conversation, Message]:
        """:meth:`add_message` on a marketplace's chats: a new chat goes to a buyer of the
        platform's pool who has none with the account (a new buyer id when all have)."""
        market = spec.market_chat
        assert market is not None and spec.orders is not None
        account = self._account_or_fail(spec.name, account_id)
        with self._data_lock:
            rng = self._mutation_rng
            t = self.clock()
            t = t.replace(microsecond=t.microsecond // 1000 * 1000)
            conversation = next(
                (c for c in account.chats if user_id is not None and c.user_id == user_id), None
            )
            if conversation is None:
                pool = self._buyer_pool(spec)
                names = dict(pool)
                if user_id is None:
                    chatting = {c.user_id for c in account.chats}
                    free = [b for b in pool if b[0] not in chatting]
                    if free:
                        new_user, pool_name = rng.choice(free)
                    else:
                        new_user, pool_name = spec.orders.new_buyer_id(rng), None
                        while new_user in chatting:
                            new_user = spec.orders.new_buyer_id(rng)
                else:
                    new_user, pool_name = user_id, names.get(user_id)
                conversation = Conversation(
                    conversation_id=market.conversation_id(account.account_id, new_user),
                    user_id=new_user,
                    user_name=user_name or pool_name or rng.choice(CHAT_NAMES),
                )
            taken = {m.message_id for c in account.chats for m in c.messages}
            message_id = market.new_message_id(rng)
            while message_id in taken:
                message_id = market.new_message_id(rng)
            customer = conversation.user_id
            message = Message(
                message_id=message_id,
                sender_id=customer if from_customer else account.account_id,
                recipient_id=account.account_id if from_customer else customer,
                text=text if text is not None else rng.choice(CHAT_TEXTS),
                time=max(t, conversation.messages[-1].time) if conversation.messages else t,
                from_customer=from_customer,
            )
            conversation.messages = [*conversation.messages, message]
            others = [c for c in account.chats if c is not conversation]
            account.chats = [conversation, *others]
        return conversation, message

    # ---- ground truth ----------------------------------------------------------------------

    def ground_truth(self, platform: str, account_id: str | None = None) -> dict[str, Any]:
        """What the platform holds, as plain JSON-able data: per account, the orders
        (marketplaces) or the messages (chat platforms), as every endpoint serves them.

        Orders: ``order_id``, ``platform_status``, ``crm_status`` (the status the CRM stores,
        by the platform's declaration), ``amount`` (whole currency units), ``currency``,
        ``create_time``, ``update_time`` (ISO 8601 UTC), ``buyer_user_id``, ``buyer_name``;
        in creation order. Messages: ``message_id``, ``conversation_id``, ``user_id``,
        ``user_name``, ``from_customer``, ``sender_id``, ``text``, ``time`` (ISO 8601 UTC, ms);
        conversations newest first, each one's messages oldest first. Marketplaces with a
        buyer chat (``market_chat``: Lazada, TikTok Shop) have both, their messages from
        ``Account.chats``. KeyError for an unknown platform or account.
        """
        if platform not in self.accounts:
            raise KeyError(f"no simulated platform {platform!r} (known: {', '.join(NAMES)})")
        spec = sim_platform(platform)
        if account_id is None:
            accounts = list(self.accounts[platform])
        else:
            accounts = [self._account_or_fail(platform, account_id)]
        with self._data_lock:  # never half of a change made meanwhile
            listed = [self._truth_of(spec, account) for account in accounts]
        return {"platform": platform, "at": _iso(self.clock()), "accounts": listed}

    @staticmethod
    def _truth_of(spec: SimPlatform[Any], account: Account) -> dict[str, Any]:
        """One account's entry of :meth:`ground_truth`."""
        entry: dict[str, Any] = {"account_id": account.account_id, "name": account.name}
        if spec.orders is not None:
            crm = spec.orders.crm_status
            entry["orders"] = [
                {
                    "order_id": o.order_id,
                    "platform_status": o.status,
                    "crm_status": crm[o.status],
                    "amount": o.amount,
                    "currency": o.currency,
                    "create_time": _iso(o.create_time),
                    "update_time": _iso(o.update_time),
                    "buyer_user_id": o.buyer_user_id,
                    "buyer_name": o.buyer_name,
                }
                for o in account.orders
            ]
            if spec.market_chat is not None:
                entry["messages"] = _truth_messages(account.chats)
        else:
            entry["messages"] = _truth_messages(account.conversations)
        return entry

    # ---- tokens ----------------------------------------------------------------------------

    def issue_pair(
        self,
        platform: str,
        owner: str,
        *,
        refresh_deadline: datetime | None = None,
        now: datetime | None = None,
    ) -> tuple[Token, Token | None]:
        """Issue a new access token (and refresh token where the platform has one), stamped
        with ``now``: the request's time, skewed when the fault plan skews this server's clock."""
        now = now or self.clock()
        spec = sim_platform(platform)
        access_life, refresh_life = spec.access_lifetime, spec.refresh_lifetime
        access = Token(
            value=spec.new_token(self.rng, "access"),
            platform=platform,
            kind="access",
            owner=owner,
            issued_at=now,
            expires_at=now + access_life if access_life is not None else None,
        )
        self.tokens[access.value] = access
        if refresh_life is None:
            return access, None
        refresh = Token(
            value=spec.new_token(self.rng, "refresh"),
            platform=platform,
            kind="refresh",
            owner=owner,
            issued_at=now,
            expires_at=refresh_deadline or now + refresh_life,
        )
        self.tokens[refresh.value] = refresh
        return access, refresh

    def issue_token(
        self,
        platform: str,
        owner: str,
        kind: TokenKind,
        *,
        expires_at: datetime | None,
        now: datetime | None = None,
        grants: tuple[str, ...] = (),
    ) -> Token:
        """Issue one token of ``kind`` (a Facebook User or Page token made on request)."""
        token = Token(
            value=sim_platform(platform).new_token(self.rng, kind),
            platform=platform,
            kind=kind,
            owner=owner,
            issued_at=now or self.clock(),
            expires_at=expires_at,
            grants=grants,
        )
        self.tokens[token.value] = token
        return token

    def current(self, platform: str, owner: str, kind: TokenKind) -> Token | None:
        """The newest live token of that kind for that owner."""
        best: Token | None = None
        for token in list(self.tokens.values()):  # the server thread may insert
            if (token.platform, token.owner, token.kind) != (platform, owner, kind):
                continue
            if token.revoked or token.used:
                continue
            if best is None or token.issued_at >= best.issued_at:
                best = token
        return best

    def check(
        self,
        platform: str,
        value: str | None,
        kind: TokenKind = "access",
        *,
        now: datetime | None = None,
        owner: str | None = None,
    ) -> tuple[TokenStatus, Token | None]:
        """Judge a presented token: issued here, of this kind, live, and (optionally) whose."""
        token = self.tokens.get(value or "")
        if token is None or token.platform != platform or token.kind != kind:
            return "unknown", None
        if token.revoked:
            return "revoked", token
        if token.used and not self.refresh_reuse_allowed[platform]:
            return "used", token
        moment = now or self.clock()
        if token.expires_at is not None and moment >= token.expires_at:
            return "expired", token
        if owner is not None and token.owner != owner:
            return "wrong_owner", token
        return "ok", token

    def rotate(
        self, old_refresh: Token, *, now: datetime | None = None
    ) -> tuple[Token, Token | None]:
        """Use a refresh token: mark it used and issue a new pair stamped with ``now``."""
        # The previous access token stays valid until it expires (no platform documents
        # otherwise); only the refresh token is consumed.
        old_refresh.used = True
        fixed = sim_platform(old_refresh.platform).fixed_refresh_deadline
        deadline = old_refresh.expires_at if fixed else None
        return self.issue_pair(
            old_refresh.platform, old_refresh.owner, refresh_deadline=deadline, now=now
        )

    # ---- authorization: consents, codes, the exchange ----------------------------------------

    def new_consent(
        self,
        platform: str,
        *,
        redirect_uri: str,
        state: str | None,
        code_challenge: str | None = None,
        now: datetime | None = None,
        lifetime: timedelta,
    ) -> Consent:
        """Remember an authorize request whose consent page is being shown."""
        consent = Consent(
            consent_id=alnum(self._code_rng, 24),
            platform=platform,
            redirect_uri=redirect_uri,
            state=state,
            code_challenge=code_challenge,
            expires_at=(now or self.clock()) + lifetime,
        )
        _remember(self.consents, consent.consent_id, consent)
        return consent

    def live_consent(
        self, platform: str, consent_id: str | None, *, now: datetime | None = None
    ) -> Consent | None:
        """The platform's consent ``consent_id`` if its links still work."""
        consent = self.consents.get(consent_id or "")
        if consent is None or consent.platform != platform:
            return None
        return consent if (now or self.clock()) < consent.expires_at else None

    def issue_code(
        self,
        consent: Consent,
        account: str,
        *,
        now: datetime | None = None,
        grants: tuple[str, ...] = (),
    ) -> AuthCode:
        """An authorization code for ``account`` (Facebook: the user, with the Pages granted),
        bound to the consent's redirect URI and PKCE challenge; single use, and valid for the
        platform's code lifetime."""
        spec = sim_platform(consent.platform)
        moment = now or self.clock()
        code = AuthCode(
            value=spec.new_code(self._code_rng),
            platform=consent.platform,
            account=account,
            redirect_uri=consent.redirect_uri,
            code_challenge=consent.code_challenge,
            issued_at=moment,
            expires_at=moment + spec.code_lifetime,
            grants=grants,
        )
        _remember(self.auth_codes, code.value, code)
        return code

    def redeem_code(
        self,
        platform: str,
        value: str | None,
        *,
        now: datetime | None = None,
        account: str | None = None,
        redirect_uri: str | None = None,
        code_verifier: str | None = None,
    ) -> tuple[CodeStatus, AuthCode | None]:
        """Judge a code presented for exchange, and spend it when it is good.

        ``account`` and ``redirect_uri`` are checked when given (where the platform's
        exchange names them); a code issued with a PKCE challenge needs the verifier whose
        S256 is that challenge (RFC 7636 §4.6). A refused code is not spent.
        """
        code = self.auth_codes.get(value or "")
        if code is None or code.platform != platform:
            return "unknown", None
        if code.used:
            return "used", code
        if (now or self.clock()) >= code.expires_at:
            return "expired", code
        if account is not None and account != code.account:
            return "wrong_account", code
        if redirect_uri is not None and redirect_uri != code.redirect_uri:
            return "wrong_redirect", code
        if code.code_challenge is not None and not (
            code_verifier is not None
            and pkce_verifier_ok(code_verifier)
            and verify_exact(code.code_challenge, pkce_s256(code_verifier))
        ):
            return "wrong_verifier", code
        code.used = True
        return "ok", code

    def authorize(
        self, code: AuthCode, *, now: datetime | None = None
    ) -> tuple[Token, Token | None]:
        """The token pair a code exchange issues: a new authorization, so a new refresh
        deadline; where refresh tokens are single use, the account's previous refresh
        tokens stop working (previous access tokens live on until they expire)."""
        spec = sim_platform(code.platform)
        if spec.single_use_refresh:
            for token in list(self.tokens.values()):  # the server thread may insert
                if (token.platform, token.owner, token.kind) == (
                    code.platform,
                    code.account,
                    "refresh",
                ):
                    token.revoked = True
        return self.issue_pair(code.platform, code.account, now=now)

    def record_token_event(self, event: TokenEvent) -> TokenEvent:
        """Keep a token request's outcome in :attr:`token_events`."""
        self.token_events.append(event)
        return event

    def token_event_count(
        self, platform: str, kind: str | None = None, *, outcome: str | None = None
    ) -> int:
        """How many token requests of ``platform`` (of that kind, with that outcome) the
        platform judged."""
        return sum(
            1
            for e in list(self.token_events)
            if e.platform == platform
            and (kind is None or e.kind == kind)
            and (outcome is None or e.outcome == outcome)
        )

    def _current_or_fail(self, platform: str, account_id: str, kind: TokenKind) -> Token:
        if self.account(platform, account_id) is None:
            known = ", ".join(a.account_id for a in self.accounts.get(platform, []))
            raise KeyError(f"no {platform} account {account_id!r} (known: {known})")
        token = self.current(platform, account_id, kind)
        if token is None:
            raise ValueError(f"{platform} account {account_id} has no live {kind} token")
        return token

    def age_token(self, platform: str, account_id: str, *, expires_in: timedelta) -> Token:
        """Make the account's current access token expire ``expires_in`` from now.

        For demos ("token expires in 2 h") and tests; a negative span expires it already.
        Works on Facebook too (its Page token then stops being a never-expiring one).
        """
        token = self._current_or_fail(platform, account_id, "access")
        token.expires_at = self.clock() + expires_in
        return token

    def expire_refresh(
        self, platform: str, account_id: str, *, expires_in: timedelta = timedelta(0)
    ) -> Token:
        """Make the account's current refresh token expire ``expires_in`` from now (default:
        now, so the next refresh fails). Facebook has no refresh token: ``ValueError``."""
        token = self._current_or_fail(platform, account_id, "refresh")
        token.expires_at = self.clock() + expires_in
        return token

    def revoke_all(self, platform: str, owner: str | None = None) -> None:
        """Revoke every token of a platform (or of one owner): a password change, an unlink."""
        for token in list(self.tokens.values()):  # the server thread may insert
            if token.platform == platform and (owner is None or token.owner == owner):
                token.revoked = True

    def secret_values(self) -> list[str]:
        """Every secret this simulator issued or holds: app credentials, OA secrets, tokens
        (what its ``--debug`` access log must mask)."""
        values = [value for spec in SIM_PLATFORMS for value in spec.secrets(self)]
        values.append(self.crm_api_key)
        values += list(self.tokens)  # the server thread may insert: list() takes a snapshot
        values += list(self.auth_codes)  # TikTok's auth_code and Lazada's code ride in queries
        return values

    # ---- lost pushes -----------------------------------------------------------------------

    def add_lost_push(self, platform: str, event: dict[str, Any], at: datetime) -> LostPush:
        """Keep an event the platform gave up delivering (it is listed until confirmed)."""
        with self._lost_lock:
            push_id = self._lost_ids.get(platform, 0) + 1
            self._lost_ids[platform] = push_id
            push = LostPush(push_id=push_id, platform=platform, at=at, event=event)
            self._lost.setdefault(platform, []).append(push)
            return push

    def lost_pushes(self, platform: str, since: datetime | None = None) -> list[LostPush]:
        """The platform's lost pushes not confirmed yet, at or after ``since``, in the order
        they were lost (ids increase in that order)."""
        with self._lost_lock:
            pushes = list(self._lost.get(platform, []))
        return [p for p in pushes if since is None or p.at >= since]

    def confirm_lost_pushes(self, platform: str, last_push_id: int) -> int:
        """Consume every lost push with an id up to ``last_push_id``; how many were."""
        with self._lost_lock:
            pushes = self._lost.get(platform, [])
            kept = [p for p in pushes if p.push_id > last_push_id]
            self._lost[platform] = kept
            return len(pushes) - len(kept)

    # ---- rate limits (ratelimit.py) ----------------------------------------------------------

    @property
    def rate_limits(self) -> dict[str, int]:
        """platform -> its ceiling in requests per second (platforms without one left out)."""
        return {name: r.limit for name, r in self.rates.items() if r.limit is not None}

    def set_rate_limit(self, platform: str, limit: int | None) -> None:
        """Cap ``platform`` at ``limit`` API requests per second (None: no ceiling)."""
        self._rate(platform).set_limit(limit)

    def admit_request(self, platform: str, now: datetime | None = None) -> bool:
        """Count one API request to ``platform``: False when it is over the ceiling."""
        return self._rate(platform).admit(now or self.clock())

    def rate_counts(self, platform: str) -> tuple[int, int]:
        """``(accepted, refused)`` API requests of ``platform`` since the start."""
        return self._rate(platform).counts()

    def max_requests_in_window(self, platform: str, seconds: float = 1.0) -> int:
        """The most accepted API requests of ``platform`` in any ``seconds``-long window."""
        return self._rate(platform).max_in_window(seconds)

    def request_times(self, platform: str) -> list[datetime]:
        """When ``platform``'s accepted API requests came, oldest first."""
        return self._rate(platform).times()

    def _rate(self, platform: str) -> RequestRate:
        try:
            return self.rates[platform]
        except KeyError:
            raise KeyError(
                f"no simulated platform {platform!r} (known: {', '.join(NAMES)})"
            ) from None

    # ---- usage -----------------------------------------------------------------------------

    def record_call(self, bucket: str, now: datetime, window: timedelta) -> int:
        """Count a call and return how many happened within ``window`` before ``now``.

        ``bucket`` is a platform (one counter per app) or e.g. ``"zalo:<oa_id>"`` (per account).
        """
        calls = [t for t in self._calls.get(bucket, []) if now - t < window]
        calls.append(now)
        self._calls[bucket] = calls
        return len(calls)


def _iso(moment: datetime, timespec: str = "seconds") -> str:
    """ISO 8601 in UTC (``2026-11-26T03:00:00+00:00``)."""
    return moment.astimezone(timezone.utc).isoformat(timespec=timespec)


def _truth_messages(conversations: list[Conversation]) -> list[dict[str, Any]]:
    """The ground truth's messages: conversations in the order given, messages oldest first."""
    return [
        {
            "message_id": m.message_id,
            "conversation_id": c.conversation_id,
            "user_id": c.user_id,
            "user_name": c.user_name,
            "from_customer": m.from_customer,
            "sender_id": m.sender_id,
            "text": m.text,
            "time": _iso(m.time, "milliseconds"),
        }
        for c in conversations
        for m in c.messages
    ]


def _remember(table: dict[str, Any], key: str, value: Any) -> None:
    """Add to a record table, forgetting the oldest entries past MAX_RECORDS."""
    table[key] = value
    while len(table) > MAX_RECORDS:
        del table[next(iter(table))]


def _same_account(spec: SimPlatform[Any], a: Account, b: Account) -> bool:
    """Whether two accounts of ``spec`` would be taken for each other (same id, cipher …)."""
    return a.account_id == b.account_id or any(
        key in a.extra and a.extra[key] == b.extra.get(key) for key in spec.identifying_extras
    )
