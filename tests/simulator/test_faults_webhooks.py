"""The fault plan's webhook sections (tls, emitter, registrations, lost_pushes) and the CRM
receiver fault kinds: what each accepts, and one located error line for each mistake."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from nfdoctor.errors import UsageError
from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.certs import CERT_KINDS
from nfdoctor.simulator.emitter import DEFAULT_COMPRESS, DEFAULT_EVERY, emitter_for
from nfdoctor.simulator.faults import FaultPlan, load_fault_plan
from nfdoctor.simulator.registry import NAMES, sim_platform
from tests.simulator import FakeClock

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "faults-webhooks.yaml"


def parse(text: str) -> FaultPlan:
    return FaultPlan.from_mapping(yaml.safe_load(text), source="hooks.yaml")


def refused(text: str) -> str:
    with pytest.raises(UsageError) as info:
        parse(text)
    message = str(info.value)
    assert "\n" not in message  # one line per mistake
    return message


# --- valid plans ---------------------------------------------------------------------------


def test_a_plan_without_the_sections_has_their_defaults() -> None:
    plan = parse("rules: []\n")
    assert (plan.tls, plan.emitter, plan.registrations, plan.lost_pushes) == ({}, None, {}, {})
    _, state = build_simulator(seed=7, faults=plan, orders_per_shop=0)
    assert state.fault_plan is plan and emitter_for(state) is None


def test_every_section_parsed() -> None:
    plan = parse(
        """
tls: {lazada: dv, zalo: expiring_soon}
emitter:
  every: 500ms
  platforms: [lazada, facebook]
  compress: 600
  retry_schedule:
    shopee: [1m, 5m, 30m]
    facebook: [0, 10]
registrations:
  shopee: {callback_url: "https://old-crm.example.vn/webhooks/shopee", blocked_shop_id_list: [1]}
  facebook: {subscribed_fields: [feed]}
  tiktok: {address: null}
