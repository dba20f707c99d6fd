"""The CRM's webhook receivers with a database: each platform's message event (in the
contract's shape, signed by hand here) becomes one ``messages`` row; probes, other events,
unknown shops and bad signatures become none; the CRM receiver faults of the plan."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.crm import CrmSettings
from nfdoctor.simulator.crm_data import write_demo_crm
from nfdoctor.simulator.faults import FaultPlan
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.store.database import DatabaseUrl
from tests.simulator import NOW, FakeClock, call

TEXT = "Cảm ơn shop, hàng đẹp lắm! Đổi size được không ạ?"
SENT = NOW - timedelta(minutes=5)
TS, MS = int(SENT.timestamp()), int(SENT.timestamp() * 1000)
#: a customer no CRM has met (a new customer and identity are created)
NEW_SENDER = {
    "shopee": "987654321",
    "lazada": "700100200",
    "tiktok": "7000000000000000001",
    "facebook": "6100000000000001",
    "zalo": "5100000000000000001",
}
MESSAGE_IDS = {
    "shopee": "2302748948493123953",
    "lazada": "1zYOS7N0cuIqw96026",
    "tiktok": "7327112393057371911",
    "facebook": "m_AbCdEf0123456789",
    "zalo": "96d3cdf3af150460909",
}
PLATFORMS = tuple(NEW_SENDER)


class FakeSleep:
    """Records the waits instead of taking them; ``on_sleep`` sees the world at that moment."""

    def __init__(self, on_sleep: Callable[[], Any] | None = None) -> None:
        self.calls: list[float] = []
        self.seen: list[Any] = []
        self.on_sleep = on_sleep

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.on_sleep is not None:
            self.seen.append(self.on_sleep())


class Sim:
    """A simulator whose CRM stores into a demo SQLite database."""

    def __init__(self, tmp_path: Path, rules: list[dict[str, Any]], *, database: bool = True):
        self.path = tmp_path / "crm.db"
        self.url = DatabaseUrl("sqlite", path=self.path)
        self.sleep = FakeSleep(self.count_messages)
        plan = FaultPlan.from_mapping({"rules": rules}, source="test.yaml")
        self.app, self.state = build_simulator(
            seed=21,
            faults=plan,
            clock=FakeClock(),
            sleep=self.sleep,
            crm_settings=CrmSettings(database=self.url if database else None),
            orders_per_shop=20,
            conversations_per_account=5,
        )
        write_demo_crm(self.url, self.state)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.path) as conn:
            return conn.execute(sql, params).fetchall()

    def count_messages(self) -> int:
        return int(self.query("SELECT count(*) FROM messages")[0][0])

    def shop(self, platform: str) -> str:
        return self.state.accounts[platform][0].account_id

    def post(
        self, platform: str, body: bytes, *, query: str = "", signed_url: str | None = None
    ) -> Any:
        url = f"http://sim.test/crm/webhooks/{platform}" + (f"?{query}" if query else "")
        headers = sign(self.state, platform, signed_url or url, body)
        return call(
            self.app, "POST", url.removeprefix("http://sim.test"), content=body, headers=headers
        )


def hexmac(key: str, msg: bytes, digest: str = "sha256") -> str:
    return hmac.new(key.encode(), msg, digest).hexdigest()


def sign(state: SimulatorState, platform: str, url: str, body: bytes) -> dict[str, str]:
    """Each platform's signature, computed here from platforms.md (not with verify.py)."""
    if platform == "shopee":
        return {"Authorization": hexmac(state.shopee_partner_key, url.encode() + b"|" + body)}
    if platform in ("lazada", "tiktok"):
        secret = getattr(state, f"{platform}_app_secret")
        key = getattr(state, f"{platform}_app_key")
        return {"Authorization": hexmac(secret, key.encode() + body)}
    if platform == "facebook":
        return {"X-Hub-Signature-256": "sha256=" + hexmac(state.facebook_app_secret, body)}
    timestamp = str(json.loads(body)["timestamp"])
    secret = state.accounts["zalo"][0].extra["oa_secret"]
    mac = hashlib.sha256(state.zalo_app_id.encode() + body + timestamp.encode() + secret.encode())
    return {"X-ZEvent-Signature": "mac=" + mac.hexdigest()}


