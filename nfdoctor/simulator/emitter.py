"""The platforms' side of webhooks: chat message events delivered to the CRM as each sends them.

With ``emitter:`` in the fault plan, every ``every`` each chosen platform delivers one chat
message event (Vietnamese text from one of its users, to its next shop in turn) to the URL
its side is configured with (``state.webhook_urls``, or what ``registrations:`` says),
encoded and signed as that platform does (its ``SimPlatform.webhooks``, signing with
``verify.py``'s functions). A delivery not answered in time with the right status is
retried on the platform's schedule divided by ``compress``: the same bytes each time, with
Zalo's ``num_retry`` header on retries. Shopee keeps the deliveries it gave up on for its
lost-push API. Every attempt is recorded in ``state.webhook_attempts``.

The emitter only ever sends to loopback: a target whose address (after the ``connect_to``
rules) is not a loopback IP address is refused and recorded, never contacted.

Running it::

    emitter = WebhookEmitter(state, plan.emitter, ssl_context=ctx, connect_to=rules)
    emitter.start()          # its own thread and event loop, beside the server
    ...
    emitter.stop()

or, inside a running loop, ``async with emitter: await emitter.run()`` (``run`` loops until
cancelled; ``emit(platform)`` and ``drain()`` deliver single events, for tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import random
import ssl
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx

from nfdoctor.net.connect import ConnectTo, ConnectToTransport, connect_target
from nfdoctor.simulator.model import Account
from nfdoctor.simulator.people import CHAT_NAMES, CHAT_TEXTS
from nfdoctor.simulator.registry import NAMES, sim_platform
from nfdoctor.simulator.spec import ChatEventSource, SimPlatform, WebhookSpec
from nfdoctor.simulator.state import MAX_RECORDS, LostPush, SimulatorState

__all__ = [
    "DEFAULT_COMPRESS",
    "DEFAULT_EVERY",
    "DeliveryAttempt",
    "Emission",
    "EmitterPlan",
    "TargetRefused",
    "WebhookEmitter",
    "check_loopback_target",
    "emitter_for",
    "seed_lost_pushes",
]

DEFAULT_EVERY = timedelta(seconds=2)
#: retry gaps are divided by this: a 30-minute gap takes 30 s
DEFAULT_COMPRESS = 60.0
#: deliveries in flight (retries included) above which a tick emits nothing new
MAX_PENDING = 1000
#: how far back the lost pushes seeded at start go (the lost-push API keeps 3 days)
LOST_PUSH_WINDOW = timedelta(days=3)
# What customers write (the shop's own lines, which start with "Dạ", are replies).
_CUSTOMER_TEXTS = tuple(text for text in CHAT_TEXTS if not text.startswith("Dạ"))
_DEFAULT_PORTS = {"http": 80, "https": 443}

AttemptOutcome = Literal["answered", "retry", "gave_up", "not_sent"]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class EmitterPlan:
    """The fault plan's ``emitter:`` section."""

    every: timedelta = DEFAULT_EVERY
    platforms: tuple[str, ...] = NAMES
    #: retry gaps are divided by this (1 = real time); deadlines are never compressed
    compress: float = DEFAULT_COMPRESS
    #: platform -> its retry gaps, instead of the platform's own
    retry_schedule: dict[str, tuple[timedelta, ...]] = field(default_factory=dict)

    def schedule(self, platform: str) -> tuple[timedelta, ...]:
        """The gaps between attempts for ``platform`` (its declaration's, or the plan's)."""
        if platform in self.retry_schedule:
            return self.retry_schedule[platform]
        hooks = sim_platform(platform).webhooks
        return hooks.retry_schedule if hooks is not None else ()


@dataclass(frozen=True, kw_only=True)
class DeliveryAttempt:
    """One delivery attempt of one event."""

    platform: str
    account_id: str
    message_id: str
    #: 1 for the first delivery, 2 for the first retry …
    attempt: int
    url: str
    #: when it was sent, by the simulator's clock
    at: datetime
    #: the HTTP status answered; None when there was no answer
    status: int | None
    #: why there was no (acceptable) answer: timeout, connection error, refusal
    error: str | None
    latency_s: float
    #: answered; failed and to be retried; failed, schedule over; never sent
    outcome: AttemptOutcome


