"""The fault plan: every kind applied deterministically, and plan validation."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from nfdoctor.errors import UsageError
from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.faults import FaultPlan, load_fault_plan
from nfdoctor.simulator.state import SimulatorState
from tests.simulator import NOW, FakeClock, call


def plan(*rules: dict[str, Any], seed: int = 1) -> FaultPlan:
    return FaultPlan.from_mapping({"seed": seed, "rules": list(rules)}, source="test.yaml")


class FakeSleep:
    """Records sleeps instead of taking them."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def build(*rules: dict[str, Any]) -> tuple[Any, SimulatorState, FakeSleep]:
    sleep = FakeSleep()
    app, state = build_simulator(seed=7, faults=plan(*rules), clock=FakeClock(), sleep=sleep)
    return app, state, sleep


def shopee_ping(app: Any, state: SimulatorState, ts: int | None = None) -> Any:
    path = "/api/v2/shop/get_shop_info"
    shop = state.accounts["shopee"][0].account_id
    token = state.current("shopee", shop, "access")
    assert token is not None
    ts = ts or int(NOW.timestamp())
    base = f"{state.shopee_partner_id}{path}{ts}{token.value}{shop}"
    q = {
        "partner_id": state.shopee_partner_id,
        "timestamp": ts,
        "access_token": token.value,
        "shop_id": shop,
        "sign": hmac.new(
            state.shopee_partner_key.encode(), base.encode(), hashlib.sha256
        ).hexdigest(),
    }
    return call(app, "GET", "/shopee" + path, params=q)


def zalo_getoa(app: Any, state: SimulatorState) -> Any:
    token = state.current("zalo", state.accounts["zalo"][0].account_id, "access")
    assert token is not None
    return call(app, "GET", "/zalo/v2.0/oa/getoa", headers={"access_token": token.value})


def test_latency_and_timeout_sleep() -> None:
    app, state, sleep = build(
        {"platform": "shopee", "fault": "latency", "ms": 250},
        {"platform": "shopee", "endpoint": "/api/v2/shop/*", "fault": "timeout", "seconds": 30},
    )
    assert shopee_ping(app, state).json()["error"] == ""
    assert sleep.calls == [0.25, 30.0]


def test_http_429_with_retry_after_in_platform_envelope() -> None:
    app, state, _ = build({"platform": "shopee", "fault": "http_429", "retry_after": 7})
    r = shopee_ping(app, state)
    assert (r.status_code, r.headers["retry-after"]) == (429, "7")
    assert r.json()["error"] == "error_rate_limit"


def test_http_5xx() -> None:
    app, state, _ = build({"platform": "zalo", "fault": "http_5xx", "status": 502})
    assert zalo_getoa(app, state).status_code == 502


def test_connection_reset_surfaces_as_an_error() -> None:
    app, state, _ = build({"platform": "shopee", "fault": "connection_reset"})
    with pytest.raises(ConnectionResetError):
        shopee_ping(app, state)


def test_malformed_body_is_truncated_json() -> None:
    app, state, _ = build({"platform": "shopee", "fault": "malformed_body"})
    r = shopee_ping(app, state)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)


def test_html_error_page() -> None:
    app, state, _ = build({"platform": "zalo", "fault": "html_error_page"})
    r = zalo_getoa(app, state)
    assert r.status_code == 502 and r.headers["content-type"].startswith("text/html")
    assert "<html>" in r.text


def test_expired_and_revoked_token() -> None:
    app, state, _ = build(
        {"platform": "zalo", "fault": "expired_token"},
        {"platform": "shopee", "fault": "revoked_token"},
    )
    assert zalo_getoa(app, state).json()["error"] == -220
    assert shopee_ping(app, state).json()["error"] == "common.error_auth"


def test_clock_skew_shifts_date_and_timestamp_window() -> None:
    app, state, _ = build({"platform": "shopee", "fault": "clock_skew", "seconds": 600})
    r = shopee_ping(app, state)
    assert r.headers["date"] == "Thu, 26 Nov 2026 03:10:00 GMT"
    assert r.json()["message"] == "Timestamp is expired."
    assert shopee_ping(app, state, ts=int(NOW.timestamp()) + 600).json()["error"] == ""


