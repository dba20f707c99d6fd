"""``nfdoctor sync`` against the simulator on loopback, into its CRM (SQLite).

Every test compares the CRM with the simulator's ground truth: what the platform holds.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from nfdoctor.results import Status
from nfdoctor.store.database import parse_database_url
from nfdoctor.store.inbox import InboundMessage, store_inbound
from nfdoctor.sync.engine import grid_windows
from tests.e2e.sync_helpers import MARKETPLACES, SyncSim, start


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SyncSim]:
    started = start(tmp_path, shops=2, orders=60)
    try:
        yield started
    finally:
        started.started.stop()


def _outcomes(report: object) -> dict[tuple[str, str], dict[str, float]]:
    found = {}
    for result in report.results:  # type: ignore[attr-defined]
        if result.id.endswith(".orders") or result.id.endswith(".messages"):
            found[(result.id, result.subject)] = {m.name: m.value for m in result.metrics}
    return found


def test_a_clean_sync_equals_the_platform_and_a_rerun_changes_nothing(sim: SyncSim) -> None:
    now = sim.state.clock()
    report = sim.run(platform=",".join(MARKETPLACES), since="40d")
    assert report.worst is Status.OK, [(r.id, r.summary, r.details) for r in report.results]
    since = now - timedelta(days=40)
    for platform in MARKETPLACES:
        for account in sim.accounts(platform):
            held = sim.orders(platform, account)
            truth = sim.truth(platform, account, since, sim.state.clock())
            assert held == truth, (platform, account)
    inserted = sum(m["inserted"] for m in _outcomes(report).values())
    assert inserted == sum(len(sim.orders(p, a)) for p in MARKETPLACES for a in sim.accounts(p))
    # Every order's buyer is a customer, each buyer once.
    assert sim.crm(
        "SELECT COUNT(*) FROM orders WHERE customer_id IS NULL AND shop_id IN "
        "(SELECT id FROM shops WHERE channel <> 'lazada')"
    ) == [(0,)]
    again = sim.run(platform=",".join(MARKETPLACES), since="40d")
    assert again.worst is Status.OK
    for counts in _outcomes(again).values():
        assert (counts["inserted"], counts["updated"]) == (0, 0), counts
        assert counts["unchanged"] == counts["fetched"]


def test_a_dry_run_reports_and_writes_nothing(sim: SyncSim) -> None:
    report = sim.run(platform="tiktok", since="40d", dry_run=True)
    assert report.worst is Status.OK
    would = sum(m["inserted"] for m in _outcomes(report).values())
    assert would == sum(
        len(sim.truth("tiktok", a, sim.state.clock() - timedelta(days=40), sim.state.clock()))
        for a in sim.accounts("tiktok")
    )
    assert sim.crm("SELECT COUNT(*) FROM orders") == [(0,)]
    assert sim.crm("SELECT name FROM sqlite_master WHERE name LIKE 'nfdoctor_%'") == []


def test_the_command_line_and_json(sim: SyncSim) -> None:
    result = sim.cli("--platform", "shopee", "--since", "40d", "-o", "json")
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    ids = {r["id"] for r in document["results"]}
    assert ids == {"sync.shopee.orders", "sync.shopee.requests"}
    requests = next(r for r in document["results"] if r["id"] == "sync.shopee.requests")
    metrics = {m["name"]: m["value"] for m in requests["metrics"]}
    assert metrics["requests"] > 0 and metrics["rate_limited"] == 0


def _assert_equals_truth(sim: SyncSim, platforms: tuple[str, ...], since: datetime) -> None:
    for platform in platforms:
        for account in sim.accounts(platform):
            held = sim.orders(platform, account)
            truth = sim.truth(platform, account, since, sim.state.clock())
            assert held == truth, (platform, account, set(held) ^ set(truth))


def test_429s_5xx_and_resets_still_deliver_every_order_once(tmp_path: Path) -> None:
    faults = [
        {"platform": p, "endpoint": e, "fault": kind, "probability": 0.15, **extra}
        for p, e in (
            ("shopee", "/api/v2/order/*"),
            ("lazada", "/rest/orders/get"),
            ("tiktok", "/order/202309/orders/search"),
        )
        for kind, extra in (
            ("http_429", {"retry_after": 1}),
            ("http_5xx", {"status": 503}),
            ("connection_reset", {}),
        )
    ]
    sim = start(tmp_path, shops=2, orders=150, faults=faults)
    try:
        now = sim.state.clock()
        retried = 0
        # A request that fails five times in a row (likely enough here: a fault on 39 % of
        # the calls) leaves its window for the next run, which resumes it.
        for _ in range(4):
            report = sim.run(platform=",".join(MARKETPLACES), since="40d")
            retried += sum(
                next(m.value for m in r.metrics if m.name == "retries")
                for r in report.results
                if r.id.endswith(".requests")
            )
            if report.worst is not Status.CRITICAL:
                break
        assert report.worst is not Status.CRITICAL, [(r.id, r.summary) for r in report.results]
        _assert_equals_truth(sim, MARKETPLACES, now - timedelta(days=40))
        assert retried > 0  # the faults fired, and were retried
        # Each order is in the CRM once (upserts by (shop_id, external_id)).
        assert sim.crm(
            "SELECT COUNT(*) FROM (SELECT shop_id, external_id FROM orders "
            "GROUP BY shop_id, external_id HAVING COUNT(*) > 1)"
        ) == [(0,)]
    finally:
        sim.started.stop()


@pytest.mark.slow
def test_a_range_longer_than_shopees_15_days_and_past_lazadas_5000_offset(
    tmp_path: Path,
) -> None:
    # 25,000 orders in 30 days: a week's window of the Lazada seller holds over 5,000, past
    # the offset Lazada allows (the listing goes on from the last order's update time).
    sim = start(tmp_path, shops=1, orders=25_000)
    try:
        sim.configure(sync={"rate_limits": {"lazada": 300, "shopee": 300}})
        now = sim.state.clock()
        seller = sim.accounts("lazada")[0]
        weeks = grid_windows(now - timedelta(days=40), now, None)
        truth = sim.truth("lazada", seller, now - timedelta(days=40), now)
        (orders,) = [e["orders"] for e in sim.state.ground_truth("lazada", seller)["accounts"]]
        busiest = max(
            sum(1 for o in orders if w.start <= datetime.fromisoformat(o["update_time"]) < w.end)
            for w in weeks
        )
        assert busiest > 5000, busiest
        report = sim.run(platform="lazada", since="40d")
        assert report.worst is Status.OK, [(r.id, r.summary) for r in report.results]
        assert len(sim.orders("lazada", seller)) == len(truth)
        _assert_equals_truth(sim, ("lazada",), now - timedelta(days=40))
        # Shopee: 40 days in windows of at most 15 (here the weekly grid's).
        report = sim.run(platform="shopee", since="40d")
        assert report.worst is Status.OK, [(r.id, r.summary) for r in report.results]
        _assert_equals_truth(sim, ("shopee",), now - timedelta(days=40))
    finally:
        sim.started.stop()


def test_two_shards_on_two_state_directories_equal_one_unsharded_run(tmp_path: Path) -> None:
    whole = start(tmp_path / "whole", shops=10, orders=30)
    split = start(tmp_path / "split", shops=10, orders=30)
    for sim in (whole, split):
        sim.configure(sync={"rate_limits": {"shopee": 200}})
    try:
        whole.run(platform="shopee", since="40d")
        first = split.run(platform="shopee", since="40d", shard="1/2", state_home=tmp_path / "a")
        second = split.run(platform="shopee", since="40d", shard="2/2", state_home=tmp_path / "b")
        shops_first = {r.subject for r in first.results if r.id == "sync.shopee.orders"}
        shops_second = {r.subject for r in second.results if r.id == "sync.shopee.orders"}
        assert shops_first and shops_second and not shops_first & shops_second
        assert len(shops_first | shops_second) == 10
        query = (
            "SELECT s.external_id, o.external_id, o.platform_status, o.total_amount "
            "FROM orders o JOIN shops s ON s.id = o.shop_id ORDER BY 1, 2"
        )
        assert whole.crm(query) == split.crm(query)
    finally:
        whole.started.stop()
        split.started.stop()


def test_an_expired_access_token_is_refreshed_once_and_the_sync_goes_on(tmp_path: Path) -> None:
    faults = [{"platform": "tiktok", "endpoint": "/order/*", "fault": "expired_token", "times": 1}]
    sim = start(tmp_path, shops=1, orders=40, faults=faults)
    try:
        now = sim.state.clock()
        report = sim.run(platform="tiktok", since="40d")
        result = next(r for r in report.results if r.id == "sync.tiktok.orders")
        assert result.status is Status.OK, (result.summary, result.details)
        assert any("refreshed once" in d for d in result.details)
        _assert_equals_truth(sim, ("tiktok",), now - timedelta(days=40))
        assert sim.state.token_event_count("tiktok", "refresh", outcome="issued") == 1
    finally:
        sim.started.stop()


def test_a_shop_whose_authorisation_is_revoked_stops_and_the_others_go_on(tmp_path: Path) -> None:
    sim = start(tmp_path, shops=2, orders=40)
    revoked = sim.accounts("shopee")[1]
    sim.started.stop()
    faults = [{"platform": "shopee", "account": revoked, "fault": "revoked_token"}]
    sim = start(tmp_path / "again", shops=2, orders=40, faults=faults)
    try:
        report = sim.run(platform="shopee", since="40d")
        by_shop = {r.subject.split()[1]: r for r in report.results if r.id == "sync.shopee.orders"}
        assert by_shop[revoked].status is Status.CRITICAL
        assert by_shop[revoked].hint is not None
        other = next(a for a in sim.accounts("shopee") if a != revoked)
        assert by_shop[other].status is Status.OK
        assert len(sim.orders("shopee", other)) > 0 and sim.orders("shopee", revoked) == {}
    finally:
        sim.started.stop()


def _reset(sim: SyncSim) -> None:
    """An empty CRM again, and no trace of earlier runs."""
    with sqlite3.connect(sim.database) as conn:
        conn.execute("DELETE FROM orders")
        for table in [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name LIKE 'nfdoctor_sync_%'"
            )
        ]:
            conn.execute(f"DELETE FROM {table}")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_killed_at_random_points_20_times_then_resumed_equals_the_platform(
    tmp_path: Path,
) -> None:
    sim = start(tmp_path, shops=2, orders=300)
    sim.configure(sync={"rate_limits": {"shopee": 200, "lazada": 200, "tiktok": 200}})
    args = ["--platform", "shopee,lazada,tiktok", "--since", "40d", "-o", "json"]
    env = {**os.environ, "XDG_STATE_HOME": str(sim.home)}
    command = [sys.executable, "-m", "nfdoctor", "sync", *args, "--config", str(sim.config)]
    rng = random.Random(2026)
    try:
        began = time.monotonic()
        assert sim.cli(*args).code == 0
        full = time.monotonic() - began
        resumed_runs = 0
        for _ in range(20):
            _reset(sim)
            now = sim.state.clock()
            killed = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(rng.uniform(0.2, full))
            killed.send_signal(signal.SIGKILL)
            killed.wait(30)
            # No order is ever in the CRM twice, whatever the kill interrupted.
            assert sim.crm(
                "SELECT COUNT(*) FROM (SELECT shop_id, external_id FROM orders "
                "GROUP BY shop_id, external_id HAVING COUNT(*) > 1)"
            ) == [(0,)]
            again = sim.cli(*args)
            assert again.code == 0, again.stderr
            document = json.loads(again.stdout)
            resumed_runs += sum(
                1 for r in document["results"] if any("done before" in d for d in r["details"])
            )
            _assert_equals_truth(sim, MARKETPLACES, now - timedelta(days=40))
        assert resumed_runs > 0  # some kills left finished windows that the next run skipped
    finally:
        sim.started.stop()


@pytest.mark.slow
def test_three_processes_share_the_platforms_rate_limit(tmp_path: Path) -> None:
    sim = start(tmp_path, shops=6, orders=2000, rate_limits=("tiktok=20",))
    sim.configure(sync={"rate_limits": {"tiktok": 20}})
    try:
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "nfdoctor",
                    "sync",
                    "--platform",
                    "tiktok",
                    "--since",
                    "40d",
                    "--shard",
                    f"{i}/3",
                    "--config",
                    str(sim.config),
                    "-o",
                    "json",
                ],
                env={**os.environ, "XDG_STATE_HOME": str(tmp_path / f"host-{i}")},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in (1, 2, 3)
        ]
        outputs = [p.communicate(timeout=300) for p in processes]
        assert [p.returncode for p in processes] == [0, 0, 0], [e[-300:] for _, e in outputs]
        accepted, refused = sim.state.rate_counts("tiktok")
        assert refused == 0
        assert sim.state.max_requests_in_window("tiktok", 1.0) <= 20
        assert accepted > 100  # long enough to measure a rate over several seconds
    finally:
        sim.started.stop()


def _messages(sim: SyncSim, platform: str, account: str) -> dict[str, int]:
    rows = sim.crm(
        "SELECT m.external_id, COUNT(*) FROM messages m JOIN shops s ON s.id = m.shop_id "
        "WHERE s.channel = ? AND s.external_id = ? GROUP BY m.external_id",
        (platform, account),
    )
    return {str(r[0]): int(r[1]) for r in rows}


def _truth_messages(sim: SyncSim, platform: str, account: str) -> list[dict[str, Any]]:
    (entry,) = sim.state.ground_truth(platform, account)["accounts"]
    return list(entry["messages"])


def test_zalo_messages_are_inserted_once_even_while_webhooks_store_them(tmp_path: Path) -> None:
    sim = start(tmp_path, shops=1, orders=10)
    sim.configure(sync={"message_settle": "0s"})
    oa = sim.accounts("zalo")[0]
    truth = _truth_messages(sim, "zalo", oa)
    assert len(truth) > 20
    url = parse_database_url(f"sqlite:///{sim.database}")
    stored: list[str] = []

    def webhooks() -> None:
        # The CRM's receiver storing the customers' messages as their webhooks arrive.
        for message in truth[::3]:
            if not message["from_customer"]:
                continue
            store_inbound(
                url,
                [
                    InboundMessage(
                        channel="zalo",
                        shop_external_id=oa,
                        external_id=message["message_id"],
                        sender_external_id=message["user_id"],
                        sender_name=message["user_name"],
                        body=message["text"],
                        sent_at=datetime.fromisoformat(message["time"]),
                    )
                ],
                clock=lambda: datetime.now(timezone.utc),
            )
            stored.append(message["message_id"])

    try:
        writer = threading.Thread(target=webhooks)
        writer.start()
        report = sim.run(platform="zalo", since="40d")
        writer.join()
        assert report.worst is Status.OK, [(r.id, r.summary) for r in report.results]
        held = _messages(sim, "zalo", oa)
        assert set(held) == {m["message_id"] for m in truth}
        # Sync never adds a copy: a message both wrote is in the CRM twice only if the
        # webhook's copy came after sync's (the CRM's own duplicate).
        for message_id, copies in held.items():
            assert copies <= 2
            if copies == 2:
                assert message_id in stored
        again = sim.run(platform="zalo", since="40d")
        (result,) = [r for r in again.results if r.id == "sync.zalo.messages"]
        assert {m.name: m.value for m in result.metrics}["inserted"] == 0
        assert _messages(sim, "zalo", oa) == held
    finally:
        sim.started.stop()


def test_messages_newer_than_the_settle_window_are_left_to_the_webhooks(tmp_path: Path) -> None:
    sim = start(tmp_path, shops=1, orders=10)
    oa = sim.accounts("zalo")[0]
    try:
        now = sim.state.clock()
        sim.state.add_message("zalo", oa)
        report = sim.run(platform="zalo", since="40d")
        assert report.worst is Status.OK
        settled = {
            m["message_id"]
            for m in _truth_messages(sim, "zalo", oa)
            if datetime.fromisoformat(m["time"]) < now - timedelta(minutes=10)
        }
        fresh = {
            m["message_id"]
            for m in _truth_messages(sim, "zalo", oa)
            if datetime.fromisoformat(m["time"]) >= now - timedelta(minutes=1)
        }
        assert fresh  # the message just added
        held = set(_messages(sim, "zalo", oa))
        assert settled <= held and not fresh & held
    finally:
        sim.started.stop()


def test_diagnose_measures_the_crms_lag_and_names_the_sync_that_catches_up(
    tmp_path: Path,
) -> None:
    sim = start(tmp_path, shops=1, orders=200)  # the CRM has lost every order
    shop = sim.accounts("tiktok")[0]
    try:
        # An order updated an hour ago on the platform, that the CRM never heard of.
        (entry,) = sim.state.ground_truth("tiktok", shop)["accounts"]
        assert entry["orders"]

        def diagnose() -> dict[str, Any]:
            env = {**os.environ, "XDG_STATE_HOME": str(sim.home)}
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "nfdoctor",
                    "diagnose",
                    "--only",
                    "platforms.tiktok.order_sync",
                    "--config",
                    str(sim.config),
                    "-o",
                    "json",
                ],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            (result,) = json.loads(done.stdout)["results"]
            return dict(result)

        lagging = diagnose()
        assert lagging["status"] in ("WARNING", "CRITICAL"), lagging
        assert lagging["next_command"].startswith(
            f"nfdoctor sync --platform tiktok --shop {shop} --since "
        )
        assert any(m["name"] == "lag" and m["value"] > 0 for m in lagging["metrics"])
        sim.run(platform="tiktok", since="1d")
        caught_up = diagnose()
        assert caught_up["status"] == "OK", caught_up
        assert any("last nfdoctor sync: finished" in d for d in caught_up["details"])
    finally:
        sim.started.stop()


def test_facebook_messages_and_what_graph_will_not_read(tmp_path: Path) -> None:
    sim = start(tmp_path, shops=1, orders=10)
    sim.configure(sync={"message_settle": "0s", "rate_limits": {"facebook": 200}})
    page = sim.accounts("facebook")[0]
    try:
        report = sim.run(platform="facebook", since="40d")
        (result,) = [r for r in report.results if r.id == "sync.facebook.messages"]
        assert result.status is Status.OK, (result.summary, result.details)
        held = _messages(sim, "facebook", page)
        truth = {m["message_id"] for m in _truth_messages(sim, "facebook", page)}
        assert held and set(held) <= truth and all(c == 1 for c in held.values())
        # What Graph reads (each conversation's 20 most recent) is synced; the rest is
        # counted as skipped, never silently lost.
        skipped = len(truth) - len(held)
        if skipped:
            assert any(f"{skipped} records" in d for d in result.details), result.details
    finally:
        sim.started.stop()


def test_incremental_runs_start_at_the_bookmark_and_backfills_leave_it(tmp_path: Path) -> None:
    sim = start(tmp_path, shops=1, orders=60)
    shop = sim.accounts("tiktok")[0]
    try:
        first = sim.run(platform="tiktok")
        (result,) = [r for r in first.results if r.id == "sync.tiktok.orders"]
        assert result.status is Status.WARNING and "no incremental bookmark yet" in result.summary
        assert result.next_command and "--update-state" in result.next_command
        assert sim.run(platform="tiktok", since="40d", update_state=True).worst is Status.OK
        # The platform changes: one order moves on, two are new.
        held = sim.orders("tiktok", shop)
        moved = sorted(held)[0]
        sim.state.update_order("tiktok", shop, moved, status="CANCELLED")
        new = [o.order_id for o in sim.state.add_orders("tiktok", shop, 2)]
        incremental = sim.run(platform="tiktok")
        (result,) = [r for r in incremental.results if r.id == "sync.tiktok.orders"]
        counts = {m.name: m.value for m in result.metrics}
        # Only what changed since the bookmark (less its 10-minute overlap) is listed.
        assert counts["fetched"] < 10, counts
        assert (counts["inserted"], counts["updated"]) == (2, 1), counts
        after = sim.orders("tiktok", shop)
        assert after[moved][0] == "CANCELLED" and all(o in after for o in new)
        # A backfill of an old range leaves the bookmark where it is.
        bookmark = sim.crm("SELECT synced_until FROM nfdoctor_sync_bookmarks")
        sim.run(platform="tiktok", since="40d", until="20d")
        assert sim.crm("SELECT synced_until FROM nfdoctor_sync_bookmarks") == bookmark
    finally:
        sim.started.stop()


def test_customers_links_buyers_and_writes_no_orders(sim: SyncSim) -> None:
    before = sim.crm("SELECT COUNT(*) FROM customer_identities")[0][0]
    report = sim.run(platform="tiktok", since="40d", stream="customers")
    assert report.worst is Status.OK, [(r.id, r.summary) for r in report.results]
    assert sim.crm("SELECT COUNT(*) FROM orders") == [(0,)]
    buyers = {
        o["buyer_user_id"]
        for a in sim.accounts("tiktok")
        for o in sim.state.ground_truth("tiktok", a)["accounts"][0]["orders"]
    }
    linked = {
        r[0]
        for r in sim.crm("SELECT external_user_id FROM customer_identities WHERE channel='tiktok'")
    }
    assert buyers <= linked
    assert sim.crm("SELECT COUNT(*) FROM customer_identities")[0][0] >= before


def test_an_order_only_the_crm_has_is_reported_with_every_id_in_json(sim: SyncSim) -> None:
    assert sim.run(platform="shopee", since="40d").worst is Status.OK
    shop_id = sim.crm("SELECT id FROM shops WHERE channel = 'shopee' ORDER BY id LIMIT 1")[0][0]
    now = sim.state.clock().strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    with sqlite3.connect(sim.database) as conn:
        conn.execute(
            "INSERT INTO orders (shop_id, external_id, platform_status, status, total_amount, "
            "currency, created_at, updated_at, synced_at) VALUES (?, 'GHOST1', 'COMPLETED', "
            "'delivered', 1000, 'VND', ?, ?, ?)",
            (shop_id, now, now, now),
        )
    result = sim.cli("--platform", "shopee", "--since", "40d", "-o", "json")
    document = json.loads(result.stdout)
    (ids,) = [
        json.loads(v)
        for k, v in document["extras"].items()
        if k.startswith("sync.validation.shopee.")
    ]
    assert ids["extra"] == ["GHOST1"] and ids["missing"] == []


def test_a_shop_another_run_is_syncing_is_left_to_it(sim: SyncSim) -> None:
    from nfdoctor.store.database import parse_database_url
    from nfdoctor.sync.db import SyncDatabase

    db = SyncDatabase(parse_database_url(f"sqlite:///{sim.database}"), timeout_s=5)
    db.ensure_own_tables()
    shop = sim.accounts("lazada")[0]
    assert db.take_lease(("lazada", shop, "orders"), "nfdoctor sync@other-host:1:aa", 60) is None
    report = sim.run(platform="lazada", shop=shop, since="40d")
    (result,) = [r for r in report.results if r.id == "sync.lazada.orders"]
    assert result.status is Status.WARNING
    assert (
        "another sync of this shop's orders is running (nfdoctor sync@other-host" in result.summary
    )
    assert sim.orders("lazada", shop) == {}
    db.close()


@pytest.mark.parametrize("platform", ["lazada", "tiktok"])
def test_marketplace_chat_is_synced_once(tmp_path: Path, platform: str) -> None:
    sim = start(tmp_path, shops=1, orders=10)
    sim.configure(sync={"message_settle": "0s", "rate_limits": {platform: 200}})
    shop = sim.accounts(platform)[0]
    try:
        truth = {m["message_id"] for m in _truth_messages(sim, platform, shop)}
        assert truth
        report = sim.run(platform=platform, since="40d", stream="messages")
        (result,) = [r for r in report.results if r.id == f"sync.{platform}.messages"]
        assert result.status is Status.OK, (result.summary, result.details)
        held = _messages(sim, platform, shop)
        assert set(held) == truth and all(c == 1 for c in held.values())
        # The buyer who chats is the buyer who orders: one CRM customer per platform user.
        assert sim.crm(
            "SELECT COUNT(*) FROM (SELECT external_user_id FROM customer_identities "
            "WHERE channel = ? GROUP BY external_user_id HAVING COUNT(*) > 1)",
            (platform,),
        ) == [(0,)]
        again = sim.run(platform=platform, since="40d", stream="messages")
        (result,) = [r for r in again.results if r.id == f"sync.{platform}.messages"]
        assert {m.name: m.value for m in result.metrics}["inserted"] == 0
    finally:
        sim.started.stop()


def test_a_healthy_crm_is_left_as_it_is(tmp_path: Path) -> None:
    """The demo CRM, built from what the platforms hold: nothing to insert or update, and
    the CRM's own links (Lazada's orders name no buyer) stay."""
    sim = start(tmp_path, shops=1, orders=80, empty_crm=False)
    try:
        before = sim.crm("SELECT external_id, customer_id, raw FROM orders ORDER BY external_id")
        report = sim.run(platform=",".join(MARKETPLACES), since="40d")
        assert report.worst is Status.OK, [(r.id, r.summary) for r in report.results]
        for result in report.results:
            counts = {m.name: m.value for m in result.metrics}
            if "inserted" in counts:
                assert (counts["inserted"], counts["updated"]) == (0, 0), result.summary
        assert (
            sim.crm("SELECT external_id, customer_id, raw FROM orders ORDER BY external_id")
            == before
        )
    finally:
        sim.started.stop()
