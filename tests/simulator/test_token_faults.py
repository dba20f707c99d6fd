"""``drop_after_issue``: the platform issued new tokens (spending the old refresh token or
the code) and the client never got them; and ``state.token_events``, the record of every
token request a platform judged."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from nfdoctor.errors import UsageError
from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.facebook import FACEBOOK
from nfdoctor.simulator.faults import FaultPlan
from nfdoctor.simulator.lazada import LAZADA
from nfdoctor.simulator.server import SimulatorServer
from nfdoctor.simulator.shopee import SHOPEE
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.simulator.tiktok import TIKTOK
from nfdoctor.simulator.zalo import ZALO
from tests.simulator import FakeClock, call
from tests.simulator.browser import consent

CALLBACK = "http://127.0.0.1:8976/callback"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 Appendix B (V6)
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def build(*rules: dict[str, Any], shops: int = 1) -> tuple[Any, SimulatorState]:
    plan = FaultPlan.from_mapping({"seed": 3, "rules": list(rules)}, source="test.yaml")
    return build_simulator(
        seed=9,
        faults=plan,
        clock=FakeClock(),
        accounts_per_platform=shops,
        orders_per_shop=2,
        conversations_per_account=2,
    )


def hmac_hex(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def refresh_token(state: SimulatorState, platform: str, index: int = 0) -> str:
    token = state.current(platform, state.accounts[platform][index].account_id, "refresh")
    assert token is not None
    return token.value


# ---- each platform's refresh call, signed by hand -------------------------------------------


def shopee_refresh(app: Any, state: SimulatorState, token: str, index: int = 0) -> Any:
    settings = SHOPEE.settings(state)
    path = "/api/v2/auth/access_token/get"
    ts = int(state.clock().timestamp())
    query = {
        "partner_id": settings.partner_id,
        "timestamp": ts,
        "sign": hmac_hex(settings.partner_key, f"{settings.partner_id}{path}{ts}"),
    }
    shop = int(state.accounts["shopee"][index].account_id)
    body = {"refresh_token": token, "partner_id": settings.partner_id, "shop_id": shop}
    return call(app, "POST", "/shopee" + path, params=query, json=body)


def lazada_refresh(app: Any, state: SimulatorState, token: str) -> Any:
    settings = LAZADA.settings(state)
    params = {
        "app_key": settings.app_key,
        "sign_method": "sha256",
        "timestamp": str(int(state.clock().timestamp()) * 1000),
        "refresh_token": token,
    }
    base = "/auth/token/refresh" + "".join(f"{k}{params[k]}" for k in sorted(params))
    params["sign"] = hmac_hex(settings.app_secret, base).upper()
    return call(app, "GET", "/lazada-auth/rest/auth/token/refresh", params=params)


def tiktok_refresh(app: Any, state: SimulatorState, token: str) -> Any:
    settings = TIKTOK.settings(state)
    query = {
        "app_key": settings.app_key,
        "app_secret": settings.app_secret,
        "refresh_token": token,
        "grant_type": "refresh_token",
    }
    return call(app, "GET", "/tiktok-auth/api/v2/token/refresh", params=query)


def facebook_exchange(app: Any, state: SimulatorState, token: str) -> Any:
    settings = FACEBOOK.settings(state)
    query = {
        "grant_type": "fb_exchange_token",
        "client_id": settings.app_id,
        "client_secret": settings.app_secret,
        "fb_exchange_token": token,
    }
    return call(app, "GET", f"/facebook/{settings.version}/oauth/access_token", params=query)


def zalo_token(app: Any, state: SimulatorState, form: dict[str, str]) -> Any:
    settings = ZALO.settings(state)
    return call(
        app,
        "POST",
        "/zalo-oauth/v4/oa/access_token",
        content=urlencode({"app_id": settings.app_id, **form}),
        headers={
            "secret_key": settings.secret_key,
            "content-type": "application/x-www-form-urlencoded",
        },
    )


def zalo_refresh(app: Any, state: SimulatorState, token: str) -> Any:
    return zalo_token(app, state, {"refresh_token": token, "grant_type": "refresh_token"})


# ---- the fault ---------------------------------------------------------------------------


def test_the_pair_is_issued_the_old_refresh_token_spent_and_the_answer_lost() -> None:
    app, state = build({"platform": "shopee", "fault": "drop_after_issue"})
    shop = state.accounts["shopee"][0].account_id
    old = refresh_token(state, "shopee")
    with pytest.raises(ConnectionResetError):
        shopee_refresh(app, state, old)
    [event] = state.token_events
    assert (event.platform, event.account, event.kind, event.outcome) == (
        "shopee",
        shop,
        "refresh",
        "issued",
    )
    assert event.delivered is False and event.spent == old
    assert state.check("shopee", old, "refresh")[0] == "used"
    current = state.current("shopee", shop, "refresh")
    assert current is not None and current.value == event.refresh_token != old
    # The client, holding only the old token, is refused: the shop needs the lost pair.
    retry = shopee_refresh(app, state, old)
    assert retry.json()["error"] == "error_auth"
    assert state.token_event_count("shopee", "refresh") == 2
    assert state.token_event_count("shopee", "refresh", outcome="issued") == 1
    assert state.token_events[-1].delivered  # refusals are answered, never dropped


def test_a_code_exchange_dropped_spends_the_code() -> None:
    app, state = build(
        {"platform": "zalo", "endpoint": "/v4/oa/access_token", "fault": "drop_after_issue"}
    )
    oa = state.accounts["zalo"][0].account_id
    previous = refresh_token(state, "zalo")
    page = call(
        app,
        "GET",
        "/zalo-oauth/v4/oa/permission",
        params={
            "app_id": ZALO.settings(state).app_id,
            "redirect_uri": CALLBACK,
            "code_challenge": CHALLENGE,
            "state": "s",
        },
    )
    _, query = consent(app, page, account=oa)
    form = {"code": query["code"], "grant_type": "authorization_code", "code_verifier": VERIFIER}
    with pytest.raises(ConnectionResetError):
        zalo_token(app, state, form)
    [event] = state.token_events
    assert (event.kind, event.outcome, event.delivered) == ("exchange", "issued", False)
    assert state.auth_codes[query["code"]].used
    again = zalo_token(app, state, form).json()
    assert again["error"] == -14005 and again["error_reason"] == "code was used"
    # Zalo's refresh tokens are single use: the previous grant's is revoked too.
    assert zalo_refresh(app, state, previous).json()["error"] == -14014
    current = state.current("zalo", oa, "refresh")
    assert current is not None and current.value == event.refresh_token


def test_only_issues_use_up_the_rule() -> None:
    app, state = build({"platform": "zalo", "fault": "drop_after_issue", "times": 1})
    oa = state.accounts["zalo"][0].account_id
    access = state.current("zalo", oa, "access")
    assert access is not None
    # Not a token endpoint, then a refused refresh: answered, and the rule not spent.
    assert (
        call(app, "GET", "/zalo/v2.0/oa/getoa", headers={"access_token": access.value}).json()[
            "error"
        ]
        == 0
    )
    assert zalo_refresh(app, state, "not-a-token").json()["error"] == -14014
    assert state.fault_plan is not None and state.fault_plan.fired == [0]
    with pytest.raises(ConnectionResetError):
        zalo_refresh(app, state, refresh_token(state, "zalo"))
    answered = zalo_refresh(app, state, refresh_token(state, "zalo"))
    assert answered.json()["expires_in"] == "90000"
    assert state.fault_plan.fired == [1]
    assert [(e.outcome, e.delivered) for e in state.token_events] == [
        ("refused", True),
        ("issued", False),
        ("issued", True),
    ]


def test_an_account_rule_drops_only_that_sellers_answer() -> None:
    probe = SimulatorState(
        9, accounts_per_platform=2, orders_per_shop=2, conversations_per_account=2
    )
    second = probe.accounts["lazada"][1].account_id
    app, state = build(
        {"platform": "lazada", "account": second, "fault": "drop_after_issue"}, shops=2
    )
    assert lazada_refresh(app, state, refresh_token(state, "lazada", 0)).json()["code"] == "0"
    with pytest.raises(ConnectionResetError):
        lazada_refresh(app, state, refresh_token(state, "lazada", 1))
    assert [(e.account, e.delivered) for e in state.token_events] == [
        (state.accounts["lazada"][0].account_id, True),
        (second, False),
    ]


def test_over_loopback_the_client_sees_the_connection_drop() -> None:
    plan = FaultPlan.from_mapping(
        {"rules": [{"platform": "tiktok", "fault": "drop_after_issue"}]}, source="test.yaml"
    )
    app, state = build_simulator(
        seed=9, faults=plan, orders_per_shop=2, conversations_per_account=2
    )
    server = SimulatorServer(app, port=0)
    server.start_in_thread()
    try:
        settings = TIKTOK.settings(state)
        old = refresh_token(state, "tiktok")
        query = {
            "app_key": settings.app_key,
            "app_secret": settings.app_secret,
            "refresh_token": old,
            "grant_type": "refresh_token",
        }
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            httpx.get(
                server.url + "/tiktok-auth/api/v2/token/refresh",
                params=query,
                timeout=5,
                trust_env=False,
            )
    finally:
        server.stop()
    [event] = state.token_events
    assert event.outcome == "issued" and not event.delivered
    assert state.check("tiktok", old, "refresh")[0] == "used"


@pytest.mark.parametrize(
    ("rule", "key", "message"),
    [
        ({"platform": "crm", "fault": "drop_after_issue"}, "rules[0].fault", "the CRM issues none"),
        (
            {"platform": "shopee", "fault": "drop_after_issue", "ms": 5},
            "rules[0].ms",
            "not a parameter of drop_after_issue",
        ),
    ],
)
def test_the_rule_is_validated(rule: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(UsageError, match=rf"test\.yaml: {re.escape(key)}: .*{message}"):
        FaultPlan.from_mapping({"rules": [rule]}, source="test.yaml")


# ---- the record --------------------------------------------------------------------------


REFRESHERS = {
    "shopee": (shopee_refresh, "error_auth"),
    "lazada": (lazada_refresh, "IllegalRefreshToken"),
    "tiktok": (tiktok_refresh, "36009004"),
    "facebook": (facebook_exchange, "190/467"),
    "zalo": (zalo_refresh, "-14014"),
}


@pytest.mark.parametrize("platform", list(REFRESHERS))
def test_every_refresh_is_recorded_with_its_outcome(platform: str) -> None:
    app, state = build()
    refresh, error = REFRESHERS[platform]
    refused = refresh(app, state, "never-issued-token")
    assert refused.status_code in (200, 400, 403)
    [event] = state.token_events
    assert (event.platform, event.kind, event.outcome, event.error) == (
        platform,
        "refresh",
        "refused",
        error,
    )
    assert event.access_token is None and event.at == state.clock()


def test_slow_answer_rotates_first_then_holds_the_answer() -> None:
    """``slow_answer``: the refresh is done (the old token spent) before the answer is held,
    so a client that gives up while waiting has lost the new pair; ``latency`` holds the
    request before anything is done, so the old token still works."""
    slept: list[float] = []
    order: list[str] = []

    async def sleep(seconds: float) -> None:
        order.append(f"slept {seconds}")
        slept.append(seconds)

    plan = FaultPlan.from_mapping(
        {
            "rules": [
                {
                    "platform": "zalo",
                    "endpoint": "/v4/oa/access_token",
                    "fault": "latency",
                    "ms": 100,
                },
                {
                    "platform": "zalo",
                    "endpoint": "/v4/oa/access_token",
                    "fault": "slow_answer",
                    "ms": 250,
                },
            ]
        },
        source="test.yaml",
    )
    app, state = build_simulator(
        seed=9,
        faults=plan,
        clock=FakeClock(),
        orders_per_shop=2,
        conversations_per_account=2,
        sleep=sleep,
    )
    old = refresh_token(state, "zalo")
    original_rotate = state.rotate

    def rotate(*args: Any, **kwargs: Any) -> Any:
        order.append("rotated")
        return original_rotate(*args, **kwargs)

    state.rotate = rotate  # type: ignore[method-assign]
    answer = zalo_refresh(app, state, old)
    assert answer.status_code == 200 and "access_token" in answer.json()
    assert order == ["slept 0.1", "rotated", "slept 0.25"]
    assert state.check("zalo", old, "refresh")[0] == "used"
