"""Lazada's and TikTok Shop's chat sync pages against respx: a page parsed into
SyncedMessage records, paging to the end, the window's start ending the walk, system
messages skipped, and the taxonomy error for a malformed message."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import httpx
import pytest
import respx

from nfdoctor.platforms import lazada, tiktok
from nfdoctor.platforms.errors import UnexpectedResponseError
from nfdoctor.platforms.lazada import LAZADA_BASE_URL, LazadaAuth, LazadaClient
from nfdoctor.platforms.sync import Page, SyncedMessage, Window
from nfdoctor.platforms.tiktok import TIKTOK_BASE_URL, TiktokAuth, TiktokClient
from tests.platforms.conftest import NOW, fixed_clock, make_client

R = TypeVar("R")

START = datetime(2026, 11, 10, tzinfo=timezone.utc)
END = datetime(2026, 11, 20, tzinfo=timezone.utc)
WINDOW = Window(START, END)
IN_WINDOW = datetime(2026, 11, 15, 8, 30, tzinfo=timezone.utc)
BEFORE = START - timedelta(hours=1)
AFTER = END + timedelta(hours=1)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


def page_of(fetch: Awaitable[Page[R]]) -> Page[R]:
    async def wait() -> Page[R]:
        return await fetch

    return asyncio.run(wait())


def test_both_declare_a_messages_stream_after_orders() -> None:
    for sync in (lazada.SYNC, tiktok.SYNC):
        messages = sync.messages
        assert sync.orders is not None and messages is not None
        assert messages.name == "messages" and messages.grid is False
        assert messages.source.startswith("platforms.md §")
        assert sync.stream("messages") is messages
    assert lazada.SPEC.sync is lazada.SYNC and tiktok.SPEC.sync is tiktok.SYNC


def test_pages_refuse_another_platforms_client() -> None:
    with pytest.raises(TypeError, match="LazadaClient"):
        page_of(lazada.message_page(tiktok_client(), WINDOW, None))
    with pytest.raises(TypeError, match="TiktokClient"):
        page_of(tiktok.message_page(lazada_client(), WINDOW, None))


# --- Lazada ------------------------------------------------------------------------------

LZ = "https://api.lazada.vn/rest"
LZ_SESSIONS = LZ + "/im/session/list"
LZ_MESSAGES = LZ + "/im/message/list"


def lazada_client(**kwargs: object) -> LazadaClient:
    options: dict[str, object] = {
        "app_key": "123456",
        "app_secret": "helloworld",
        "access_token": "test",
        "clock": fixed_clock,
    }
    options.update(kwargs)
    client: LazadaClient = make_client(LazadaClient, LazadaAuth, LAZADA_BASE_URL, **options)
    return client


def lz_session(session_id: str, latest: datetime, buyer_id: str = "300001") -> dict[str, Any]:
    return {
        "session_id": session_id,
        "buyer_id": buyer_id,
        "last_message_id": "m-last",
        "last_message_time": ms(latest),
        "unread_count": 0,
        "title": "Nguyễn Văn An",
    }


def lz_message(
    message_id: str, sent: datetime, /, *, buyer: bool = True, **fields: object
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": message_id,
        "session_id": "s1",
        "from_account_id": "300001" if buyer else "100200",
        "from_account_type": 1 if buyer else 2,
        "to_account_id": "100200" if buyer else "300001",
        "template_id": 1,
        "type": 1,
        "content": json.dumps({"txt": f"text of {message_id}"}),
        "send_time": ms(sent),
        "status": 0,
    }
    message.update(fields)
    return message


def lz_body(key: str, items: list[Any], **paging: object) -> dict[str, Any]:
    data: dict[str, Any] = {key: items, "has_more": False}
    data.update(paging)
    return {"code": "0", "success": True, "request_id": "r", "data": data}


class LazadaIm:
    """``/im/message/list`` served per session: session id -> the pages in order."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.pages: dict[str, list[dict[str, Any]]] = {}
        self.route = router.get(LZ_MESSAGES).mock(side_effect=self.serve)

    def serve(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        pages = self.pages[params["session_id"]]
        index = 0
        if "last_message_id" in params:
            index = next(
                i + 1
                for i, page in enumerate(pages)
                if page["data"].get("last_message_id") == params["last_message_id"]
            )
        return httpx.Response(200, json=pages[index])

    def sessions_read(self) -> list[str]:
        return [call.request.url.params["session_id"] for call in self.route.calls]


def test_lazada_page_parses_messages(mock_http: respx.MockRouter) -> None:
    sessions = mock_http.get(LZ_SESSIONS).respond(
        200, json=lz_body("session_list", [lz_session("s1", IN_WINDOW)])
    )
    im = LazadaIm(mock_http)
    im.pages["s1"] = [
        lz_body(
            "message_list",
            [
                lz_message("1zYOS7N0cuIqw96026", IN_WINDOW, buyer=False),
                lz_message("sys-1", IN_WINDOW, type=2, from_account_type=2, content="{}"),
                lz_message("1zYOS7N0cuIqw96025", IN_WINDOW - timedelta(minutes=5)),
                lz_message("recalled", IN_WINDOW - timedelta(minutes=9), status=1, content=""),
                lz_message(
                    "image", IN_WINDOW - timedelta(minutes=10), content='{"imgUrl": "https://x"}'
                ),
            ],
        )
    ]
    page = page_of(lazada.message_page(lazada_client(), WINDOW, None))
    listing = sessions.calls.last.request.url.params
    assert listing["start_time"] == str(ms(NOW)) and listing["page_size"] == "20"
    assert "last_session_id" not in listing and listing["sign"]
    read = im.route.calls.last.request.url.params
    assert (read["session_id"], read["start_time"], read["page_size"]) == ("s1", str(ms(NOW)), "20")
    assert page.next_cursor is None
    assert [m.external_id for m in page.records] == [
        "1zYOS7N0cuIqw96026",
        "1zYOS7N0cuIqw96025",
        "recalled",
        "image",
    ]  # the system message is skipped
    out, inbound, recalled, image = page.records
    assert isinstance(out, SyncedMessage)
    assert (out.direction, out.sender_external_id) == ("out", "100200")
    assert out.body == "text of 1zYOS7N0cuIqw96026"
    assert (inbound.direction, inbound.sender_external_id) == ("in", "300001")
    assert inbound.sent_at == IN_WINDOW - timedelta(minutes=5)
    for message in page.records:
        assert message.thread_id == "s1"
        assert message.customer.external_user_id == "300001"  # the session's buyer
    # A recall is kept (it was sent) without its words; an image has none.
    assert recalled.body is None and recalled.raw["status"] == 1
    assert image.body is None and image.raw["content"] == '{"imgUrl": "https://x"}'


def test_lazada_pages_sessions_and_messages_to_the_end(mock_http: respx.MockRouter) -> None:
    sessions = mock_http.get(LZ_SESSIONS).mock(
        side_effect=[
            httpx.Response(
                200,
                json=lz_body(
                    "session_list",
                    [lz_session("s1", IN_WINDOW)],
                    has_more=True,
                    next_start_time=ms(IN_WINDOW) - 1,
                    last_session_id="s1",
                ),
            ),
            httpx.Response(200, json=lz_body("session_list", [lz_session("s2", IN_WINDOW)])),
        ]
    )
    im = LazadaIm(mock_http)
    im.pages["s1"] = [
        lz_body(
            "message_list",
            [lz_message("a", IN_WINDOW)],
            has_more=True,
            next_start_time=ms(IN_WINDOW) - 1,
            last_message_id="a",
        ),
        lz_body("message_list", [lz_message("b", IN_WINDOW - timedelta(hours=1))]),
    ]
    im.pages["s2"] = [lz_body("message_list", [lz_message("c", IN_WINDOW, session_id="s2")])]
    client = lazada_client()
    first = page_of(lazada.message_page(client, WINDOW, None))
    assert [m.external_id for m in first.records] == ["a", "b"]
    second_read = im.route.calls.last.request.url.params
    assert second_read["last_message_id"] == "a"
    assert second_read["start_time"] == str(ms(IN_WINDOW) - 1)
    assert first.next_cursor is not None
    assert json.loads(first.next_cursor) == {
        "start_time": ms(IN_WINDOW) - 1,
        "last_session_id": "s1",
    }
    last = page_of(lazada.message_page(client, WINDOW, first.next_cursor))
    listing = sessions.calls.last.request.url.params
    assert (listing["start_time"], listing["last_session_id"]) == (str(ms(IN_WINDOW) - 1), "s1")
    assert [(m.external_id, m.thread_id) for m in last.records] == [("c", "s2")]
    assert last.next_cursor is None


def test_lazada_window_start_ends_the_walk(mock_http: respx.MockRouter) -> None:
    mock_http.get(LZ_SESSIONS).respond(
        200,
        json=lz_body(
            "session_list",
            [lz_session("s1", AFTER), lz_session("s-old", BEFORE)],
            has_more=True,
            next_start_time=ms(BEFORE) - 1,
            last_session_id="s-old",
        ),
    )
    im = LazadaIm(mock_http)
    im.pages["s1"] = [
        lz_body(
            "message_list",
            [
                lz_message("later", AFTER),
                lz_message("in", IN_WINDOW),
                lz_message("earlier", BEFORE),
                lz_message("much-earlier", BEFORE - timedelta(days=1)),
            ],
            has_more=True,
            next_start_time=ms(BEFORE) - 1,
            last_message_id="much-earlier",
        )
    ]
    page = page_of(lazada.message_page(lazada_client(), WINDOW, None))
    assert [m.external_id for m in page.records] == ["in"]
    # the older session is never read, no second message page, no next session page
    assert im.sessions_read() == ["s1"]
    assert page.next_cursor is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"message_id": None}, "message_id"),
        ({"content": "not json"}, "content"),
        ({"content": '["txt"]'}, "content"),
        ({"from_account_type": 3}, "from_account_type"),
        ({"type": 7}, "type"),
        ({"status": 5}, "status"),
        ({"from_account_id": None}, "from_account_id"),
    ],
)
def test_lazada_malformed_message_is_unexpected(
    mock_http: respx.MockRouter, fields: dict[str, Any], field: str
) -> None:
    mock_http.get(LZ_SESSIONS).respond(
        200, json=lz_body("session_list", [lz_session("s1", IN_WINDOW)])
    )
    im = LazadaIm(mock_http)
    im.pages["s1"] = [lz_body("message_list", [lz_message("m", IN_WINDOW, **fields)])]
    with pytest.raises(UnexpectedResponseError) as caught:
        page_of(lazada.message_page(lazada_client(), WINDOW, None))
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "0", "success": False, "err_code": "X", "err_message": "no"}, "success"),
        ({"code": "0", "data": {"session_list": {}}}, "session_list"),
        ({"code": "0", "data": {"session_list": [], "has_more": "maybe"}}, "has_more"),
        (
            {
                "code": "0",
                "data": {"session_list": [{"session_id": "s", "last_message_time": "soon"}]},
            },
            "last_message_time",
        ),
    ],
)
def test_lazada_malformed_session_list_is_unexpected(
    mock_http: respx.MockRouter, body: dict[str, Any], field: str
) -> None:
    mock_http.get(LZ_SESSIONS).respond(200, json=body)
    with pytest.raises(UnexpectedResponseError) as caught:
        page_of(lazada.message_page(lazada_client(), WINDOW, None))
    assert caught.value.field == field


