"""The connection timing probe against real sockets, on loopback only.

Servers run on an asyncio loop in a background thread, so each probe runs in the test's own
``asyncio.run`` exactly as the CLI will run it. Certificates are made here with
``cryptography``: a test CA, and leaves with and without SANs, valid or expired.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nfdoctor.net import (
    PHASES,
    ConnectionTiming,
    default_ssl_context,
    origin_of,
    probe_many,
    probe_url,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


# --- loopback servers --------------------------------------------------------------------


@dataclass
class ServerLog:
    """What a server saw: each request head, and the ALPN protocol each TLS client chose."""

    requests: list[list[str]] = field(default_factory=list)
    alpn: list[str | None] = field(default_factory=list)


class LoopbackServers:
    """asyncio servers on loopback, served by one event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        # A failed TLS handshake is the point of some tests; keep asyncio from logging it.
        self.loop.set_exception_handler(lambda loop, context: None)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[asyncio.Server] = []

    def start(
        self, handler: Handler, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> int:
        """Serve ``handler`` on ``host``; returns the port."""

        async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            except (OSError, asyncio.IncompleteReadError):
                pass  # the probe hung up first: expected in several tests
            finally:
                writer.close()
                with suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), timeout=1.0)

        async def listen() -> asyncio.Server:
            return await asyncio.start_server(guarded, host, 0, ssl=tls)

        server = asyncio.run_coroutine_threadsafe(listen(), self.loop).result(timeout=5)
        self.servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def close(self) -> None:
        """Stop every server and handler, then the loop."""

        async def stop() -> None:
            for server in self.servers:
                server.close()
            current = asyncio.current_task()
            handlers = [task for task in asyncio.all_tasks() if task is not current]
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            for server in self.servers:
                await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@pytest.fixture
def servers() -> Iterator[LoopbackServers]:
    """Start loopback servers with ``servers.start(handler)``; all stop after the test."""
    running = LoopbackServers()
    yield running
    running.close()


async def read_head(reader: asyncio.StreamReader) -> list[str]:
    """The request line and headers, one string each."""
    head = await reader.readuntil(b"\r\n\r\n")
    return head.decode("ascii").split("\r\n")[:-2]


def answering(log: ServerLog, *, response: bytes = OK_RESPONSE, delay_s: float = 0.0) -> Handler:
    """A server that reads the request, waits ``delay_s``, then sends ``response``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is not None:
            log.alpn.append(ssl_object.selected_alpn_protocol())
        log.requests.append(await read_head(reader))
        await asyncio.sleep(delay_s)
        writer.write(response)
        await writer.drain()

    return handle


async def never_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts and reads, but never writes a byte (until the probe gives up)."""
    await reader.read()


