"""``connect_to``: reach a URL's host at another address, keeping its name for TLS and HTTP.

Like curl's ``--connect-to HOST1:PORT1:HOST2:PORT2``: a request for ``https://HOST1:PORT1/…``
opens its TCP connection to ``HOST2:PORT2`` while the TLS handshake still sends ``HOST1`` as
its server name (SNI), the certificate is still checked against ``HOST1``, and the ``Host``
header still names ``HOST1``. Operators use it to test a webhook receiver before its DNS
points at it (a new server, a blue/green switch); the simulator uses it to serve the CRM's
receivers under real-looking names (``lazada.crm.nfdoctor.test``) on a loopback port.

An empty ``HOST1`` or ``PORT1`` matches any host or port; an empty ``HOST2`` or ``PORT2``
keeps the original, as in curl.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import httpx

__all__ = ["ConnectTo", "ConnectToTransport", "connect_target", "parse_connect_to"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class ConnectTo:
    """One rule: connections for ``host:port`` go to ``connect_host:connect_port``."""

    host: str | None
    port: int | None
    connect_host: str | None
    connect_port: int | None

    def matches(self, host: str, port: int) -> bool:
        """Whether a request for ``host:port`` follows this rule."""
        host_ok = self.host is None or self.host.lower() == host.lower()
        return host_ok and (self.port is None or self.port == port)

    def __str__(self) -> str:
        def part(value: object) -> str:
            text = "" if value is None else str(value)
            return f"[{text}]" if ":" in text else text

        return ":".join(
            part(v) for v in (self.host, self.port, self.connect_host, self.connect_port)
        )


def _port(text: str, what: str, rule: str) -> int | None:
    if text == "":
        return None
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{rule!r}: {what} must be a port number 1-65535, got {text!r}")
    return int(text)


_FIELD = r"(\[[^\]]*\]|[^:\[\]]*)"
_RULE = re.compile(":".join([_FIELD] * 4))


def parse_connect_to(rule: str) -> ConnectTo:
    """Parse ``HOST1:PORT1:HOST2:PORT2`` (IPv6 addresses in brackets); ValueError if bad."""
    match = _RULE.fullmatch(rule.strip())
    if match is None:
        raise ValueError(
            f"{rule!r}: expected HOST1:PORT1:HOST2:PORT2 (as curl's --connect-to), "
            "e.g. crm.example.vn:443:10.0.0.7:8443"
        )
    host, port, connect_host, connect_port = (part.strip("[]") for part in match.groups())
    return ConnectTo(
        host=host or None,
        port=_port(port, "PORT1", rule),
        connect_host=connect_host or None,
        connect_port=_port(connect_port, "PORT2", rule),
    )


def connect_target(rules: Sequence[ConnectTo], host: str, port: int) -> tuple[str, int] | None:
    """Where to connect for ``host:port`` under the first matching rule; None: no rule."""
    for rule in rules:
        if rule.matches(host, port):
            return rule.connect_host or host, rule.connect_port or port
    return None


class ConnectToTransport(httpx.AsyncBaseTransport):
    """An httpx transport that applies ``connect_to`` rules, then hands the request on.

    The URL is rewritten to the address to connect to; the ``Host`` header (set from the
    original URL when the request was built) and the ``sni_hostname`` extension keep the
    original name, so the server sees and the certificate is checked against that name.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, rules: Iterable[ConnectTo]) -> None:
        self.inner = inner
        self.rules = tuple(rules)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or _DEFAULT_PORTS.get(url.scheme, 80)
        target = connect_target(self.rules, url.host, port)
        if target is not None:
            request.url = url.copy_with(host=target[0], port=target[1])
            if url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": url.host}
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