def test_lazada_position_that_does_not_move_is_unexpected(mock_http: respx.MockRouter) -> None:
    cursor = json.dumps({"start_time": 5, "last_session_id": "s9"})
    mock_http.get(LZ_SESSIONS).respond(
        200,
        json=lz_body("session_list", [], has_more=True, next_start_time=5, last_session_id="s9"),
    )
    with pytest.raises(UnexpectedResponseError) as caught:
        page_of(lazada.message_page(lazada_client(), WINDOW, cursor))
    assert caught.value.field == "last_session_id"


@pytest.mark.parametrize("cursor", ["7", "{}", '{"start_time": "x", "last_session_id": "s"}'])
def test_lazada_unreadable_chat_cursor(cursor: str) -> None:
    with pytest.raises(ValueError, match="not a sync cursor"):
        page_of(lazada.message_page(lazada_client(), WINDOW, cursor))


# --- TikTok Shop -------------------------------------------------------------------------

TT = "https://open-api.tiktokglobalshop.com"
TT_CONVERSATIONS = TT + "/customer_service/202309/conversations"
TT_MESSAGES = r"^/customer_service/202309/conversations/(?P<conversation>\w+)/messages$"


def tiktok_client(**kwargs: object) -> TiktokClient:
    options: dict[str, object] = {
        "app_key": "29a39d",
        "app_secret": "e59af819cc",
        "access_token": "TTP_at",
        "shop_id": "7494",
        "shop_cipher": "ROW_abc",
        "clock": fixed_clock,
    }
    options.update(kwargs)
    client: TiktokClient = make_client(TiktokClient, TiktokAuth, TIKTOK_BASE_URL, **options)
    return client


