"""``webhook lost shopee [--replay] [--confirm]``: pushes Shopee gave up on, recovered.

Shopee keeps, for three days, the pushes it could not deliver (platforms.md §2.8):
``get_lost_push_message`` lists the earliest 100, and ``confirm_consumed_lost_push_message``
with the page's ``last_message_id`` makes Shopee forget that page (and show the next).

- Without ``--replay``, the page is listed and nothing is sent anywhere.
- ``--replay`` re-delivers each push to the CRM's webhook URL, signed as Shopee signs it, and
  reports which the CRM acknowledged. Each acknowledged push is written to a journal in the
  state dir before anything else happens, so a run that is interrupted, or a page that is
  only partly acknowledged, never delivers the same push twice: the next run skips what the
  journal holds.
- ``--confirm`` (with ``--replay``) confirms a page only when every push on it was
  acknowledged (now or by an earlier run): confirming an id consumes everything up to it, so
  confirming past a push the CRM refused would lose that push for good. Then the next page.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from nfdoctor import __version__
from nfdoctor.checks.base import format_ms
from nfdoctor.context import Environment
from nfdoctor.errors import UsageError
from nfdoctor.hints import platform_hint
from nfdoctor.platforms.errors import TaxonomyError
from nfdoctor.platforms.shopee import LostPush, ShopeeClient
from nfdoctor.results import CheckResult, Metric, Report, Status
from nfdoctor.services.checkrun import PreparedConfig, open_tokens, prepare
from nfdoctor.services.observer import RunObserver, SilentObserver
from nfdoctor.services.webhook_target import Receiver, receiver
from nfdoctor.session import PlatformSession
from nfdoctor.state.documents import JsonDocument
from nfdoctor.state.locks import FileStateLock
from nfdoctor.webhooks.delivery import Answer, WebhookSender, load_ca_bundle, make_delivery

__all__ = ["LostRequest", "recover_lost_pushes"]

JOURNAL_FORMAT = "nfdoctor.lost-push-replays/v1"
#: Shopee keeps lost pushes 3 days; a journal entry outlives them by a day
JOURNAL_KEEP = timedelta(days=4)
#: pages one run goes through at most (100 pushes each)
MAX_PAGES = 50


@dataclass(frozen=True, kw_only=True)
class LostRequest:
    """``webhook lost PLATFORM``."""

    platform: str
    config_path: Path | None = None
    shop: str | None = None
    url: str | None = None
    replay: bool = False
    confirm: bool = False


def push_key(push: LostPush) -> str:
    """A push's identity in the journal: the SHA-256 of its canonical JSON."""
    canonical = json.dumps(push.payload(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class _Outcome:
    push: LostPush
    answer: Answer | None = None
    #: acknowledged by an earlier run (the journal has it): not sent again
    earlier: bool = False

    @property
    def acknowledged(self) -> bool:
        if self.earlier:
            return True
        return self.answer is not None and self.answer.acknowledged()


def _journal(env: Environment) -> JsonDocument:
    return JsonDocument(
        env.state_dir / "webhook-lost-shopee.json", JOURNAL_FORMAT, kind="lost-push journal"
    )


def _remembered(journal: JsonDocument, now: datetime) -> dict[str, str]:
    document = journal.read() or {}
    acked = document.get("acknowledged")
    if not isinstance(acked, dict):
        return {}
    horizon = now - JOURNAL_KEEP
    kept = {}
    for key, when in acked.items():
        try:
            moment = datetime.fromisoformat(str(when))
        except ValueError:
            continue
        if moment.tzinfo is not None and moment >= horizon:
            kept[str(key)] = str(when)
    return kept


def _remember(journal: JsonDocument, key: str, now: datetime) -> None:
    """Write the acknowledgement down before anything else happens (a kill after the CRM
    stored it must not make the next run deliver it again)."""

    def add(document: dict[str, Any] | None) -> dict[str, Any]:
        current = dict((document or {}).get("acknowledged") or {})
        horizon = now - JOURNAL_KEEP
        fresh = {}
        for k, v in current.items():
            try:
                if datetime.fromisoformat(str(v)) >= horizon:
                    fresh[k] = v
            except ValueError:
                continue
        fresh[key] = now.astimezone(timezone.utc).isoformat()
        return {"acknowledged": fresh}

    journal.update(add)


def recover_lost_pushes(
    env: Environment, request: LostRequest, *, observer: RunObserver | None = None
) -> Report:
    """List, replay and confirm Shopee's lost pushes as asked; the report."""
    observer = observer or SilentObserver()
    name = request.platform.strip().lower()
    if name != "shopee":
        raise UsageError(
            f"webhook lost: only Shopee keeps undelivered pushes to fetch again "
            f"(get_lost_push_message, platforms.md §2.8); got {name!r}"
        )
    if request.confirm and not request.replay:
        raise UsageError(
            "--confirm needs --replay: nfdoctor confirms only pushes it re-delivered and the "
            "CRM acknowledged (confirming makes Shopee forget them)"
        )
    prepared = prepare(env, request.config_path, observer)
    target = receiver(prepared, name, shop=request.shop, url=request.url, check_url=request.replay)
    started_at = env.clock()
    began = env.monotonic()
    run_lock = FileStateLock(
        env.state_dir / "webhook-lost-shopee.lock", timeout_s=1, what="webhook lost shopee"
    )
    with run_lock:
        results = asyncio.run(_recover(env, prepared, target, request))
    return Report(
        command=f"webhook lost {name}",
        results=tuple(results),
        started_at=started_at,
        duration_s=env.monotonic() - began,
        version=__version__,
    )


async def _recover(
    env: Environment, prepared: PreparedConfig, target: Receiver, request: LostRequest
) -> list[CheckResult]:
    loaded = prepared.loaded
    token_store = open_tokens(env, prepared)
    session = PlatformSession(
        config=loaded.config,
        secrets=prepared.secrets,
        token_store=token_store,
        redactor=env.redactor,
        clock=env.clock,
        accounts={target.name: [target.account]},
        call_timeout_s=10.0,
    )
    journal = _journal(env)
    results: list[CheckResult] = []
    async with session:
        # The lost-push calls take the public sign (partner level): no shop token is used.
        client = session.client(target.account, access_token="")
        assert isinstance(client, ShopeeClient)
        sender = WebhookSender(
            connect_to=loaded.config.webhooks.connect_to,
            ca_bundle=load_ca_bundle(loaded),
            timeout_s=target.webhook.deadline_s * 4 + 2,
        )
        async with sender:
            for page_number in range(1, MAX_PAGES + 1):
                try:
                    page = await client.lost_pushes()
                except TaxonomyError as exc:
                    results.append(_api_failure(target, "get_lost_push_message", exc))
                    return results
                if not page.pushes:
                    if page_number == 1:
                        results.append(_nothing_lost(target))
                    return results
                if not request.replay:
                    results.append(_listed(target, page.pushes, page.has_next_page))
                    return results
                outcomes = await _replay_page(env, sender, target, journal, page.pushes)
                results.append(_replayed(target, page_number, outcomes))
                complete = all(o.acknowledged for o in outcomes)
                if not request.confirm:
                    return results
                if not complete or page.last_message_id is None:
                    results.append(_not_confirmed(target, page_number, outcomes, page))
                    return results
                try:
                    await client.confirm_lost_pushes(page.last_message_id)
                except TaxonomyError as exc:
                    results.append(_api_failure(target, "confirm_consumed_lost_push_message", exc))
                    return results
                results.append(_confirmed(target, page_number, page.last_message_id, outcomes))
                if not page.has_next_page:
                    return results
    return results


async def _replay_page(
    env: Environment,
    sender: WebhookSender,
    target: Receiver,
    journal: JsonDocument,
    pushes: tuple[LostPush, ...],
) -> list[_Outcome]:
    remembered = _remembered(journal, env.clock())
    outcomes = []
    for push in pushes:
        key = push_key(push)
        if key in remembered:
            outcomes.append(_Outcome(push, earlier=True))
            continue
        delivery = make_delivery(target, push.payload())
        answer = await sender.send(delivery)
        outcome = _Outcome(push, answer)
        if outcome.acknowledged:
            _remember(journal, key, env.clock())
        outcomes.append(outcome)
    return outcomes


def _describe(push: LostPush) -> str:
    when = datetime.fromtimestamp(push.timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")
    shop = f"shop {push.shop_id}" if push.shop_id is not None else "partner"
    what = f"code {push.code}"
    data = push.data if isinstance(push.data, dict) else {}
    content = data.get("content") if isinstance(data.get("content"), dict) else None
    if push.code == 10 and content and "message_id" in content:
        what += f", message {content['message_id']}"
    elif "ordersn" in data:
        what += f", order {data['ordersn']} {data.get('status', '')}".rstrip()
    return f"{when} UTC, {shop}, {what}"


def _result(
    target: Receiver,
    status: Status,
    summary: str,
    *,
    suffix: str = "",
    details: tuple[str, ...] = (),
    next_command: str | None = None,
    metrics: tuple[Metric, ...] = (),
) -> CheckResult:
    title = target.platform.title
    return CheckResult(
        id=f"webhook.lost{suffix}",
        title=f"{title}: lost pushes",
        status=status,
        summary=summary,
        details=details,
        hint=platform_hint("webhook.push_health", title) if status is not Status.OK else None,
        next_command=next_command,
        metrics=metrics,
        subject=target.url,
    )


def _nothing_lost(target: Receiver) -> CheckResult:
    return _result(
        target,
        Status.OK,
        "Shopee has no undelivered push from the last 3 days",
        metrics=(Metric(name="lost", value=0),),
    )


def _listed(target: Receiver, pushes: tuple[LostPush, ...], more: bool) -> CheckResult:
    count = f"{len(pushes)}{'+' if more else ''}"
    return _result(
        target,
        Status.WARNING,
        f"{count} pushes Shopee could not deliver in the last 3 days (nothing was sent)",
        details=tuple(_describe(p) for p in pushes)
        + (("more after these: the next page shows once this one is confirmed",) if more else ()),
        next_command="nfdoctor webhook lost shopee --replay --confirm",
        metrics=(Metric(name="lost", value=len(pushes)),),
    )


def _replayed(target: Receiver, page: int, outcomes: list[_Outcome]) -> CheckResult:
    sent = [o for o in outcomes if not o.earlier]
    acked = [o for o in sent if o.acknowledged]
    earlier = len(outcomes) - len(sent)
    refused = [o for o in sent if not o.acknowledged]
    lines = []
    for outcome in outcomes:
        if outcome.earlier:
            verdict = "acknowledged by an earlier run: not sent again"
        elif outcome.answer is None or not outcome.answer.answered:
            verdict = f"not delivered: {outcome.answer.error if outcome.answer else '?'}"
        else:
            verdict = f"HTTP {outcome.answer.status} in {format_ms(outcome.answer.latency_s)}" + (
                "" if outcome.acknowledged else ": not acknowledged"
            )
        lines.append(f"{_describe(outcome.push)}: {verdict}")
    summary = f"page {page}: re-delivered {len(sent)}, the CRM acknowledged {len(acked)}"
    if earlier:
        summary += f" ({earlier} acknowledged by an earlier run, not sent again)"
    return _result(
        target,
        Status.CRITICAL if refused else Status.OK,
        summary,
        suffix=".replay",
        details=tuple(lines),
        next_command="nfdoctor webhook check shopee" if refused else None,
        metrics=(
            Metric(name="replayed", value=len(sent)),
            Metric(name="acknowledged", value=len(acked)),
        ),
    )


def _not_confirmed(target: Receiver, page: int, outcomes: list[_Outcome], lost: Any) -> CheckResult:
    refused = sum(1 for o in outcomes if not o.acknowledged)
    why = (
        f"{refused} push(es) on it were not acknowledged; confirming would make Shopee forget "
        "them too"
        if refused
        else "Shopee gave no last_message_id"
    )
    return _result(
        target,
        Status.CRITICAL,
        f"page {page} not confirmed: {why}. Fix the receiver and run again within 3 days; "
        "what was acknowledged will not be sent again",
        suffix=".confirm",
        next_command="nfdoctor webhook check shopee",
    )


def _confirmed(target: Receiver, page: int, last_id: int, outcomes: list[_Outcome]) -> CheckResult:
    return _result(
        target,
        Status.OK,
        f"page {page} confirmed up to message {last_id}: Shopee forgets its "
        f"{len(outcomes)} pushes, all acknowledged by the CRM",
        suffix=".confirm",
    )


def _api_failure(target: Receiver, call: str, exc: TaxonomyError) -> CheckResult:
    return _result(
        target,
        Status.CRITICAL,
        f"{call}: {exc.message}",
        suffix=".api",
        next_command="nfdoctor check shopee",
    )
