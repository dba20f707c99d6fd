"""Fault plans name shops by position (`shop: N`) and age tokens at start (`tokens:`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from nfdoctor.errors import UsageError
from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.faults import FaultPlan

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)


def plan(data: dict[str, object]) -> FaultPlan:
    return FaultPlan.from_mapping(data, source="plan.yaml")


def build(data: dict[str, object], shops: int = 2):  # type: ignore[no-untyped-def]
    return build_simulator(
        7,
        plan(data),
        lambda: NOW,
        accounts_per_platform=shops,
        orders_per_shop=3,
        conversations_per_account=2,
    )


def test_tokens_section_ages_the_nth_accounts_tokens() -> None:
    _, state = build(
        {
            "tokens": [
                {"platform": "zalo", "shop": 2, "access_expires_in": "-3h"},
                {"platform": "shopee", "shop": 1, "refresh_expires_in": "5d"},
            ]
        }
    )
    second_oa = state.accounts["zalo"][1].account_id
    first_oa = state.accounts["zalo"][0].account_id
    zalo_access = state.current("zalo", second_oa, "access")
    assert zalo_access is not None and zalo_access.expires_at == NOW - timedelta(hours=3)
    untouched = state.current("zalo", first_oa, "access")
    assert untouched is not None and untouched.expires_at == NOW + timedelta(hours=25)
    shop = state.accounts["shopee"][0].account_id
    refresh = state.current("shopee", shop, "refresh")
    assert refresh is not None and refresh.expires_at == NOW + timedelta(days=5)


def test_shop_index_becomes_that_accounts_id() -> None:
    fault_plan = plan({"rules": [{"platform": "lazada", "shop": 2, "fault": "connection_reset"}]})
    _, state = build_simulator(
        7,
        fault_plan,
        lambda: NOW,
        accounts_per_platform=2,
        orders_per_shop=3,
        conversations_per_account=2,
    )
    # build_simulator resolved the index against the ids of the state it built
    assert fault_plan.rules[0].account == state.accounts["lazada"][1].account_id


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tokens": [{"platform": "zalo", "shop": 3, "access_expires_in": "1h"}]}, "has 2 account"),
        ({"rules": [{"platform": "zalo", "shop": 5, "fault": "http_5xx"}]}, "raise --shops"),
    ],
)
def test_a_shop_beyond_the_simulators_accounts_is_a_usage_error(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        build(data)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"tokens": {"platform": "zalo"}}, "tokens: must be a list"),
        ({"tokens": [{"platform": "zalo", "shop": 1}]}, "tokens[0]: set access_expires_in"),
        (
            {"tokens": [{"platform": "zalo", "shop": 0, "access_expires_in": "1h"}]},
            "tokens[0].shop",
        ),
        (
            {"tokens": [{"platform": "myshop", "shop": 1, "access_expires_in": "1h"}]},
            "tokens[0].platform",
        ),
        ({"tokens": [{"platform": "zalo", "shop": 1, "access_expires_in": "soon"}]}, "soon"),
        (
            {"tokens": [{"platform": "facebook", "shop": 1, "refresh_expires_in": "1d"}]},
            "no refresh token",
        ),
        ({"tokens": [{"platform": "zalo", "shop": 1, "acces_expires_in": "1h"}]}, "unknown key"),
        ({"rules": [{"platform": "*", "shop": 1, "fault": "http_5xx"}]}, "needs one platform"),
        (
            {"rules": [{"platform": "zalo", "shop": 1, "account": "1", "fault": "http_5xx"}]},
            "not together with account",
        ),
    ],
)
def test_bad_plan_entries_are_located(data: dict[str, object], where: str) -> None:
    with pytest.raises(UsageError) as caught:
        plan(data)
    assert caught.value.message.startswith("plan.yaml: ")
    assert where in caught.value.message


def test_the_demo_scenario_loads(tmp_path: Path) -> None:
    scenario = Path(__file__).resolve().parents[2] / "examples" / "demo-scenario.yaml"
    _, state = build_simulator(7, scenario, lambda: NOW, accounts_per_platform=2)
    oa = state.accounts["zalo"][1].account_id
    token = state.current("zalo", oa, "access")
    assert token is not None and token.expires_at is not None and token.expires_at < NOW


def test_a_token_fault_on_the_crm_is_refused() -> None:
    with pytest.raises(UsageError, match=r"rules\[0\]\.fault: revoked_token .* CRM takes none"):
        plan({"rules": [{"platform": "crm", "fault": "revoked_token"}]})
