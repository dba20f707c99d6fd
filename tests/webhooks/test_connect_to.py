"""``connect_to`` rules: parsing, matching, and the httpx transport keeping the name."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from nfdoctor.net.connect import (
    ConnectTo,
    ConnectToTransport,
    connect_target,
    parse_connect_to,
)


def test_parse_the_four_fields() -> None:
    rule = parse_connect_to("crm.example.vn:443:127.0.0.1:8443")
    assert rule == ConnectTo("crm.example.vn", 443, "127.0.0.1", 8443)
    assert str(rule) == "crm.example.vn:443:127.0.0.1:8443"


def test_empty_fields_match_anything_and_keep_the_original() -> None:
    rule = parse_connect_to("::127.0.0.1:")
    assert rule == ConnectTo(None, None, "127.0.0.1", None)
    assert connect_target([rule], "a.example", 443) == ("127.0.0.1", 443)


def test_ipv6_in_brackets() -> None:
    rule = parse_connect_to("crm.example.vn:443:[::1]:9443")
    assert rule.connect_host == "::1"
    assert str(rule) == "crm.example.vn:443:[::1]:9443"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("crm.example.vn:443:127.0.0.1", "expected HOST1:PORT1:HOST2:PORT2"),
        ("crm.example.vn:443:127.0.0.1:1:2", "expected HOST1:PORT1:HOST2:PORT2"),
        ("crm.example.vn:https:127.0.0.1:1", "PORT1 must be a port number"),
        ("crm.example.vn:443:127.0.0.1:70000", "PORT2 must be a port number"),
        ("crm.example.vn:443:[::1:9", "expected HOST1:PORT1:HOST2:PORT2"),
    ],
)
def test_bad_rules_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_connect_to(text)


def test_first_matching_rule_wins_and_hosts_match_case_insensitively() -> None:
    rules = [
        parse_connect_to("a.example:443:10.0.0.1:1"),
        parse_connect_to("A.EXAMPLE::10.0.0.2:2"),
    ]
    assert connect_target(rules, "a.example", 443) == ("10.0.0.1", 1)
    assert connect_target(rules, "a.example", 8443) == ("10.0.0.2", 2)
    assert connect_target(rules, "b.example", 443) is None


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{self.headers['Host']} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_transport_connects_elsewhere_and_keeps_the_host_header(echo_port: int) -> None:
    rules = [parse_connect_to(f"crm.nfdoctor.test:80:127.0.0.1:{echo_port}")]

    async def get() -> httpx.Response:
        transport = ConnectToTransport(httpx.AsyncHTTPTransport(), rules)
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.get("http://crm.nfdoctor.test/crm/webhooks/zalo?x=1")

    response = asyncio.run(get())
    assert response.status_code == 200
    assert response.text == "crm.nfdoctor.test /crm/webhooks/zalo?x=1"


def test_transport_without_a_matching_rule_goes_where_the_url_says(echo_port: int) -> None:
    rules = [parse_connect_to("elsewhere.test:80:127.0.0.1:1")]

    async def get() -> httpx.Response:
        transport = ConnectToTransport(httpx.AsyncHTTPTransport(), rules)
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.get(f"http://127.0.0.1:{echo_port}/x")

    assert asyncio.run(get()).text == f"127.0.0.1:{echo_port} /x"
