"""The demo CRM holds what the simulator serves: read back over the simulated APIs and
compared with the rows written to a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.crm_data import DemoSummary, demo_crm, write_demo_crm
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.store.database import DatabaseUrl
from tests.simulator import NOW, call


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Any, SimulatorState, DemoSummary, sqlite3.Connection]]:
    app, state = build_simulator(
        11,
        clock=lambda: NOW,
        accounts_per_platform=2,
        orders_per_shop=10,
        conversations_per_account=12,
        shared_message_ids=1,
    )
    path = tmp_path_factory.mktemp("crm") / "crm.db"
    summary = write_demo_crm(DatabaseUrl("sqlite", path=path), state)
    conn = sqlite3.connect(path)
    yield app, state, summary, conn
    conn.close()


def stored_messages(conn: sqlite3.Connection, channel: str) -> list[tuple[Any, ...]]:
    """(shop id, message id, sender, sent_at, body) of every message row on ``channel``."""
    return conn.execute(
        "SELECT s.external_id, m.external_id, m.sender_external_id, m.sent_at, m.body"
        " FROM messages m JOIN shops s ON s.id = m.shop_id WHERE s.channel = ?",
        (channel,),
    ).fetchall()


def utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def token(state: SimulatorState, platform: str, account: str) -> str:
    current = state.current(platform, account, "access")
    assert current is not None
    return current.value


def test_facebook_messages_in_the_crm_are_the_ones_graph_serves(demo: Any) -> None:
    app, state, _, conn = demo
    served: set[tuple[Any, ...]] = set()
    threads: dict[str, set[str]] = {}
    for page in state.accounts["facebook"]:
        params = {"access_token": token(state, "facebook", page.account_id), "limit": "100"}
        me = call(app, "GET", "/facebook/v21.0/me", params=params).json()
        assert me["id"] == page.account_id
        listed = call(app, "GET", "/facebook/v21.0/me/conversations", params=params).json()
        threads[page.account_id] = {c["id"] for c in listed["data"]}
        for thread in threads[page.account_id]:
            fields = {**params, "fields": "id,created_time,message,from"}
            body = call(app, "GET", f"/facebook/v21.0/{thread}/messages", params=fields).json()
            assert "next" not in body.get("paging", {})
            served |= {
                (page.account_id, m["id"], m["from"]["id"], m["created_time"], m["message"])
                for m in body["data"]
            }
    stored = {
        (shop, mid, sender, utc(sent).strftime("%Y-%m-%dT%H:%M:%S+0000"), text)
        for shop, mid, sender, sent, text in stored_messages(conn, "facebook")
    }
    assert stored == served and len(served) > 50
    for page_id, ids in threads.items():
        in_crm = conn.execute(
            "SELECT DISTINCT c.external_thread_id FROM conversations c"
            " JOIN shops s ON s.id = c.shop_id WHERE s.channel = 'facebook' AND s.external_id = ?",
            (page_id,),
        ).fetchall()
        assert {t for (t,) in in_crm} == ids


def test_zalo_messages_in_the_crm_are_the_ones_the_oa_api_serves(demo: Any) -> None:
    app, state, _, conn = demo
    served: set[tuple[Any, ...]] = set()
    users: set[str] = set()
    for oa in state.accounts["zalo"]:
        headers = {"access_token": token(state, "zalo", oa.account_id)}
        offset = 0
        while True:
            data = json.dumps({"offset": offset, "count": 10})
            page = call(
                app, "GET", "/zalo/v2.0/oa/listrecentchat", headers=headers, params={"data": data}
            ).json()["data"]
            users |= {m["from_id"] if m["src"] == 1 else m["to_id"] for m in page}
            if len(page) < 10:
                break
            offset += 10
        for user in sorted(users):
            data = json.dumps({"user_id": user, "offset": 0, "count": 10})
            answer = call(
                app, "GET", "/zalo/v2.0/oa/conversation", headers=headers, params={"data": data}
            ).json()
            assert answer["error"] == 0, answer
            served |= {
                (oa.account_id, m["message_id"], m["from_id"], m["time"], m["message"])
                for m in answer["data"]
            }
        users.clear()
    stored = {
        (shop, mid, sender, int(utc(sent).timestamp() * 1000), text)
        for shop, mid, sender, sent, text in stored_messages(conn, "zalo")
    }
    assert stored == served and len(served) > 50
    # Zalo has no thread id: the CRM keeps none, and knows each follower by their user id.
    assert conn.execute(
        "SELECT count(*) FROM conversations c JOIN shops s ON s.id = c.shop_id"
        " WHERE s.channel = 'zalo' AND c.external_thread_id IS NOT NULL"
    ).fetchone() == (0,)
    identities = conn.execute(
        "SELECT external_user_id FROM customer_identities WHERE channel = 'zalo'"
    ).fetchall()
    assert {u for (u,) in identities} == {
        c.user_id for oa in state.accounts["zalo"] for c in oa.conversations
    }


def test_the_shared_message_id_is_on_two_shops_once_each(demo: Any) -> None:
    _, _, summary, conn = demo
    shared = conn.execute(
        "SELECT external_id, count(DISTINCT shop_id), count(*) FROM messages"
        " GROUP BY external_id HAVING count(DISTINCT shop_id) > 1"
    ).fetchall()
    assert summary.cross_shop_reuses == len(shared) == 1
    assert shared[0][1:] == (2, 2)  # one row per shop: not a duplicate, and not retried
    assert summary.duplicate_groups > 0


def test_the_demo_crm_is_a_function_of_the_state_and_now() -> None:
    def rows(seed: int) -> Any:
        state = SimulatorState(seed, lambda: NOW, orders_per_shop=5, conversations_per_account=5)
        return demo_crm(state).rows

    assert rows(4) == rows(4)
    assert rows(4) != rows(5)
    state = SimulatorState(4, lambda: NOW, orders_per_shop=5, conversations_per_account=5)
    later = demo_crm(state, now=NOW.replace(hour=9)).rows
    assert later.shops != demo_crm(state).rows.shops  # connected relative to now
    assert [m.external_id for m in later.messages if m.id <= 20] == [
        m.external_id for m in demo_crm(state).rows.messages if m.id <= 20
    ]
    with pytest.raises(ValueError, match="timezone-aware"):
        demo_crm(state, now=datetime(2026, 11, 26))


def test_orders_link_to_the_buyers_who_placed_them(demo: Any) -> None:
    _, state, summary, conn = demo
    linked = conn.execute(
        "SELECT s.external_id, o.external_id, i.external_user_id, i.display_name"
        " FROM orders o JOIN shops s ON s.id = o.shop_id"
        " JOIN customer_identities i ON i.customer_id = o.customer_id AND i.channel = s.channel"
    ).fetchall()
    served = {
        (a.account_id, o.order_id, o.buyer_user_id, o.buyer_name)
        for platform in ("shopee", "lazada", "tiktok")
        for a in state.accounts[platform]
        for o in a.orders
    }
    assert set(linked) == served and len(linked) == summary.orders == 60


def test_write_demo_crm_refuses_an_existing_file(demo: Any, tmp_path: Path) -> None:
    from nfdoctor.errors import UsageError

    _, state, _, _ = demo
    path = tmp_path / "crm.db"
    path.write_bytes(b"keep")
    with pytest.raises(UsageError, match=r"^--db: .*crm.db already exists"):
        write_demo_crm(DatabaseUrl("sqlite", path=path), state, option="--db")
    assert path.read_bytes() == b"keep"
