"""The CRM side: status, webhook receivers verifying each platform's signature, AI endpoint."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.crm import CrmSettings
from nfdoctor.simulator.state import SimulatorState
from tests.simulator import FakeClock, call

BODY = json.dumps({"shop_id": 1, "code": 3, "timestamp": 1764126000, "data": {"text": "chào"}})


def hexmac(key: str, msg: bytes) -> str:
    return hmac.new(key.encode(), msg, hashlib.sha256).hexdigest()


@pytest.fixture
def sim() -> tuple[Any, SimulatorState]:
    app, state = build_simulator(
        seed=21, clock=FakeClock(), crm_settings=CrmSettings(ai_latency_ms=0)
    )
    return app, state


def post(app: Any, platform: str, body: bytes, headers: dict[str, str]) -> int:
    return call(app, "POST", f"/crm/webhooks/{platform}", content=body, headers=headers).status_code


def signatures(state: SimulatorState, body: bytes) -> dict[str, dict[str, str]]:
    url = "http://sim.test/crm/webhooks/shopee"
    ts = str(json.loads(body)["timestamp"])
    oa_secret = state.accounts["zalo"][0].extra["oa_secret"]
    zalo = hashlib.sha256(state.zalo_app_id.encode() + body + ts.encode() + oa_secret.encode())
    return {
        "shopee": {"Authorization": hexmac(state.shopee_partner_key, url.encode() + b"|" + body)},
        "lazada": {
            "Authorization": hexmac(state.lazada_app_secret, state.lazada_app_key.encode() + body)
        },
        "tiktok": {
            "Authorization": hexmac(state.tiktok_app_secret, state.tiktok_app_key.encode() + body)
        },
        "facebook": {"X-Hub-Signature-256": "sha256=" + hexmac(state.facebook_app_secret, body)},
        "zalo": {"X-ZEvent-Signature": "mac=" + zalo.hexdigest()},
    }


@pytest.mark.parametrize("platform", ["shopee", "lazada", "tiktok", "facebook", "zalo"])
def test_webhook_signatures(sim: Any, platform: str) -> None:
    app, state = sim
    body = BODY.encode()
    headers = signatures(state, body)[platform]
    assert post(app, platform, body, headers) == 200
    altered = body.replace(b"chao", b"chao").replace(b'"code": 3', b'"code":3')
    assert post(app, platform, altered, headers) == 401
    upper = {
        k: v.upper() if k.lower() == "authorization" else v.replace("=", "=X", 1)
        for k, v in headers.items()
    }
    assert post(app, platform, body, upper) == 401
    assert post(app, platform, body, {}) == 401


def test_facebook_handshake(sim: Any) -> None:
    app, state = sim
    ok = call(
        app,
        "GET",
        "/crm/webhooks/facebook",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": state.facebook_verify_token,
            "hub.challenge": "1158201444",
        },
    )
    assert (ok.status_code, ok.text) == (200, "1158201444")
    bad = call(
        app,
        "GET",
        "/crm/webhooks/facebook",
        params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"},
    )
    assert bad.status_code == 403


def test_status_and_ai(sim: Any) -> None:
    app, state = sim
    status = call(app, "GET", "/crm/api/status").json()
    assert status["status"] == "ok" and "database" in status["components"]
    denied = call(app, "POST", "/crm/api/ai/reply", json={"message": "hi"})
    assert denied.status_code == 401
    r = call(
        app,
        "POST",
        "/crm/api/ai/reply",
        json={"message": "Còn hàng không?"},
        headers={"Authorization": f"Bearer {state.crm_api_key}"},
    )
    assert r.status_code == 200 and r.json()["reply"]
    post(app, "lazada", b"{}", {"Authorization": "bad"})
    assert (
        call(app, "GET", "/crm/api/status").json()["components"]["webhooks"]["status"] == "degraded"
    )