async def hanging_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Closes the connection as soon as it is accepted (the wrapper closes the writer)."""


def run(coro: Awaitable[ConnectionTiming]) -> ConnectionTiming:
    """Run one probe in a fresh event loop, as the CLI will."""

    async def main() -> ConnectionTiming:
        return await coro

    return asyncio.run(main())


def resolving_to(*addresses: str) -> Callable[[str, int], Awaitable[list[str]]]:
    """A resolver that answers every name with ``addresses``."""

    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, so nobody else takes it, not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


# --- certificates --------------------------------------------------------------------------


@dataclass
class TestPki:
    """A throwaway CA and the leaves it issues, written as PEM files under ``directory``."""

    directory: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    __test__ = False  # not a test class despite the name

    @property
    def ca_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def client_context(self, *, common_name_fallback: bool = False) -> ssl.SSLContext:
        """nfdoctor's default context that also trusts this CA."""
        context = default_ssl_context()
        context.load_verify_locations(cadata=self.ca_pem)
        if common_name_fallback:
            context.hostname_checks_common_name = True
        return context

    def server_context(
        self,
        *,
        common_name: str = "localhost",
        san: bool = True,
        not_after: datetime | None = None,
    ) -> tuple[ssl.SSLContext, x509.Certificate]:
        """A TLS server context with a fresh leaf for localhost/127.0.0.1 (or CN only)."""
        now = datetime.now(timezone.utc).replace(microsecond=0)
        not_after = not_after or now + timedelta(days=30)
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(min(now, not_after) - timedelta(days=10))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if san:
            names = [
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        stem = self.directory / f"leaf-{cert.serial_number}"
        cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        context.set_alpn_protocols(["http/1.1"])
        return context, cert


@pytest.fixture
def pki(tmp_path: Path) -> TestPki:
    """A fresh CA for this test."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nfdoctor test CA")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=30))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return TestPki(directory=tmp_path, key=key, cert=cert)


# --- http ------------------------------------------------------------------------------------


def test_http_success_times_each_phase_and_sends_a_minimal_head(
    servers: LoopbackServers,
) -> None:
    log = ServerLog()
    port = servers.start(answering(log))

    timing = run(probe_url(f"http://127.0.0.1:{port}/health"))

    assert timing.ok, timing.error
    assert (timing.failed_phase, timing.error) == (None, None)
    assert timing.http_status == 200
    assert timing.url == f"http://127.0.0.1:{port}/health"
    assert (timing.scheme, timing.host, timing.port) == ("http", "127.0.0.1", port)
    # An IP literal needs no DNS.
    assert timing.addresses == ("127.0.0.1",)
    assert timing.dns_s == 0.0
    assert timing.tcp_s is not None and timing.tcp_s > 0
    assert timing.ttfb_s is not None and timing.ttfb_s >= 0
    assert timing.total_s is not None and timing.total_s >= timing.tcp_s + timing.ttfb_s
    assert (timing.tls_s, timing.tls_version, timing.peer_cert_not_after) == (None, None, None)
    assert log.requests == [
        [
            "HEAD /health HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "User-Agent: nfdoctor",
            "Accept: */*",
            "Connection: close",
        ]
    ]


def test_method_and_empty_path(servers: LoopbackServers) -> None:
    log = ServerLog()
    port = servers.start(answering(log))

    timing = run(probe_url(f"http://127.0.0.1:{port}", method="GET"))

    assert timing.ok, timing.error
    assert timing.url == f"http://127.0.0.1:{port}/"
    assert log.requests[0][0] == "GET / HTTP/1.1"


def test_an_error_status_is_still_a_working_connection(servers: LoopbackServers) -> None:
    response = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
    port = servers.start(answering(ServerLog(), response=response))

    timing = run(probe_url(f"http://127.0.0.1:{port}/"))

    assert timing.ok
    assert timing.http_status == 503


def test_query_string_and_credentials_are_neither_recorded_nor_sent(
    servers: LoopbackServers, refused_port: int
) -> None:
    log = ServerLog()
    port = servers.start(answering(log))
    secret_url = "http://nfuser:PASSWORD1@127.0.0.1:{}/api/ping?access_token=SECRET1&sign=ab#frag"

    answered = run(probe_url(secret_url.format(port)))
    refused = run(probe_url(secret_url.format(refused_port)))

    assert answered.url == f"http://127.0.0.1:{port}/api/ping"
    assert log.requests[0][0] == "HEAD /api/ping HTTP/1.1"
    assert refused.failed_phase == "connect"
    for timing in (answered, refused):
        for secret in ("SECRET1", "PASSWORD1", "nfuser", "sign=", "frag"):
            assert secret not in repr(timing)
            assert secret not in "\n".join(log.requests[0])


def test_slow_server_shows_in_ttfb_not_in_connect(servers: LoopbackServers) -> None:
    port = servers.start(answering(ServerLog(), delay_s=0.25))

    timing = run(probe_url(f"http://127.0.0.1:{port}/slow"))

    assert timing.ok, timing.error
    assert timing.ttfb_s is not None and timing.ttfb_s >= 0.2
    assert timing.tcp_s is not None and timing.tcp_s < timing.ttfb_s  # the wait is not "connect"
    assert timing.total_s is not None and timing.total_s >= timing.ttfb_s


def test_refused_connection_fails_in_connect(refused_port: int) -> None:
    timing = run(probe_url(f"http://127.0.0.1:{refused_port}/x"))

    assert not timing.ok
    assert timing.failed_phase == "connect"
    assert timing.error == f"TCP connect to 127.0.0.1:{refused_port} failed: connection refused"
    assert timing.dns_s == 0.0
    assert (timing.tcp_s, timing.ttfb_s, timing.http_status) == (None, None, None)
    assert timing.total_s is not None


def test_silent_server_times_out_in_response_after_connecting(
    servers: LoopbackServers,
) -> None:
    port = servers.start(never_answering)

    timing = run(probe_url(f"http://127.0.0.1:{port}/", timeout_s=0.5))

    assert timing.failed_phase == "response"
    assert timing.error is not None
    assert re.fullmatch(
        rf"waiting for the response from 127\.0\.0\.1:{port} timed out after 0\.\d+ s",
        timing.error,
    ), timing.error
    assert timing.tcp_s is not None
    assert timing.ttfb_s is None
    assert timing.total_s is not None and 0.4 <= timing.total_s < 2.0


def test_server_hanging_up_at_once_fails_in_response(servers: LoopbackServers) -> None:
    port = servers.start(hanging_up)

    timing = run(probe_url(f"http://127.0.0.1:{port}/", timeout_s=5))

    assert timing.failed_phase == "response"
    assert timing.error in (
        f"127.0.0.1:{port} closed the connection without responding",
        f"waiting for the response from 127.0.0.1:{port} failed: connection reset by peer",
    )
    assert timing.tcp_s is not None
    assert (timing.ttfb_s, timing.http_status) == (None, None)


def test_server_closing_after_reading_the_request_fails_in_response(
    servers: LoopbackServers,
) -> None:
    async def read_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)

    port = servers.start(read_then_close)

    timing = run(probe_url(f"http://127.0.0.1:{port}/", timeout_s=5))

    assert timing.failed_phase == "response"
    assert timing.error == f"127.0.0.1:{port} closed the connection without responding"
    assert timing.tcp_s is not None
    assert timing.ttfb_s is None


def test_non_http_answer_fails_in_response(servers: LoopbackServers) -> None:
    port = servers.start(answering(ServerLog(), response=b"SSH-2.0-OpenSSH_9.6\r\n"))

    timing = run(probe_url(f"http://127.0.0.1:{port}/"))

    assert timing.failed_phase == "response"
    assert timing.error == (
        f"127.0.0.1:{port} did not answer with an HTTP status line "
        "(got b'SSH-2.0-OpenSSH_9.6\\r\\n')"
    )
    # The first byte did arrive: TTFB is measured even though the answer is not HTTP.
    assert timing.ttfb_s is not None
    assert timing.http_status is None


# --- dns and addresses -------------------------------------------------------------------------


def test_dns_failure_from_the_resolver() -> None:
    async def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    timing = run(probe_url("https://api.lazada.test/rest?sign=SECRET", resolver=failing))

    assert timing.failed_phase == "dns"
    assert timing.error == "DNS lookup for api.lazada.test failed: Name or service not known"
    assert timing.url == "https://api.lazada.test:443/rest"
    assert timing.addresses == ()
    assert (timing.dns_s, timing.tcp_s, timing.tls_s) == (None, None, None)


def test_dns_timeout() -> None:
    async def stuck(host: str, port: int) -> list[str]:
        await asyncio.sleep(30)
        return ["127.0.0.1"]

    timing = run(probe_url("http://stuck.test/", timeout_s=0.3, resolver=stuck))

    assert timing.failed_phase == "dns"
    assert timing.error == "DNS lookup for stuck.test timed out after 0.3 s"


def test_resolver_with_no_addresses_is_a_dns_failure() -> None:
    timing = run(probe_url("http://empty.test/", resolver=resolving_to()))

    assert timing.failed_phase == "dns"
    assert timing.error == "DNS lookup for empty.test returned no addresses"


def test_resolved_name_is_used_for_host_header_and_all_addresses_are_recorded(
    servers: LoopbackServers,
) -> None:
    log = ServerLog()
    port = servers.start(answering(log))

    timing = run(
        probe_url(
            f"http://API.Lazada.test:{port}/x",
            resolver=resolving_to("127.0.0.1", "127.0.0.2", "127.0.0.1"),
        )
    )

    assert timing.ok, timing.error
    assert timing.host == "api.lazada.test"
    assert timing.addresses == ("127.0.0.1", "127.0.0.2")
    assert timing.dns_s is not None and timing.dns_s >= 0
    assert f"Host: api.lazada.test:{port}" in log.requests[0]


def test_only_the_first_resolved_address_is_tried(servers: LoopbackServers) -> None:
    # The server listens on 127.0.0.1 only; 127.0.0.2 (also loopback) refuses.
    port = servers.start(answering(ServerLog()))

    timing = run(
        probe_url(f"http://api.test:{port}/", resolver=resolving_to("127.0.0.2", "127.0.0.1"))
    )

    assert timing.failed_phase == "connect"
    assert timing.error == f"TCP connect to api.test:{port} (127.0.0.2) failed: connection refused"
    assert timing.addresses == ("127.0.0.2", "127.0.0.1")


def test_system_resolver_for_localhost(servers: LoopbackServers) -> None:
    first = str(socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)[0][4][0])
    port = servers.start(answering(ServerLog()), host=first)

    timing = run(probe_url(f"http://localhost:{port}/"))

    assert timing.ok, timing.error
    assert timing.addresses[0] == first
    assert all(ipaddress.ip_address(address).is_loopback for address in timing.addresses)
    assert timing.dns_s is not None


def _ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback_available(), reason="no IPv6 loopback here")
def test_ipv6_literal(servers: LoopbackServers) -> None:
    log = ServerLog()
    port = servers.start(answering(log), host="::1")

    timing = run(probe_url(f"http://[::1]:{port}/v6"))

    assert timing.ok, timing.error
    assert timing.url == f"http://[::1]:{port}/v6"
    assert (timing.host, timing.addresses, timing.dns_s) == ("::1", ("::1",), 0.0)
    assert f"Host: [::1]:{port}" in log.requests[0]


# --- the clock and the budget -------------------------------------------------------------------


def test_durations_come_from_the_injected_clock(servers: LoopbackServers) -> None:
    port = servers.start(answering(ServerLog()))
    now = [100.0]

    async def resolve_in_a_quarter_second(host: str, port: int) -> list[str]:
        now[0] += 0.25
        return ["127.0.0.1"]

    timing = run(
        probe_url(
            f"http://api.test:{port}/",
            resolver=resolve_in_a_quarter_second,
            monotonic=lambda: now[0],
        )
    )

    assert timing.ok, timing.error
    assert (timing.dns_s, timing.tcp_s, timing.ttfb_s, timing.total_s) == (0.25, 0, 0, 0.25)


def test_a_phase_that_used_up_the_budget_stops_the_probe() -> None:
    now = [0.0]

    async def resolve_in_eleven_seconds(host: str, port: int) -> list[str]:
        now[0] += 11.0
        return ["127.0.0.1"]

    timing = run(
        probe_url(
            "http://api.test:9/",
            timeout_s=10,
            resolver=resolve_in_eleven_seconds,
            monotonic=lambda: now[0],
        )
    )

    assert timing.failed_phase == "connect"
    assert timing.error == (
        "TCP connect to api.test:9 (127.0.0.1) not attempted: the 10 s timeout was used up"
    )
    assert (timing.dns_s, timing.tcp_s, timing.total_s) == (11.0, None, 11.0)


# --- tls -----------------------------------------------------------------------------------


def test_https_trusted_certificate(servers: LoopbackServers, pki: TestPki) -> None:
    log = ServerLog()
    tls, leaf = pki.server_context()
    port = servers.start(answering(log), tls=tls)

    timing = run(probe_url(f"https://127.0.0.1:{port}/rest", ssl_context=pki.client_context()))

    assert timing.ok, timing.error
    assert timing.http_status == 200
    assert timing.tls_s is not None and timing.tls_s > 0
    assert timing.tls_version in ("TLSv1.2", "TLSv1.3")
    assert timing.peer_cert_not_after == leaf.not_valid_after_utc
    assert timing.peer_cert_not_after.tzinfo is timezone.utc
    assert log.alpn == ["http/1.1"]


def test_https_by_name_sends_sni_and_checks_the_dns_san(
    servers: LoopbackServers, pki: TestPki
) -> None:
    tls, _ = pki.server_context()
    port = servers.start(answering(ServerLog()), tls=tls)

    timing = run(
        probe_url(
            f"https://localhost:{port}/",
            ssl_context=pki.client_context(),
            resolver=resolving_to("127.0.0.1"),
        )
    )

    assert timing.ok, timing.error
    assert timing.tls_s is not None


def test_untrusted_certificate_with_the_default_context_fails_in_tls(
    servers: LoopbackServers, pki: TestPki
) -> None:
    tls, _ = pki.server_context()
    port = servers.start(answering(ServerLog()), tls=tls)

    timing = run(probe_url(f"https://127.0.0.1:{port}/?access_token=SECRET"))

    assert timing.failed_phase == "tls"
    assert timing.error == (
        f"TLS handshake with 127.0.0.1:{port} failed: unable to get local issuer certificate"
    )
    assert timing.tcp_s is not None
    assert (timing.tls_s, timing.tls_version, timing.http_status) == (None, None, None)


def test_expired_certificate_fails_in_tls(servers: LoopbackServers, pki: TestPki) -> None:
    yesterday = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=1)
    tls, _ = pki.server_context(not_after=yesterday)
    port = servers.start(answering(ServerLog()), tls=tls)

    timing = run(probe_url(f"https://127.0.0.1:{port}/", ssl_context=pki.client_context()))

    assert timing.failed_phase == "tls"
    assert timing.error == f"TLS handshake with 127.0.0.1:{port} failed: certificate has expired"


@pytest.mark.parametrize("common_name_fallback", [False, True])
def test_certificate_with_a_common_name_but_no_san(
    servers: LoopbackServers, pki: TestPki, common_name_fallback: bool
) -> None:
    # Python would accept the CN when allowed to; nfdoctor's context must not allow it.
    tls, _ = pki.server_context(common_name="localhost", san=False)
    port = servers.start(answering(ServerLog()), tls=tls)

    timing = run(
        probe_url(
            f"https://localhost:{port}/",
            ssl_context=pki.client_context(common_name_fallback=common_name_fallback),
            resolver=resolving_to("127.0.0.1"),
        )
    )

    if common_name_fallback:
        assert timing.ok, timing.error
    else:
        assert timing.failed_phase == "tls"
        assert timing.error == (
            f"TLS handshake with localhost:{port} failed: "
            "Hostname mismatch, certificate is not valid for 'localhost'"
        )


def test_default_context_refuses_the_common_name() -> None:
    context = default_ssl_context()

    assert context.hostname_checks_common_name is False
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True


def test_tls_handshake_that_never_completes_times_out_in_tls(
    servers: LoopbackServers, pki: TestPki
) -> None:
    port = servers.start(never_answering)  # plain TCP: the ClientHello goes unanswered

    timing = run(
        probe_url(f"https://127.0.0.1:{port}/", timeout_s=0.5, ssl_context=pki.client_context())
    )

    assert timing.failed_phase == "tls"
    assert timing.error is not None
    assert re.fullmatch(
        rf"TLS handshake with 127\.0\.0\.1:{port} timed out after 0\.\d+ s", timing.error
    ), timing.error
    assert timing.tcp_s is not None
    assert timing.tls_s is None


def test_plain_http_server_on_an_https_url_fails_in_tls(servers: LoopbackServers) -> None:
    async def answer_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
        await writer.drain()

    port = servers.start(answer_at_once)

    timing = run(probe_url(f"https://127.0.0.1:{port}/", timeout_s=5))

    assert timing.failed_phase == "tls"
    assert timing.error is not None
    assert timing.error.startswith(f"TLS handshake with 127.0.0.1:{port} failed: ")
    assert "_ssl.c" not in timing.error


# --- many probes, origins, arguments -------------------------------------------------------


def test_probe_many_dedupes_origins_and_keeps_their_order(servers: LoopbackServers) -> None:
    first_log, second_log = ServerLog(), ServerLog()
    first = servers.start(answering(first_log))
    second = servers.start(answering(second_log))

    async def main() -> list[ConnectionTiming]:
        return await probe_many(
            [
                f"http://127.0.0.1:{second}/a?token=SECRET",
                f"http://127.0.0.1:{first}/b",
                f"HTTP://127.0.0.1:{second}/c",
            ]
        )

    timings = asyncio.run(main())

    assert [timing.url for timing in timings] == [
        f"http://127.0.0.1:{second}/a",
        f"http://127.0.0.1:{first}/b",
    ]
    assert all(timing.ok for timing in timings)
    assert len(first_log.requests) == len(second_log.requests) == 1


def test_probe_many_runs_probes_at_the_same_time(servers: LoopbackServers) -> None:
    # Each server answers only once both probes are connected, so one-at-a-time would time out.
    arrived: list[int] = []
    both_here = asyncio.Event()  # used only inside the servers' loop

    async def answer_when_both_arrive(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_head(reader)
        arrived.append(1)
        if len(arrived) == 2:
            both_here.set()
        await asyncio.wait_for(both_here.wait(), timeout=3)
        writer.write(OK_RESPONSE)
        await writer.drain()

    ports = [servers.start(answer_when_both_arrive) for _ in range(2)]

    async def main() -> list[ConnectionTiming]:
        return await probe_many([f"http://127.0.0.1:{port}/" for port in ports], timeout_s=2)

    timings = asyncio.run(main())

    assert [timing.failed_phase for timing in timings] == [None, None]


def test_probe_many_bounds_concurrency() -> None:
    with pytest.raises(ValueError, match="between 1 and 50"):
        asyncio.run(probe_many(["http://127.0.0.1/"], max_concurrency=0))
    with pytest.raises(ValueError, match="between 1 and 50"):
        asyncio.run(probe_many(["http://127.0.0.1/"], max_concurrency=51))


def test_probe_many_checks_every_argument_before_probing() -> None:
    asked: list[str] = []

    async def recording(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    good = "http://good.test:1/"
    with pytest.raises(ValueError, match="not an http"):
        asyncio.run(probe_many([good, "ftp://files.test/"], resolver=recording))
    with pytest.raises(ValueError, match="not an HTTP method"):
        asyncio.run(probe_many([good], method="GET /", resolver=recording))
    assert asked == []  # the good URL was never probed


@pytest.mark.parametrize("timeout_s", [0.0, -1.0, float("nan"), float("inf")])
def test_timeout_must_be_some_time(timeout_s: float) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        asyncio.run(probe_url("http://127.0.0.1:9/", timeout_s=timeout_s))


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://API.Lazada.vn/rest/auth?sign=x", "https://api.lazada.vn:443"),
        ("http://partner.shopeemobile.com/api/v2", "http://partner.shopeemobile.com:80"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
        ("http://[::1]:8080/x", "http://[::1]:8080"),
        (
            "https://user:pw@open-api.tiktokglobalshop.com/",
            "https://open-api.tiktokglobalshop.com:443",
        ),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize(
    "url",
    [
        "ftp://files.test/x?token=SECRET",
        "https:///path?token=SECRET",
        "https://host.test:0/?token=SECRET",
        "https://host.test:99999/?token=SECRET",
        "not a url?token=SECRET",
    ],
)
def test_unprobeable_urls_raise_without_the_query(url: str) -> None:
    with pytest.raises(ValueError) as raised:
        origin_of(url)
    assert "SECRET" not in str(raised.value)
    with pytest.raises(ValueError):
        asyncio.run(probe_url(url))


@pytest.mark.parametrize("method", ["", "GET /admin HTTP/1.1\r\nX-Evil: 1\r\n", "HE AD"])
def test_methods_that_would_break_the_request_line_are_refused(method: str) -> None:
    with pytest.raises(ValueError, match="not an HTTP method"):
        asyncio.run(probe_url("http://127.0.0.1:9/", method=method))


@pytest.mark.parametrize(
    ("url", "host_header"),
    [
        ("https://api.lazada.vn/rest", "api.lazada.vn"),
        ("https://api.lazada.vn:443/rest", "api.lazada.vn"),
        ("http://partner.shopeemobile.com/", "partner.shopeemobile.com"),
        ("https://api.lazada.vn:8443/", "api.lazada.vn:8443"),
        ("http://[::1]/", "[::1]"),
        ("https://xn--bcher-kva.test/", "xn--bcher-kva.test"),
        ("https://bücher.test/", "xn--bcher-kva.test"),
    ],
)
def test_host_header_leaves_out_the_default_port(url: str, host_header: str) -> None:
    # A loopback server cannot listen on 80 or 443 here, so this one looks inside.
    from nfdoctor.net.probe import _parse_target

    assert _parse_target(url).host_header == host_header


def test_phases_are_the_documented_ones() -> None:
    assert PHASES == ("dns", "connect", "tls", "request", "response")
