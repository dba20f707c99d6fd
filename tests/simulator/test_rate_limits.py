"""Each platform's request-rate ceiling: a sliding one-second window over every API request
of the platform (all its accounts together), answered in the platform's own envelope with
``Retry-After: 1``, and the record that proves how fast a client went."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from nfdoctor.cli.simulator_cmd import simulator
from nfdoctor.context import Environment
from nfdoctor.errors import UsageError
from nfdoctor.services.simulator import SimulatorRequest, start_simulator
from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.faults import FaultPlan, load_fault_plan
from nfdoctor.simulator.ratelimit import RequestRate, parse_rate_limit
from nfdoctor.simulator.registry import NAMES
from tests.simulator import NOW, FakeClock, call
from tests.simulator.test_sync_endpoints import Sim


def limited(*, shops: int = 1, faults: FaultPlan | None = None, **rates: int) -> Sim:
    clock = FakeClock()
    app, state = build_simulator(
        seed=5,
        faults=faults,
        clock=clock,
        accounts_per_platform=shops,
        orders_per_shop=4,
        conversations_per_account=3,
        rate_limits=rates,
    )
    return Sim(app, state, clock)


def ping(sim: Sim, platform: str, index: int = 0) -> httpx.Response:
    """Each platform's ping call (§2.4, §3.4, §4.4, §5.4, §6.4), signed by hand."""
    if platform == "shopee":
        return sim.shopee("/api/v2/shop/get_shop_info", index)
    if platform == "lazada":
        return sim.lazada("/seller/get", index)
    if platform == "tiktok":
        return sim.tiktok("GET", "/authorization/202309/shops", index, shop_scoped=False)
    if platform == "facebook":
        return sim.graph("/me", sim.token("facebook", index))
    return sim.zalo("/v2.0/oa/getoa", index=index)


def answered(platform: str, response: httpx.Response) -> bool:
    """Whether the platform answered the ping itself (not its rate limiter)."""
    body = response.json()
    return {
        "shopee": lambda: body.get("error") == "",
        "lazada": lambda: body.get("code") == "0",
        "tiktok": lambda: body.get("code") == 0,
        "facebook": lambda: "id" in body,
        "zalo": lambda: body.get("error") == 0,
    }[platform]()


#: platform -> (HTTP status, how the body says "rate limited") (§2.6, §3.6, §4.6, §5.6, §6.6)
ENVELOPES: dict[str, tuple[int, Any]] = {
    "shopee": (
        429,
        lambda b: (
            b["error"] == "error_rate_limit"
            and b["message"].startswith("Too many requests")
            and b["request_id"]
        ),
    ),
    "lazada": (
        200,
        lambda b: b["code"] == "ApiCallLimit" and b["type"] == "SYSTEM" and b["request_id"],
    ),
    "tiktok": (429, lambda b: b["code"] == 36009002 and b["request_id"]),
    "facebook": (
        429,
        lambda b: b["error"]["code"] == 80001 and b["error"]["fbtrace_id"],
    ),
    "zalo": (
        200,
        lambda b: b == {"error": -32, "message": "Your application reached limit call api"},
    ),
}


@pytest.mark.parametrize("platform", NAMES)
def test_a_burst_over_the_ceiling_gets_the_platforms_own_answer(platform: str) -> None:
    sim = limited(**{platform: 3})
    responses = [ping(sim, platform) for _ in range(5)]
    assert [answered(platform, r) for r in responses] == [True, True, True, False, False]
    status, says_limited = ENVELOPES[platform]
    for refused in responses[3:]:
        assert refused.status_code == status
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["date"] == "Thu, 26 Nov 2026 03:00:00 GMT"
        assert says_limited(refused.json()), refused.json()
    assert sim.state.rate_counts(platform) == (3, 2)
    assert sim.state.max_requests_in_window(platform) == 3
    assert sim.state.rate_limits == {platform: 3}
    # A second later the window is empty again.
    sim.clock.advance(seconds=1)
    assert answered(platform, ping(sim, platform))
    assert sim.state.rate_counts(platform) == (4, 2)
    assert sim.state.max_requests_in_window(platform) == 3
    assert sim.state.max_requests_in_window(platform, seconds=2.0) == 4