def utf8(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def message_event(sim: Sim, platform: str, *, shop: str | None = None) -> bytes:
    """The contract's message event of ``platform`` (webhooks-contract.md), by hand."""
    shop = shop or sim.shop(platform)
    sender, mid = NEW_SENDER[platform], MESSAGE_IDS[platform]
    if platform == "shopee":
        content = {
            "message_id": mid,
            "conversation_id": "123456789",
            "from_id": int(sender),
            "to_id": int(shop),
            "from_user_name": "Trần Thị Bình",
            "message_type": "text",
            "content": {"text": TEXT},
            "created_timestamp": TS,
        }
        return utf8(
            {
                "shop_id": int(shop),
                "code": 10,
                "timestamp": TS,
                "data": {"type": "message", "content": content},
            }
        )
    if platform == "lazada":
        data = {
            "session_id": "100200300",
            "message_id": mid,
            "from_account_id": sender,
            "from_account_type": 1,
            "to_account_id": shop,
            "type": 1,
            "template_id": 1,
            "content": json.dumps({"txt": TEXT}, ensure_ascii=False),
            "send_time": MS,
        }
        return utf8(
            {
                "seller_id": shop,
                "message_type": 2,
                "data": data,
                "timestamp": MS,
                "site": "lazada_vn",
            }
        )
    if platform == "tiktok":
        data = {
            "conversation_id": "7300000000000000001",
            "message_id": mid,
            "type": "TEXT",
            "content": json.dumps({"content": TEXT}, ensure_ascii=False),
            "create_time": TS,
            "sender": {"im_user_id": sender, "role": "BUYER"},
        }
        return utf8(
            {
                "type": 14,
                "tts_notification_id": "7327112393057371910",
                "shop_id": shop,
                "timestamp": TS,
                "data": data,
            }
        )
    if platform == "facebook":
        item = {
            "sender": {"id": sender},
            "recipient": {"id": shop},
            "timestamp": MS,
            "message": {"mid": mid, "text": TEXT},
        }
        payload = {"object": "page", "entry": [{"id": shop, "time": MS, "messaging": [item]}]}
        return json.dumps(payload).encode("ascii")  # \uXXXX escapes, as Meta sends
    return utf8(
        {
            "app_id": sim.state.zalo_app_id,
            "sender": {"id": sender},
            "recipient": {"id": shop},
            "user_id_by_app": "552177279717587730",
            "event_name": "user_send_text",
            "message": {"text": TEXT, "msg_id": mid},
            "timestamp": str(MS),
        }
    )


def probe_event(sim: Sim, platform: str) -> bytes:
    """The contract's probe events: acknowledged and dropped, never stored."""
    shop = sim.shop(platform)
    if platform == "shopee":
        return utf8(
            {"shop_id": int(shop), "code": 5, "timestamp": TS, "data": {"title": "Tin mới"}}
        )
    if platform == "lazada":
        return utf8({"seller_id": shop, "message_type": 12, "data": {}, "timestamp": MS})
    if platform == "tiktok":
        return message_event(sim, platform, shop="0")
    if platform == "facebook":
        read = {
            "sender": {"id": "6100"},
            "recipient": {"id": shop},
            "timestamp": MS,
            "read": {"watermark": MS},
        }
        return json.dumps(
            {"object": "page", "entry": [{"id": shop, "time": MS, "messaging": [read]}]}
        ).encode()
    return utf8(
        {
            "app_id": sim.state.zalo_app_id,
            "sender": {"id": shop},
            "recipient": {"id": "5100"},
            "event_name": "user_received_message",
            "message": {"msg_ids": ["abc"]},
            "timestamp": str(MS),
        }
    )


@pytest.fixture
def sim(tmp_path: Path) -> Sim:
    return Sim(tmp_path, [])


def stored_rows(sim: Sim, platform: str) -> list[tuple[Any, ...]]:
    return sim.query(
        "SELECT s.external_id, m.external_id, m.direction, m.sender_external_id, m.body,"
        " m.sent_at, m.received_at, c.customer_id, c.shop_id = m.shop_id"
        " FROM messages m JOIN shops s ON s.id = m.shop_id"
        " JOIN conversations c ON c.id = m.conversation_id"
        " WHERE s.channel = ? AND m.external_id = ?",
        platform,
        MESSAGE_IDS[platform],
    )


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_message_event_becomes_exactly_one_row(sim: Sim, platform: str) -> None:
    before = sim.count_messages()
    customers = sim.query("SELECT count(*) FROM customers")[0][0]
    response = sim.post(platform, message_event(sim, platform))
    assert (response.status_code, response.content) == (200, b"")
    assert sim.count_messages() == before + 1
    [row] = stored_rows(sim, platform)
    shop, mid, direction, sender, body, sent, received, customer, same_shop = row
    assert (shop, mid, direction, sender, body) == (
        sim.shop(platform),
        MESSAGE_IDS[platform],
        "in",
        NEW_SENDER[platform],
        TEXT,  # diacritics intact, Facebook's \\u escapes decoded
    )
    assert same_shop == 1
    assert sent == SENT.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert received == NOW.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # when stored, by the clock
    # A new customer with this channel's identity, in a new conversation on that shop.
    assert sim.query("SELECT count(*) FROM customers")[0][0] == customers + 1
    assert sim.query(
        "SELECT customer_id FROM customer_identities WHERE channel = ? AND external_user_id = ?",
        platform,
        NEW_SENDER[platform],
    ) == [(customer,)]
    [delivery] = sim.state.crm_deliveries
    assert (delivery.outcome, delivery.status, delivery.message_ids) == (
        "stored",
        200,
        (MESSAGE_IDS[platform],),
    )
    assert len(delivery.rows) == 1


def test_a_known_customer_writes_into_their_open_conversation(sim: Sim) -> None:
    page = sim.state.accounts["facebook"][0]
    user = page.conversations[0].user_id
    [(conversation, customer)] = sim.query(
        "SELECT c.id, c.customer_id FROM conversations c JOIN shops s ON s.id = c.shop_id"
        " WHERE s.external_id = ? AND c.external_thread_id = ?",
        page.account_id,
        page.conversations[0].conversation_id,
    )
    status = sim.query("SELECT status FROM conversations WHERE id = ?", conversation)[0][0]
    customers = sim.query("SELECT count(*) FROM customers")[0][0]
    body = message_event(sim, "facebook").replace(NEW_SENDER["facebook"].encode(), user.encode())
    assert sim.post("facebook", body).status_code == 200
    assert sim.query("SELECT count(*) FROM customers")[0][0] == customers
    [(into, owner)] = sim.query(
        "SELECT m.conversation_id, c.customer_id FROM messages m"
        " JOIN conversations c ON c.id = m.conversation_id WHERE m.external_id = ?",
        MESSAGE_IDS["facebook"],
    )
    if status == "closed":
        assert into != conversation  # a closed thread is not reopened: a new one is
    else:
        latest = sim.query(
            "SELECT id FROM conversations WHERE shop_id = (SELECT shop_id FROM conversations"
            " WHERE id = ?) AND customer_id = ? AND status <> 'closed'"
            " ORDER BY COALESCE(last_message_at, created_at) DESC, id DESC LIMIT 1",
            conversation,
            owner,
        )
        assert [(into,)] == latest
    assert owner in {customer} | {
        row[0] for row in sim.query("SELECT merged_into_id FROM customers WHERE id = ?", customer)
    }


def test_facebook_batches_give_one_row_per_message_and_skip_echoes(sim: Sim) -> None:
    page = sim.shop("facebook")

    def item(mid: str, **extra: Any) -> dict[str, Any]:
        message = {"mid": mid, "text": TEXT, **extra}
        return {
            "sender": {"id": "6100000000000009"},
            "recipient": {"id": page},
            "timestamp": MS,
            "message": message,
        }

    payload = {
        "object": "page",
        "entry": [
            {"id": page, "time": MS, "messaging": [item("m_one"), item("m_echo", is_echo=True)]},
            {"id": page, "time": MS, "messaging": [item("m_two")]},
        ],
    }
    assert sim.post("facebook", json.dumps(payload).encode()).status_code == 200
    stored = {
        r[0]
        for r in sim.query(
            "SELECT external_id FROM messages WHERE external_id LIKE 'm\\_%' ESCAPE '\\'"
        )
    }
    assert {"m_one", "m_two"} <= stored and "m_echo" not in stored
    assert sim.state.crm_deliveries[-1].message_ids == ("m_one", "m_two")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_probe_events_are_acknowledged_and_dropped(sim: Sim, platform: str) -> None:
    before = sim.count_messages()
    response = sim.post(platform, probe_event(sim, platform))
    assert (response.status_code, response.content) == (200, b"")
    assert sim.count_messages() == before
    [delivery] = sim.state.crm_deliveries
    assert delivery.accepted and delivery.outcome == "dropped" and not delivery.rows
    expected = "no shop 0 in the CRM" if platform == "tiktok" else "not a message event"
    assert delivery.reason == expected


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_event_for_an_unknown_shop_is_acknowledged_and_dropped(sim: Sim, platform: str) -> None:
    before = sim.count_messages()
    unknown = "4300000000000000009" if platform == "zalo" else "123123123"
    body = message_event(sim, platform, shop=unknown)
    assert sim.post(platform, body).status_code == 200
    assert sim.count_messages() == before
    assert sim.state.crm_deliveries[-1].reason == f"no shop {unknown} in the CRM"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_wrong_signature_is_401_and_no_row(sim: Sim, platform: str) -> None:
    before = sim.count_messages()
    body = message_event(sim, platform)
    headers = {
        k: v[:-2] + ("00" if v[-2:] != "00" else "11")
        for k, v in sign(
            sim.state, platform, "http://sim.test/crm/webhooks/" + platform, body
        ).items()
    }
    response = call(sim.app, "POST", f"/crm/webhooks/{platform}", content=body, headers=headers)
    assert (response.status_code, response.content) == (401, b"")
    assert sim.count_messages() == before
    [delivery] = sim.state.crm_deliveries
    assert (delivery.accepted, delivery.outcome, delivery.status) == (False, "refused", 401)


def test_shopee_signs_the_callback_url_with_its_query_string(sim: Sim) -> None:
    body = message_event(sim, "shopee")
    query = "tenant=ha-my&src=push"
    full = f"http://sim.test/crm/webhooks/shopee?{query}"
    # Signed over the URL without its query: what the CRM used to check. Now refused.
    bare = sim.post("shopee", body, query=query, signed_url="http://sim.test/crm/webhooks/shopee")
    assert bare.status_code == 401
    ok = sim.post("shopee", body, query=query, signed_url=full)
    assert ok.status_code == 200
    assert len(stored_rows(sim, "shopee")) == 1


def test_shopee_public_base_url_keeps_the_query_string(tmp_path: Path) -> None:
    app, state = build_simulator(
        seed=21,
        clock=FakeClock(),
        crm_settings=CrmSettings(public_base_url="https://crm.example.vn/crm/"),
        orders_per_shop=0,
    )
    body = json.dumps({"shop_id": 1, "code": 5, "timestamp": TS, "data": {}}).encode()
    configured = "https://crm.example.vn/crm/webhooks/shopee?k=v"
    headers = sign(state, "shopee", configured, body)
    ok = call(app, "POST", "/crm/webhooks/shopee?k=v", content=body, headers=headers)
    assert ok.status_code == 200
    other = call(app, "POST", "/crm/webhooks/shopee?k=w", content=body, headers=headers)
    assert other.status_code == 401


def test_without_a_database_message_events_are_accepted_not_stored(tmp_path: Path) -> None:
    sim = Sim(tmp_path, [], database=False)
    before = sim.count_messages()
    assert sim.post("lazada", message_event(sim, "lazada")).status_code == 200
    assert sim.count_messages() == before
    delivery = sim.state.crm_deliveries[-1]
    assert (delivery.outcome, delivery.reason) == ("accepted", "no database: not stored")


def test_a_database_error_answers_500_and_is_recorded(tmp_path: Path) -> None:
    sim = Sim(tmp_path, [])
    sim.path.unlink()  # the CRM's database went away
    response = sim.post("zalo", message_event(sim, "zalo"))
    assert response.status_code == 500
    delivery = sim.state.crm_deliveries[-1]
    assert delivery.outcome == "failed" and "database file not found" in delivery.reason
    status = call(sim.app, "GET", "/crm/api/status").json()
    assert status["components"]["database"]["status"] == "degraded"
    assert status["status"] == "degraded"


# --- the CRM receiver faults ---------------------------------------------------------------


def crm_rule(fault: str, endpoint: str = "/webhooks/*", **params: Any) -> dict[str, Any]:
    return {"platform": "crm", "endpoint": endpoint, "fault": fault, **params}


def test_slow_ack_stores_first_then_waits_then_answers(tmp_path: Path) -> None:
    sim = Sim(tmp_path, [crm_rule("slow_ack", "/webhooks/lazada", ms=800)])
    before = sim.count_messages()
    response = sim.post("lazada", message_event(sim, "lazada"))
    assert response.status_code == 200
    assert sim.sleep.calls == [0.8]
    assert sim.sleep.seen == [before + 1]  # the row was there while the CRM kept waiting
    # Only its endpoint: another platform's receiver answers at once.
    sim.post("zalo", message_event(sim, "zalo"))
    assert sim.sleep.calls == [0.8]


def test_latency_still_waits_before_processing(tmp_path: Path) -> None:
    sim = Sim(tmp_path, [crm_rule("latency", ms=300)])
    before = sim.count_messages()
    sim.post("tiktok", message_event(sim, "tiktok"))
    assert sim.sleep.calls == [0.3] and sim.sleep.seen == [before]  # nothing stored yet


@pytest.mark.parametrize("status", [404, 410, 503, 302])
def test_http_status_answers_it_and_stores_nothing(tmp_path: Path, status: int) -> None:
    sim = Sim(tmp_path, [crm_rule("http_status", status=status)])
    before = sim.count_messages()
    response = sim.post("shopee", message_event(sim, "shopee"))
    assert response.status_code == status
    assert sim.count_messages() == before
    delivery = sim.state.crm_deliveries[-1]
    assert (delivery.outcome, delivery.reason) == ("refused", f"fault http_status {status}")
    handshake = call(sim.app, "GET", "/crm/webhooks/facebook", params={"hub.mode": "subscribe"})
    assert handshake.status_code == status


def test_ack_body_answers_200_with_that_body(tmp_path: Path) -> None:
    sim = Sim(tmp_path, [crm_rule("ack_body", text='{"success": true}')])
    response = sim.post("tiktok", message_event(sim, "tiktok"))
    assert (response.status_code, response.text) == (200, '{"success": true}')
    assert len(stored_rows(sim, "tiktok")) == 1


def test_redirect_http_sends_308_to_the_same_path_over_http(tmp_path: Path) -> None:
    sim = Sim(tmp_path, [crm_rule("redirect_http")])
    before = sim.count_messages()
    response = sim.post("zalo", message_event(sim, "zalo"), query="a=1")
    assert response.status_code == 308
    assert response.headers["location"] == "http://sim.test/crm/webhooks/zalo?a=1"
    assert sim.count_messages() == before


def test_unsigned_ok_accepts_any_signature(tmp_path: Path) -> None:
    sim = Sim(tmp_path, [crm_rule("unsigned_ok")])
    body = message_event(sim, "lazada")
    response = call(
        sim.app, "POST", "/crm/webhooks/lazada", content=body, headers={"Authorization": "x"}
    )
    assert response.status_code == 200
    assert len(stored_rows(sim, "lazada")) == 1
    delivery = sim.state.crm_deliveries[-1]
    assert delivery.accepted and "unsigned_ok" in delivery.reason


def handshake(sim: Sim, token: str, challenge: str = "1158201444") -> Any:
    params = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": challenge}
    return call(sim.app, "GET", "/crm/webhooks/facebook", params=params)


@pytest.mark.parametrize(
    ("answer", "text", "media"),
    [
        ("ok", "OK", "text/plain"),
        ("quoted", '"1158201444"', "text/plain"),
        ("json", '{"hub.challenge": "1158201444"}', "application/json"),
    ],
)
def test_wrong_challenge_answers(tmp_path: Path, answer: str, text: str, media: str) -> None:
    sim = Sim(tmp_path, [crm_rule("wrong_challenge", answer=answer)])
    response = handshake(sim, sim.state.facebook_verify_token)
    assert (response.status_code, response.text) == (200, text)
    assert response.headers["content-type"].startswith(media)
    assert handshake(sim, "wrong-token").status_code == 403  # the token is still checked


def test_wrong_challenge_ignore_token_echoes_whatever_the_token(tmp_path: Path) -> None:
    sim = Sim(tmp_path, [crm_rule("wrong_challenge", answer="ignore_token")])
    response = handshake(sim, "not-the-verify-token", "42")
    assert (response.status_code, response.text) == (200, "42")
    (tmp_path / "plain").mkdir()
    plain = Sim(tmp_path / "plain", [])
    assert handshake(plain, "not-the-verify-token").status_code == 403


def test_status_counts_stored_dropped_and_the_platforms_attempts(sim: Sim) -> None:
    sim.post("lazada", message_event(sim, "lazada"))
    sim.post("lazada", probe_event(sim, "lazada"))
    webhooks = call(sim.app, "GET", "/crm/api/status").json()["components"]["webhooks"]
    assert (webhooks["received"], webhooks["stored"], webhooks["dropped"]) == (2, 1, 1)
    assert webhooks["platform_attempts"]["total"] == 0