def test_schema_drift_renames_a_field() -> None:
    app, state, _ = build(
        {"platform": "shopee", "fault": "schema_drift", "field": "shop_name", "rename_to": "name"}
    )
    body = shopee_ping(app, state).json()
    assert "shop_name" not in body and body["name"] == "Thời Trang Hà My"


def test_times_and_probability_are_deterministic() -> None:
    app, state, _ = build({"platform": "zalo", "fault": "http_5xx", "times": 2})
    assert [zalo_getoa(app, state).status_code for _ in range(4)] == [503, 503, 200, 200]

    def run() -> list[int]:
        app, state, _ = build({"platform": "zalo", "fault": "http_429", "probability": 0.5})
        return [zalo_getoa(app, state).status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert 0 < first.count(429) < 20


def test_rules_match_platform_and_endpoint_only() -> None:
    app, state, _ = build(
        {"platform": "shopee", "endpoint": "/api/v2/order/*", "fault": "http_5xx"}
    )
    assert shopee_ping(app, state).status_code == 200
    assert zalo_getoa(app, state).status_code == 200


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"rules": [{"platform": "shopee", "fault": "explode"}]}, "rules[0].fault"),
        ({"rules": [{"platform": "amazon", "fault": "latency", "ms": 1}]}, "rules[0].platform"),
        ({"rules": [{"fault": "latency"}]}, "rules[0].ms"),
        ({"rules": [{"fault": "latency", "ms": 1, "probability": 2}]}, "rules[0].probability"),
        ({"rules": [{"fault": "http_429", "times": 0}]}, "rules[0].times"),
        ({"rules": [{"fault": "http_5xx", "status": 404}]}, "rules[0].status"),
        ({"rules": [{"fault": "http_429", "ms": 3}]}, "rules[0].ms"),
        ({"seed": "x"}, "seed"),
        ({"rulez": []}, "rulez"),
    ],
)
def test_plan_validation_names_file_and_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(UsageError) as info:
        FaultPlan.from_mapping(data, source="faults.yaml")
    assert str(info.value).startswith(f"faults.yaml: {key}:")


def test_load_from_yaml_file(tmp_path: Path) -> None:
    good = tmp_path / "plan.yaml"
    good.write_text("seed: 3\nrules:\n  - platform: tiktok\n    fault: http_429\n")
    loaded = load_fault_plan(good)
    assert loaded.seed == 3 and loaded.rules[0].kind == "http_429"
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [\n")
    with pytest.raises(UsageError, match=r"bad\.yaml"):
        load_fault_plan(bad)
    with pytest.raises(UsageError, match=r"missing\.yaml"):
        load_fault_plan(tmp_path / "missing.yaml")


def test_example_plan_in_the_repository_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "faults-demo.yaml"
    assert load_fault_plan(example).rules


# --- limits: a platform's numeric knobs, set from the plan ---------------------------------


def test_plan_limits_set_the_platforms_knobs(tmp_path: Path) -> None:
    from nfdoctor.simulator.app import build_simulator

    plan = tmp_path / "limits.yaml"
    plan.write_text(
        "limits:\n  facebook:\n    hourly_allowance: 100000\n  zalo:\n    limit_per_minute: 7\n",
        encoding="utf-8",
    )
    _, state = build_simulator(seed=7, faults=plan, orders_per_shop=0)
    assert state.facebook_hourly_allowance == 100000
    assert state.zalo_limit_per_minute == 7
    _, default = build_simulator(seed=7, orders_per_shop=0)
    assert default.facebook_hourly_allowance == 200


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ("facebok:\n    hourly_allowance: 1", "limits.facebok: expected one of shopee, lazada"),
        ("facebook:\n    app_secret: 1", "limits.facebook.app_secret: not a limit of facebook"),
        ("facebook:\n    hourly_allowance: 0", "must be a whole number from 1 to 1000000000"),
        ("facebook:\n    hourly_allowance: true", "must be a whole number from 1"),
        ("[1]", "limits: must be a mapping of platform to settings"),
    ],
)
def test_plan_limits_refuse_what_is_not_a_knob(limits: str, message: str) -> None:
    import yaml

    data = yaml.safe_load(f"limits:\n  {limits}\n")
    with pytest.raises(UsageError, match=message):
        FaultPlan.from_mapping(data, source="plan.yaml")