def tt_conversation(
    conversation_id: str, latest: datetime | None = IN_WINDOW, **fields: object
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": conversation_id,
        "participant_count": 2,
        "can_send_message": True,
        "unread_count": 0,
        "create_time": ts(START - timedelta(days=30)),
        "participants": [
            {"im_user_id": "im-shop", "role": "SHOP", "nickname": "Shop"},
            {
                "im_user_id": "im-buyer",
                "user_id": "7021436810468230477",
                "role": "BUYER",
                "nickname": "Lê Thu",
            },
        ],
    }
    if latest is not None:
        item["latest_message"] = {"id": "x", "create_time": ts(latest)}
    item.update(fields)
    return item


def tt_message(
    message_id: str, sent: datetime, role: str = "BUYER", **fields: object
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": message_id,
        "type": "TEXT",
        "content": json.dumps({"content": f"text of {message_id}"}),
        "create_time": ts(sent),
        "is_visible": True,
        "index": "1",
        "sender": {"im_user_id": "im-buyer" if role == "BUYER" else "im-shop", "role": role},
    }
    message.update(fields)
    return message


def tt_body(key: str, items: list[Any], token: str = "") -> dict[str, Any]:
    return {
        "code": 0,
        "message": "Success",
        "request_id": "r",
        "data": {key: items, "next_page_token": token},
    }


