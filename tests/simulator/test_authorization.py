"""The five platforms' authorization flows, driven as a seller's browser and an app would:
authorize URL -> consent page -> approve link -> redirect with the code -> exchange -> a
token the platform's API accepts; and each refusal in the platform's own shape.

Signatures are computed here by hand from platforms.md (§2.2, §3.2, §4.2, §5.2, §6.3)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.facebook import FACEBOOK, admin_user_id
from nfdoctor.simulator.lazada import LAZADA
from nfdoctor.simulator.shopee import SHOPEE
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.simulator.tiktok import TIKTOK
from nfdoctor.simulator.zalo import ZALO
from tests.simulator import NOW, FakeClock, call
from tests.simulator.browser import consent, follow, links_of, pick

CALLBACK = "http://127.0.0.1:8976/callback"
TS = int(NOW.timestamp())


@pytest.fixture
def sim() -> tuple[Any, SimulatorState, FakeClock]:
    clock = FakeClock()
    app, state = build_simulator(
        seed=5,
        clock=clock,
        accounts_per_platform=2,
        orders_per_shop=3,
        conversations_per_account=2,
    )
    return app, state, clock


def hmac_hex(key: str, message: bytes | str) -> str:
    data = message.encode() if isinstance(message, str) else message
    return hmac.new(key.encode(), data, hashlib.sha256).hexdigest()


def ids(state: SimulatorState, platform: str) -> list[str]:
    return [a.account_id for a in state.accounts[platform]]


# ---- Shopee (§2.1-2.3) ---------------------------------------------------------------------


def shopee_public(state: SimulatorState, path: str) -> dict[str, Any]:
    """The public sign's parameters, timestamped now by the simulator's clock."""
    ts = int(state.clock().timestamp())
    partner = SHOPEE.settings(state).partner_id
    sign = hmac_hex(SHOPEE.settings(state).partner_key, f"{partner}{path}{ts}")
    return {"partner_id": partner, "timestamp": ts, "sign": sign}


def shopee_consent_page(app: Any, state: SimulatorState, redirect: str = CALLBACK) -> Any:
    path = "/api/v2/shop/auth_partner"
    return call(
        app, "GET", "/shopee" + path, params={**shopee_public(state, path), "redirect": redirect}
    )


def shopee_exchange(app: Any, state: SimulatorState, code: str, shop_id: str) -> Any:
    path = "/api/v2/auth/token/get"
    body = {"code": code, "partner_id": SHOPEE.settings(state).partner_id, "shop_id": int(shop_id)}
    return call(app, "POST", "/shopee" + path, params=shopee_public(state, path), json=body)


def shopee_shop_info(app: Any, state: SimulatorState, token: str, shop_id: str) -> Any:
    path = "/api/v2/shop/get_shop_info"
    partner = SHOPEE.settings(state).partner_id
    sign = hmac_hex(
        SHOPEE.settings(state).partner_key,
        f"{partner}{path}{TS}{token}{shop_id}",
    )
    query = {"partner_id": partner, "timestamp": TS, "access_token": token, "shop_id": shop_id}
    return call(app, "GET", "/shopee" + path, params={**query, "sign": sign})


def shopee_code(app: Any, state: SimulatorState, shop_id: str) -> str:
    _, query = consent(app, shopee_consent_page(app, state), account=shop_id)
    return query["code"]


def test_shopee_flow_gives_a_token_the_api_accepts(sim: Any) -> None:
    app, state, _ = sim
    first, second = ids(state, "shopee")
    old_refresh = state.current("shopee", second, "refresh")
    # The state rides in the redirect URL (the link has no state parameter of its own).
    page = shopee_consent_page(app, state, redirect=CALLBACK + "?state=s-1")
    assert [link.account for link in links_of(page)] == [first, second]
    where, query = consent(app, page, account=second)
    assert where == CALLBACK
    assert query["state"] == "s-1" and query["shop_id"] == second and len(query["code"]) == 32

    answer = shopee_exchange(app, state, query["code"], second)
    body = answer.json()
    assert answer.status_code == 200, body
    assert body["error"] == "" and body["message"] == "" and body["request_id"]
    assert body["expire_in"] == 4 * 3600  # REL seconds
    assert body["shop_id_list"] == [int(second)] and body["merchant_id_list"] == []
    info = shopee_shop_info(app, state, body["access_token"], second).json()
    assert info["error"] == "" and info["shop_name"] == state.accounts["shopee"][1].name
    # The new grant's refresh token is the shop's; the previous one (single use) is revoked.
    current = state.current("shopee", second, "refresh")
    assert current is not None and current.value == body["refresh_token"]
    assert old_refresh is not None and old_refresh.revoked
    event = state.token_events[-1]
    assert (event.platform, event.account, event.kind, event.outcome) == (
        "shopee",
        second,
        "exchange",
        "issued",
    )
    assert event.spent == query["code"] and event.access_token == body["access_token"]


def test_shopee_code_is_single_use_short_lived_and_bound_to_its_shop(sim: Any) -> None:
    app, state, clock = sim
    first, second = ids(state, "shopee")
    code = shopee_code(app, state, first)
    assert shopee_exchange(app, state, code, second).json()["error"] == "error_auth"
    assert shopee_exchange(app, state, code, first).json()["error"] == ""  # not spent above
    reused = shopee_exchange(app, state, code, first)
    assert reused.status_code == 403
    assert reused.json()["error"] == "error_auth"
    assert reused.json()["message"] == "The code is expired or used or invalid"

    late = shopee_code(app, state, first)
    clock.advance(minutes=10)
    expired = shopee_exchange(app, state, late, first).json()
    assert (expired["error"], expired["message"]) == (
        "error_auth",
        "The code is expired or used or invalid",
    )
    assert shopee_exchange(app, state, "0" * 32, first).json()["error"] == "invalid_code"
    outcomes = [e.outcome for e in state.token_events]
    assert outcomes == ["refused", "issued", "refused", "refused", "refused"]


def test_shopee_refuses_a_wrong_sign_and_a_foreign_redirect(sim: Any) -> None:
    app, state, _ = sim
    path = "/api/v2/shop/auth_partner"
    query = {**shopee_public(state, path), "redirect": CALLBACK}
    query["sign"] = query["sign"].upper()  # the right digest in the wrong case
    refused = call(app, "GET", "/shopee" + path, params=query)
    assert refused.status_code == 403 and refused.json()["error"] == "error_sign"
    foreign = shopee_consent_page(app, state, redirect="https://crm.example.vn/callback")
    assert foreign.json()["error"] == "error_param"
    exchange_path = "/api/v2/auth/token/get"
    code = shopee_code(app, state, ids(state, "shopee")[0])
    params = shopee_public(state, exchange_path)
    params["sign"] = hmac_hex("not-the-partner-key", "x")
    body = {
        "code": code,
        "partner_id": SHOPEE.settings(state).partner_id,
        "shop_id": int(ids(state, "shopee")[0]),
    }
    answer = call(app, "POST", "/shopee" + exchange_path, params=params, json=body)
    assert answer.json()["error"] == "error_sign"
    assert state.auth_codes[code].used is False  # a refused request spends nothing


# ---- Lazada (§3.1-3.3) ---------------------------------------------------------------------


def lazada_signed(state: SimulatorState, api_path: str, params: dict[str, str]) -> dict[str, str]:
    full = {
        "app_key": LAZADA.settings(state).app_key,
        "sign_method": "sha256",
        "timestamp": str(int(state.clock().timestamp()) * 1000),
        **params,
    }
    base = api_path + "".join(f"{k}{full[k]}" for k in sorted(full))
    return {**full, "sign": hmac_hex(LAZADA.settings(state).app_secret, base).upper()}


def lazada_consent_page(app: Any, state: SimulatorState, **overrides: str) -> Any:
    query = {
        "response_type": "code",
        "force_auth": "true",
        "redirect_uri": CALLBACK,
        "client_id": LAZADA.settings(state).app_key,
        "state": "lz-state",
        **overrides,
    }
    return call(app, "GET", "/lazada-auth/oauth/authorize", params=query)


def lazada_create(app: Any, state: SimulatorState, code: str, *, post: bool = False) -> Any:
    params = lazada_signed(state, "/auth/token/create", {"code": code})
    if post:
        return call(app, "POST", "/lazada-auth/rest/auth/token/create", data=params)
    return call(app, "GET", "/lazada-auth/rest/auth/token/create", params=params)


@pytest.mark.parametrize("post", [False, True], ids=["get", "form-post"])
def test_lazada_flow_gives_a_token_the_api_accepts(sim: Any, post: bool) -> None:
    app, state, _ = sim
    first, second = ids(state, "lazada")
    page = lazada_consent_page(app, state)
    assert [link.account for link in links_of(page)] == [first, second]
    where, query = consent(app, page, account=second)
    assert where == CALLBACK and query["state"] == "lz-state" and set(query) == {"code", "state"}

    body = lazada_create(app, state, query["code"], post=post).json()
    assert body["code"] == "0", body
    assert body["expires_in"] == 7 * 86400 and body["refresh_expires_in"] == 30 * 86400
    assert body["country_user_info"][0]["seller_id"] == second
    assert "country_user_info_list" not in body
    seller = call(
        app,
        "GET",
        "/lazada/rest/seller/get",
        params=lazada_signed(state, "/seller/get", {"access_token": body["access_token"]}),
    ).json()
    assert seller["code"] == "0" and seller["data"]["seller_id"] == int(second)


def test_lazada_refuses_reused_expired_and_badly_signed_codes(sim: Any) -> None:
    app, state, clock = sim
    seller = ids(state, "lazada")[0]
    _, query = consent(app, lazada_consent_page(app, state), account=seller)
    params = lazada_signed(state, "/auth/token/create", {"code": query["code"]})
    params["sign"] = params["sign"].lower()
    unsigned = call(app, "GET", "/lazada-auth/rest/auth/token/create", params=params)
    assert unsigned.status_code == 200 and unsigned.json()["code"] == "IncompleteSignature"
    assert lazada_create(app, state, query["code"]).json()["code"] == "0"
    reused = lazada_create(app, state, query["code"])
    assert reused.status_code == 200
    assert reused.json()["code"] == "InvalidCode"
    assert reused.json()["message"] == "Invalid authorization code"

    _, late = consent(app, lazada_consent_page(app, state), account=seller)
    clock.advance(minutes=29, seconds=59)
    _, later = consent(app, lazada_consent_page(app, state), account=seller)
    clock.advance(seconds=1)  # 30 minutes after the first code
    assert lazada_create(app, state, late["code"]).json()["code"] == "InvalidCode"
    assert lazada_create(app, state, later["code"]).json()["code"] == "0"


@pytest.mark.parametrize(
    ("override", "parameter"),
    [
        ({"redirect_uri": "https://evil.example.com/cb"}, "redirect_uri"),
        ({"redirect_uri": "ftp://127.0.0.1/cb"}, "redirect_uri"),
        ({"client_id": "999"}, "client_id"),
        ({"response_type": "token"}, "response_type"),
    ],
    ids=["foreign-host", "not-http", "client-id", "response-type"],
)
def test_lazada_authorize_refuses_a_bad_request(
    sim: Any, override: dict[str, str], parameter: str
) -> None:
    app, state, _ = sim
    refused = lazada_consent_page(app, state, **override)
    assert refused.status_code == 400
    assert refused.json()["code"] == "InvalidParameter"
    assert parameter in refused.json()["message"]


# ---- TikTok (§4.1-4.3) ---------------------------------------------------------------------


def tiktok_consent_page(app: Any, state: SimulatorState, **overrides: str) -> Any:
    query = {"service_id": TIKTOK.settings(state).service_id, "state": "tt-state", **overrides}
    return call(app, "GET", "/tiktok-services/open/authorize", params=query)


def tiktok_token_get(app: Any, state: SimulatorState, code: str) -> Any:
    query = {
        "app_key": TIKTOK.settings(state).app_key,
        "app_secret": TIKTOK.settings(state).app_secret,
        "auth_code": code,
        "grant_type": "authorized_code",
    }
    return call(app, "GET", "/tiktok-auth/api/v2/token/get", params=query)


def test_tiktok_flow_redirects_to_the_registered_uri_and_the_token_works(sim: Any) -> None:
    app, state, _ = sim
    first, second = ids(state, "tiktok")
    TIKTOK.settings(state).redirect_uri = "http://127.0.0.1:5599/tiktok/done"
    page = tiktok_consent_page(app, state)
    assert [link.account for link in links_of(page)] == [first, second, None]
    where, query = consent(app, page, account=second)
    assert where == "http://127.0.0.1:5599/tiktok/done"
    assert query["state"] == "tt-state" and query["code"].startswith("ROW_")

    answer = tiktok_token_get(app, state, query["code"])
    body = answer.json()
    assert answer.status_code == 200 and body["code"] == 0, body
    data = body["data"]
    # ABS Unix seconds despite the names (§4.3)
    assert data["access_token_expire_in"] == TS + 7 * 86400
    assert data["refresh_token_expire_in"] == TS + 365 * 86400
    assert data["seller_name"] == state.accounts["tiktok"][1].name
    assert data["open_id"] and data["granted_scopes"] and data["user_type"] == 0

    path = "/authorization/202309/shops"
    query_params = {"app_key": TIKTOK.settings(state).app_key, "timestamp": str(TS)}
    secret = TIKTOK.settings(state).app_secret
    inner = path + "".join(f"{k}{query_params[k]}" for k in sorted(query_params))
    sign = hmac_hex(secret, secret + inner + secret)
    shops = call(
        app,
        "GET",
        "/tiktok" + path,
        params={**query_params, "sign": sign},
        headers={"x-tts-access-token": data["access_token"]},
    ).json()
    assert shops["code"] == 0 and shops["data"]["shops"][0]["id"] == second


def test_tiktok_refusal_redirects_with_auth_denied(sim: Any) -> None:
    app, state, _ = sim
    where, query = consent(app, tiktok_consent_page(app, state), decision="deny")
    assert where == "http://127.0.0.1:8976/callback"  # the default registered URI
    assert query == {"code": "null", "error": "auth_denied", "state": "tt-state"}
    assert not state.auth_codes  # nothing was granted


def test_tiktok_refuses_reused_expired_and_unknown_codes(sim: Any) -> None:
    app, state, clock = sim
    shop = ids(state, "tiktok")[0]
    _, query = consent(app, tiktok_consent_page(app, state), account=shop)
    assert tiktok_token_get(app, state, query["code"]).json()["code"] == 0
    reused = tiktok_token_get(app, state, query["code"])
    assert reused.status_code == 200
    assert reused.json()["code"] == 36009004 and "was used" in reused.json()["message"]
    _, late = consent(app, tiktok_consent_page(app, state), account=shop)
    clock.advance(minutes=30)
    expired = tiktok_token_get(app, state, late["code"]).json()
    assert expired["code"] == 36009004 and "expired" in expired["message"]
    assert "is invalid" in tiktok_token_get(app, state, "ROW_nothing").json()["message"]
    wrong_grant = call(
        app,
        "GET",
        "/tiktok-auth/api/v2/token/get",
        params={
            "app_key": TIKTOK.settings(state).app_key,
            "app_secret": TIKTOK.settings(state).app_secret,
            "auth_code": late["code"],
            "grant_type": "refresh_token",
        },
    ).json()
    assert wrong_grant["code"] == 40006


def test_tiktok_authorize_refuses_another_service_and_an_unusable_registration(sim: Any) -> None:
    app, state, _ = sim
    assert tiktok_consent_page(app, state, service_id="123").status_code == 400
    TIKTOK.settings(state).redirect_uri = "tiktok-app://callback"
    refused = tiktok_consent_page(app, state)
    assert refused.status_code == 400 and refused.json()["code"] == 40006


# ---- Facebook (§5.1-5.3) -------------------------------------------------------------------


def graph(state: SimulatorState) -> str:
    return "/facebook/" + FACEBOOK.settings(state).version


def facebook_dialog(app: Any, state: SimulatorState, redirect: str = CALLBACK) -> Any:
    query = {
        "client_id": FACEBOOK.settings(state).app_id,
        "redirect_uri": redirect,
        "state": "fb-state",
        "scope": "pages_show_list,pages_messaging",
    }
    version = FACEBOOK.settings(state).version
    return call(app, "GET", f"/facebook-www/{version}/dialog/oauth", params=query)


def facebook_code_exchange(
    app: Any, state: SimulatorState, code: str, redirect: str = CALLBACK
) -> Any:
    query = {
        "client_id": FACEBOOK.settings(state).app_id,
        "redirect_uri": redirect,
        "client_secret": FACEBOOK.settings(state).app_secret,
        "code": code,
    }
    return call(app, "GET", graph(state) + "/oauth/access_token", params=query)


def proof(state: SimulatorState, token: str) -> str:
    return hmac_hex(FACEBOOK.settings(state).app_secret, token)


def test_facebook_flow_user_token_long_lived_then_a_page_token(sim: Any) -> None:
    app, state, _ = sim
    first, second = ids(state, "facebook")
    page = facebook_dialog(app, state)
    assert [link.account for link in links_of(page)] == [first, second, None]
    where, query = consent(app, page, account=second)
    assert where == CALLBACK and query["state"] == "fb-state"

    short = facebook_code_exchange(app, state, query["code"])
    assert short.status_code == 200, short.text
    assert short.json()["token_type"] == "bearer" and short.json()["expires_in"] == 3600
    user_token = short.json()["access_token"]
    me = call(app, "GET", graph(state) + "/me", params={"access_token": user_token}).json()
    assert me["id"] == admin_user_id(state)

    long_lived = call(
        app,
        "GET",
        graph(state) + "/oauth/access_token",
        params={
            "grant_type": "fb_exchange_token",
            "client_id": FACEBOOK.settings(state).app_id,
            "client_secret": FACEBOOK.settings(state).app_secret,
            "fb_exchange_token": user_token,
        },
    ).json()
    assert long_lived["expires_in"] == 60 * 86400
    long_token = long_lived["access_token"]

    answer = call(
        app,
        "GET",
        f"{graph(state)}/{second}",
        params={
            "fields": "access_token",
            "access_token": long_token,
            "appsecret_proof": proof(state, long_token),
        },
    ).json()
    assert answer["id"] == second
    page_token = answer["access_token"]
    assert page_token not in (user_token, long_token)
    me_page = call(app, "GET", graph(state) + "/me", params={"access_token": page_token}).json()
    assert me_page == {"id": second, "name": state.accounts["facebook"][1].name}
    app_token = f"{FACEBOOK.settings(state).app_id}|{FACEBOOK.settings(state).app_secret}"
    debug = call(
        app,
        "GET",
        graph(state) + "/debug_token",
        params={"input_token": page_token, "access_token": app_token},
    ).json()["data"]
    assert debug["is_valid"] and debug["type"] == "PAGE" and debug["expires_at"] == 0
    # The consent granted the second Page only.
    other = call(
        app,
        "GET",
        f"{graph(state)}/{first}",
        params={"fields": "access_token", "access_token": long_token},
    )
    assert other.status_code == 400 and other.json()["error"]["code"] == 100
    kinds = [(e.kind, e.outcome, e.account) for e in state.token_events]
    assert kinds == [
        ("exchange", "issued", admin_user_id(state)),
        ("refresh", "issued", admin_user_id(state)),
        ("page_token", "issued", second),
    ]


def test_facebook_accounts_lists_every_granted_page_with_tokens(sim: Any) -> None:
    app, state, clock = sim
    _, query = consent(app, facebook_dialog(app, state))  # the "every Page" link
    user_token = facebook_code_exchange(app, state, query["code"]).json()["access_token"]
    listed = call(
        app, "GET", graph(state) + "/me/accounts", params={"access_token": user_token}
    ).json()
    assert [p["id"] for p in listed["data"]] == ids(state, "facebook")
    tokens = [p["access_token"] for p in listed["data"]]
    assert len(set(tokens)) == 2
    # Made from a short-lived User token, a Page token ends with it (§5.3).
    clock.advance(hours=1)
    expired = call(app, "GET", graph(state) + "/me", params={"access_token": tokens[0]})
    assert expired.status_code == 400
    assert (
        expired.json()["error"]["code"] == 190 and expired.json()["error"]["error_subcode"] == 463
    )


@pytest.mark.parametrize(
    ("setup", "subcode", "message"),
    [
        ("reuse", 36009, "This authorization code has been used."),
        ("expire", 36007, "This authorization code has expired."),
        ("redirect", 36008, "redirect_uri is identical"),
    ],
)
def test_facebook_refuses_a_used_expired_or_misdirected_code(
    sim: Any, setup: str, subcode: int, message: str
) -> None:
    app, state, clock = sim
    _, query = consent(app, facebook_dialog(app, state), account=ids(state, "facebook")[0])
    redirect = CALLBACK
    if setup == "reuse":
        assert facebook_code_exchange(app, state, query["code"]).status_code == 200
    elif setup == "expire":
        clock.advance(minutes=10)
    else:
        redirect = "http://127.0.0.1:8976/other"
    refused = facebook_code_exchange(app, state, query["code"], redirect)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["type"], error["error_subcode"]) == (
        100,
        "OAuthException",
        subcode,
    )
    assert message in error["message"] and error["fbtrace_id"]
    assert state.token_events[-1].outcome == "refused"


def test_facebook_dialog_refuses_a_foreign_redirect_and_a_wrong_secret(sim: Any) -> None:
    app, state, _ = sim
    refused = facebook_dialog(app, state, redirect="https://example.com/cb")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == 191
    _, query = consent(app, facebook_dialog(app, state), account=ids(state, "facebook")[0])
    wrong = call(
        app,
        "GET",
        graph(state) + "/oauth/access_token",
        params={
            "client_id": FACEBOOK.settings(state).app_id,
            "redirect_uri": CALLBACK,
            "client_secret": "0" * 32,
            "code": query["code"],
        },
    )
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == 1
    assert facebook_code_exchange(app, state, query["code"]).status_code == 200


# ---- Zalo (§6.3, V6) -----------------------------------------------------------------------

#: RFC 7636 Appendix B (platforms.md V6)
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_the_pkce_vector_holds() -> None:
    digest = hashlib.sha256(VERIFIER.encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == CHALLENGE


def zalo_permission(app: Any, state: SimulatorState, **overrides: str) -> Any:
    query = {
        "app_id": ZALO.settings(state).app_id,
        "redirect_uri": CALLBACK,
        "code_challenge": CHALLENGE,
        "state": "za-state",
        **overrides,
    }
    return call(app, "GET", "/zalo-oauth/v4/oa/permission", params=query)


def zalo_token(app: Any, state: SimulatorState, form: dict[str, str]) -> Any:
    body = {"app_id": ZALO.settings(state).app_id, **form}
    return call(
        app,
        "POST",
        "/zalo-oauth/v4/oa/access_token",
        content=urlencode(body),
        headers={
            "secret_key": ZALO.settings(state).secret_key,
            "content-type": "application/x-www-form-urlencoded",
        },
    )


def zalo_exchange(app: Any, state: SimulatorState, code: str, verifier: str = VERIFIER) -> Any:
    form = {"code": code, "grant_type": "authorization_code", "code_verifier": verifier}
    return zalo_token(app, state, form)


def test_zalo_flow_verifies_pkce_and_gives_a_token_the_api_accepts(sim: Any) -> None:
    app, state, _ = sim
    first, second = ids(state, "zalo")
    old_refresh = state.current("zalo", second, "refresh")
    assert old_refresh is not None
    page = zalo_permission(app, state)
    assert [link.account for link in links_of(page)] == [first, second]
    where, query = consent(app, page, account=second)
    assert where == CALLBACK
    assert query["oa_id"] == second and query["state"] == "za-state"

    answer = zalo_exchange(app, state, query["code"])
    body = answer.json()
    assert answer.status_code == 200 and set(body) == {
        "access_token",
        "refresh_token",
        "expires_in",
    }
    assert body["expires_in"] == "90000"  # a string (§6.3)
    oa = call(
        app, "GET", "/zalo/v2.0/oa/getoa", headers={"access_token": body["access_token"]}
    ).json()
    assert oa["error"] == 0 and oa["data"]["oa_id"] == second
    # Single-use refresh tokens: the new grant's works, the previous one no longer does.
    stale = zalo_token(
        app, state, {"refresh_token": old_refresh.value, "grant_type": "refresh_token"}
    ).json()
    assert stale["error"] == -14014 and stale["error_name"] == "Invalid refresh token"
    fresh = zalo_token(
        app, state, {"refresh_token": body["refresh_token"], "grant_type": "refresh_token"}
    ).json()
    assert fresh["expires_in"] == "90000"


def test_zalo_refuses_a_wrong_verifier_a_reused_and_an_expired_code(sim: Any) -> None:
    app, state, clock = sim
    oa = ids(state, "zalo")[0]
    _, query = consent(app, zalo_permission(app, state), account=oa)
    for verifier in ("x" * 43, VERIFIER[:-1] + "Y", "short"):
        wrong = zalo_exchange(app, state, query["code"], verifier)
        assert wrong.status_code == 200
        assert wrong.json() == {
            "error": -14006,
            "error_name": "Invalid code verifier",
            "error_reason": "code_verifier does not match the code_challenge",
            "error_description": "code_verifier does not match the code_challenge",
        }
    no_verifier = zalo_token(
        app, state, {"code": query["code"], "grant_type": "authorization_code"}
    )
    assert no_verifier.json()["error"] == -14006
    assert "access_token" in zalo_exchange(app, state, query["code"]).json()
    reused = zalo_exchange(app, state, query["code"]).json()
    assert reused["error"] == -14005 and reused["error_reason"] == "code was used"

    _, late = consent(app, zalo_permission(app, state), account=oa)
    clock.advance(minutes=10)
    expired = zalo_exchange(app, state, late["code"]).json()
    assert expired["error"] == -14005 and expired["error_reason"] == "code has expired"
    assert "access_token" not in expired


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"redirect_uri": "https://evil.example.com/cb"}, -14003),
        ({"redirect_uri": "http://127.0.0.1:8976/cb#frag"}, -14003),
        ({"app_id": "1"}, -14002),
        ({"code_challenge": "not-a-challenge"}, -14007),
    ],
    ids=["foreign-host", "fragment", "app-id", "challenge"],
)
def test_zalo_permission_refuses_a_bad_request(
    sim: Any, override: dict[str, str], error: int
) -> None:
    app, state, _ = sim
    refused = zalo_permission(app, state, **override)
    assert refused.status_code == 400
    assert refused.json()["error"] == error and refused.json()["error_name"]


# ---- shared ------------------------------------------------------------------------------


def test_consent_links_are_absolute_and_die_with_their_consent(sim: Any) -> None:
    app, state, clock = sim
    page = zalo_permission(app, state)
    link = pick(page, account=ids(state, "zalo")[0])
    assert link.href.startswith("http://sim.test/zalo-oauth/v4/oa/permission/approve?")
    clock.advance(hours=1)
    stale = follow(app, link)
    assert stale.status_code == 400 and stale.json()["error"] == -14005
    assert not state.auth_codes


def test_codes_are_masked_in_the_debug_log_by_value(sim: Any) -> None:
    app, state, _ = sim
    _, query = consent(app, tiktok_consent_page(app, state), account=ids(state, "tiktok")[0])
    assert query["code"] in state.secret_values()


def test_written_config_names_the_authorization_hosts(sim: Any, tmp_path: Any) -> None:
    from nfdoctor.config.loader import load_config
    from nfdoctor.simulator.server import write_config

    _, state, _ = sim
    TIKTOK.settings(state).redirect_uri = "http://127.0.0.1:7001/cb"
    config = tmp_path / "sim.yaml"
    write_config(config, "http://127.0.0.1:41000", state)
    loaded = load_config(config)
    assert not loaded.warnings
    tiktok = loaded.config.platforms.tiktok
    assert str(tiktok.redirect_uri) == "http://127.0.0.1:7001/cb"
    assert tiktok.service_id == TIKTOK.settings(state).service_id
    assert str(tiktok.authorize_url) == "http://127.0.0.1:41000/tiktok-services/open/authorize"
    assert str(loaded.config.platforms.facebook.www_url) == "http://127.0.0.1:41000/facebook-www"
    raw = json.dumps(config.read_text())
    assert TIKTOK.settings(state).service_id in raw