lost_pushes: {shopee: 7}
"""
    )
    assert plan.tls == {"lazada": "dv", "zalo": "expiring_soon"}
    emitter = plan.emitter
    assert emitter is not None
    assert emitter.every == timedelta(milliseconds=500)
    assert emitter.platforms == ("lazada", "facebook")
    assert emitter.compress == 600.0
    assert emitter.schedule("shopee") == (
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=30),
    )
    assert emitter.schedule("facebook") == (timedelta(0), timedelta(seconds=10))
    # Not overridden: the platform's own (Lazada: every 30 min, 12 times).
    assert emitter.schedule("lazada") == (timedelta(minutes=30),) * 12
    assert plan.registrations == {
        "shopee": {
            "callback_url": "https://old-crm.example.vn/webhooks/shopee",
            "blocked_shop_id_list": [1],
        },
        "facebook": {"subscribed_fields": ["feed"]},
        "tiktok": {"address": None},
    }
    assert plan.lost_pushes == {"shopee": 7}


def test_an_empty_emitter_section_turns_it_on_with_the_defaults() -> None:
    plan = parse("emitter: {}\n")
    assert plan.emitter is not None
    assert plan.emitter.every == DEFAULT_EVERY == timedelta(seconds=2)
    assert plan.emitter.compress == DEFAULT_COMPRESS == 60
    assert plan.emitter.platforms == NAMES
    _, state = build_simulator(seed=7, faults=plan, orders_per_shop=0)
    emitter = emitter_for(state)
    assert emitter is not None and emitter.plan is plan.emitter


@pytest.mark.parametrize("kind", CERT_KINDS)
def test_every_certificate_kind_is_accepted(kind: str) -> None:
    assert parse(f"tls: {{tiktok: {kind}}}\n").tls == {"tiktok": kind}


def test_the_example_plan_is_valid_and_builds() -> None:
    plan = load_fault_plan(EXAMPLE)
    assert plan.emitter is not None and plan.tls["lazada"] == "dv"
    _, state = build_simulator(seed=7, faults=plan, clock=FakeClock(), orders_per_shop=5)
    assert len(state.lost_pushes("shopee")) == 7


def test_registrations_reach_the_state() -> None:
    plan = parse("registrations: {tiktok: {event_types: [NEW_MESSAGE]}}\n")
    _, state = build_simulator(seed=7, faults=plan, orders_per_shop=0)
    assert state.registrations == {"tiktok": {"event_types": ["NEW_MESSAGE"]}}


# --- new CRM receiver fault kinds ------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "params"),
    [
        ("fault: slow_ack\n    ms: 800", {"ms": 800}),
        ("fault: wrong_challenge\n    answer: quoted", {"answer": "quoted"}),
        ("fault: http_status\n    status: 404", {"status": 404}),
        ("fault: http_status\n    status: 301", {"status": 301}),
        ("fault: ack_body\n    text: OK", {"text": "OK"}),
        ("fault: redirect_http", {}),
        ("fault: unsigned_ok", {}),
    ],
)
def test_receiver_fault_kinds_parse(rule: str, params: dict[str, Any]) -> None:
    plan = parse(f"rules:\n  - platform: crm\n    endpoint: /webhooks/*\n    {rule}\n")
    assert plan.rules[0].platform == "crm" and dict(plan.rules[0].params) == params


@pytest.mark.parametrize("answer", ["ok", "quoted", "json", "ignore_token"])
def test_every_wrong_challenge_answer_is_accepted(answer: str) -> None:
    rule = parse(f"rules: [{{platform: crm, fault: wrong_challenge, answer: {answer}}}]\n")
    assert rule.rules[0].params["answer"] == answer


@pytest.mark.parametrize(
    ("rules", "key", "expected"),
    [
        ("{platform: lazada, fault: slow_ack, ms: 800}", "rules[0].platform", "use platform: crm"),
        ("{platform: '*', fault: unsigned_ok}", "rules[0].platform", "use platform: crm"),
        ("{platform: crm, fault: slow_ack}", "rules[0].ms", "slow_ack needs ms"),
        ("{platform: crm, fault: slow_ack, ms: -1}", "rules[0].ms", "0 to 3600000"),
        ("{platform: crm, fault: slow_ack, ms: fast}", "rules[0].ms", "must be a int"),
        ("{platform: crm, fault: http_status, status: 200}", "rules[0].status", "300 and 599"),
        ("{platform: crm, fault: http_status, status: 600}", "rules[0].status", "300 and 599"),
        ("{platform: crm, fault: http_status}", "rules[0].status", "http_status needs status"),
        (
            "{platform: crm, fault: wrong_challenge, answer: maybe}",
            "rules[0].answer",
            "expected one of ok, quoted, json, ignore_token",
        ),
        ("{platform: crm, fault: wrong_challenge}", "rules[0].answer", "needs answer"),
        ("{platform: crm, fault: ack_body}", "rules[0].text", "ack_body needs text"),
        ("{platform: crm, fault: ack_body, text: 3}", "rules[0].text", "must be a str"),
        ("{platform: crm, fault: redirect_http, ms: 3}", "rules[0].ms", "not a parameter"),
    ],
)
def test_receiver_fault_mistakes_are_located(rules: str, key: str, expected: str) -> None:
    message = refused(f"rules:\n  - {rules}\n")
    assert message.startswith(f"hooks.yaml: {key}: ")
    assert expected in message


def test_an_ack_body_is_bounded() -> None:
    data = {"rules": [{"platform": "crm", "fault": "ack_body", "text": "x" * 70000}]}
    with pytest.raises(UsageError, match=r"rules\[0\]\.text: must be at most 65536"):
        FaultPlan.from_mapping(data, source="hooks.yaml")


# --- mistakes in the sections --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("tls: [dv]", "tls", "must be a mapping of platform to certificate kind"),
        ("tls: {lazda: dv}", "tls.lazda", "expected one of shopee, lazada"),
        ("tls: {lazada: cheap}", "tls.lazada", "expected one of valid, dv, ev"),
        ("tls: {lazada: 3}", "tls.lazada", "got 3"),
        ("emitter: 2s", "emitter", "must be a mapping"),
        ("emitter: {often: 2s}", "emitter.often", "unknown key (expected every, platforms"),
        ("emitter: {every: soon}", "emitter.every", "is not a time span"),
        ("emitter: {every: 0s}", "emitter.every", "from 10ms to 1d"),
        ("emitter: {every: 2d}", "emitter.every", "from 10ms to 1d"),
        ("emitter: {every: true}", "emitter.every", "expected a time span"),
        ("emitter: {platforms: lazada}", "emitter.platforms", "must be a list of some of"),
        ("emitter: {platforms: []}", "emitter.platforms", "must be a list of some of"),
        ("emitter: {platforms: [lazada, amazon]}", "emitter.platforms[1]", "expected one of"),
        ("emitter: {platforms: [zalo, zalo]}", "emitter.platforms[1]", "zalo is listed twice"),
        ("emitter: {compress: 0.5}", "emitter.compress", "from 1 (real time) to 10000000"),
        ("emitter: {compress: .nan}", "emitter.compress", "from 1 (real time)"),
        ("emitter: {compress: fast}", "emitter.compress", "got 'fast'"),
        ("emitter: {compress: 100000000}", "emitter.compress", "to 10000000"),
        ("emitter: {retry_schedule: [1m]}", "emitter.retry_schedule", "must be a mapping"),
        ("emitter: {retry_schedule: {ebay: [1m]}}", "emitter.retry_schedule.ebay", "expected"),
        ("emitter: {retry_schedule: {zalo: 1m}}", "emitter.retry_schedule.zalo", "list of"),
        ("emitter: {retry_schedule: {zalo: [1m, x]}}", "emitter.retry_schedule.zalo[1]", "span"),
        ("emitter: {retry_schedule: {zalo: [-5]}}", "emitter.retry_schedule.zalo[0]", "negative"),
        ("emitter: {retry_schedule: {zalo: [8d]}}", "emitter.retry_schedule.zalo[0]", "7d"),
        ("registrations: [shopee]", "registrations", "must be a mapping of platform"),
        ("registrations: {lazada: {}}", "registrations.lazada", "no webhook registration API"),
        ("registrations: {zalo: {}}", "registrations.zalo", "these do: shopee, tiktok, facebook"),
        ("registrations: {ebay: {}}", "registrations.ebay", "expected one of shopee, tiktok"),
        ("registrations: {shopee: url}", "registrations.shopee", "must be a mapping"),
        ("registrations: {shopee: {url: x}}", "registrations.shopee.url", "unknown field"),
        (
            "registrations: {shopee: {callback_url: crm.example.vn}}",
            "registrations.shopee.callback_url",
            "http:// or https:// URL, or null",
        ),
        (
            "registrations: {shopee: {push_config_on_list: [10, x]}}",
            "registrations.shopee.push_config_on_list",
            "whole numbers",
        ),
        (
            "registrations: {shopee: {live_push_status: ''}}",
            "registrations.shopee.live_push_status",
            "a line of text",
        ),
        (
            "registrations: {facebook: {subscribed_fields: messages}}",
            "registrations.facebook.subscribed_fields",
            "list of names",
        ),
        (
            "registrations: {tiktok: {address: 3}}",
            "registrations.tiktok.address",
            "http:// or https:// URL",
        ),
        ("lost_pushes: 7", "lost_pushes", "must be a mapping"),
        ("lost_pushes: {lazada: 3}", "lost_pushes.lazada", "Lazada has no lost-push API"),
        ("lost_pushes: {ebay: 3}", "lost_pushes.ebay", "expected one of shopee"),
        ("lost_pushes: {shopee: -1}", "lost_pushes.shopee", "from 0 to 10000"),
        ("lost_pushes: {shopee: 10001}", "lost_pushes.shopee", "from 0 to 10000"),
        ("lost_pushes: {shopee: yes}", "lost_pushes.shopee", "whole number"),
        ("webhooks: {}", "webhooks", "unknown key (expected seed, rules, tokens, limits, tls"),
    ],
)
def test_section_mistakes_are_located(text: str, key: str, expected: str) -> None:
    message = refused(text + "\n")
    assert message.startswith(f"hooks.yaml: {key}: "), message
    assert expected in message, message


def test_a_mistake_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("emitter:\n  compress: 0\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"plan\.yaml: emitter\.compress: must be a number"):
        load_fault_plan(path)


def test_registration_fields_are_declared_by_the_platforms() -> None:
    # The plan accepts what each platform's API reports: nothing is named in faults.py.
    with_api = {
        name: dict(hooks.registration_fields)
        for name in NAMES
        if (hooks := sim_platform(name).webhooks) is not None and hooks.registration_fields
    }
    assert set(with_api) == {"shopee", "tiktok", "facebook"}
    assert with_api["shopee"]["callback_url"] == "url"
    assert with_api["facebook"]["subscribed_fields"] == "strings"