class TiktokCs:
    """Conversation messages served per conversation: id -> {page_token: body}."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.pages: dict[str, dict[str, dict[str, Any]]] = {}
        self.route = router.get(path__regex=TT_MESSAGES).mock(side_effect=self.serve)

    def serve(self, request: httpx.Request, conversation: str) -> httpx.Response:
        token = request.url.params.get("page_token", "")
        return httpx.Response(200, json=self.pages[conversation][token])

    def reads(self) -> list[tuple[str, str]]:
        return [
            (call.request.url.path.split("/")[-2], call.request.url.params.get("page_token", ""))
            for call in self.route.calls
        ]


def test_tiktok_page_parses_messages(mock_http: respx.MockRouter) -> None:
    listing = mock_http.get(TT_CONVERSATIONS).respond(
        200, json=tt_body("conversations", [tt_conversation("c1")])
    )
    cs = TiktokCs(mock_http)
    cs.pages["c1"] = {
        "": tt_body(
            "messages",
            [
                tt_message("7494560109732201", IN_WINDOW, "SHOP"),
                tt_message("7494560109732200", IN_WINDOW - timedelta(minutes=1), "SYSTEM"),
                tt_message("7494560109732199", IN_WINDOW - timedelta(minutes=2)),
                tt_message(
                    "7494560109732198",
                    IN_WINDOW - timedelta(minutes=3),
                    "ROBOT",
                    type="ORDER_CARD",
                    content='{"order_id": "576461413038785752"}',
                ),
            ],
        )
    }
    page = page_of(tiktok.message_page(tiktok_client(), WINDOW, None))
    params = listing.calls.last.request.url.params
    assert (params["shop_cipher"], params["page_size"]) == ("ROW_abc", "20")
    assert "page_token" not in params and params["sign"]
    read = cs.route.calls.last.request
    assert read.url.params["page_size"] == "10" and read.url.params["shop_cipher"] == "ROW_abc"
    assert (read.url.params["sort_field"], read.url.params["sort_order"]) == (
        "create_time",
        "DESC",
    )
    assert read.headers["x-tts-access-token"] == "TTP_at"
    assert page.next_cursor is None
    shop, buyer, robot = page.records  # the SYSTEM message is skipped
    assert (shop.external_id, shop.direction, shop.sender_external_id) == (
        "7494560109732201",
        "out",
        "im-shop",
    )
    assert shop.body == "text of 7494560109732201" and shop.sent_at == IN_WINDOW
    assert (buyer.direction, buyer.sender_external_id) == ("in", "im-buyer")
    assert robot.direction == "out" and robot.body is None
    assert robot.raw["type"] == "ORDER_CARD"
    for message in page.records:
        assert message.thread_id == "c1"
        # the BUYER participant, by the user id orders name the buyer by
        assert message.customer.external_user_id == "7021436810468230477"
        assert message.customer.display_name == "Lê Thu"


def test_tiktok_pages_conversations_and_messages_to_the_end(mock_http: respx.MockRouter) -> None:
    listing = mock_http.get(TT_CONVERSATIONS).mock(
        side_effect=[
            httpx.Response(200, json=tt_body("conversations", [tt_conversation("c1")], "tok2")),
            httpx.Response(200, json=tt_body("conversations", [tt_conversation("c2")])),
        ]
    )
    cs = TiktokCs(mock_http)
    cs.pages["c1"] = {
        "": tt_body("messages", [tt_message("a", IN_WINDOW)], "m2"),
        "m2": tt_body("messages", [tt_message("b", IN_WINDOW - timedelta(hours=1))]),
    }
    cs.pages["c2"] = {"": tt_body("messages", [tt_message("c", IN_WINDOW)])}
    client = tiktok_client()
    first = page_of(tiktok.message_page(client, WINDOW, None))
    assert [m.external_id for m in first.records] == ["a", "b"]
    assert cs.reads() == [("c1", ""), ("c1", "m2")]
    assert first.next_cursor == "tok2"
    last = page_of(tiktok.message_page(client, WINDOW, first.next_cursor))
    assert listing.calls.last.request.url.params["page_token"] == "tok2"
    assert [(m.external_id, m.thread_id) for m in last.records] == [("c", "c2")]
    assert last.next_cursor is None


def test_tiktok_window_start_ends_a_conversation(mock_http: respx.MockRouter) -> None:
    mock_http.get(TT_CONVERSATIONS).respond(
        200,
        json=tt_body(
            "conversations",
            [
                tt_conversation("c1", AFTER),
                # cannot hold a message in the window: never read
                tt_conversation("old", BEFORE),
                tt_conversation("new", AFTER, create_time=ts(AFTER)),
            ],
            "tok2",
        ),
    )
    cs = TiktokCs(mock_http)
    cs.pages["c1"] = {
        "": tt_body(
            "messages",
            [
                tt_message("later", AFTER),
                tt_message("in", IN_WINDOW),
                tt_message("earlier", BEFORE),
                tt_message("much-earlier", BEFORE - timedelta(days=1)),
            ],
            "m2",
        )
    }
    page = page_of(tiktok.message_page(tiktok_client(), WINDOW, None))
    assert [m.external_id for m in page.records] == ["in"]
    assert cs.reads() == [("c1", "")]  # no second page of c1
    # the list's order is not documented: the walk goes on to the next page
    assert page.next_cursor == "tok2"


def test_tiktok_customer_without_a_buyer_participant(mock_http: respx.MockRouter) -> None:
    mock_http.get(TT_CONVERSATIONS).respond(
        200, json=tt_body("conversations", [tt_conversation("c1", participants=[])])
    )
    cs = TiktokCs(mock_http)
    cs.pages["c1"] = {"": tt_body("messages", [tt_message("a", IN_WINDOW)])}
    (message,) = page_of(tiktok.message_page(tiktok_client(), WINDOW, None)).records
    assert message.customer.external_user_id == "im-buyer"  # the buyer who wrote it
    cs.pages["c1"] = {"": tt_body("messages", [tt_message("b", IN_WINDOW, "SHOP")])}
    with pytest.raises(UnexpectedResponseError) as caught:
        page_of(tiktok.message_page(tiktok_client(), WINDOW, None))
    assert caught.value.field == "participants"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"id": 7494560109732201}, "id"),
        ({"content": "not json"}, "content"),
        ({"content": None}, "content"),
        ({"sender": None}, "sender"),
        ({"sender": {"im_user_id": "im-buyer", "role": "MARTIAN"}}, "sender.role"),
        ({"sender": {"role": "BUYER"}}, "sender.im_user_id"),
        ({"type": None}, "type"),
        ({"create_time": "yesterday"}, "create_time"),
    ],
)
def test_tiktok_malformed_message_is_unexpected(
    mock_http: respx.MockRouter, fields: dict[str, Any], field: str
) -> None:
    mock_http.get(TT_CONVERSATIONS).respond(
        200, json=tt_body("conversations", [tt_conversation("c1")])
    )
    cs = TiktokCs(mock_http)
    cs.pages["c1"] = {"": tt_body("messages", [tt_message("m", IN_WINDOW, **fields)])}
    with pytest.raises(UnexpectedResponseError) as caught:
        page_of(tiktok.message_page(tiktok_client(), WINDOW, None))
    assert caught.value.field == field


def test_tiktok_same_message_token_again_is_unexpected(mock_http: respx.MockRouter) -> None:
    mock_http.get(TT_CONVERSATIONS).respond(
        200, json=tt_body("conversations", [tt_conversation("c1")])
    )
    cs = TiktokCs(mock_http)
    cs.pages["c1"] = {
        "": tt_body("messages", [tt_message("a", IN_WINDOW)], "m2"),
        "m2": tt_body("messages", [tt_message("b", IN_WINDOW)], "m2"),
    }
    with pytest.raises(UnexpectedResponseError) as caught:
        page_of(tiktok.message_page(tiktok_client(), WINDOW, None))
    assert caught.value.field == "next_page_token"


def test_tiktok_conversations_without_data_is_unexpected(mock_http: respx.MockRouter) -> None:
    mock_http.get(TT_CONVERSATIONS).respond(200, json={"code": 0, "data": []})
    with pytest.raises(UnexpectedResponseError) as caught:
        page_of(tiktok.message_page(tiktok_client(), WINDOW, None))
    assert caught.value.field == "data"