def test_the_window_slides() -> None:
    sim = limited(zalo=3)
    outcomes = []
    for _ in range(12):  # one request every 250 ms
        outcomes.append(answered("zalo", ping(sim, "zalo")))
        sim.clock.advance(milliseconds=250)
    # (t - 1 s, t] holds at most 3: every fourth request finds three in the window
    assert outcomes == [True, True, True, False] * 3
    assert sim.state.rate_counts("zalo") == (9, 3)
    assert sim.state.max_requests_in_window("zalo", 1.0) == 3
    assert sim.state.max_requests_in_window("zalo", 0.5) == 2
    times = sim.state.request_times("zalo")
    assert len(times) == 9 and times[0] == NOW and times == sorted(times)
    over_http = call(sim.app, "GET", "/_sim/rate-limits", params={"platform": "zalo"}).json()
    assert over_http == {
        "platforms": {"zalo": {"limit": 3, "accepted": 9, "refused": 3, "max_in_1s": 3}}
    }


def test_every_account_counts_towards_one_ceiling() -> None:
    sim = limited(shops=3, lazada=2)
    first, second, third = (ping(sim, "lazada", index) for index in (0, 1, 2))
    assert answered("lazada", first) and answered("lazada", second)
    assert third.json()["code"] == "ApiCallLimit"
    assert sim.state.rate_counts("lazada") == (2, 1)


def test_platforms_are_independent() -> None:
    sim = limited(lazada=2, shopee=2)
    for _ in range(5):
        ping(sim, "lazada")
    assert sim.state.rate_counts("lazada") == (2, 3)
    # Shopee has its own window, and Zalo has no ceiling at all (but is counted).
    assert [answered("shopee", ping(sim, "shopee")) for _ in range(3)] == [True, True, False]
    assert all(answered("zalo", ping(sim, "zalo")) for _ in range(10))
    assert sim.state.rate_counts("shopee") == (2, 1)
    assert sim.state.rate_counts("zalo") == (10, 0)
    assert sim.state.max_requests_in_window("zalo") == 10
    assert sim.state.rate_counts("tiktok") == (0, 0)
    everything = call(sim.app, "GET", "/_sim/rate-limits").json()["platforms"]
    assert everything["lazada"] == {"limit": 2, "accepted": 2, "refused": 3, "max_in_1s": 2}
    assert everything["zalo"]["limit"] is None and list(everything) == list(NAMES)
    assert call(sim.app, "GET", "/_sim/rate-limits", params={"platform": "x"}).status_code == 400


def test_token_endpoints_count_but_consent_pages_and_the_crm_do_not() -> None:
    sim = limited(shopee=1, zalo=1, facebook=1, tiktok=1, lazada=1)
    state = sim.state
    consent_path = "/api/v2/shop/auth_partner"
    ts = int(NOW.timestamp())
    for _ in range(3):  # the seller's browser on the consent pages
        page = call(
            sim.app,
            "GET",
            "/shopee" + consent_path,
            params={"partner_id": state.shopee_partner_id, "timestamp": ts, "sign": "x"},  # type: ignore[attr-defined]
        )
        assert page.json()["error"] == "error_sign"  # the page's own answer, not a 429
        permission = call(sim.app, "GET", "/zalo-oauth/v4/oa/permission", params={"app_id": "1"})
        assert permission.json()["error"] == -14002
        dialog = call(sim.app, "GET", f"/facebook-www/{state.facebook_version}/dialog/oauth")  # type: ignore[attr-defined]
        assert dialog.json()["error"]["code"] == 101
        services = call(sim.app, "GET", "/tiktok-services/open/authorize")
        assert services.json()["code"] == 40006
        authorize = call(sim.app, "GET", "/lazada-auth/oauth/authorize")
        assert authorize.json()["code"] == "InvalidParameter"
        assert call(sim.app, "GET", "/crm/api/status").status_code == 200
        assert (
            call(sim.app, "GET", "/_sim/ground-truth", params={"platform": "zalo"}).status_code
            == 200
        )
    assert all(state.rate_counts(p) == (0, 0) for p in NAMES)
    # The token endpoints are API calls: the second refresh in the same second is refused.
    token = call(sim.app, "POST", "/zalo-oauth/v4/oa/access_token", data={"app_id": "1"})
    assert token.json()["error"] == -14002
    again = call(sim.app, "POST", "/zalo-oauth/v4/oa/access_token", data={"app_id": "1"})
    assert again.json() == {"error": -32, "message": "Your application reached limit call api"}
    assert state.rate_counts("zalo") == (1, 1)


