"""Probing a webhook receiver the way its platform delivers to it.

:func:`probe_receiver` sends ``probes`` correctly signed probe deliveries, one after another
on fresh connections, then one deliberately wrongly signed, and, for Facebook, the GET
verification handshake with the configured verify token and once with a wrong one. A probe
is an event the CRM acknowledges and drops (each platform declares its ``probe`` event: an
event type the CRM does not store, or a shop it does not have), so nothing lands in an inbox.

The result is data (:class:`ReceiverProbe`); :mod:`nfdoctor.checks.webhooks` judges it.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from nfdoctor.webhooks.delivery import Answer, WebhookSender, event_payload, make_delivery
from nfdoctor.webhooks.target import Receiver

__all__ = [
    "HandshakeProbe",
    "ReceiverProbe",
    "classify_handshake",
    "percentile",
    "probe_receiver",
]

#: what a probe says, in Vietnamese as the shops' customers write
PROBE_TEXT = "Kiểm tra webhook từ nfdoctor: không lưu, vui lòng bỏ qua"


@dataclass(frozen=True, kw_only=True)
class HandshakeProbe:
    """Facebook's GET verification: the answer with the right token and with a wrong one."""

    challenge: str
    answer: Answer
    #: ok, not_found, forbidden, redirect, server_error, quoted, json_wrapped, whitespace,
    #: other_text, empty, not_allowed, failed
    verdict: str
    wrong_token: Answer | None = None

    @property
    def checks_token(self) -> bool | None:
        """Whether a wrong verify token is refused (None: not tried)."""
        if self.wrong_token is None:
            return None
        return not (
            self.wrong_token.status == 200
            and self.wrong_token.body.decode("utf-8", "replace") == self.challenge
        )


@dataclass(frozen=True, kw_only=True)
class ReceiverProbe:
    """What the receiver did with the probes."""

    receiver: Receiver
    #: what was sent, in words ("code 5, Shopee updates …")
    probe_event: str
    answers: tuple[Answer, ...]
    #: the answer to the wrongly signed probe (None: not sent, e.g. the first probe failed)
    wrongly_signed: Answer | None
    handshake: HandshakeProbe | None = None
    #: the verify token is not in nfdoctor's config, so the handshake could not be tried
    handshake_untested: str | None = None
    #: probes not sent because the time budget ran out (a slow receiver)
    skipped: int = 0

    @property
    def latencies(self) -> list[float]:
        """Seconds to each answer that came (late ones included)."""
        return [a.latency_s for a in self.answers if a.latency_s is not None]


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile (p50: 0.5, p95: 0.95); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def classify_handshake(answer: Answer, challenge: str) -> str:
    """Name what a GET verification answer is, right or wrong (Facebook §5.8)."""
    if not answer.answered:
        return "failed"
    status = answer.status or 0
    text = answer.body.decode("utf-8", "replace")
    if 300 <= status < 400:
        return "redirect"
    if status == 404:
        return "not_found"
    if status == 403:
        return "forbidden"
    if status == 405:
        return "not_allowed"
    if status >= 500:
        return "server_error"
    if status != 200:
        return f"status_{status}"
    if text == challenge:
        return "ok"
    if text.strip() == challenge:
        return "whitespace"
    if text.strip() in (f'"{challenge}"', f"'{challenge}'"):
        return "quoted"
    if challenge in text:
        try:
            json.loads(text)
        except ValueError:
            return "other_text"
        return "json_wrapped"
    return "empty" if not text else "other_text"


async def probe_receiver(
    sender: WebhookSender,
    receiver: Receiver,
    *,
    probes: int,
    now: Callable[[], datetime],
    timeout_s: float,
    verify_token: str | None = None,
    budget_s: float | None = None,
) -> ReceiverProbe:
    """Send the probes one after another (their latencies must not disturb each other).

    ``budget_s``: a probe whose answer could come after this many seconds from the start
    (judged by the slowest answer so far) is not sent, so a slow receiver is judged on the
    probes that fit in its check's time instead of timing the check out.
    """
    webhook = receiver.webhook
    event = webhook.event("probe")
    answers: list[Answer] = []
    last_delivery = None
    started = time.monotonic()

    def fits() -> bool:
        if budget_s is None:
            return True
        slowest = max((a.latency_s or timeout_s for a in answers), default=0.0)
        return time.monotonic() - started + slowest <= budget_s

    for _ in range(probes):
        if not fits():
            break
        payload = event_payload(
            receiver,
            event,
            now=now(),
            text=PROBE_TEXT,
            message_id=webhook.new_message_id(secrets.token_bytes(16)),
        )
        last_delivery = make_delivery(receiver, payload, event=event)
        answer = await sender.send(last_delivery, timeout_s=timeout_s)
        answers.append(answer)
        if not answer.answered:
            break  # the receiver is not there: more probes would only wait as long again
    wrongly_signed: Answer | None = None
    if answers and answers[-1].answered and last_delivery is not None and fits():
        spoiled = make_delivery(
            receiver, json.loads(last_delivery.body), event=event, wrongly_signed=True
        )
        wrongly_signed = await sender.send(spoiled, timeout_s=timeout_s)
    handshake = None
    untested = None
    if webhook.handshake is not None:
        if verify_token is None:
            untested = (
                f"platforms.{receiver.name}.{webhook.handshake.token_key} is not set in "
                "nfdoctor's config"
            )
        elif fits():
            handshake = await _handshake(sender, receiver, verify_token, timeout_s)
        else:
            untested = "no time left in the check (the receiver answers slowly)"
    return ReceiverProbe(
        receiver=receiver,
        probe_event=event.describe,
        answers=tuple(answers),
        wrongly_signed=wrongly_signed,
        handshake=handshake,
        handshake_untested=untested,
        skipped=probes - len(answers),
    )


async def _handshake(
    sender: WebhookSender, receiver: Receiver, token: str, timeout_s: float
) -> HandshakeProbe:
    handshake = receiver.webhook.handshake
    assert handshake is not None
    challenge = str(secrets.randbelow(10**9) + 10**9)
    answer = await sender.request(
        "GET", receiver.url, params=handshake.params(token, challenge), timeout_s=timeout_s
    )
    verdict = classify_handshake(answer, challenge)
    wrong = None
    if verdict == "ok":
        wrong = await sender.request(
            "GET",
            receiver.url,
            params=handshake.params("nfdoctor-wrong-" + secrets.token_hex(4), challenge),
            timeout_s=timeout_s,
        )
    return HandshakeProbe(challenge=challenge, answer=answer, verdict=verdict, wrong_token=wrong)
