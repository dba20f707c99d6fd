"""``nfdoctor simulator --tls``: the CRM receivers over HTTPS on a second loopback port, one
certificate kind per platform host chosen from the ClientHello, started and stopped with
the plain port; and the whole command end to end in a process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography import x509

from nfdoctor.context import Environment
from nfdoctor.errors import UsageError
from nfdoctor.net.connect import ConnectToTransport, parse_connect_to
from nfdoctor.net.tls import TlsInspection, inspect_tls
from nfdoctor.services.simulator import SimulatorRequest, _planned_cert_kinds, start_simulator
from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.certs import SimulatorPki
from nfdoctor.simulator.faults import FaultPlan
from nfdoctor.simulator.server import (
    CrmTlsSites,
    SimulatorServer,
    client_hello_server_name,
    connect_to_rules,
    crm_tls_host,
    webhook_urls,
)

LOOPBACK = "127.0.0.1"
PLATFORMS = ("shopee", "lazada", "tiktok", "facebook", "zalo")


@pytest.fixture(scope="module")
def pki() -> SimulatorPki:
    """Dated from the real clock: the TLS clients here judge dates by it."""
    return SimulatorPki(datetime.now(timezone.utc))


@pytest.fixture
def ca_file(pki: SimulatorPki, tmp_path: Path) -> Path:
    path = tmp_path / "sim-ca.pem"
    path.write_bytes(pki.root_pem())
    return path


@contextlib.contextmanager
def serving(pki: SimulatorPki, kinds: Mapping[str, str] | None = None) -> Iterator[SimulatorServer]:
    """The simulator's server with HTTPS, in a thread, stopped on exit."""
    app, _ = build_simulator(7, orders_per_shop=1, conversations_per_account=1)
    server = SimulatorServer(app, tls=CrmTlsSites(pki, kinds))
    server.start_in_thread()
    try:
        yield server
    finally:
        server.stop()


def inspect_host(server: SimulatorServer, platform: str, ca_file: Path) -> TlsInspection:
    assert server.tls_port is not None
    return asyncio.run(
        inspect_tls(
            crm_tls_host(platform),
            server.tls_port,
            connect_host=LOOPBACK,
            ca_bundle=ca_file,
            timeout_s=5,
        )
    )