def test_facebook_names_the_limit_the_token_hits() -> None:
    sim = limited(facebook=1)
    state = sim.state
    page = sim.account("facebook")
    user = state.issue_token(
        "facebook", "10999", "user", expires_at=NOW + timedelta(days=60), grants=(page,)
    ).value
    app_token = f"{state.facebook_app_id}|{state.facebook_app_secret}"  # type: ignore[attr-defined]
    version = state.facebook_version  # type: ignore[attr-defined]
    cases = [
        (
            lambda: call(
                sim.app,
                "GET",
                f"/facebook/{version}/debug_token",
                params={"access_token": app_token, "input_token": "x"},
            ),
            4,
        ),
        (lambda: call(sim.app, "GET", f"/facebook/{version}/oauth/access_token"), 4),
        (lambda: sim.graph("/me", user), 17),
        (lambda: sim.graph("/me/accounts", user), 17),
        (lambda: sim.graph(f"/{page}", user, fields="access_token"), 32),
        (lambda: sim.graph(f"/{page}/conversations"), 80006),
        (lambda: sim.graph("/me"), 80001),
    ]
    for request, code in cases:
        sim.clock.advance(seconds=1)
        assert request().status_code != 429  # the first of the second is accepted
        refused = request()
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        error = refused.json()["error"]
        assert error["code"] == code and error["message"].startswith(f"(#{code})")


def test_refused_requests_meet_no_fault_rule() -> None:
    plan = FaultPlan.from_mapping(
        {"rules": [{"platform": "zalo", "fault": "http_5xx", "times": 2}]}, source="t.yaml"
    )
    sim = limited(faults=plan, zalo=1)
    assert ping(sim, "zalo").status_code == 503  # accepted, then the rule fires (1 of 2)
    assert ping(sim, "zalo").json()["error"] == -32  # refused before any rule
    sim.clock.advance(seconds=1)
    assert ping(sim, "zalo").status_code == 503  # the rule's second time is still there
    sim.clock.advance(seconds=1)
    assert answered("zalo", ping(sim, "zalo"))
    assert sim.state.rate_counts("zalo") == (3, 1)


# ---- where ceilings come from -----------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "faults.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_fault_plan_section(tmp_path: Path) -> None:
    plan = load_fault_plan(write(tmp_path, "seed: 3\nrate_limits:\n  lazada: 40\n  zalo: 7\n"))
    assert plan.rate_limits == {"lazada": 40, "zalo": 7}
    _, state = build_simulator(seed=3, faults=plan, orders_per_shop=0)
    assert state.rate_limits == {"lazada": 40, "zalo": 7}
    assert load_fault_plan(write(tmp_path, "rate_limits:\n")).rate_limits == {}
    # --rate-limit (here build_simulator's rate_limits) wins over the plan.
    plan = load_fault_plan(write(tmp_path, "rate_limits: {lazada: 40}\n"))
    _, state = build_simulator(seed=3, faults=plan, orders_per_shop=0, rate_limits={"lazada": 9})
    assert state.rate_limits == {"lazada": 9}


