"""The marketplaces' chat: Lazada IM (§3.9) and TikTok Shop customer service (§4.9).

Shapes and limits of the four endpoints, paging to the end, the ground truth equal to what
they serve, messages added while the server runs, and the seeded data that must not move.
Requests are signed by hand (``Sim`` of test_sync_endpoints), never with nfdoctor.platforms.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.crm_data import demo_crm
from tests.simulator import NOW, FakeClock, call
from tests.simulator.test_sync_endpoints import Sim, make_sim

SESSIONS = "/im/session/list"
MESSAGES = "/im/message/list"
CONVERSATIONS = "/customer_service/202309/conversations"


@pytest.fixture
def sim() -> Sim:
    return make_sim()


def now_ms(sim: Sim) -> int:
    return int(sim.clock().timestamp() * 1000)


def truth_chats(sim: Sim, platform: str, index: int = 0) -> dict[str, list[dict[str, Any]]]:
    """conversation id -> its messages (oldest first), conversations newest first."""
    (entry,) = sim.state.ground_truth(platform, sim.account(platform, index))["accounts"]
    chats: dict[str, list[dict[str, Any]]] = {}
    for message in entry["messages"]:
        chats.setdefault(message["conversation_id"], []).append(message)
    return chats


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


# ---- Lazada ----------------------------------------------------------------------------------


def lazada_sessions(sim: Sim, index: int = 0, page_size: int = 2) -> list[dict[str, Any]]:
    sessions: list[dict[str, Any]] = []
    params = {"start_time": str(now_ms(sim)), "page_size": str(page_size)}
    for _ in range(100):
        body = sim.lazada(SESSIONS, index, **params).json()
        assert body["code"] == "0" and body["success"] is True, body
        data = body["data"]
        assert len(data["session_list"]) <= page_size
        sessions += data["session_list"]
        if not data["has_more"]:
            return sessions
        params["start_time"] = str(data["next_start_time"])
        params["last_session_id"] = data["last_session_id"]
    raise AssertionError("the session list never ended")


def lazada_messages(
    sim: Sim, session_id: str, index: int = 0, page_size: int = 3
) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    params = {"session_id": session_id, "start_time": str(now_ms(sim)), "page_size": str(page_size)}
    for _ in range(100):
        body = sim.lazada(MESSAGES, index, **params).json()
        assert body["code"] == "0" and body["success"] is True, body
        data = body["data"]
        assert len(data["message_list"]) <= page_size
        messages += data["message_list"]
        if not data["has_more"]:
            return messages
        assert data["last_message_id"] == data["message_list"][-1]["message_id"]
        params["start_time"] = str(data["next_start_time"])
        params["last_message_id"] = data["last_message_id"]
    raise AssertionError("the message list never ended")


def test_lazada_session_list_pages_to_the_end_newest_first(sim: Sim) -> None:
    for index in (0, 1):
        truth = truth_chats(sim, "lazada", index)
        assert len(truth) >= 3
        sessions = lazada_sessions(sim, index, page_size=2)
        assert [s["session_id"] for s in sessions] == list(truth)
        seller = sim.account("lazada", index)
        for session in sessions:
            last = truth[session["session_id"]][-1]
            assert session["buyer_id"] == last["user_id"] and isinstance(session["buyer_id"], str)
            assert session["title"] == last["user_name"]
            assert session["last_message_id"] == last["message_id"]
            assert session["last_message_time"] == ms(last["time"])
            assert isinstance(session["unread_count"], int) and session["unread_count"] >= 0
            assert session["buyer_id"] != seller
        times = [s["last_message_time"] for s in sessions]
        assert times == sorted(times, reverse=True)
    # one page of at most 20 holds them all
    one = sim.lazada(SESSIONS, start_time=str(now_ms(sim))).json()["data"]
    assert one["has_more"] is False and len(one["session_list"]) == len(truth_chats(sim, "lazada"))


def test_lazada_message_list_pages_back_in_time(sim: Sim) -> None:
    truth = truth_chats(sim, "lazada")
    seller = sim.account("lazada")
    for session_id, expected in truth.items():
        served = lazada_messages(sim, session_id, page_size=3)
        assert [m["message_id"] for m in served] == [m["message_id"] for m in reversed(expected)]
        for m, t in zip(served, reversed(expected), strict=True):
            assert isinstance(m["message_id"], str) and m["session_id"] == session_id
            assert m["send_time"] == ms(t["time"]) and isinstance(m["send_time"], int)
            assert json.loads(m["content"]) == {"txt": t["text"]}
            assert (m["type"], m["template_id"], m["status"]) == (1, 1, 0)
            if t["from_customer"]:
                assert (m["from_account_type"], m["from_account_id"]) == (1, t["user_id"])
                assert m["to_account_id"] == seller
            else:
                assert (m["from_account_type"], m["from_account_id"]) == (2, seller)
                assert m["to_account_id"] == t["user_id"]
    # page 1 from a start_time in the past: only what was sent by then
    session_id, expected = next(iter(truth.items()))
    cut = ms(expected[0]["time"])
    body = sim.lazada(MESSAGES, session_id=session_id, start_time=str(cut)).json()
    assert [m["message_id"] for m in body["data"]["message_list"]] == [
        m["message_id"] for m in reversed(expected) if ms(m["time"]) <= cut
    ]


def test_lazada_im_limits_and_errors(sim: Sim) -> None:
    start = str(now_ms(sim))
    session_id = next(iter(truth_chats(sim, "lazada")))
    for path, extra in ((SESSIONS, {}), (MESSAGES, {"session_id": session_id})):
        for size in ("21", "0", "x"):
            response = sim.lazada(path, start_time=start, page_size=size, **extra)
            body = response.json()
            assert response.status_code == 200
            assert (body["code"], body["success"], body["err_code"]) == (
                "InvalidParameter",
                False,
                "InvalidParameter",
            )
            assert "page_size" in body["message"]
        assert sim.lazada(path, start_time=start, page_size="20", **extra).json()["code"] == "0"
        missing = sim.lazada(path, **extra).json()
        assert missing["code"] == "MissingParameter" and "start_time" in missing["message"]
    no_session = sim.lazada(MESSAGES, start_time=start).json()
    assert no_session["code"] == "MissingParameter"
    # another seller's session, or one that does not exist
    other = next(iter(truth_chats(sim, "lazada", 1)))
    for wrong in (other, "123"):
        body = sim.lazada(MESSAGES, session_id=wrong, start_time=start).json()
        assert body["code"] == "InvalidParameter" and body["success"] is False
    # checked as every Lazada seller API: an app the gateway does not know
    bad = sim.lazada(SESSIONS, start_time=start, app_key="1")
    assert bad.status_code == 200 and bad.json()["code"] == "IncompleteSignature"


def test_lazada_expired_token_and_rate_limit(sim: Sim) -> None:
    start = str(now_ms(sim))
    sim.state.set_rate_limit("lazada", 1)
    assert sim.lazada(SESSIONS, start_time=start).json()["code"] == "0"
    limited = sim.lazada(SESSIONS, start_time=start)
    assert limited.status_code == 200 and limited.json()["code"] == "ApiCallLimit"
    assert sim.state.rate_counts("lazada") == (1, 1)
    sim.clock.advance(seconds=2)
    sim.state.set_rate_limit("lazada", None)
    sim.state.age_token("lazada", sim.account("lazada"), expires_in=timedelta(seconds=-1))
    expired = sim.lazada(SESSIONS, start_time=str(now_ms(sim))).json()
    assert expired["code"] == "IllegalAccessToken"


# ---- TikTok ----------------------------------------------------------------------------------


def tiktok_conversations(sim: Sim, index: int = 0, page_size: int = 3) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    query = {"page_size": str(page_size)}
    for _ in range(100):
        response = sim.tiktok("GET", CONVERSATIONS, index, query=query)
        body = response.json()
        assert response.status_code == 200 and body["code"] == 0, body
        assert len(body["data"]["conversations"]) <= page_size
        listed += body["data"]["conversations"]
        token = body["data"]["next_page_token"]
        if token == "":
            return listed
        query["page_token"] = token
    raise AssertionError("the conversation list never ended")


def tiktok_messages(
    sim: Sim, conversation_id: str, index: int = 0, page_size: int = 4, order: str = "DESC"
) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    query = {
        "page_size": str(page_size),
        "sort_field": "create_time",
        "sort_order": order,
    }
    path = f"{CONVERSATIONS}/{conversation_id}/messages"
    for _ in range(100):
        response = sim.tiktok("GET", path, index, query=query)
        body = response.json()
        assert response.status_code == 200 and body["code"] == 0, body
        assert len(body["data"]["messages"]) <= page_size
        listed += body["data"]["messages"]
        token = body["data"]["next_page_token"]
        if token == "":
            return listed
        query["page_token"] = token
    raise AssertionError("the message list never ended")


def test_tiktok_conversations_page_to_the_end(sim: Sim) -> None:
    for index in (0, 1):
        truth = truth_chats(sim, "tiktok", index)
        shop = sim.state.accounts["tiktok"][index]
        listed = tiktok_conversations(sim, index, page_size=2)
        assert [c["id"] for c in listed] == list(truth)
        for conversation in listed:
            messages = truth[conversation["id"]]
            buyer = messages[0]["user_id"]
            assert conversation["participant_count"] == 2
            assert conversation["can_send_message"] is True
            assert isinstance(conversation["unread_count"], int)
            assert conversation["create_time"] == ms(messages[0]["time"]) // 1000
            assert conversation["participants"] == [
                {
                    "im_user_id": buyer,
                    "user_id": buyer,
                    "role": "BUYER",
                    "nickname": messages[0]["user_name"],
                    "avatar": "",
                },
                {
                    "im_user_id": shop.account_id,
                    "user_id": shop.account_id,
                    "role": "SHOP",
                    "nickname": shop.name,
                    "avatar": "",
                },
            ]
            latest = conversation["latest_message"]
            assert latest["id"] == messages[-1]["message_id"]
            assert latest["create_time"] == ms(messages[-1]["time"]) // 1000


def test_tiktok_messages_page_both_ways(sim: Sim) -> None:
    truth = truth_chats(sim, "tiktok")
    shop = sim.account("tiktok")
    for conversation_id, expected in truth.items():
        newest_first = tiktok_messages(sim, conversation_id, page_size=3)
        assert [m["id"] for m in newest_first] == [m["message_id"] for m in reversed(expected)]
        oldest_first = tiktok_messages(sim, conversation_id, page_size=10, order="ASC")
        assert [m["id"] for m in oldest_first] == [m["message_id"] for m in expected]
        for m, t in zip(oldest_first, expected, strict=True):
            assert len(m["id"]) == 19 and m["id"].isdigit()
            assert m["type"] == "TEXT" and m["is_visible"] is True
            assert json.loads(m["content"]) == {"content": t["text"]}
            assert m["create_time"] == ms(t["time"]) // 1000
            assert m["index"] == str(ms(t["time"]))
            sender = t["user_id"] if t["from_customer"] else shop
            role = "BUYER" if t["from_customer"] else "SHOP"
            assert (m["sender"]["im_user_id"], m["sender"]["role"]) == (sender, role)
        by_index = sim.tiktok(
            "GET",
            f"{CONVERSATIONS}/{conversation_id}/messages",
            query={"page_size": "10", "sort_field": "index"},
        ).json()["data"]["messages"]
        assert [m["id"] for m in by_index] == [m["message_id"] for m in reversed(expected)][:10]


def test_tiktok_customer_service_limits_and_errors(sim: Sim) -> None:
    conversation_id = next(iter(truth_chats(sim, "tiktok")))
    path = f"{CONVERSATIONS}/{conversation_id}/messages"
    for endpoint, most in ((CONVERSATIONS, 20), (path, 10)):
        for size in (str(most + 1), "0", "", "x"):
            response = sim.tiktok("GET", endpoint, query={"page_size": size})
            assert response.status_code == 400 and response.json()["code"] == 40006
        ok = sim.tiktok("GET", endpoint, query={"page_size": str(most)})
        assert ok.status_code == 200 and ok.json()["code"] == 0
        no_cipher = sim.tiktok("GET", endpoint, query={"page_size": "5"}, shop_scoped=False)
        assert no_cipher.json()["code"] == 106013
        bad_token = sim.tiktok("GET", endpoint, query={"page_size": "5", "page_token": "!!"})
        assert bad_token.status_code == 400 and bad_token.json()["code"] == 40006
    for query in ({"sort_field": "update_time"}, {"sort_order": "UP"}):
        bad = sim.tiktok("GET", path, query={"page_size": "5", **query})
        assert bad.status_code == 400 and bad.json()["code"] == 40006
    # another shop's conversation
    other = next(iter(truth_chats(sim, "tiktok", 1)))
    wrong = sim.tiktok("GET", f"{CONVERSATIONS}/{other}/messages", query={"page_size": "5"})
    assert wrong.status_code == 400 and wrong.json()["code"] == 40006
    # checked as every TikTok API: an unknown app key, an expired token
    unknown = sim.tiktok("GET", CONVERSATIONS, query={"page_size": "5", "app_key": "6x"})
    assert unknown.status_code == 401 and unknown.json()["code"] == 36009004
    sim.state.age_token("tiktok", sim.account("tiktok"), expires_in=timedelta(seconds=-1))
    expired = sim.tiktok("GET", CONVERSATIONS, query={"page_size": "5"})
    assert expired.status_code == 401 and expired.json()["code"] == 105002


def test_tiktok_rate_limit_counts_customer_service(sim: Sim) -> None:
    sim.state.set_rate_limit("tiktok", 1)
    assert sim.tiktok("GET", CONVERSATIONS, query={"page_size": "5"}).status_code == 200
    limited = sim.tiktok("GET", CONVERSATIONS, query={"page_size": "5"})
    assert limited.status_code == 429 and limited.json()["code"] == 36009002
    assert sim.state.rate_counts("tiktok") == (1, 1)


# ---- ground truth, changes, seeded data ------------------------------------------------------


def test_ground_truth_has_messages_beside_orders(sim: Sim) -> None:
    for platform in ("lazada", "tiktok"):
        for entry in sim.state.ground_truth(platform)["accounts"]:
            assert len(entry["orders"]) == 120
            buyers = {o["buyer_user_id"] for o in entry["orders"]}
            messages = entry["messages"]
            assert messages
            for message in messages:
                assert set(message) == {
                    "message_id",
                    "conversation_id",
                    "user_id",
                    "user_name",
                    "from_customer",
                    "sender_id",
                    "text",
                    "time",
                }
                sent = datetime.fromisoformat(message["time"])
                assert NOW - timedelta(days=30) <= sent <= NOW
                assert message["sender_id"] == (
                    message["user_id"] if message["from_customer"] else entry["account_id"]
                )
            # buyers of the shop's orders, and both sides in every chat
            assert {m["user_id"] for m in messages} <= buyers
            by_chat: dict[str, set[bool]] = {}
            for m in messages:
                by_chat.setdefault(m["conversation_id"], set()).add(m["from_customer"])
            assert all(sides == {True, False} for sides in by_chat.values())
            assert len(by_chat) >= 3
    served = call(sim.app, "GET", "/_sim/ground-truth", params={"platform": "lazada"}).json()
    assert served == json.loads(json.dumps(sim.state.ground_truth("lazada")))


@pytest.mark.parametrize("platform", ["lazada", "tiktok"])
def test_add_message_shows_in_the_lists(sim: Sim, platform: str) -> None:
    account = sim.account(platform)
    last = list(truth_chats(sim, platform))[-1]
    sim.clock.advance(minutes=5)
    conversation, message = sim.state.add_message(
        platform, account, text="Shop ơi, đơn của mình tới đâu rồi?", user_id=None
    )
    reply_conversation, reply = sim.state.add_message(
        platform, account, user_id=conversation.user_id, from_customer=False, text="Dạ đang giao"
    )
    assert reply_conversation is conversation and conversation.conversation_id not in (last,)
    older_conversation, older = sim.state.add_message(
        platform,
        account,
        user_id=sim.state.accounts[platform][0].chats[-1].user_id,
        text="Còn mình thì sao?",
    )
    truth = truth_chats(sim, platform)
    assert list(truth)[:2] == [older_conversation.conversation_id, conversation.conversation_id]
    assert [m["message_id"] for m in truth[conversation.conversation_id]] == [
        message.message_id,
        reply.message_id,
    ]
    assert truth[older_conversation.conversation_id][-1]["message_id"] == older.message_id
    if platform == "lazada":
        assert [s["session_id"] for s in lazada_sessions(sim)] == list(truth)
        served = lazada_messages(sim, conversation.conversation_id)
        assert [m["message_id"] for m in served] == [reply.message_id, message.message_id]
        assert served[0]["from_account_type"] == 2
    else:
        assert [c["id"] for c in tiktok_conversations(sim)] == list(truth)
        served = tiktok_messages(sim, conversation.conversation_id)
        assert [m["id"] for m in served] == [reply.message_id, message.message_id]
        assert served[0]["sender"]["role"] == "SHOP"
    with pytest.raises(KeyError):
        sim.state.add_message(platform, "1")


def test_tiktok_message_pages_do_not_move_when_a_message_arrives(sim: Sim) -> None:
    conversation = max(sim.state.accounts["tiktok"][0].chats, key=lambda c: len(c.messages))
    expected = [m.message_id for m in reversed(conversation.messages)]
    path = f"{CONVERSATIONS}/{conversation.conversation_id}/messages"
    first = sim.tiktok("GET", path, query={"page_size": "1"}).json()["data"]
    sim.clock.advance(seconds=10)
    sim.state.add_message("tiktok", sim.account("tiktok"), user_id=conversation.user_id)
    served = [m["id"] for m in first["messages"]]
    query = {"page_size": "10", "page_token": first["next_page_token"]}
    served += [m["id"] for m in sim.tiktok("GET", path, query=query).json()["data"]["messages"]]
    assert served == expected[:11]


def test_chats_leave_the_seeded_data_and_the_demo_crm_as_they_were() -> None:
    _, state = build_simulator(7, clock=FakeClock())
    lazada, tiktok = state.accounts["lazada"][0], state.accounts["tiktok"][0]
    # pinned before the chats existed: ids, orders and tokens of the main stream
    assert lazada.orders[0].order_id == "448174261068917"
    assert tiktok.orders[0].order_id == "576536920926927343"
    assert state.accounts["shopee"][0].orders[0].order_id == "2610279DS0HQTO"
    access = state.current("lazada", lazada.account_id, "access")
    assert access is not None and access.value == "50000JAbqS0cnj8fR2oMAyLykI5ojRPGJ1ofnicJ6q0pL"
    # the chats are not the chat platforms' conversations, and not in the demo CRM
    assert lazada.chats and tiktok.chats
    assert not lazada.conversations and not tiktok.conversations
    assert demo_crm(state).rows.counts() == {
        "shops": 5,
        "customers": 423,
        "customer_identities": 449,
        "conversations": 84,
        "messages": 460,
        "message_attachments": 34,
        "orders": 750,
        "channel_credentials": 5,
    }


def test_chats_depend_only_on_the_seed_and_the_account() -> None:
    _, one = build_simulator(3, clock=FakeClock(), accounts_per_platform=1, orders_per_shop=30)
    _, three = build_simulator(3, clock=FakeClock(), accounts_per_platform=3, orders_per_shop=30)
    _, again = build_simulator(3, clock=FakeClock(), accounts_per_platform=2, orders_per_shop=30)
    for platform in ("lazada", "tiktok"):
        assert one.accounts[platform][0].chats == three.accounts[platform][0].chats
        assert again.accounts[platform][1].chats == three.accounts[platform][1].chats
        assert three.accounts[platform][1].chats != three.accounts[platform][0].chats
    # without orders the buyers come from the platform's pool
    _, empty = build_simulator(3, clock=FakeClock(), orders_per_shop=0)
    assert empty.accounts["lazada"][0].chats and empty.accounts["tiktok"][0].chats