def client_context(ca_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    context.hostname_checks_common_name = False
    return context


async def get_status(rules: list[str], ca_file: Path, url: str) -> httpx.Response:
    """GET ``url`` through the connect_to ``rules``, trusting ``ca_file`` only."""
    inner = httpx.AsyncHTTPTransport(verify=client_context(ca_file))
    transport = ConnectToTransport(inner, [parse_connect_to(rule) for rule in rules])
    async with httpx.AsyncClient(transport=transport, trust_env=False, timeout=5) as client:
        return await client.get(url)


def test_each_host_serves_its_own_kind_protocol_included(pki: SimulatorPki, ca_file: Path) -> None:
    kinds = {"shopee": "sha1", "lazada": "expired", "tiktok": "tls11", "zalo": "untrusted_root"}
    with serving(pki, kinds) as server:
        seen = {p: inspect_host(server, p, ca_file) for p in PLATFORMS}
    verdicts = {p: (i.verdict.kind, i.protocol) for p, i in seen.items()}
    assert verdicts == {
        "shopee": ("weak_signature", "TLSv1.3"),
        "lazada": ("expired", "TLSv1.3"),
        "tiktok": ("ok", "TLSv1.1"),  # TLS 1.1 at most for this host only
        "facebook": ("ok", "TLSv1.3"),
        "zalo": ("untrusted_root", "TLSv1.3"),
    }
    for platform, inspection in seen.items():
        assert inspection.leaf.dns_names == (crm_tls_host(platform),)


def test_status_over_https_through_connect_to(pki: SimulatorPki, ca_file: Path) -> None:
    with serving(pki, {"lazada": "expired"}) as server:
        assert server.tls_port is not None and server.tls_url is not None
        rules = connect_to_rules(server.tls_port)
        response = asyncio.run(
            get_status(rules, ca_file, "https://facebook.crm.nfdoctor.test/crm/api/status")
        )
        assert response.status_code == 200 and response.json()["status"] == "ok"
        # By address, without SNI: the 127.0.0.1 certificate.
        response = asyncio.run(get_status([], ca_file, f"{server.tls_url}/crm/api/status"))
        assert response.status_code == 200
        with pytest.raises(httpx.ConnectError, match="certificate has expired"):
            asyncio.run(
                get_status(rules, ca_file, "https://lazada.crm.nfdoctor.test/crm/api/status")
            )
        # The plain port is unchanged.
        assert httpx.get(f"{server.url}/crm/api/status", trust_env=False).status_code == 200


def _client_hello(server_name: str | None) -> bytes:
    """A real ClientHello from Python's TLS client, as it would go on the wire."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if server_name is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_the_server_name_is_read_from_a_real_client_hello() -> None:
    hello = _client_hello("Lazada.CRM.nfdoctor.test")
    assert client_hello_server_name(hello) == "lazada.crm.nfdoctor.test"
    assert client_hello_server_name(_client_hello(None)) is None
    assert client_hello_server_name(hello[:60]) is None  # cut short
    assert client_hello_server_name(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") is None
    assert client_hello_server_name(b"") is None


def test_the_default_context_still_switches_certificates_by_sni(pki: SimulatorPki) -> None:
    sites = CrmTlsSites(pki, {"zalo": "dv"})
    client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    client = client_context.wrap_bio(client_in, client_out, server_hostname=crm_tls_host("zalo"))
    server = sites.default_context.wrap_bio(server_in, server_out, server_side=True)
    for _ in range(10):  # an in-memory handshake: pass the bytes back and forth
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        server_in.write(client_out.read())
        client_in.write(server_out.read())
    der = client.getpeercert(binary_form=True)
    assert der is not None
    leaf = x509.load_der_x509_certificate(der)
    assert leaf == pki.certificate("dv", crm_tls_host("zalo")).leaf


def test_odd_clients_do_not_stop_the_https_port(pki: SimulatorPki, ca_file: Path) -> None:
    with serving(pki) as server:
        assert server.tls_port is not None
        with socket.create_connection((LOOPBACK, server.tls_port), timeout=5) as silent:
            with socket.create_connection((LOOPBACK, server.tls_port), timeout=5) as plain:
                plain.sendall(b"GET /crm/api/status HTTP/1.1\r\nHost: x\r\n\r\n")
                assert plain.recv(100) == b""  # not TLS: closed without an answer
            # The silent one is still waiting for its ClientHello; others are served.
            assert inspect_host(server, "shopee", ca_file).verdict.ok
            silent.setblocking(False)
            with pytest.raises(BlockingIOError):  # open, nothing said to it
                silent.recv(1)


def test_both_ports_stop_together_with_a_connection_open(pki: SimulatorPki, ca_file: Path) -> None:
    app, _ = build_simulator(7, orders_per_shop=1, conversations_per_account=1)
    server = SimulatorServer(app, tls=CrmTlsSites(pki))
    assert server.tls_port is not None
    tls_port = server.tls_port
    server.start_in_thread()
    try:
        host = crm_tls_host("tiktok")
        raw = socket.create_connection((LOOPBACK, tls_port), timeout=5)
        with client_context(ca_file).wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(f"GET /crm/api/status HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            assert tls.recv(12) == b"HTTP/1.1 200"  # a keep-alive connection, left open
            started = time.monotonic()
            server.stop()
            assert time.monotonic() - started < 3.0
            assert server._thread is not None and not server._thread.is_alive()
    finally:
        server.stop()
    for port in (server.port, tls_port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((LOOPBACK, port), timeout=5).close()


def test_the_https_port_is_loopback_only_and_bad_kinds_are_refused(pki: SimulatorPki) -> None:
    app, _ = build_simulator(7, orders_per_shop=1, conversations_per_account=1)
    with pytest.raises(UsageError, match=r"127\.0\.0\.1 only"):
        SimulatorServer(app, host="0.0.0.0", tls=CrmTlsSites(pki))
    server = SimulatorServer(app, tls=CrmTlsSites(pki))
    try:
        assert server.tls_sock is not None
        assert server.tls_sock.getsockname()[0] == LOOPBACK
        assert server.tls_port not in (None, server.port)
    finally:
        server.sock.close()
        server.tls_sock.close()
    with pytest.raises(UsageError, match=r"tls: lazada: unknown certificate kind 'nope' \("):
        CrmTlsSites(pki, {"lazada": "nope"})
    with pytest.raises(UsageError, match=r"tls: 'amazon' is not a simulated platform"):
        CrmTlsSites(pki, {"amazon": "valid"})


def test_webhook_urls_have_an_http_and_an_https_form() -> None:
    assert webhook_urls("http://127.0.0.1:4000/", https=False)["zalo"] == (
        "http://127.0.0.1:4000/crm/webhooks/zalo"
    )
    https = webhook_urls("http://127.0.0.1:4000", https=True)
    assert list(https) == list(PLATFORMS)
    assert https["tiktok"] == "https://tiktok.crm.nfdoctor.test/crm/webhooks/tiktok"
    assert connect_to_rules(41235)[1] == "lazada.crm.nfdoctor.test:443:127.0.0.1:41235"


def test_start_simulator_with_tls_kinds_writes_and_serves_what_it_says(tmp_path: Path) -> None:
    config_path = tmp_path / "sim.yaml"
    started = start_simulator(
        Environment(),
        SimulatorRequest(
            tls=True, tls_kinds={"lazada": "expired"}, write_config=config_path, shops=1
        ),
    )
    server = started.server
    assert server.tls_port is not None
    https_note = next(n for n in started.notes if "HTTPS" in n)
    assert f"on https://127.0.0.1:{server.tls_port} " in https_note
    assert "lazada expired" in https_note and f"CA bundle {tmp_path / 'sim-ca.pem'}" in https_note
    assert started.notes[-1].startswith("nfdoctor simulator listening on http://127.0.0.1:")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    configured = {p: config["platforms"][p]["webhook_url"] for p in PLATFORMS}
    assert started.state.webhook_urls == configured
    assert configured["lazada"] == "https://lazada.crm.nfdoctor.test/crm/webhooks/lazada"
    rules = config["webhooks"]["connect_to"]
    ca = tmp_path / config["webhooks"]["ca_bundle"]
    target = parse_connect_to(rules[PLATFORMS.index("lazada")])
    assert target.connect_port == server.tls_port
    server.start_in_thread()
    try:
        inspection = asyncio.run(
            inspect_tls(
                "lazada.crm.nfdoctor.test",
                server.tls_port,
                connect_host=target.connect_host,
                ca_bundle=ca,
                timeout_s=5,
            )
        )
        facebook = asyncio.run(
            get_status(rules, ca, "https://facebook.crm.nfdoctor.test/crm/api/status")
        )
    finally:
        server.stop()
    assert inspection.verdict.kind == "expired"
    assert facebook.status_code == 200


def test_without_tls_the_urls_stay_http(tmp_path: Path) -> None:
    started = start_simulator(Environment(), SimulatorRequest(write_config=tmp_path / "s.yaml"))
    try:
        assert started.server.tls_port is None and started.server.tls_sock is None
        urls = started.state.webhook_urls
        assert urls["shopee"] == f"{started.server.url}/crm/webhooks/shopee"
        assert not any("HTTPS" in note for note in started.notes)
        assert not (tmp_path / "s-ca.pem").exists()
        assert "webhooks" not in yaml.safe_load((tmp_path / "s.yaml").read_text())
    finally:
        started.server.sock.close()
    with pytest.raises(ValueError, match="tls_kinds needs tls"):
        start_simulator(Environment(), SimulatorRequest(tls_kinds={"lazada": "dv"}))


def test_the_fault_plans_tls_section_names_the_kinds(tmp_path: Path) -> None:
    plan = tmp_path / "faults.yaml"
    plan.write_text("tls:\n  lazada: dv\n  zalo: tls11\n", encoding="utf-8")
    started = start_simulator(Environment(), SimulatorRequest(tls=True, faults=plan))
    try:
        assert started.server.tls is not None
        assert started.server.tls.kinds == {
            "shopee": "valid",
            "lazada": "dv",
            "tiktok": "valid",
            "facebook": "valid",
            "zalo": "tls11",
        }
        assert "certificates: lazada dv, zalo tls11;" in started.notes[-2]
        assert started.notes[-2].endswith("no CA bundle written (use --write-config)")
    finally:
        started.server.sock.close()
        assert started.server.tls_sock is not None
        started.server.tls_sock.close()
    # Without --tls the section cannot apply, and the operator is told.
    plain = start_simulator(Environment(), SimulatorRequest(faults=plan))
    plain.server.sock.close()
    assert "nfdoctor: the fault plan's tls: section has no effect without --tls" in plain.notes
    assert _planned_cert_kinds(None) == {}
    assert _planned_cert_kinds(FaultPlan()) == {}


def _https_port(lines: list[str]) -> int | None:
    found = re.search(r"over HTTPS on https://127\.0\.0\.1:(\d+) ", "\n".join(lines))
    return int(found.group(1)) if found else None


def test_the_command_serves_https_end_to_end(tmp_path: Path) -> None:
    work = Path.cwd()
    (work / "plan.yaml").write_text("tls:\n  lazada: expired\n", encoding="utf-8")
    command = [sys.executable, "-m", "nfdoctor", "simulator", "--port", "0", "--tls"]
    process = subprocess.Popen(
        [*command, "--faults", "plan.yaml", "--write-config", "sim.yaml"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
        cwd=work,
    )
    assert process.stderr is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stderr.readline().decode()
            if not line and process.poll() is not None:
                break
            lines.append(line.rstrip("\n"))
            if "listening on http://127.0.0.1:" in line:
                break
        tls_port = _https_port(lines)
        assert tls_port is not None, lines
        assert "CA bundle sim-ca.pem" in "\n".join(lines)
        config = yaml.safe_load((work / "sim.yaml").read_text(encoding="utf-8"))
        ca = work / config["webhooks"]["ca_bundle"]
        assert stat.S_IMODE(ca.stat().st_mode) == 0o644
        rules = config["webhooks"]["connect_to"]
        assert rules == [f"{crm_tls_host(p)}:443:127.0.0.1:{tls_port}" for p in PLATFORMS]
        # The HTTPS port listens before the line is printed: the handshake waits in its
        # backlog until the server accepts.
        response = asyncio.run(
            get_status(rules, ca, "https://facebook.crm.nfdoctor.test/crm/api/status")
        )
        assert response.status_code == 200 and response.json()["status"] == "ok"
        lazada = "https://lazada.crm.nfdoctor.test/crm/api/status"
        with pytest.raises(httpx.ConnectError, match="certificate has expired"):
            asyncio.run(get_status(rules, ca, lazada))
        assert config["platforms"]["lazada"]["webhook_url"] == (
            "https://lazada.crm.nfdoctor.test/crm/webhooks/lazada"
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=30)[1].decode()
    assert process.returncode == 0, [*lines, rest]
    assert "Traceback" not in "\n".join(lines) + rest