@pytest.mark.parametrize(
    ("text", "where", "expected"),
    [
        (
            "seed: 1\nrate_limits:\n  lazada: 40\n  ebay: 3\n",
            ":4: rate_limits.ebay:",
            "not a simulated platform (expected one of shopee, lazada",
        ),
        ("rate_limits:\n  crm: 3\n", ":2: rate_limits.crm:", "not a simulated platform"),
        ("rate_limits: {'*': 3}\n", ":1: rate_limits.*:", "not a simulated platform"),
        (
            "rate_limits:\n  lazada: 0\n",
            ":2: rate_limits.lazada:",
            "whole number of requests per second from 1 to 100000",
        ),
        ("rate_limits:\n  lazada: 100001\n", ":2: rate_limits.lazada:", "from 1 to 100000"),
        ("rate_limits:\n  lazada: 2.5\n", ":2: rate_limits.lazada:", "whole number"),
        ("rate_limits:\n  lazada: yes\n", ":2: rate_limits.lazada:", "whole number"),
        ("rate_limits:\n  lazada: .nan\n", ":2: rate_limits.lazada:", "whole number"),
        ("rate_limits: [lazada]\n", ":1: rate_limits:", "must be a mapping"),
    ],
)
def test_plan_mistakes_name_the_file_and_line(
    tmp_path: Path, text: str, where: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as caught:
        load_fault_plan(path)
    message = str(caught.value)
    assert message.startswith(f"{path}{where} "), message
    assert expected in message, message


def test_the_rate_limit_option() -> None:
    assert parse_rate_limit("lazada=40", NAMES) == ("lazada", 40)
    assert parse_rate_limit(" tiktok = 50 ", NAMES) == ("tiktok", 50)
    for text, reason in [
        ("lazada", "expected PLATFORM=RPS"),
        ("=4", "expected PLATFORM=RPS"),
        ("ebay=4", "no platform 'ebay'"),
        ("lazada=0", "from 1 to 100000"),
        ("lazada=1.5", "from 1 to 100000"),
        ("lazada=-2", "from 1 to 100000"),
        ("lazada=٣", "from 1 to 100000"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_rate_limit(text, NAMES)
    cli = typer.Typer()
    cli.command()(simulator)
    result = CliRunner().invoke(cli, ["--rate-limit", "lazada=40", "--rate-limit", "ebay=3"])
    assert result.exit_code == 3
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--rate-limit ebay=3: no platform 'ebay'" in lines[0]
    started = start_simulator(
        Environment(), SimulatorRequest(rate_limits=("lazada=40", "zalo=5", "lazada=30"))
    )
    try:
        assert started.state.rate_limits == {"lazada": 30, "zalo": 5}
        assert started.notes[-1].endswith(", rate limits lazada 30/s, zalo 5/s (Ctrl-C to stop)")
    finally:
        started.server.sock.close()


# ---- the record --------------------------------------------------------------------------------


def test_the_record_is_thread_safe() -> None:
    rate = RequestRate()
    rate.set_limit(50)
    moment = datetime(2026, 11, 26, 3, 0, 0, tzinfo=NOW.tzinfo)
    results: list[bool] = []
    lock = threading.Lock()

    def hammer() -> None:
        mine = [rate.admit(moment) for _ in range(100)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 50 and rate.counts() == (50, 750)
    assert rate.max_in_window() == 50
    rate.set_limit(None)
    assert all(rate.admit(moment) for _ in range(10)) and rate.counts() == (60, 750)
    with pytest.raises(ValueError, match="1-100000"):
        rate.set_limit(0)
    with pytest.raises(ValueError, match="more than 0"):
        rate.max_in_window(0)


def test_a_real_server_over_real_time() -> None:
    started = start_simulator(Environment(), SimulatorRequest(orders=0, rate_limits=("zalo=5",)))
    started.start_in_thread()
    try:
        state = started.state
        token = state.current("zalo", state.accounts["zalo"][0].account_id, "access")
        assert token is not None
        with httpx.Client(base_url=started.server.url, timeout=10) as client:
            burst = [
                client.get("/zalo/v2.0/oa/getoa", headers={"access_token": token.value}).json()
                for _ in range(12)
            ]
            accepted, refused = state.rate_counts("zalo")
            # A burst on loopback takes well under a second: 5 in, the rest refused.
            assert (accepted, refused) == (5, 7), burst
            assert [b["error"] for b in burst] == [0] * 5 + [-32] * 7
            time.sleep(1.05)
            assert (
                client.get("/zalo/v2.0/oa/getoa", headers={"access_token": token.value}).json()[
                    "error"
                ]
                == 0
            )
            stats = client.get("/_sim/rate-limits", params={"platform": "zalo"}).json()
        assert stats["platforms"]["zalo"] == {
            "limit": 5,
            "accepted": 6,
            "refused": 7,
            "max_in_1s": 5,
        }
        assert state.max_requests_in_window("zalo") == 5
    finally:
        started.stop()
