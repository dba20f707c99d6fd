"""Judging probe answers: deadlines, answers, signatures, Facebook's handshake (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nfdoctor.checks.webhooks import WebhookDeliveryCheck, judge_delivery
from nfdoctor.platforms.registry import spec as platform_spec
from nfdoctor.platforms.spec import Account
from nfdoctor.platforms.webhook import WebhookKeys
from nfdoctor.results import Status
from nfdoctor.webhooks.delivery import Answer
from nfdoctor.webhooks.probe import HandshakeProbe, ReceiverProbe, classify_handshake, percentile
from nfdoctor.webhooks.target import Receiver


def _receiver(platform: str, url: str = "https://crm.example.vn/webhooks/x") -> Receiver:
    spec = platform_spec(platform)
    assert spec.webhook is not None
    return Receiver(
        platform=spec,
        webhook=spec.webhook,
        section=None,  # type: ignore[arg-type] - judging never reads it
        account=Account(platform=platform, account_id="1"),
        keys=WebhookKeys(secret="s", secret_path="platforms.x.secret"),
        url=url,
        url_source="platforms.x.webhook_url",
    )


def _ok(latency: float, body: bytes = b"", status: int = 200) -> Answer:
    return Answer(status=status, body=body, latency_s=latency)


def _judge(platform: str, answers: list[Answer], **extra: Any) -> Any:
    receiver = _receiver(platform)
    probe = ReceiverProbe(
        receiver=receiver,
        probe_event="probe",
        answers=tuple(answers),
        wrongly_signed=extra.pop("wrongly_signed", Answer(status=401, latency_s=0.01)),
        **extra,
    )
    return judge_delivery(WebhookDeliveryCheck(receiver.platform), probe)


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([0.1, 0.2, 0.3, 0.4, 5.0], 0.95) == 5.0
    assert percentile([0.1, 0.2, 0.3, 0.4, 5.0], 0.5) == 0.3


def test_fast_acknowledgements_are_ok_with_the_figures() -> None:
    result = _judge("lazada", [_ok(0.05), _ok(0.06), _ok(0.07)])
    assert result.status is Status.OK
    assert "p50 60 ms" in result.summary and "deadline 500 ms" in result.summary
    metrics = {m.name: m for m in result.metrics}
    assert metrics["ack_p95"].crit == 0.5


def test_a_slow_ack_beyond_lazadas_500_ms_is_critical_and_says_why() -> None:
    result = _judge("lazada", [_ok(0.8), _ok(0.82), _ok(0.79)])
    assert result.status is Status.CRITICAL
    assert "deadline 500 ms" in result.summary
    assert "duplicates" in result.summary
    assert result.next_command == "nfdoctor webhook check lazada"


def test_the_same_latency_is_fine_for_facebooks_5_s() -> None:
    result = _judge("facebook", [_ok(0.8)] * 3, handshake=_handshake("ok"))
    assert result.status is Status.OK


def test_one_late_probe_of_five_is_a_warning() -> None:
    result = _judge("shopee", [_ok(0.1), _ok(0.1), _ok(0.1), _ok(0.1), _ok(0.1)])
    assert result.status is Status.OK
    late = _judge("zalo", [_ok(0.1)] * 19 + [_ok(2.5)])
    assert late.status is Status.WARNING  # 1 of 20 late: p95 is still below 2 s
    assert "close to Zalo OA's deadline" in late.summary
    many = _judge("zalo", [_ok(0.1)] * 18 + [_ok(2.5)] * 2)
    assert many.status is Status.CRITICAL  # 2 of 20: p95 is late


def test_a_body_on_the_ack_is_a_warning() -> None:
    result = _judge("shopee", [_ok(0.1, b'{"ok":true}')])
    assert result.status is Status.WARNING
    assert "expects an empty body" in result.summary


def test_not_acknowledged_names_the_route_problem() -> None:
    result = _judge("tiktok", [_ok(0.1, status=404)])
    assert result.status is Status.CRITICAL
    assert "wrong route" in result.summary


def test_tiktok_counts_401_with_an_empty_body_as_answered() -> None:
    answered = _judge("tiktok", [_ok(0.1, status=401)])
    assert "not acknowledged" not in answered.summary
    lazada = _judge("lazada", [_ok(0.1, status=401)])
    assert lazada.status is Status.CRITICAL and "not acknowledged" in lazada.summary


def test_redirect_to_http_is_critical() -> None:
    redirect = Answer(status=308, latency_s=0.01, location="http://crm.example.vn/webhooks/x")
    result = _judge("shopee", [redirect])
    assert result.status is Status.CRITICAL
    assert "redirects to plain http" in result.summary


def test_no_answer_is_critical_with_the_error() -> None:
    result = _judge("zalo", [Answer(error_kind="refused", error="connection refused")])
    assert result.status is Status.CRITICAL
    assert "connection refused" in result.summary


def test_accepting_a_wrong_signature_is_a_warning() -> None:
    result = _judge("lazada", [_ok(0.05)], wrongly_signed=_ok(0.05))
    assert result.status is Status.WARNING
    assert "wrongly signed" in result.summary


def _handshake(verdict: str, *, checks_token: bool = True) -> HandshakeProbe:
    wrong = Answer(status=403, latency_s=0.01) if checks_token else _ok(0.01, b"1234567890")
    return HandshakeProbe(
        challenge="1234567890",
        answer=_ok(0.01, b"1234567890"),
        verdict=verdict,
        wrong_token=wrong if verdict == "ok" else None,
    )


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, b"1234567890", "ok"),
        (200, b"1234567890\n", "whitespace"),
        (200, b'"1234567890"', "quoted"),
        (200, b'{"hub.challenge": "1234567890"}', "json_wrapped"),
        (200, b"OK", "other_text"),
        (200, b"", "empty"),
        (404, b"Not Found", "not_found"),
        (403, b"Forbidden", "forbidden"),
        (301, b"", "redirect"),
        (405, b"", "not_allowed"),
        (502, b"", "server_error"),
    ],
)
def test_facebook_handshake_answers_are_named(status: int, body: bytes, verdict: str) -> None:
    answer = Answer(status=status, body=body, latency_s=0.01)
    assert classify_handshake(answer, "1234567890") == verdict


def test_handshake_findings_in_the_result() -> None:
    wrong = HandshakeProbe(challenge="1234567890", answer=_ok(0.01, b"OK"), verdict="other_text")
    result = _judge("facebook", [_ok(0.1)], handshake=wrong)
    assert result.status is Status.CRITICAL
    assert "'OK'" in result.summary and "1234567890" in result.summary
    lax = _judge("facebook", [_ok(0.1)], handshake=_handshake("ok", checks_token=False))
    assert lax.status is Status.WARNING
    assert "whatever the verify token" in lax.summary


def test_untested_handshake_says_which_key_is_missing(tmp_path: Path) -> None:
    result = _judge(
        "facebook",
        [_ok(0.1)],
        handshake_untested="platforms.facebook.verify_token is not set in nfdoctor's config",
    )
    assert result.status is Status.WARNING
    assert "platforms.facebook.verify_token" in result.summary