@dataclass(frozen=True, kw_only=True)
class Emission:
    """One event the emitter made: what it is and where it goes."""

    platform: str
    account_id: str
    message_id: str
    #: None: the platform's side delivers nothing for this account (see registrations)
    url: str | None
    body: bytes
    text: str
    sent_at: datetime


class TargetRefused(Exception):
    """A webhook target that is not loopback: the simulator never sends to a real host."""


def check_loopback_target(url: str, rules: Sequence[ConnectTo] = ()) -> tuple[str, int]:
    """The address a delivery to ``url`` connects to; TargetRefused unless it is a loopback
    IP address (after the ``connect_to`` rules). Names are refused: they would need DNS."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise TargetRefused(f"{url!r} is not a URL ({exc})") from None
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
        raise TargetRefused(f"{url!r}: expected an http:// or https:// URL with a host")
    port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    host, port = connect_target(rules, parsed.host, port) or (parsed.host, port)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise TargetRefused(
            f"{url}: {host} is a name with no connect_to rule to a loopback address; "
            "the simulator delivers to loopback only"
        ) from None
    if not address.is_loopback:
        raise TargetRefused(
            f"{url}: {host} is not a loopback address; the simulator delivers to loopback only"
        )
    return host, port


def chat_source(
    spec: SimPlatform[Any], account: Account, rng: random.Random, at: datetime
) -> ChatEventSource:
    """A customer of ``account`` writing now: one of its chat users or buyers."""
    users: list[tuple[str, str, str | None]] = [
        (c.user_id, c.user_name, c.conversation_id) for c in account.conversations
    ]
    users += list(dict.fromkeys((o.buyer_user_id, o.buyer_name, None) for o in account.orders))
    if users:
        user_id, name, conversation = rng.choice(users)
    else:
        # An account with no data still has customers: a new one of the platform's ids.
        if spec.chat is not None:
            user_id = spec.chat.new_user_id(rng)
        elif spec.orders is not None:
            user_id = spec.orders.new_buyer_id(rng)
        else:
            user_id = str(rng.randrange(10**9, 10**10))
        name, conversation = rng.choice(CHAT_NAMES), None
    return ChatEventSource(
        account=account,
        user_id=user_id,
        user_name=name,
        text=rng.choice(_CUSTOMER_TEXTS),
        sent_at=at.replace(microsecond=at.microsecond // 1000 * 1000),
        conversation_id=conversation,
    )


def _hooks(platform: str) -> WebhookSpec:
    hooks = sim_platform(platform).webhooks
    if hooks is None:
        raise ValueError(f"{platform} declares no webhooks")
    return hooks


def seed_lost_pushes(state: SimulatorState, platform: str, count: int) -> list[LostPush]:
    """``count`` pushes the platform gave up on, within the last 3 days by the simulator's
    clock: chat messages the CRM never got (new ids) and a couple of order status events."""
    spec = sim_platform(platform)
    hooks = _hooks(platform)
    accounts = spec.accounts(state)
    rng = random.Random(f"nfdoctor-simulator/{state.seed}/{platform}/lost-pushes")
    now = state.clock()
    window = LOST_PUSH_WINDOW - timedelta(hours=1)  # still listable for an hour at least
    times = sorted(
        (now - timedelta(seconds=rng.uniform(60, window.total_seconds()))).replace(microsecond=0)
        for _ in range(count)
    )
    orders = min(2, count // 3) if hooks.order_event is not None else 0
    order_slots = set(rng.sample(range(count), orders))
    pushes = []
    for index, at in enumerate(times):
        account = accounts[index % len(accounts)]
        if index in order_slots and account.orders and hooks.order_event is not None:
            body = hooks.order_event(state, account, rng.choice(account.orders), at)
        else:
            body = hooks.message_event(state, chat_source(spec, account, rng, at), rng).body
        pushes.append(state.add_lost_push(platform, json.loads(body), at))
    return pushes


class WebhookEmitter:
    """Delivers the platforms' chat message events to the CRM, with their retries.

    ``ssl_context`` checks HTTPS receivers (the simulator's CA under ``--tls``; default: the
    system's trust), ``connect_to`` says where their names are served (curl's
    ``--connect-to``), ``transport`` replaces the network (tests: the app in-process), and
    ``sleep`` is what the retry gaps and ``every`` wait with.
    """

    def __init__(
        self,
        state: SimulatorState,
        plan: EmitterPlan,
        *,
        ssl_context: ssl.SSLContext | None = None,
        connect_to: Sequence[ConnectTo] = (),
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        for platform in plan.platforms:
            _hooks(platform)  # a platform without webhooks is a programming error
        self.state = state
        self.plan = plan
        self.connect_to = tuple(connect_to)
        self.ssl_context = ssl_context
        self.sleep = sleep
        self._transport = transport
        self._rng = random.Random(f"nfdoctor-simulator/{state.seed}/emitter")
        self._turn: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        #: the events made, oldest first (the last MAX_RECORDS)
        self.emissions: deque[Emission] = deque(maxlen=MAX_RECORDS)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None

    # ---- events ------------------------------------------------------------------------------

    def next_emission(self, platform: str) -> Emission:
        """The platform's next chat message event: its next account in turn, one of that
        account's customers, now."""
        spec = sim_platform(platform)
        hooks = _hooks(platform)
        accounts = spec.accounts(self.state)
        turn = self._turn.get(platform, 0)
        self._turn[platform] = turn + 1
        account = accounts[turn % len(accounts)]
        source = chat_source(spec, account, self._rng, self.state.clock())
        event = hooks.message_event(self.state, source, self._rng)
        if hooks.delivery_url is not None:
            url = hooks.delivery_url(self.state, account)
        else:
            url = self.state.webhook_urls.get(platform)
        return Emission(
            platform=platform,
            account_id=account.account_id,
            message_id=event.message_id,
            url=url,
            body=event.body,
            text=source.text,
            sent_at=source.sent_at,
        )

    async def emit(self, platform: str) -> Emission | None:
        """Make the platform's next event and start delivering it; None when too many
        deliveries are still in flight."""
        if len(self._tasks) >= MAX_PENDING:
            return None
        emission = self.next_emission(platform)
        self.emissions.append(emission)
        task = asyncio.ensure_future(self.deliver(emission))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return emission

    async def drain(self) -> None:
        """Wait until every delivery started so far has ended (answered or given up)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def run(self) -> None:
        """Emit for every platform of the plan, every ``every``, until cancelled."""
        while True:
            # Wait first: started beside the server, the first event finds it listening.
            await self.sleep(self.plan.every.total_seconds())
            for platform in self.plan.platforms:
                await self.emit(platform)

    # ---- delivery ------------------------------------------------------------------------------

    async def deliver(self, emission: Emission) -> None:
        """Deliver one event until it is answered or the platform's schedule ends."""
        platform = emission.platform
        hooks = _hooks(platform)
        account = self.state.account(platform, emission.account_id)
        assert account is not None
        if emission.url is None:
            self._record(
                emission,
                1,
                "",
                None,
                "the platform delivers nothing here: no webhook "
                "registered (or not subscribed) for this account",
                0.0,
                "not_sent",
            )
            return
        try:
            check_loopback_target(emission.url, self.connect_to)
        except TargetRefused as exc:
            self._record(emission, 1, emission.url, None, f"refused: {exc}", 0.0, "not_sent")
            return
        schedule = self.plan.schedule(platform)
        deadline = hooks.ack_deadline.total_seconds()
        attempt = 0
        while True:
            attempt += 1
            headers = {"Content-Type": "application/json"}
            # Signed again for each attempt, as the platform would: same key, same bytes.
            headers.update(hooks.sign(self.state, account, emission.url, emission.body))
            if attempt > 1 and hooks.retry_headers is not None:
                headers.update(hooks.retry_headers(attempt - 1))
            sent = self.state.clock()
            status, error, latency = await self._post(
                emission.url, emission.body, headers, deadline, hooks
            )
            answered = error is None
            more = attempt - 1 < len(schedule)
            outcome: AttemptOutcome = "answered" if answered else "retry" if more else "gave_up"
            self._record(emission, attempt, emission.url, status, error, latency, outcome, sent)
            if outcome != "retry":
                break
            await self.sleep(schedule[attempt - 1].total_seconds() / self.plan.compress)
        if outcome == "gave_up" and hooks.keeps_lost_pushes:
            self.state.add_lost_push(platform, json.loads(emission.body), emission.sent_at)

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str], deadline: float, hooks: WebhookSpec
    ) -> tuple[int | None, str | None, float]:
        """One attempt: (status, why it does not count as answered, latency in seconds)."""
        client = self._client
        if client is None:
            raise RuntimeError("use the emitter inside `async with emitter:` (or start())")
        started = time.perf_counter()
        try:
            response = await asyncio.wait_for(
                client.post(url, content=body, headers=headers), deadline
            )
        except asyncio.TimeoutError:
            return None, f"no answer within {deadline:g} s", time.perf_counter() - started
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            return None, f"{type(exc).__name__}: {reason}", time.perf_counter() - started
        latency = time.perf_counter() - started
        if hooks.answered(response.status_code, response.content):
            return response.status_code, None, latency
        return (
            response.status_code,
            f"HTTP {response.status_code} is not an acknowledgement",
            latency,
        )

    def _record(
        self,
        emission: Emission,
        attempt: int,
        url: str,
        status: int | None,
        error: str | None,
        latency: float,
        outcome: AttemptOutcome,
        sent: datetime | None = None,
    ) -> None:
        self.state.webhook_attempts.append(
            DeliveryAttempt(
                platform=emission.platform,
                account_id=emission.account_id,
                message_id=emission.message_id,
                attempt=attempt,
                url=url,
                at=sent or self.state.clock(),
                status=status,
                error=error,
                latency_s=latency,
                outcome=outcome,
            )
        )

    # ---- lifetime ------------------------------------------------------------------------------

    async def __aenter__(self) -> WebhookEmitter:
        inner = self._transport or httpx.AsyncHTTPTransport(
            verify=self.ssl_context if self.ssl_context is not None else True,
            trust_env=False,
            retries=0,
        )
        # The platforms do not follow redirects (a 308 is not an acknowledgement).
        self._client = httpx.AsyncClient(
            transport=ConnectToTransport(inner, self.connect_to),
            follow_redirects=False,
            trust_env=False,
            timeout=None,  # each attempt is bounded by the platform's deadline instead
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel the deliveries in flight and close the connections."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def start(self, timeout: float = 10.0) -> None:
        """Run :meth:`run` in a thread of its own, with its own event loop, until :meth:`stop`."""
        ready = threading.Event()

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._main = asyncio.current_task()
            ready.set()
            with contextlib.suppress(asyncio.CancelledError):
                async with self:
                    await self.run()

        self._thread = threading.Thread(
            target=lambda: asyncio.run(serve()), name="nfdoctor-simulator-emitter", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("the webhook emitter did not start")

    @property
    def running(self) -> bool:
        """Whether :meth:`start`'s thread is still running."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop emitting, cancel what is in flight, and wait for the thread."""
        loop, main = self._loop, self._main
        if loop is not None and main is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                loop.call_soon_threadsafe(main.cancel)
        if self._thread is not None:
            self._thread.join(timeout)


def emitter_for(
    state: SimulatorState,
    *,
    ssl_context: ssl.SSLContext | None = None,
    connect_to: Sequence[ConnectTo] = (),
) -> WebhookEmitter | None:
    """The emitter the state's fault plan asks for (``emitter:``), or None when it is off."""
    plan = state.fault_plan.emitter if state.fault_plan is not None else None
    if plan is None:
        return None
    return WebhookEmitter(state, plan, ssl_context=ssl_context, connect_to=connect_to)
