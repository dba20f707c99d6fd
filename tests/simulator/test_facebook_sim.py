"""The Facebook Graph simulator (platforms.md §5)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import urlsplit

import pytest

from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.state import SimulatorState
from tests.simulator import FakeClock, call


@pytest.fixture
def sim() -> tuple[Any, SimulatorState, FakeClock]:
    clock = FakeClock()
    app, state = build_simulator(seed=9, clock=clock)
    return app, state, clock


def page_token(state: SimulatorState) -> str:
    page = state.accounts["facebook"][0].account_id
    token = state.current("facebook", page, "access")
    assert token is not None and token.expires_at is None  # a Page token never expires
    return token.value


def proof(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def test_me_with_page_token_and_proof(sim: Any) -> None:
    app, state, _ = sim
    token = page_token(state)
    params = {
        "fields": "id,name",
        "access_token": token,
        "appsecret_proof": proof(state.facebook_app_secret, token),
    }
    r = call(app, "GET", "/facebook/v21.0/me", params=params)
    page = state.accounts["facebook"][0]
    assert r.status_code == 200
    assert r.json() == {"id": page.account_id, "name": page.name}
    bearer = call(app, "GET", "/facebook/v21.0/me", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 200


def test_bad_tokens_and_proofs(sim: Any) -> None:
    app, state, _ = sim
    token = page_token(state)
    r = call(app, "GET", "/facebook/v21.0/me", params={"access_token": "EAAbogus"})
    err = r.json()["error"]
    assert (r.status_code, err["code"], err["error_subcode"]) == (400, 190, 467)
    assert "fbtrace_id" in err
    wrong = call(
        app,
        "GET",
        "/facebook/v21.0/me",
        params={
            "access_token": token,
            "appsecret_proof": proof(state.facebook_app_secret, token).upper(),
        },
    ).json()["error"]
    assert (wrong["code"], wrong["type"]) == (100, "GraphMethodException")
    state.require_appsecret_proof["facebook"] = True
    missing = call(app, "GET", "/facebook/v21.0/me", params={"access_token": token}).json()
    assert (
        missing["error"]["message"]
        == "API calls from the server require an appsecret_proof argument"
    )
    state.revoke_all("facebook")
    state.require_appsecret_proof["facebook"] = False
    revoked = call(app, "GET", "/facebook/v21.0/me", params={"access_token": token}).json()
    assert (revoked["error"]["code"], revoked["error"]["error_subcode"]) == (190, 460)


def test_debug_token_needs_app_token(sim: Any) -> None:
    app, state, _ = sim
    token = page_token(state)
    r = call(
        app,
        "GET",
        "/facebook/v21.0/debug_token",
        params={"input_token": token, "access_token": token},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == 100
    app_token = f"{state.facebook_app_id}|{state.facebook_app_secret}"
    data = call(
        app,
        "GET",
        "/facebook/v21.0/debug_token",
        params={"input_token": token, "access_token": app_token},
    ).json()["data"]
    assert data["is_valid"] is True and data["type"] == "PAGE" and data["expires_at"] == 0
    bad = call(
        app,
        "GET",
        "/facebook/v21.0/debug_token",
        params={"input_token": "EAAx", "access_token": app_token},
    ).json()["data"]
    assert bad["is_valid"] is False and bad["error"]["code"] == 190


def test_conversations_and_messages_cursor_paging(sim: Any) -> None:
    app, state, _ = sim
    token = page_token(state)
    page = state.accounts["facebook"][0]
    url = f"/facebook/v21.0/{page.account_id}/conversations"
    params: dict[str, str] = {"platform": "messenger", "limit": "15", "access_token": token}
    ids: list[str] = []
    while True:
        body = call(app, "GET", url, params=params).json()
        ids += [c["id"] for c in body["data"]]
        nxt = body.get("paging", {}).get("next")
        if not nxt:
            break
        parts = urlsplit(nxt)
        assert parts.path == url
        params = dict(p.split("=", 1) for p in parts.query.split("&"))  # type: ignore[misc]
    assert len(ids) == len(set(ids)) == 40
    conv = page.conversations[0]
    msgs = call(
        app,
        "GET",
        f"/facebook/v21.0/{conv.conversation_id}/messages",
        params={"access_token": token, "fields": "id,created_time,message"},
    ).json()["data"]
    assert [m["id"] for m in msgs] == [
        m.message_id for m in reversed(conv.messages)
    ]  # newest first


def test_usage_header_only_above_threshold(sim: Any) -> None:
    app, state, _ = sim
    token = page_token(state)
    state.facebook_hourly_allowance = 1000
    state.facebook_usage_threshold_pct = 50
    quiet = call(app, "GET", "/facebook/v21.0/me", params={"access_token": token})
    assert "x-business-use-case-usage" not in quiet.headers
    state.facebook_hourly_allowance = 2
    busy = call(app, "GET", "/facebook/v21.0/me", params={"access_token": token})
    assert "x-business-use-case-usage" in busy.headers
