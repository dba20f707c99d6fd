"""``webhook send`` and ``webhook trace``: deliveries made exactly as the platform makes them.

``send`` delivers one event (a realistic default per platform and type, or a payload from a
file) and reports the receiver's answer against the platform's deadline; ``--duplicate N``
sends the same message id N times and, when the CRM database is configured, counts the rows
it caused (runbook 3.2: does the receiver deduplicate?).

``trace`` is the runbook's "send test message, monitor webhook delivery, check CRM inbox" as
one measured transaction: a chat message with a fresh id goes to the CRM's webhook URL; the
CRM database is watched until its row appears; the delivery-to-inbox time is judged against
the "message delivery < 5 s" target. An acknowledgement later than the platform's deadline
is answered the way the platform answers it, by delivering again (at once, rather than on
the platform's schedule), so a receiver that stores before it acknowledges shows the
duplicate it would cause. nfdoctor writes nothing to the CRM database itself; the rows the
delivery caused are named, and ``--cleanup`` deletes exactly those.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from nfdoctor import __version__
from nfdoctor.checks.base import format_ms
from nfdoctor.config.loader import database_url
from nfdoctor.context import Environment
from nfdoctor.durations import format_span
from nfdoctor.errors import UsageError
from nfdoctor.hints import platform_hint
from nfdoctor.platforms.webhook import EventType
from nfdoctor.results import CheckResult, Metric, Report, Status
from nfdoctor.services.checkrun import PreparedConfig, prepare
from nfdoctor.services.observer import RunObserver, SilentObserver
from nfdoctor.services.webhook_target import Receiver, receiver
from nfdoctor.store.database import DatabaseUrl
from nfdoctor.store.message_lookup import MessageLookup, StoredMessage, open_message_lookup
from nfdoctor.webhooks.delivery import (
    Answer,
    Delivery,
    WebhookSender,
    event_payload,
    load_ca_bundle,
    make_delivery,
    read_event_file,
)

__all__ = [
    "SendRequest",
    "TraceRequest",
    "WebhookRun",
    "send_delivery",
    "trace_delivery",
]

#: what ``send`` and ``trace`` say, as a Vietnamese customer writes (diacritics included)
SEND_TEXT = "Chào shop, áo sơ mi này còn size M màu xanh không ạ? (nfdoctor webhook send)"
TRACE_TEXT = "Tin nhắn kiểm tra từ nfdoctor ({id}), vui lòng bỏ qua"
#: the most copies ``--duplicate`` sends
MAX_DUPLICATES = 20
#: how often the inbox is looked at
POLL_S = 0.1


@dataclass(frozen=True, kw_only=True)
class WebhookRun:
    """A report and the deliveries sent (``--debug`` shows them, masked)."""

    report: Report
    deliveries: tuple[Delivery, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, kw_only=True)
class SendRequest:
    """``webhook send PLATFORM``."""

    platform: str
    config_path: Path | None = None
    shop: str | None = None
    event_file: Path | None = None
    event_type: str | None = None
    url: str | None = None
    duplicate: int = 1
    #: how long to wait for each answer; None: the platform's deadline × 4 + 2 s
    timeout: timedelta | None = None


@dataclass(frozen=True, kw_only=True)
class TraceRequest:
    """``webhook trace PLATFORM``."""

    platform: str
    config_path: Path | None = None
    shop: str | None = None
    url: str | None = None
    timeout: timedelta = timedelta(seconds=30)
    #: deliveries again after an acknowledgement later than the deadline, as the platform
    retries: int = 1
    cleanup: bool = False


def _answer_timeout(target: Receiver, timeout: timedelta | None) -> float:
    if timeout is not None:
        return timeout.total_seconds()
    return target.webhook.deadline_s * 4 + 2


def _event_type(target: Receiver, name: str) -> EventType:
    events = target.webhook.events
    if name not in events:
        raise UsageError(
            f"--type: {target.platform.title} has no event type {name!r}; expected one of "
            + ", ".join(f"{n} ({e.describe})" for n, e in events.items())
        )
    return events[name]


def _sender(prepared: PreparedConfig, timeout_s: float) -> WebhookSender:
    loaded = prepared.loaded
    return WebhookSender(
        connect_to=loaded.config.webhooks.connect_to,
        ca_bundle=load_ca_bundle(loaded),
        timeout_s=timeout_s,
    )


def _database(prepared: PreparedConfig) -> DatabaseUrl | None:
    return database_url(prepared.loaded, prepared.secrets)


def _answer_text(answer: Answer, deadline_s: float) -> str:
    if not answer.answered:
        return f"no answer: {answer.error}"
    text = f"HTTP {answer.status} in {format_ms(answer.latency_s)}"
    text += f" (deadline {format_span(deadline_s)})"
    if answer.body:
        text += f", body {answer.body[:60].decode('utf-8', 'replace')!r}"
    else:
        text += ", empty body"
    return text


def _ack_metric(target: Receiver, answer: Answer | None) -> tuple[Metric, ...]:
    if answer is None or answer.latency_s is None:
        return ()
    return (Metric(name="ack", value=answer.latency_s, unit="s", crit=target.webhook.deadline_s),)


def _judge_answer(target: Receiver, answer: Answer) -> tuple[Status, str]:
    """How the platform would take this answer."""
    webhook = target.webhook
    title = target.platform.title
    text = _answer_text(answer, webhook.deadline_s)
    if not answer.answered:
        return Status.CRITICAL, text
    if answer.status is not None and 300 <= answer.status < 400:
        where = answer.location or "(no Location)"
        return Status.CRITICAL, f"{text}: a redirect to {where}; {title} follows none"
    if not answer.acknowledged(unauthorized_is_answer=webhook.unauthorized_is_answer):
        return Status.CRITICAL, f"{text}: not an acknowledgement; {title} will deliver again"
    if not answer.in_time(webhook.deadline_s):
        return (
            Status.CRITICAL,
            f"{text}: later than {title}'s deadline; it gives up and delivers again "
            f"({webhook.retries})",
        )
    if answer.body:
        return Status.WARNING, f"{text}: {title} expects an empty body"
    return Status.OK, text


def send_delivery(
    env: Environment, request: SendRequest, *, observer: RunObserver | None = None
) -> WebhookRun:
    """Send one event (``duplicate`` times); the report and what was sent."""
    observer = observer or SilentObserver()
    if not 1 <= request.duplicate <= MAX_DUPLICATES:
        raise UsageError(f"--duplicate: expected 1-{MAX_DUPLICATES}, got {request.duplicate}")
    if request.event_file is not None and request.event_type is not None:
        raise UsageError("--event and --type: give one of them (a file, or a type nfdoctor makes)")
    prepared = prepare(env, request.config_path, observer)
    target = receiver(prepared, request.platform, shop=request.shop, url=request.url)
    if request.event_file is not None:
        payload = read_event_file(request.event_file)
        event = None
        what = f"the event in {request.event_file}"
    else:
        event = _event_type(target, request.event_type or "message")
        payload = event_payload(
            target,
            event,
            now=env.clock(),
            text=SEND_TEXT,
            message_id=target.webhook.new_message_id(secrets.token_bytes(16)),
        )
        what = f"{event.name} ({event.describe})"
    delivery = make_delivery(target, payload, event=event)
    database = _database(prepared)
    timeout_s = _answer_timeout(target, request.timeout)
    started_at = env.clock()
    began = env.monotonic()

    async def run() -> list[Answer]:
        answers = []
        async with _sender(prepared, timeout_s) as sender:
            for _ in range(request.duplicate):
                answers.append(await sender.send(delivery))
        return answers

    answers = asyncio.run(run())
    results: list[CheckResult] = []
    title = target.platform.title
    for number, answer in enumerate(answers, start=1):
        status, text = _judge_answer(target, answer)
        copy = f" ({number} of {len(answers)})" if len(answers) > 1 else ""
        results.append(
            CheckResult(
                id="webhook.send",
                title=f"{title}: webhook delivery{copy}",
                status=status,
                summary=text,
                details=(
                    f"event: {what}",
                    f"to: {target.url} ({target.url_source})",
                    f"signed: {target.webhook.signature.describe}",
                    *(f"message id: {mid} (shop {shop})" for shop, mid in delivery.message_ids),
                ),
                hint=platform_hint("webhook.slow_ack", title)
                if status is not Status.OK and answer.answered
                else None,
                next_command=f"nfdoctor webhook check {target.name}"
                if status is not Status.OK
                else None,
                metrics=_ack_metric(target, answer),
                subject=target.account.label,
            )
        )
    if request.duplicate > 1 and delivery.message_ids and database is not None:
        results.append(_dedupe_result(target, delivery, database))
    report = Report(
        command=f"webhook send {target.name}",
        results=tuple(results),
        started_at=started_at,
        duration_s=env.monotonic() - began,
        version=__version__,
    )
    return WebhookRun(report=report, deliveries=(delivery,))


def _dedupe_result(target: Receiver, delivery: Delivery, database: DatabaseUrl) -> CheckResult:
    """How many rows the same message id, delivered N times, became (runbook 3.2)."""
    shop, message_id = delivery.message_ids[0]
    copies = 0
    rows: list[StoredMessage] = []
    deadline = time.monotonic() + 3.0  # the CRM stores asynchronously; give it a moment
    with open_message_lookup(database) as lookup:
        while time.monotonic() < deadline:
            rows = lookup.find(target.name, shop, message_id)
            copies = len(rows)
            if copies > 1:
                break
            time.sleep(POLL_S)
    ids = ", ".join(str(r.id) for r in rows) or "none"
    title = target.platform.title
    if copies == 1:
        status, text = Status.OK, "the CRM stored the message once: it deduplicates"
    elif copies == 0:
        status, text = Status.WARNING, "the CRM stored no row for the message id"
    else:
        status = Status.CRITICAL
        text = f"the CRM stored {copies} rows for one message id: it does not deduplicate"
    return CheckResult(
        id="webhook.send.dedupe",
        title=f"{title}: receiver deduplicates",
        status=status,
        summary=text,
        details=(f"message id {message_id} on shop {shop}: messages.id {ids}",),
        hint=platform_hint("webhook.dedupe", title) if status is Status.CRITICAL else None,
        next_command=f"nfdoctor webhook check {target.name}" if status is Status.CRITICAL else None,
        metrics=(Metric(name="rows", value=copies),),
        subject=target.account.label,
    )


@dataclass
class _Attempt:
    answer: Answer
    #: seconds from the trace's start to the end of this answer
    at_s: float


def trace_delivery(
    env: Environment, request: TraceRequest, *, observer: RunObserver | None = None
) -> WebhookRun:
    """Deliver a traced message and watch the CRM inbox for it; the report."""
    observer = observer or SilentObserver()
    if request.timeout.total_seconds() <= 0:
        raise UsageError("--timeout: must be more than zero")
    if not 0 <= request.retries <= 5:
        raise UsageError(f"--retries: expected 0-5, got {request.retries}")
    prepared = prepare(env, request.config_path, observer)
    target = receiver(prepared, request.platform, shop=request.shop, url=request.url)
    database = _database(prepared)
    if database is None:
        raise UsageError(
            "webhook trace watches the CRM database for the message: set database.url in "
            f"{prepared.loaded.path}"
        )
    event = target.webhook.event("message")
    message_id = target.webhook.new_message_id(secrets.token_bytes(16))
    payload = event_payload(
        target,
        event,
        now=env.clock(),
        text=TRACE_TEXT.format(id=message_id[-8:]),
        message_id=message_id,
    )
    delivery = make_delivery(target, payload, event=event)
    started_at = env.clock()
    began = env.monotonic()
    shop = target.account.account_id
    title = target.platform.title
    with open_message_lookup(database) as lookup:
        if not lookup.shop_exists(target.name, shop):
            result = CheckResult(
                id="webhook.trace",
                title=f"{title}: test message to the CRM inbox",
                status=Status.CRITICAL,
                summary=f"the CRM database has no {target.name} shop {shop} "
                "(shops.channel, shops.external_id): the CRM would drop the message; "
                "nothing was sent",
                next_command="nfdoctor diagnose --only database",
                subject=target.account.label,
            )
            return WebhookRun(report=_report(target, [result], started_at, env, began))
        attempts, rows, first_seen = _run_trace(prepared, target, delivery, request, lookup)
        deleted = 0
        if request.cleanup and rows:
            deleted = lookup.delete(rows, message_id)
    results = [
        _trace_delivery_result(target, attempts),
        _trace_inbox_result(
            prepared, target, message_id, rows, first_seen, request, deleted, attempts
        ),
    ]
    return WebhookRun(
        report=_report(target, results, started_at, env, began), deliveries=(delivery,)
    )


def _report(
    target: Receiver,
    results: Sequence[CheckResult],
    started_at: datetime,
    env: Environment,
    began: float,
) -> Report:
    return Report(
        command=f"webhook trace {target.name}",
        results=tuple(results),
        started_at=started_at,
        duration_s=env.monotonic() - began,
        version=__version__,
    )


def _run_trace(
    prepared: PreparedConfig,
    target: Receiver,
    delivery: Delivery,
    request: TraceRequest,
    lookup: MessageLookup,
) -> tuple[list[_Attempt], list[StoredMessage], float | None]:
    """Deliver (again when the platform would), watch the inbox; attempts, rows, and when
    the first row was seen (seconds from the start).

    The deliveries run on an event loop in a thread of their own, so their latency is not
    the inbox queries'; the inbox is watched from this thread, on the connection opened here.
    """
    webhook = target.webhook
    timeout_s = request.timeout.total_seconds()
    answer_timeout = min(timeout_s, webhook.deadline_s * 4 + 2)
    shop, message_id = delivery.message_ids[0]
    start = time.monotonic()
    attempts: list[_Attempt] = []
    failure: list[BaseException] = []

    async def deliver_all() -> None:
        async with _sender(prepared, answer_timeout) as sender:
            for _ in range(1 + request.retries):
                answer = await sender.send(delivery)
                attempts.append(_Attempt(answer, time.monotonic() - start))
                acked = answer.acknowledged(unauthorized_is_answer=webhook.unauthorized_is_answer)
                if acked and answer.in_time(webhook.deadline_s):
                    return  # the platform would not deliver again

    def send() -> None:
        try:
            asyncio.run(deliver_all())
        except BaseException as exc:  # handed to the main thread, which raises it
            failure.append(exc)

    sending = threading.Thread(target=send, name="nfdoctor-trace", daemon=True)
    sending.start()
    rows: list[StoredMessage] = []
    first_seen: float | None = None
    settle_until: float | None = None
    while True:
        now = time.monotonic() - start
        rows = lookup.find(target.name, shop, message_id)
        if rows and first_seen is None:
            first_seen = time.monotonic() - start
        if not sending.is_alive():
            if failure:
                raise failure[0]
            last = attempts[-1].at_s if attempts else now
            if rows and settle_until is None:
                # After the last delivery, wait as long again as the first row took (at
                # least a second) for a copy stored late.
                settle_until = last + max(1.0, 2 * (first_seen or 0.0))
            if settle_until is not None and now >= settle_until:
                break
        if now >= timeout_s:
            break
        time.sleep(POLL_S)
    sending.join(answer_timeout)
    return attempts, rows, first_seen


def _trace_delivery_result(target: Receiver, attempts: Sequence[_Attempt]) -> CheckResult:
    title = target.platform.title
    worst = Status.OK
    lines = []
    for number, attempt in enumerate(attempts, start=1):
        status, text = _judge_answer(target, attempt.answer)
        worst = status if status.severity > worst.severity else worst
        lines.append(f"delivery {number}: {text}")
    first = attempts[0].answer if attempts else None
    summary = lines[0].split(": ", 1)[1] if lines else "nothing was sent"
    if len(attempts) > 1:
        summary += f"; delivered {len(attempts)} times, as {title} would"
    return CheckResult(
        id="webhook.trace.delivery",
        title=f"{title}: test message delivery",
        status=worst,
        summary=summary,
        details=tuple(lines[1:]),
        hint=platform_hint("webhook.slow_ack", title) if worst is not Status.OK else None,
        next_command=f"nfdoctor webhook check {target.name}" if worst is not Status.OK else None,
        metrics=_ack_metric(target, first),
        subject=target.account.label,
    )


def _row_text(row: StoredMessage) -> str:
    when = ""
    if row.received_at is not None:
        when = f", received_at {row.received_at.isoformat(timespec='milliseconds')}"
    return f"messages.id {row.id} (shop_id {row.shop_id}, conversation {row.conversation_id}{when})"


def _trace_inbox_result(
    prepared: PreparedConfig,
    target: Receiver,
    message_id: str,
    rows: Sequence[StoredMessage],
    first_seen: float | None,
    request: TraceRequest,
    deleted: int,
    attempts: Sequence[_Attempt],
) -> CheckResult:
    title = target.platform.title
    target_s = prepared.loaded.config.thresholds.message_delivery.total_seconds()
    named = [_row_text(r) for r in rows]
    details = [f"message id {message_id} on {target.account.label}", *named]
    if rows and not request.cleanup:
        ids = ", ".join(str(r.id) for r in rows)
        details.append(
            f"the rows nfdoctor caused: remove them with --cleanup, or DELETE FROM messages "
            f"WHERE id IN ({ids}) AND external_id = '{message_id}'"
        )
    if deleted:
        details.append(f"--cleanup deleted {deleted} row(s)")
    metrics = [Metric(name="rows", value=len(rows))]
    hint = None
    next_command = None
    if not rows:
        status = Status.CRITICAL
        summary = (
            f"the message never reached the CRM inbox within "
            f"{format_span(request.timeout.total_seconds())}"
        )
        hint = platform_hint("webhook.not_stored", title)
        next_command = f"nfdoctor webhook check {target.name}"
    else:
        assert first_seen is not None
        metrics.append(Metric(name="delivery_to_inbox", value=first_seen, unit="s", warn=target_s))
        timing = (
            f"in the CRM inbox {format_span(first_seen)} after sending "
            f"(target < {format_span(target_s)})"
        )
        if len(rows) > 1:
            status = Status.CRITICAL
            summary = (
                f"arrived {len(rows)} times ({timing}): duplicates, one per delivery {title} made"
                if len(attempts) > 1
                else f"arrived {len(rows)} times ({timing}): the CRM stored one delivery twice"
            )
            hint = platform_hint("webhook.slow_ack", title)
            next_command = f"nfdoctor webhook check {target.name}"
        elif first_seen > target_s:
            status = Status.WARNING
            summary = f"arrived once, slowly: {timing}"
            hint = platform_hint("webhook.not_stored", title)
        else:
            status = Status.OK
            summary = f"arrived once, {timing}"
    return CheckResult(
        id="webhook.trace.inbox",
        title=f"{title}: test message in the CRM inbox",
        status=status,
        summary=summary,
        details=tuple(details),
        hint=hint,
        next_command=next_command,
        metrics=tuple(metrics),
        subject=target.account.label,
    )
