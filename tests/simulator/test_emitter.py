"""The platforms' emitter: events encoded and signed as each platform does, delivered to the
CRM, retried on each platform's schedule (÷ compress), duplicates in the CRM's database when
it acknowledges too slowly; loopback only. In-process with a fake clock where time matters,
and end to end on a loopback server with a real SQLite file or PostgreSQL schema."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from nfdoctor.net.connect import parse_connect_to
from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.crm import CrmSettings
from nfdoctor.simulator.crm_data import write_demo_crm
from nfdoctor.simulator.emitter import (
    TargetRefused,
    WebhookEmitter,
    check_loopback_target,
    emitter_for,
)
from nfdoctor.simulator.faults import FaultPlan
from nfdoctor.simulator.people import CHAT_TEXTS
from nfdoctor.simulator.server import SimulatorServer
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.store.database import DatabaseUrl
from tests.simulator import FakeClock

M, H = 60.0, 3600.0
#: the retry gaps of webhooks-contract.md's table, in seconds (written here, not imported)
SCHEDULES = {
    "shopee": [1 * M, 5 * M, 30 * M],
    "lazada": [30 * M] * 12,
    "tiktok": [2 * M, 30 * M, 3 * H, 12 * H],
    "facebook": [5.0, 30.0, 2 * M],
    "zalo": [30.0, 5 * M, 15 * M, 30 * M, 1 * H],
}
PLATFORMS = tuple(SCHEDULES)
FAIL_ALL = {"platform": "crm", "endpoint": "/webhooks/*", "fault": "http_status", "status": 503}


class Recording(httpx.AsyncBaseTransport):
    """The simulator in-process, keeping every request the emitter made."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


