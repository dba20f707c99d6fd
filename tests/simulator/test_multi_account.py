"""Several accounts per platform: each served with its own tokens, data and fault rules.

Requests are signed by hand here, from platforms.md, never with ``nfdoctor.platforms``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from nfdoctor.cli.simulator_cmd import simulator
from nfdoctor.config.loader import load_config
from nfdoctor.errors import UsageError
from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.faults import FaultPlan
from nfdoctor.simulator.server import tokens_document, write_config
from nfdoctor.simulator.state import PLATFORMS, SimulatorState
from tests.simulator import NOW, FakeClock, call

SMALL = {"orders_per_shop": 12, "conversations_per_account": 4}


# ---- independent signing helpers (platforms.md §2.2, §3.2, §4.2, §5.4) -------------------


def _hmac(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def current(state: SimulatorState, platform: str, account_id: str, kind: str = "access") -> str:
    token = state.current(platform, account_id, kind)  # type: ignore[arg-type]
    assert token is not None
    return token.value


def shopee_get(
    app: Any,
    state: SimulatorState,
    path: str,
    *,
    shop: str,
    token: str,
    at: datetime = NOW,
    **extra: Any,
) -> dict[str, Any]:
    ts = int(at.timestamp())
    base = f"{state.shopee_partner_id}{path}{ts}{token}{shop}"
    params = {
        "partner_id": state.shopee_partner_id,
        "timestamp": ts,
        "access_token": token,
        "shop_id": shop,
        "sign": _hmac(state.shopee_partner_key, base.encode()),
        **extra,
    }
    body: dict[str, Any] = call(app, "GET", "/shopee" + path, params=params).json()
    return body


def shopee_refresh(app: Any, state: SimulatorState, *, shop: str, refresh: str) -> Any:
    path = "/api/v2/auth/access_token/get"
    ts = int(NOW.timestamp())
    params = {
        "partner_id": state.shopee_partner_id,
        "timestamp": ts,
        "sign": _hmac(state.shopee_partner_key, f"{state.shopee_partner_id}{path}{ts}".encode()),
    }
    return call(
        app,
        "POST",
        "/shopee" + path,
        params=params,
        json={"refresh_token": refresh, "shop_id": int(shop)},
    ).json()


def lazada_call(
    app: Any, state: SimulatorState, api_path: str, token: str, *, form: bool = False
) -> dict[str, Any]:
    params = {
        "app_key": state.lazada_app_key,
        "sign_method": "sha256",
        "timestamp": str(int(NOW.timestamp() * 1000)),
        "access_token": token,
    }
    base = api_path + "".join(f"{k}{params[k]}" for k in sorted(params))
    params["sign"] = _hmac(state.lazada_app_secret, base.encode()).upper()
    url = "/lazada/rest" + api_path
    sent = {"data": params} if form else {"params": params}
    body: dict[str, Any] = call(app, "POST" if form else "GET", url, **sent).json()
    return body


def tiktok_call(
    app: Any,
    state: SimulatorState,
    method: str,
    path: str,
    token: str,
    *,
    extra: dict[str, str] | None = None,
    body: bytes = b"",
) -> Any:
    params = {"app_key": state.tiktok_app_key, "timestamp": str(int(NOW.timestamp()))}
    params.update(extra or {})
    inner = path + "".join(f"{k}{params[k]}" for k in sorted(params))
    secret = state.tiktok_app_secret
    params["sign"] = _hmac(secret, secret.encode() + inner.encode() + body + secret.encode())
    headers = {"x-tts-access-token": token, "content-type": "application/json"}
    return call(app, method, "/tiktok" + path, params=params, content=body, headers=headers)


def graph_get(app: Any, state: SimulatorState, path: str, token: str) -> Any:
    params = {
        "access_token": token,
        "appsecret_proof": _hmac(state.facebook_app_secret, token.encode()),
    }
    return call(app, "GET", f"/facebook/{state.facebook_version}{path}", params=params)


def zalo_get(app: Any, path: str, token: str, data: dict[str, Any] | None = None) -> Any:
    params = {"data": json.dumps(data)} if data is not None else None
    return call(app, "GET", "/zalo" + path, params=params, headers={"access_token": token})


# ---- the state ---------------------------------------------------------------------------


def _fingerprint(state: SimulatorState, index: int) -> list[Any]:
    out: list[Any] = []
    for platform in PLATFORMS:
        account = state.accounts[platform][index]
        out.append(
            (
                platform,
                account.account_id,
                account.name,
                sorted(account.extra.items()),
                [dataclasses.astuple(o) for o in account.orders],
                [
                    (c.conversation_id, c.user_name, [dataclasses.astuple(m) for m in c.messages])
                    for c in account.conversations
                ],
                current(state, platform, account.account_id),
            )
        )
    return out


def test_n_accounts_are_distinct_and_deterministic_by_seed() -> None:
    a = SimulatorState(21, FakeClock(), accounts_per_platform=4, **SMALL)
    b = SimulatorState(21, FakeClock(), accounts_per_platform=4, **SMALL)
    other = SimulatorState(22, FakeClock(), accounts_per_platform=4, **SMALL)
    for platform in PLATFORMS:
        accounts = a.accounts[platform]
        assert len(accounts) == 4
        assert len({x.account_id for x in accounts}) == 4
        assert len({x.name for x in accounts}) == 4
        tokens = {current(a, platform, x.account_id) for x in accounts}
        assert len(tokens) == 4  # each account has its own token
        for account in accounts:
            assert account.orders or account.conversations
    assert len({x.extra["cipher"] for x in a.accounts["tiktok"]}) == 4
    assert len({x.extra["oa_secret"] for x in a.accounts["zalo"]}) == 4
    for index in range(4):
        assert _fingerprint(a, index) == _fingerprint(b, index)
    assert _fingerprint(a, 2) != _fingerprint(other, 2)
    # Account k depends on the seed and k only: 3 shops are the first 3 of 5.
    five = SimulatorState(21, FakeClock(), accounts_per_platform=5, **SMALL)
    three = SimulatorState(21, FakeClock(), accounts_per_platform=3, **SMALL)
    for index in range(3):
        assert _fingerprint(three, index) == _fingerprint(five, index)
    # ... and its ids and name do not depend on how much data there is.
    bare = SimulatorState(21, FakeClock(), accounts_per_platform=3, orders_per_shop=0)
    for platform in PLATFORMS:
        assert [(x.account_id, x.name, x.extra) for x in bare.accounts[platform]] == [
            (x.account_id, x.name, x.extra) for x in three.accounts[platform]
        ]


def test_account_zero_is_what_it_always_was() -> None:
    # Pinned from the single-account simulator (seed 7, NOW): ids, names, data and tokens.
    pinned = {
        "shopee": ("36192056", "Thời Trang Hà My", "2610279DS0HQTO", "0b13199192886e08"),
        "lazada": ("965520292", "Mỹ Phẩm Thảo Nguyên", "448174261068917", "50000JAbqS0cnj8f"),
        "tiktok": (
            "7493633875004743957",
            "Gia Dụng Minh Anh",
            "576536920926927343",
            "TTP_eV9j8s90RkDS",
        ),
        "facebook": (
            "100063726516761",
            "Bánh Ngọt Sài Gòn",
            "t_902117717630398",
            "EAAjk7B06BAsNNAd",
        ),
        "zalo": (
            "4322202972997528820",
            "Nhà Thuốc An Khang",
            "532080574664551240",
            "e7L7mJoblulUsHzT",
        ),
    }
    one = SimulatorState(7, FakeClock())
    many = SimulatorState(7, FakeClock(), accounts_per_platform=3)
    for state in (one, many):
        for platform, (account_id, name, first_item, token) in pinned.items():
            account = state.accounts[platform][0]
            assert (account.account_id, account.name) == (account_id, name)
            first = account.orders[0].order_id if account.orders else None
            first = first or account.conversations[0].conversation_id
            assert first == first_item
            assert current(state, platform, account_id).startswith(token)
        assert state.accounts["tiktok"][0].extra["cipher"] == "ROW_Z7Uw9xfogoEmvnEN5N1aE6Pw"
        assert state.accounts["zalo"][0].extra["oa_secret"] == "aZUPgHV7iB3m03nbqnsG"
    assert _fingerprint(one, 0) == _fingerprint(many, 0)
    # Later draws (rotations) do not depend on the number of accounts either.
    assert one.rng.random() == many.rng.random()


def test_bad_account_counts_are_refused() -> None:
    for bad in (0, 101):
        with pytest.raises(ValueError, match="accounts_per_platform"):
            SimulatorState(1, FakeClock(), accounts_per_platform=bad)


# ---- serving each account with its own token ---------------------------------------------


@pytest.fixture
def sim3() -> tuple[Any, SimulatorState, FakeClock]:
    clock = FakeClock()
    app, state = build_simulator(seed=17, clock=clock, accounts_per_platform=3, **SMALL)
    return app, state, clock


@pytest.mark.parametrize("k", [0, 1, 2])
def test_shopee_serves_account_k(sim3: Any, k: int) -> None:
    app, state, _ = sim3
    shop = state.accounts["shopee"][k]
    token = current(state, "shopee", shop.account_id)
    body = shopee_get(app, state, "/api/v2/shop/get_shop_info", shop=shop.account_id, token=token)
    assert (body["error"], body["shop_name"]) == ("", shop.name)
    until = int(NOW.timestamp())
    orders = shopee_get(
        app,
        state,
        "/api/v2/order/get_order_list",
        shop=shop.account_id,
        token=token,
        time_range_field="create_time",
        time_from=until - 15 * 86400,
        time_to=until,
        page_size=100,
    )
    listed = {o["order_sn"] for o in orders["response"]["order_list"]}
    assert listed and listed <= {o.order_id for o in shop.orders}


@pytest.mark.parametrize("k", [0, 1, 2])
def test_lazada_serves_the_token_owner(sim3: Any, k: int) -> None:
    app, state, _ = sim3
    seller = state.accounts["lazada"][k]
    body = lazada_call(app, state, "/seller/get", current(state, "lazada", seller.account_id))
    assert body["code"] == "0"
    assert (str(body["data"]["seller_id"]), body["data"]["name"]) == (
        seller.account_id,
        seller.name,
    )


@pytest.mark.parametrize("k", [0, 1, 2])
def test_tiktok_shops_is_the_token_shop_and_orders_need_its_cipher(sim3: Any, k: int) -> None:
    app, state, _ = sim3
    shop = state.accounts["tiktok"][k]
    token = current(state, "tiktok", shop.account_id)
    shops = tiktok_call(app, state, "GET", "/authorization/202309/shops", token).json()
    assert shops["code"] == 0
    assert [(s["id"], s["cipher"], s["name"]) for s in shops["data"]["shops"]] == [
        (shop.account_id, shop.extra["cipher"], shop.name)
    ]
    r = tiktok_call(
        app,
        state,
        "POST",
        "/order/202309/orders/search",
        token,
        extra={"shop_cipher": shop.extra["cipher"], "page_size": "100"},
        body=b"{}",
    )
    assert r.json()["code"] == 0
    assert {o["id"] for o in r.json()["data"]["orders"]} == {o.order_id for o in shop.orders}


@pytest.mark.parametrize("k", [0, 1, 2])
def test_facebook_me_is_the_page_of_the_token(sim3: Any, k: int) -> None:
    app, state, _ = sim3
    page = state.accounts["facebook"][k]
    token = current(state, "facebook", page.account_id)
    assert graph_get(app, state, "/me", token).json() == {"id": page.account_id, "name": page.name}
    r = graph_get(app, state, f"/{page.account_id}/conversations", token)
    assert r.status_code == 200
    assert [c["id"] for c in r.json()["data"]] == [c.conversation_id for c in page.conversations]


@pytest.mark.parametrize("k", [0, 1, 2])
def test_zalo_getoa_is_the_oa_of_the_token(sim3: Any, k: int) -> None:
    app, state, _ = sim3
    oa = state.accounts["zalo"][k]
    token = current(state, "zalo", oa.account_id)
    body = zalo_get(app, "/v2.0/oa/getoa", token).json()
    assert body["error"] == 0
    assert (body["data"]["oa_id"], body["data"]["name"]) == (oa.account_id, oa.name)
    assert body["data"]["cate_name"] and body["data"]["description"]
    assert body["data"]["oa_alias"].isascii()
    chats = zalo_get(app, "/v2.0/oa/listrecentchat", token, {"offset": 0, "count": 10}).json()
    assert chats["data"], "the OA has conversations; an empty list proves nothing"
    assert {c["to_id"] if c["src"] == 0 else c["from_id"] for c in chats["data"]} == {
        c.user_id for c in oa.conversations
    }


def test_zalo_rate_limit_is_per_oa(sim3: Any) -> None:
    app, state, _ = sim3
    state.zalo_limit_per_minute = 1
    first, second = (current(state, "zalo", a.account_id) for a in state.accounts["zalo"][:2])
    assert zalo_get(app, "/v2.0/oa/getoa", first).json()["error"] == 0
    assert zalo_get(app, "/v2.0/oa/getoa", first).json()["error"] == -32
    assert zalo_get(app, "/v2.0/oa/getoa", second).json()["error"] == 0


# ---- a token of one account used for another ---------------------------------------------


def test_shopee_token_of_shop_a_with_shop_b_is_error_auth(sim3: Any) -> None:
    app, state, _ = sim3
    a, b = (x.account_id for x in state.accounts["shopee"][:2])
    body = shopee_get(
        app, state, "/api/v2/shop/get_shop_info", shop=b, token=current(state, "shopee", a)
    )
    assert (body["error"], body["message"]) == ("error_auth", "Invalid partner_id or shopid.")
    refresh = shopee_refresh(app, state, shop=b, refresh=current(state, "shopee", a, "refresh"))
    assert refresh["error"] == "error_auth"
    # ... and A's refresh token still works for A (the failed attempt did not spend it).
    ok = shopee_refresh(app, state, shop=a, refresh=current(state, "shopee", a, "refresh"))
    assert ok["error"] == "" and ok["shop_id"] == int(a)


def test_tiktok_cipher_of_another_shop_is_101000(sim3: Any) -> None:
    app, state, _ = sim3
    a, b = state.accounts["tiktok"][:2]
    r = tiktok_call(
        app,
        state,
        "POST",
        "/order/202309/orders/search",
        current(state, "tiktok", a.account_id),
        extra={"shop_cipher": b.extra["cipher"], "page_size": "10"},
        body=b"{}",
    )
    assert (r.status_code, r.json()["code"]) == (401, 101000)


def test_facebook_page_token_cannot_read_another_page(sim3: Any) -> None:
    app, state, _ = sim3
    a, b = state.accounts["facebook"][:2]
    token = current(state, "facebook", a.account_id)
    r = graph_get(app, state, f"/{b.account_id}/conversations", token)
    assert r.status_code == 400
    assert (r.json()["error"]["code"], r.json()["error"]["type"]) == (100, "GraphMethodException")
    conversation = b.conversations[0].conversation_id
    assert graph_get(app, state, f"/{conversation}/messages", token).status_code == 400


# ---- token knobs -------------------------------------------------------------------------


def test_age_token_and_expire_refresh(sim3: Any) -> None:
    app, state, clock = sim3
    shop0, shop1 = (x.account_id for x in state.accounts["shopee"][:2])
    aged = state.age_token("shopee", shop1, expires_in=timedelta(hours=2))
    assert aged.expires_at == NOW + timedelta(hours=2)
    document = tokens_document(state)
    assert document["tokens"]["shopee"][shop1]["access_expires_at"] == "2026-11-26T05:00:00+00:00"
    path = "/api/v2/shop/get_shop_info"
    assert shopee_get(app, state, path, shop=shop1, token=aged.value)["error"] == ""
    clock.advance(hours=2)
    body = shopee_get(app, state, path, shop=shop1, token=aged.value, at=clock.now)
    assert body["error"] == "invalid_acceess_token"
    token0 = current(state, "shopee", shop0)
    assert shopee_get(app, state, path, shop=shop0, token=token0, at=clock.now)["error"] == ""

    zalo1 = state.accounts["zalo"][1].account_id
    state.expire_refresh("zalo", zalo1)
    assert state.check("zalo", current(state, "zalo", zalo1, "refresh"), "refresh")[0] == (
        "expired"
    )
    with pytest.raises(ValueError, match="no live refresh token"):
        state.expire_refresh("facebook", state.accounts["facebook"][0].account_id)
    with pytest.raises(KeyError):
        state.age_token("lazada", "nope", expires_in=timedelta(hours=1))

    page = state.accounts["facebook"][2]
    token = state.age_token("facebook", page.account_id, expires_in=timedelta(days=1))
    app_token = f"{state.facebook_app_id}|{state.facebook_app_secret}"
    r = call(
        app,
        "GET",
        f"/facebook/{state.facebook_version}/debug_token",
        params={"input_token": token.value, "access_token": app_token},
    )
    assert r.json()["data"]["expires_at"] == int((clock.now + timedelta(days=1)).timestamp())


# ---- write_config ------------------------------------------------------------------------


def test_write_config_with_three_accounts(tmp_path: Path) -> None:
    _, state = build_simulator(seed=5, clock=FakeClock(), accounts_per_platform=3, **SMALL)
    path = tmp_path / "sim.yaml"
    write_config(path, "http://127.0.0.1:40001/", state)
    loaded = load_config(path)
    assert not loaded.warnings
    cfg = loaded.config
    platforms = cfg.platforms
    assert [s.shop_id for s in platforms.shopee.shops] == [
        int(a.account_id) for a in state.accounts["shopee"]
    ]
    assert [s.seller_id for s in platforms.lazada.shops] == [
        a.account_id for a in state.accounts["lazada"]
    ]
    assert [(s.shop_id, s.shop_cipher) for s in platforms.tiktok.shops] == [
        (a.account_id, a.extra["cipher"]) for a in state.accounts["tiktok"]
    ]
    assert [p.page_id for p in platforms.facebook.pages] == [
        a.account_id for a in state.accounts["facebook"]
    ]
    assert [o.oa_id for o in platforms.zalo.oas] == [a.account_id for a in state.accounts["zalo"]]
    assert [s.name for s in platforms.shopee.shops] == [a.name for a in state.accounts["shopee"]]
    base = "http://127.0.0.1:40001"
    assert str(platforms.lazada.auth_url) == f"{base}/lazada-auth/rest"
    assert str(platforms.tiktok.auth_url) == f"{base}/tiktok-auth"
    assert str(platforms.zalo.oauth_url) == f"{base}/zalo-oauth/v4"
    assert str(platforms.facebook.base_url) == f"{base}/facebook"
    assert platforms.facebook.graph_version == state.facebook_version
    assert (cfg.tokens.store, cfg.tokens.path) == ("file", "sim-secrets/tokens.json")
    # Each OA's secret is its own file.
    secrets = {
        (tmp_path / o.oa_secret.display().removeprefix("file:")).read_text().strip()
        for o in platforms.zalo.oas
    }
    assert secrets == {a.extra["oa_secret"] for a in state.accounts["zalo"]}
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    assert any("sim-secrets/tokens.json" in line for line in header)

    document = json.loads((tmp_path / "sim-secrets" / "tokens.json").read_text())
    assert document["format"] == "nfdoctor.tokens/v1"
    assert set(document) == {"format", "tokens"}
    assert set(document["tokens"]) == set(PLATFORMS)
    keys = {
        "access_token",
        "access_expires_at",
        "refresh_token",
        "refresh_expires_at",
        "updated_at",
    }
    for platform in PLATFORMS:
        records = document["tokens"][platform]
        assert list(records) == [a.account_id for a in state.accounts[platform]]
        for account_id, record in records.items():
            assert set(record) == keys
            assert record["access_token"] == current(state, platform, account_id)
            assert record["updated_at"] == NOW.isoformat()
            if platform == "facebook":
                assert record["refresh_token"] is None
                assert record["access_expires_at"] is None
                assert record["refresh_expires_at"] is None
            else:
                assert record["refresh_token"] == current(state, platform, account_id, "refresh")
                for key in ("access_expires_at", "refresh_expires_at"):
                    assert datetime.fromisoformat(record[key]).utcoffset() == timedelta(0)
    shopee0 = document["tokens"]["shopee"][state.accounts["shopee"][0].account_id]
    assert shopee0["access_expires_at"] == "2026-11-26T07:00:00+00:00"  # 4 h after NOW


# ---- fault rules for one account ---------------------------------------------------------


def _plan(*rules: dict[str, Any]) -> FaultPlan:
    return FaultPlan.from_mapping({"seed": 3, "rules": list(rules)}, source="faults.yaml")


def test_account_rule_hits_only_that_account() -> None:
    clock = FakeClock()
    _, probe = build_simulator(seed=17, clock=clock, accounts_per_platform=3, **SMALL)
    target = probe.accounts["shopee"][1].account_id
    seller = probe.accounts["lazada"][2].account_id
    page = probe.accounts["facebook"][1].account_id
    oa = int(probe.accounts["zalo"][0].account_id)  # YAML reads a bare id as a number
    plan = _plan(
        {"platform": "shopee", "fault": "http_5xx", "status": 502, "account": target},
        {"platform": "lazada", "fault": "http_429", "account": seller},
        {"platform": "*", "fault": "expired_token", "account": page},
        {"platform": "zalo", "fault": "http_5xx", "account": oa, "times": 1},
    )
    app, state = build_simulator(
        seed=17, faults=plan, clock=clock, accounts_per_platform=3, **SMALL
    )
    path = "/api/v2/shop/get_shop_info"
    for account in state.accounts["shopee"]:
        token = current(state, "shopee", account.account_id)
        body = shopee_get(app, state, path, shop=account.account_id, token=token)
        assert (body["error"] == "error_server") is (account.account_id == target)
    # Lazada: the token in a form-encoded POST body names the seller too.
    for account in state.accounts["lazada"]:
        token = current(state, "lazada", account.account_id)
        for form in (False, True):
            body = lazada_call(app, state, "/seller/get", token, form=form)
            assert (body["code"] == "ApiCallLimit") is (account.account_id == seller)
    # Facebook: by the token, and by the page id in the path with another page's token.
    for account in state.accounts["facebook"]:
        r = graph_get(app, state, "/me", current(state, "facebook", account.account_id))
        assert (r.status_code == 400) is (account.account_id == page)
    other = current(state, "facebook", state.accounts["facebook"][0].account_id)
    r = graph_get(app, state, f"/{page}/conversations", other)
    assert r.json()["error"]["error_subcode"] == 463  # the rule fired: the token "expired"
    # Zalo: the other OAs never use up the rule's one firing.
    for account in state.accounts["zalo"][1:]:
        token = current(state, "zalo", account.account_id)
        assert zalo_get(app, "/v2.0/oa/getoa", token).json()["error"] == 0
    token = current(state, "zalo", str(oa))
    assert zalo_get(app, "/v2.0/oa/getoa", token).status_code == 503
    assert zalo_get(app, "/v2.0/oa/getoa", token).json()["error"] == 0


def test_account_rule_by_tiktok_cipher_and_shopee_refresh_body() -> None:
    clock = FakeClock()
    _, probe = build_simulator(seed=17, clock=clock, accounts_per_platform=2, **SMALL)
    shop = probe.accounts["tiktok"][1]
    shopee = probe.accounts["shopee"][1].account_id
    plan = _plan(
        {"platform": "tiktok", "endpoint": "/order/*", "fault": "http_5xx"}
        | {"account": shop.account_id},
        {"platform": "shopee", "endpoint": "/api/v2/auth/*", "fault": "http_429"}
        | {"account": shopee},
    )
    app, state = build_simulator(
        seed=17, faults=plan, clock=clock, accounts_per_platform=2, **SMALL
    )
    # Token of shop 0 but the cipher of shop 1: the request is (also) about shop 1.
    r = tiktok_call(
        app,
        state,
        "POST",
        "/order/202309/orders/search",
        current(state, "tiktok", state.accounts["tiktok"][0].account_id),
        extra={"shop_cipher": shop.extra["cipher"], "page_size": "10"},
        body=b"{}",
    )
    assert r.status_code == 503
    shop0 = state.accounts["shopee"][0].account_id
    ok = shopee_refresh(app, state, shop=shop0, refresh=current(state, "shopee", shop0, "refresh"))
    assert ok["error"] == ""
    limited = shopee_refresh(
        app, state, shop=shopee, refresh=current(state, "shopee", shopee, "refresh")
    )
    assert limited["error"] == "error_rate_limit"


def test_account_rule_validation() -> None:
    with pytest.raises(UsageError, match=r"faults.yaml: rules\[0\].account: no account 999"):
        build_simulator(seed=1, faults=_plan({"fault": "http_5xx", "account": "999"}), **SMALL)
    with pytest.raises(UsageError, match=r"rules\[0\].account: the CRM has no accounts"):
        _plan({"platform": "crm", "fault": "http_5xx", "account": "1"})
    with pytest.raises(UsageError, match=r"rules\[0\].account: must be"):
        _plan({"platform": "zalo", "fault": "http_5xx", "account": ["1"]})
    # Another platform's id is not this platform's account.
    _, state = build_simulator(seed=1, **SMALL)
    lazada = state.accounts["lazada"][0].account_id
    with pytest.raises(UsageError, match=r"no account \d+ on shopee"):
        build_simulator(
            seed=1,
            faults=_plan({"platform": "shopee", "fault": "http_5xx", "account": lazada}),
            **SMALL,
        )


# ---- the CLI -----------------------------------------------------------------------------


@pytest.mark.parametrize("shops", ["0", "101", "-3"])
def test_cli_shops_out_of_range_is_exit_3_one_line(shops: str) -> None:
    app = typer.Typer()
    app.command()(simulator)
    result = CliRunner().invoke(app, ["--shops", shops])
    assert result.exit_code == 3
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--shops: expected 1-100" in lines[0]