class ClockSleep:
    """Takes no time: moves the simulator's fake clock instead, and remembers the waits."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.now += timedelta(seconds=seconds)


def in_process(
    plan: dict[str, Any], *, shops: int = 1
) -> tuple[SimulatorState, WebhookEmitter, Recording, ClockSleep]:
    clock = FakeClock()
    faults = FaultPlan.from_mapping(plan, source="test.yaml")
    app, state = build_simulator(
        seed=3, faults=faults, clock=clock, accounts_per_platform=shops, orders_per_shop=8
    )
    for name in state.accounts:
        state.webhook_urls[name] = f"http://127.0.0.1:9/crm/webhooks/{name}"
    transport, sleep = Recording(app), ClockSleep(clock)
    assert faults.emitter is not None
    emitter = WebhookEmitter(state, faults.emitter, transport=transport, sleep=sleep)
    return state, emitter, transport, sleep


def run(emitter: WebhookEmitter, *platforms: str, one_by_one: bool = False) -> list[Any]:
    """Emit one event per platform named and wait until every delivery has ended;
    ``one_by_one``: each delivered before the next is made."""

    async def main() -> list[Any]:
        emitted = []
        async with emitter:
            for platform in platforms:
                emitted.append(await emitter.emit(platform))
                if one_by_one:
                    await emitter.drain()
            await emitter.drain()
        return emitted

    return asyncio.run(main())


# --- schedules, signing, encoding (in-process, fake clock) ---------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_failed_deliveries_follow_the_platforms_schedule(platform: str) -> None:
    state, emitter, transport, sleep = in_process(
        {"emitter": {"compress": 1, "platforms": [platform]}, "rules": [FAIL_ALL]}
    )
    [emission] = run(emitter, platform)
    attempts = list(state.webhook_attempts)
    schedule = SCHEDULES[platform]
    assert [a.attempt for a in attempts] == list(range(1, len(schedule) + 2))
    assert [a.outcome for a in attempts] == ["retry"] * len(schedule) + ["gave_up"]
    assert all(a.status == 503 and a.message_id == emission.message_id for a in attempts)
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps == schedule and sleep.calls == schedule
    # The same event every time: identical bytes, identically signed.
    bodies = {r.content for r in transport.requests}
    assert bodies == {emission.body} and len(transport.requests) == len(schedule) + 1
    signatures = {
        tuple(v for k, v in r.headers.items() if "signature" in k or k == "authorization")
        for r in transport.requests
    }
    assert len(signatures) == 1


def test_compress_divides_the_gaps_and_the_plan_may_replace_a_schedule() -> None:
    plan = {
        "emitter": {"compress": 600, "retry_schedule": {"shopee": ["10s", "1m"]}},
        "rules": [FAIL_ALL],
    }
    state, emitter, _, sleep = in_process(plan)
    run(emitter, "lazada", "shopee")
    lazada = [a for a in state.webhook_attempts if a.platform == "lazada"]
    shopee = [a for a in state.webhook_attempts if a.platform == "shopee"]
    assert len(lazada) == 13 and len(shopee) == 3
    assert sorted(sleep.calls) == sorted([3.0] * 12 + [10 / 600, 60 / 600])


def test_zalo_retries_carry_num_retry() -> None:
    _, emitter, transport, _ = in_process({"emitter": {"compress": 1}, "rules": [FAIL_ALL]})
    run(emitter, "zalo")
    assert [r.headers.get("num_retry") for r in transport.requests] == [
        None,
        "1",
        "2",
        "3",
        "4",
        "5",
    ]


def test_tiktok_takes_401_with_an_empty_body_as_answered_lazada_does_not() -> None:
    unauthorized = {
        "platform": "crm",
        "endpoint": "/webhooks/*",
        "fault": "http_status",
        "status": 401,
    }
    state, emitter, _, _ = in_process({"emitter": {"compress": 1}, "rules": [unauthorized]})
    run(emitter, "tiktok", "lazada")
    outcomes = {
        p: [a.outcome for a in state.webhook_attempts if a.platform == p]
        for p in ("tiktok", "lazada")
    }
    assert outcomes["tiktok"] == ["answered"]
    assert outcomes["lazada"] == ["retry"] * 12 + ["gave_up"]


def test_a_healthy_crm_answers_each_first_delivery() -> None:
    state, emitter, _, sleep = in_process({"emitter": {}}, shops=2)
    emitted = run(emitter, *PLATFORMS, *PLATFORMS)
    attempts = list(state.webhook_attempts)
    assert len(attempts) == 10 and all(a.outcome == "answered" and a.attempt == 1 for a in attempts)
    assert sleep.calls == []
    # Each platform's shops in turn; the CRM verified every signature.
    for platform in PLATFORMS:
        shops = [e.account_id for e in emitted if e.platform == platform]
        assert shops == [a.account_id for a in state.accounts[platform]]
    assert all(d.accepted for d in state.crm_deliveries) and len(state.crm_deliveries) == 10
    assert all(e.text in CHAT_TEXTS for e in emitted)


def test_events_are_encoded_as_each_platform_sends_them() -> None:
    _, emitter, transport, _ = in_process({"emitter": {}})
    emitted = {e.platform: e for e in run(emitter, *PLATFORMS)}
    facebook = emitted["facebook"].body
    assert facebook.isascii() and b"\\u" in facebook  # Vietnamese as \uXXXX, lowercase hex
    text = json.loads(facebook)["entry"][0]["messaging"][0]["message"]["text"]
    assert text == emitted["facebook"].text and not text.isascii()
    escapes = [
        facebook[i + 2 : i + 6] for i in range(len(facebook)) if facebook[i : i + 2] == b"\\u"
    ]
    assert escapes and all(e == e.lower() for e in escapes)
    for platform in ("shopee", "lazada", "tiktok", "zalo"):
        assert emitted[platform].text.encode() in emitted[platform].body
        assert not emitted[platform].body.isascii()  # UTF-8, not escaped
    zalo = json.loads(emitted["zalo"].body)
    assert isinstance(zalo["timestamp"], str) and len(zalo["timestamp"]) == 13
    assert all(isinstance(zalo[k]["id"], str) for k in ("sender", "recipient"))
    shopee = json.loads(emitted["shopee"].body)
    assert (
        isinstance(shopee["data"]["content"]["message_id"], str)
        and len(shopee["data"]["content"]["message_id"]) == 19
    )
    signed = {r.url.path.rsplit("/", 1)[1]: r.headers for r in transport.requests}
    assert signed["facebook"]["x-hub-signature-256"].startswith("sha256=")
    assert signed["facebook"]["x-hub-signature"].startswith("sha1=")
    assert signed["zalo"]["x-zevent-signature"].startswith("mac=")
    assert not signed["tiktok"]["authorization"].lower().startswith("bearer")


def test_shopee_gives_up_into_the_lost_push_list() -> None:
    state, emitter, _, _ = in_process({"emitter": {"compress": 1}, "rules": [FAIL_ALL]})
    [emission] = run(emitter, "shopee")
    [lost] = state.lost_pushes("shopee")
    assert lost.event == json.loads(emission.body)
    # Lazada keeps none: it has no lost-push API.
    run_lazada = in_process({"emitter": {"compress": 1}, "rules": [FAIL_ALL]})
    run(run_lazada[1], "lazada")
    assert run_lazada[0].lost_pushes("lazada") == []


def test_registrations_decide_what_is_delivered() -> None:
    plan = {
        "emitter": {},
        "registrations": {
            "facebook": {"subscribed_fields": ["feed"]},
            "tiktok": {"address": None},
            "shopee": {"callback_url": "https://old-crm.example.vn/webhooks/shopee"},
        },
    }
    state, emitter, transport, _ = in_process(plan)
    run(emitter, "facebook", "tiktok", "shopee", "lazada")
    outcome = {a.platform: (a.outcome, a.error or "") for a in state.webhook_attempts}
    assert outcome["facebook"][0] == outcome["tiktok"][0] == "not_sent"
    assert "no webhook registered" in outcome["tiktok"][1]
    assert outcome["shopee"][0] == "not_sent" and "loopback only" in outcome["shopee"][1]
    assert outcome["lazada"] == ("answered", "")
    assert [r.url.path for r in transport.requests] == ["/crm/webhooks/lazada"]


@pytest.mark.parametrize(
    ("url", "rules"),
    [
        ("http://192.0.2.10/crm/webhooks/lazada", []),
        ("https://8.8.8.8:443/", []),
        ("http://localhost:8080/crm", []),  # a name: it would need DNS
        ("https://lazada.crm.nfdoctor.test/crm/webhooks/lazada", []),
        ("https://lazada.crm.nfdoctor.test/x", ["lazada.crm.nfdoctor.test:443:192.168.1.5:8443"]),
        ("https://lazada.crm.nfdoctor.test/x", ["other.test:443:127.0.0.1:8443"]),
        ("ftp://127.0.0.1/x", []),
        ("not a url", []),
    ],
)
def test_targets_that_are_not_loopback_are_refused(url: str, rules: list[str]) -> None:
    with pytest.raises(TargetRefused):
        check_loopback_target(url, [parse_connect_to(r) for r in rules])


def test_loopback_targets_are_allowed_after_connect_to() -> None:
    rule = parse_connect_to("zalo.crm.nfdoctor.test:443:127.0.0.1:41235")
    assert check_loopback_target("https://zalo.crm.nfdoctor.test/crm/webhooks/zalo", [rule]) == (
        "127.0.0.1",
        41235,
    )
    assert check_loopback_target("http://[::1]:8080/x") == ("::1", 8080)
    assert check_loopback_target("http://127.0.0.2/x") == ("127.0.0.2", 80)


def test_the_emitter_never_sends_to_a_real_host() -> None:
    # compress at its most: were the target not refused, the retries would still end soon.
    faults = FaultPlan.from_mapping({"emitter": {"compress": 10_000_000}}, source="t.yaml")
    _, state = build_simulator(seed=3, faults=faults, orders_per_shop=2)
    state.webhook_urls["lazada"] = "http://192.0.2.10/crm/webhooks/lazada"
    emitter = emitter_for(state)  # the real transport: nothing to intercept it
    assert emitter is not None
    started = time.monotonic()
    run(emitter, "lazada")
    [attempt] = state.webhook_attempts
    assert attempt.outcome == "not_sent" and attempt.error is not None
    assert attempt.error.startswith("refused: ") and attempt.status is None
    assert time.monotonic() - started < 1  # refused before any connection attempt


# --- end to end on loopback, with a database --------------------------------------------------


@contextlib.contextmanager
def served(
    plan: dict[str, Any], database: DatabaseUrl, **kwargs: Any
) -> Iterator[tuple[SimulatorState, SimulatorServer]]:
    faults = FaultPlan.from_mapping(plan, source="test.yaml")
    app, state = build_simulator(
        seed=5,
        faults=faults,
        crm_settings=CrmSettings(database=database),
        orders_per_shop=10,
        conversations_per_account=3,
        **kwargs,
    )
    write_demo_crm(database, state)
    server = SimulatorServer(app, port=0, state=state)
    server.start_in_thread()
    for name in state.accounts:
        state.webhook_urls[name] = f"{server.url}/crm/webhooks/{name}"
    try:
        yield state, server
    finally:
        server.stop()


def deliver(state: SimulatorState, *platforms: str, one_by_one: bool = False) -> list[Any]:
    assert state.fault_plan is not None and state.fault_plan.emitter is not None
    emitter = WebhookEmitter(state, state.fault_plan.emitter)
    return run(emitter, *platforms, one_by_one=one_by_one)


def rows_of(query: Any, platform: str, account_id: str, message_id: str) -> list[tuple[Any, ...]]:
    # The ids are the simulator's own (digits, letters): safe to inline for both backends.
    return query(
        "SELECT m.id, m.body, m.received_at FROM messages m JOIN shops s ON s.id = m.shop_id"
        f" WHERE s.channel = '{platform}' AND s.external_id = '{account_id}'"
        f" AND m.external_id = '{message_id}' ORDER BY m.id"
    )


def sqlite_query(path: Path) -> Any:
    def query(sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute(sql).fetchall()

    return query


def test_healthy_receivers_store_exactly_one_row_per_message(tmp_path: Path) -> None:
    database = DatabaseUrl("sqlite", path=tmp_path / "crm.db")
    with served({"emitter": {}}, database, accounts_per_platform=2) as (state, _):
        # One at a time: ten at once could queue one past Lazada's 500 ms on a slow machine.
        emitted = deliver(state, *PLATFORMS, *PLATFORMS, one_by_one=True)
    query = sqlite_query(tmp_path / "crm.db")
    for emission in emitted:
        rows = rows_of(query, emission.platform, emission.account_id, emission.message_id)
        assert [r[1] for r in rows] == [emission.text]  # one row, the text with diacritics
    attempts = list(state.webhook_attempts)
    assert len(attempts) == 10
    assert all(a.outcome == "answered" and a.attempt == 1 and a.status == 200 for a in attempts)
    assert [d.outcome for d in state.crm_deliveries] == ["stored"] * 10


def assert_slow_ack_duplicates(state: SimulatorState, emission: Any, query: Any) -> None:
    attempts = [a for a in state.webhook_attempts if a.message_id == emission.message_id]
    assert [a.outcome for a in attempts] == ["retry", "retry", "answered"]
    assert attempts[0].error == attempts[1].error == "no answer within 0.5 s"
    assert all(a.latency_s >= 0.5 for a in attempts[:2]) and attempts[2].latency_s < 0.5
    rows = rows_of(query, "lazada", emission.account_id, emission.message_id)
    assert len(rows) == 3  # the CRM stored each delivery: two duplicates
    assert {r[1] for r in rows} == {emission.text}
    received = [
        r[2] if isinstance(r[2], datetime) else datetime.fromisoformat(r[2].replace("Z", "+00:00"))
        for r in rows
    ]
    assert received[0] < received[1] < received[2]


SLOW_LAZADA = {
    "emitter": {"platforms": ["lazada"], "compress": 36000},  # 30 min -> 50 ms
    "rules": [
        {
            "platform": "crm",
            "endpoint": "/webhooks/lazada",
            "fault": "slow_ack",
            "ms": 800,
            "times": 2,
        }
    ],
}


def test_slow_ack_makes_lazada_retry_and_the_crm_store_duplicates_sqlite(tmp_path: Path) -> None:
    database = DatabaseUrl("sqlite", path=tmp_path / "crm.db")
    with served(SLOW_LAZADA, database) as (state, _):
        [emission] = deliver(state, "lazada")
    assert_slow_ack_duplicates(state, emission, sqlite_query(tmp_path / "crm.db"))


def test_slow_ack_makes_lazada_retry_and_the_crm_store_duplicates_postgres(pg_schema: Any) -> None:
    database = DatabaseUrl("postgresql", dsn=pg_schema.url)
    with served(SLOW_LAZADA, database) as (state, _):
        [emission] = deliver(state, "lazada")

    def query(sql: str) -> list[tuple[Any, ...]]:
        with pg_schema.connect() as conn:
            return list(conn.execute(sql).fetchall())

    assert_slow_ack_duplicates(state, emission, query)


def test_real_time_gaps_match_the_schedule_divided_by_compress(tmp_path: Path) -> None:
    compress = 100000.0
    plan = {"emitter": {"platforms": ["zalo", "tiktok"], "compress": compress}, "rules": [FAIL_ALL]}
    database = DatabaseUrl("sqlite", path=tmp_path / "crm.db")
    with served(plan, database) as (state, _):
        deliver(state, "zalo", "tiktok")
    for platform in ("zalo", "tiktok"):
        attempts = [a for a in state.webhook_attempts if a.platform == platform]
        assert len(attempts) == len(SCHEDULES[platform]) + 1
        for previous, attempt, gap in zip(
            attempts, attempts[1:], SCHEDULES[platform], strict=False
        ):
            waited = (attempt.at - previous.at).total_seconds() - previous.latency_s
            expected = gap / compress
            assert expected - 0.002 <= waited <= expected + 0.25, (
                platform,
                attempt.attempt,
                waited,
            )


def test_started_in_its_own_thread_it_emits_until_stopped(tmp_path: Path) -> None:
    database = DatabaseUrl("sqlite", path=tmp_path / "crm.db")
    plan = {"emitter": {"every": "50ms", "platforms": ["facebook", "zalo"]}}
    with served(plan, database) as (state, _):
        emitter = emitter_for(state)
        assert emitter is not None
        emitter.start()
        assert emitter.running
        deadline = time.monotonic() + 5
        while sum(a.outcome == "answered" for a in state.webhook_attempts) < 6:
            assert time.monotonic() < deadline, list(state.webhook_attempts)
            time.sleep(0.02)
        stopping = time.monotonic()
        emitter.stop()
        assert time.monotonic() - stopping < 2
        assert not emitter.running
        count = len(state.webhook_attempts)
        time.sleep(0.15)
        assert len(state.webhook_attempts) == count  # stopped: nothing more is sent
    query = sqlite_query(tmp_path / "crm.db")
    answered = [a for a in state.webhook_attempts if a.outcome == "answered"]
    for attempt in answered:
        assert len(rows_of(query, attempt.platform, attempt.account_id, attempt.message_id)) == 1
    platforms = {a.platform for a in answered}
    assert platforms == {"facebook", "zalo"}


def test_status_reports_the_platforms_attempts(tmp_path: Path) -> None:
    database = DatabaseUrl("sqlite", path=tmp_path / "crm.db")
    plan = {"emitter": {"compress": 36000, "platforms": ["facebook"]}, "rules": [FAIL_ALL]}
    with served(plan, database) as (state, server):
        deliver(state, "facebook")
        status = httpx.get(server.url + "/crm/api/status", timeout=5, trust_env=False).json()
    attempts = status["components"]["webhooks"]["platform_attempts"]
    assert attempts == {"total": 4, "answered": 0, "retried": 3, "gave_up": 1, "not_sent": 0}
