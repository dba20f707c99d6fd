"""inspect_tls and tls_findings against real TLS servers on 127.0.0.1, one per certificate
kind of the simulator's PKI, cross-checked with the openssl command line where it is."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re
import shutil
import socket
import ssl
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from nfdoctor.context import Environment
from nfdoctor.errors import UsageError
from nfdoctor.net.tls import (
    CaBundleError,
    CertificateInfo,
    TlsInspection,
    TlsInspectionError,
    describe_certificate,
    inspect_tls,
    matches_host,
    tls_findings,
)
from nfdoctor.results import Status
from nfdoctor.simulator.certs import (
    CERT_KINDS,
    SimulatorPki,
    cached_key,
    issue_certificate,
    server_context,
)
from tests.net.conftest import HOST, LOOPBACK, tls_server

OK, WARNING, CRITICAL = Status.OK, Status.WARNING, Status.CRITICAL

# kind -> (verdict kind, OpenSSL's verify code, trust kind, the findings that are not OK)
EXPECTED: dict[str, tuple[str, int | None, str, dict[str, Status]]] = {
    "valid": ("ok", None, "ok", {}),
    "dv": ("ok", None, "ok", {}),
    "ev": ("ok", None, "ok", {}),
    "expired": ("expired", 10, "ok", {"leaf_expiry": CRITICAL}),
    "not_yet_valid": ("not_yet_valid", 9, "ok", {"not_yet_valid": CRITICAL}),
    "wrong_host": ("hostname_mismatch", 62, "ok", {"hostname": CRITICAL}),
    "self_signed": ("self_signed", 18, "self_signed", {"self_signed": CRITICAL}),
    "untrusted_root": ("untrusted_root", 19, "untrusted_root", {"trust": CRITICAL}),
    "incomplete_chain": (
        "incomplete_chain",
        20,
        "incomplete_chain",
        {"incomplete_chain": CRITICAL},
    ),
    # 3 days left is under the default 7-day critical threshold.
    "expiring_soon": ("ok", None, "ok", {"leaf_expiry": CRITICAL}),
    "sha1": ("weak_signature", 68, "ok", {"weak_signature": WARNING}),
    "rsa1024": ("weak_key", 66, "ok", {"weak_key": WARNING}),
    "tls11": ("ok", None, "ok", {"protocol": WARNING}),
}

# What the openssl command line prints for each verdict (OpenSSL 3 wording).
OPENSSL_TEXT = {
    "expired": "certificate has expired",
    "not_yet_valid": "certificate is not yet valid",
    "hostname_mismatch": "hostname mismatch",
    "self_signed": "self-signed certificate",
    "untrusted_root": "self-signed certificate in certificate chain",
    "incomplete_chain": "unable to get local issuer certificate",
    "weak_signature": "CA signature digest algorithm too weak",
    "weak_key": "EE certificate key too weak",
}


def inspect(
    context: ssl.SSLContext, ca_bundle: Path | None, *, host: str = HOST, timeout_s: float = 5
) -> TlsInspection:
    """Serve ``context`` on loopback and inspect it as ``host`` (connect_to 127.0.0.1)."""

    async def run() -> TlsInspection:
        async with tls_server(context) as port:
            return await inspect_tls(
                host, port, connect_host=LOOPBACK, ca_bundle=ca_bundle, timeout_s=timeout_s
            )

    return asyncio.run(run())


def test_the_table_covers_every_kind() -> None:
    assert set(EXPECTED) == set(CERT_KINDS)


@pytest.mark.parametrize("kind", CERT_KINDS)
def test_every_kind_gets_its_verdict_and_findings(
    kind: str, pki: SimulatorPki, ca_bundle: Path
) -> None:
    verdict, code, trust, not_ok = EXPECTED[kind]
    inspection = inspect(pki.server_context(kind, HOST), ca_bundle)
    assert inspection.verdict.kind == verdict, inspection.verdict
    assert inspection.verdict.verify_code == code
    assert inspection.trust.kind == trust, inspection.trust
    findings = tls_findings(inspection, now=pki.now)
    assert {f.code: f.status for f in findings if f.status is not OK} == not_ok
    codes = [f.code for f in findings]
    assert codes[0] == "leaf_expiry" and codes[-1] == "protocol"
    # Every sent certificate's expiry is judged, one finding each.
    assert len([c for c in codes if c in ("leaf_expiry", "chain_expiry")]) == len(
        pki.certificate(kind, HOST).chain
    )
    assert inspection.chain_complete
    sent = [c.public_bytes(serialization.Encoding.DER) for c in pki.certificate(kind, HOST).chain]
    assert [c.der for c in inspection.chain] == sent
    assert inspection.validation_level == {"dv": "DV", "ev": "EV"}.get(kind, "OV")


def test_a_valid_server_is_all_ok_and_says_what_it_measured(
    pki: SimulatorPki, ca_bundle: Path
) -> None:
    inspection = inspect(pki.server_context("valid", HOST), ca_bundle)
    findings = {f.code: f for f in tls_findings(inspection, now=pki.now)}
    assert [f.status for f in findings.values()] == [OK] * 5
    expiry = pki.now + timedelta(days=90)
    assert findings["leaf_expiry"].summary == (
        f"leaf {HOST} expires in 90 d ({expiry:%Y-%m-%d}), warn < 21 d, crit < 7 d"
    )
    assert findings["trust"].summary.startswith(
        f"the chain leads to root nfdoctor simulator root CA in CA bundle {ca_bundle}"
    )
    assert findings["hostname"].summary.startswith(f"{HOST} is covered")
    assert inspection.protocol == "TLSv1.3" and inspection.lowered_reason is None
    assert inspection.trust_anchor is not None
    assert inspection.trust_anchor.subject == pki.root.subject.rfc4514_string()


def test_expiry_thresholds(pki: SimulatorPki, ca_bundle: Path) -> None:
    inspection = inspect(pki.server_context("expiring_soon", HOST), ca_bundle)
    leaf = inspection.leaf

    def leaf_status(now: datetime, **thresholds: int) -> tuple[Status, str]:
        finding = tls_findings(inspection, now=now, **thresholds)[0]
        assert finding.code == "leaf_expiry"
        return finding.status, finding.summary

    status, summary = leaf_status(pki.now)
    assert status is CRITICAL
    assert summary == (
        f"leaf {HOST} expires in 3 d ({leaf.not_after:%Y-%m-%d}), warn < 21 d, crit < 7 d"
    )
    assert leaf_status(pki.now, warning_days=21, critical_days=2)[0] is WARNING
    assert leaf_status(pki.now, warning_days=3, critical_days=2)[0] is OK  # 3 d: not < 3 d
    one_second_later = pki.now + timedelta(seconds=1)
    assert leaf_status(one_second_later, warning_days=3, critical_days=2)[0] is WARNING
    status, summary = leaf_status(leaf.not_after + timedelta(hours=5))
    assert status is CRITICAL and "expired 5 h ago" in summary


def test_findings_refuse_a_naive_clock_and_inverted_thresholds(
    pki: SimulatorPki, ca_bundle: Path
) -> None:
    inspection = inspect(pki.server_context("valid", HOST), ca_bundle)
    with pytest.raises(ValueError, match="aware"):
        tls_findings(inspection, now=pki.now.replace(tzinfo=None))
    with pytest.raises(ValueError, match="critical_days"):
        tls_findings(inspection, now=pki.now, warning_days=3, critical_days=7)


def _chain_server(
    chain: list[x509.Certificate], key: object, *, legacy: bool = False
) -> ssl.SSLContext:
    return server_context(chain, key, legacy=legacy)  # type: ignore[arg-type]


def test_each_chain_certificate_expiry_is_its_own_finding(
    pki: SimulatorPki, ca_bundle: Path
) -> None:
    day = timedelta(days=1)
    short_lived = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "short-lived issuing CA")])
    intermediate_key = cached_key("test-intermediate")
    intermediate = issue_certificate(
        intermediate_key,
        subject=short_lived,
        issuer=pki.root,
        issuer_key=pki.root_key,
        not_before=pki.now - 300 * day,
        not_after=pki.now + 10 * day,
        ca=True,
        path_length=0,
    )
    leaf_key = cached_key("leaf")
    leaf = issue_certificate(
        leaf_key,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]),
        issuer=intermediate,
        issuer_key=intermediate_key,
        not_before=pki.now - day,
        not_after=pki.now + 60 * day,
        dns_names=[HOST],
    )
    inspection = inspect(_chain_server([leaf, intermediate], leaf_key), ca_bundle)
    assert inspection.verdict.kind == "ok"
    findings = tls_findings(inspection, now=pki.now)
    expiry = [f for f in findings if f.code in ("leaf_expiry", "chain_expiry")]
    assert [(f.code, f.status) for f in expiry] == [("leaf_expiry", OK), ("chain_expiry", WARNING)]
    assert expiry[1].certificate == "CN=short-lived issuing CA"
    assert expiry[1].summary.startswith("intermediate short-lived issuing CA expires in 10 d (")
    assert "subject: CN=short-lived issuing CA" in expiry[1].details

    # Eleven days on, the intermediate has expired and the leaf has not.
    findings = tls_findings(inspection, now=pki.now + 11 * day)
    statuses = {f.code: f.status for f in findings}
    assert statuses["chain_expiry"] is CRITICAL and statuses["leaf_expiry"] is OK


def test_an_expired_intermediate_is_expired_and_still_trusted(
    pki: SimulatorPki, ca_bundle: Path
) -> None:
    day = timedelta(days=1)
    intermediate_key = cached_key("test-intermediate")
    intermediate = issue_certificate(
        intermediate_key,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired issuing CA")]),
        issuer=pki.root,
        issuer_key=pki.root_key,
        not_before=pki.now - 300 * day,
        not_after=pki.now - day,
        ca=True,
        path_length=0,
    )
    leaf_key = cached_key("leaf")
    leaf = issue_certificate(
        leaf_key,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]),
        issuer=intermediate,
        issuer_key=intermediate_key,
        not_before=pki.now - day,
        not_after=pki.now + 60 * day,
        dns_names=[HOST],
    )
    inspection = inspect(_chain_server([leaf, intermediate], leaf_key), ca_bundle)
    assert (inspection.verdict.kind, inspection.trust.kind) == ("expired", "ok")
    statuses = {f.code: f.status for f in tls_findings(inspection, now=pki.now)}
    assert statuses == {
        "leaf_expiry": OK,
        "chain_expiry": CRITICAL,
        "hostname": OK,
        "trust": OK,
        "protocol": OK,
    }


def test_the_host_name_is_checked_against_the_san_only(pki: SimulatorPki, ca_bundle: Path) -> None:
    leaf_key = cached_key("leaf")
    cn_only = issue_certificate(
        leaf_key,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]),
        issuer=pki.intermediate,
        issuer_key=pki.intermediate_key,
        not_before=pki.now - timedelta(days=1),
        not_after=pki.now + timedelta(days=60),
    )
    inspection = inspect(_chain_server([cn_only, pki.intermediate], leaf_key), ca_bundle)
    # Python's default would accept the CN (hostname_checks_common_name); OpenSSL, told not
    # to, and nfdoctor's own check both refuse it.
    assert inspection.verdict.kind == "hostname_mismatch"
    assert not inspection.hostname_matches
    assert inspection.leaf.common_name == HOST and not inspection.leaf.has_san
    hostname = next(f for f in tls_findings(inspection, now=pki.now) if f.code == "hostname")
    assert hostname.status is CRITICAL
    assert hostname.summary == (
        f"the certificate has no SAN (its CN {HOST} does not count), expected {HOST} covered"
    )
    assert inspection.trust.kind == "ok"  # the chain itself is fine


@pytest.mark.parametrize(
    ("sans", "ips", "name", "expected"),
    [
        ((HOST,), (), HOST, True),
        ((HOST.upper() + ".",), (), HOST, True),
        (("*.crm.nfdoctor.test",), (), HOST, True),
        (("*.crm.nfdoctor.test",), (), "crm.nfdoctor.test", False),
        (("*.crm.nfdoctor.test",), (), "a.lazada.crm.nfdoctor.test", False),
        (("*.test",), (), "nfdoctor.test", False),
        (("laz*.crm.nfdoctor.test",), (), HOST, False),
        (("other.test",), (), HOST, False),
        ((), ("127.0.0.1",), "127.0.0.1", True),
        (("127.0.0.1",), (), "127.0.0.1", False),  # an IP must be an IP SAN
        ((), ("::1",), "[::1]", True),
    ],
)
def test_matches_host(
    sans: tuple[str, ...], ips: tuple[str, ...], name: str, expected: bool, pki: SimulatorPki
) -> None:
    described = describe_certificate(
        pki.certificate("valid", HOST).leaf.public_bytes(serialization.Encoding.DER)
    )
    certificate = dataclasses.replace(described, dns_names=sans, ip_addresses=ips)
    assert matches_host(certificate, name) is expected


def test_untrusted_root_and_incomplete_chain_are_told_apart(
    pki: SimulatorPki, ca_bundle: Path, tmp_path: Path
) -> None:
    # A self-signed root at the end of what was sent, not in the store: untrusted root.
    untrusted = inspect(pki.server_context("untrusted_root", HOST), ca_bundle)
    assert untrusted.chain[-1].self_signed and untrusted.trust.kind == "untrusted_root"
    trust = next(f for f in tls_findings(untrusted, now=pki.now) if f.code == "trust")
    assert trust.summary.startswith(
        "the chain ends at root Untrusted Example root CA (in no bundle), which is not in "
    )
    # The chain stops at a certificate that is not self-signed and whose issuer the store
    # lacks: incomplete, whether the leaf (intermediate not sent) ...
    missing = inspect(pki.server_context("incomplete_chain", HOST), ca_bundle)
    assert missing.trust.kind == "incomplete_chain" and len(missing.chain) == 1
    finding = next(f for f in tls_findings(missing, now=pki.now) if f.code == "incomplete_chain")
    assert f"stop at {HOST}, whose issuer (CN=nfdoctor simulator issuing CA 1" in finding.summary
    # ... or the intermediate (its root missing from this store).
    other_store = tmp_path / "other.pem"
    other_store.write_bytes(pki.untrusted_root.public_bytes(serialization.Encoding.PEM))
    rootless = inspect(pki.server_context("valid", HOST), other_store)
    assert rootless.trust.kind == "incomplete_chain" and not rootless.chain[-1].self_signed


def test_sha1_and_rsa1024_are_described_and_warned_about(
    pki: SimulatorPki, ca_bundle: Path
) -> None:
    sha1 = inspect(pki.server_context("sha1", HOST), ca_bundle)
    finding = next(f for f in tls_findings(sha1, now=pki.now) if f.code == "weak_signature")
    assert finding.summary == (
        f"leaf {HOST} is signed with SHA-1 (sha1WithRSAEncryption), refused at OpenSSL's "
        "default security level, expected SHA-256 or stronger"
    )
    assert "signature: sha1WithRSAEncryption (sha1)" in finding.details
    assert finding.certificate == sha1.leaf.subject
    # The intermediate is signed with SHA-256: only the leaf is named.
    assert [f.code for f in tls_findings(sha1, now=pki.now)].count("weak_signature") == 1

    rsa1024 = inspect(pki.server_context("rsa1024", HOST), ca_bundle)
    finding = next(f for f in tls_findings(rsa1024, now=pki.now) if f.code == "weak_key")
    assert finding.summary == (
        f"leaf {HOST} has an RSA key of 1024 bits, refused at OpenSSL's default security "
        "level, expected 2048 bits or more"
    )
    assert "key: RSA 1024 bits" in finding.details
    assert any(line.startswith(f"subject: CN={HOST}") for line in finding.details)


def test_tls_below_1_2_is_learnt_in_a_lowered_handshake(pki: SimulatorPki, ca_bundle: Path) -> None:
    inspection = inspect(pki.server_context("tls11", HOST), ca_bundle)
    assert inspection.protocol == "TLSv1.1"
    assert inspection.lowered_reason  # why the default handshake failed
    assert inspection.verdict.lowered and inspection.verdict.ok
    protocol = tls_findings(inspection, now=pki.now)[-1]
    assert protocol.code == "protocol" and protocol.status is WARNING
    assert protocol.summary == "the server speaks TLSv1.1 at most, expected TLS 1.2 or later"


@pytest.mark.parametrize("kind", ["expired", "not_yet_valid", "self_signed", "wrong_host"])
def test_a_failing_certificate_is_still_described(
    kind: str, pki: SimulatorPki, ca_bundle: Path
) -> None:
    inspection = inspect(pki.server_context(kind, HOST), ca_bundle)
    assert not inspection.verdict.ok
    served = pki.certificate(kind, HOST).leaf
    leaf = inspection.leaf
    assert leaf.subject == served.subject.rfc4514_string()
    assert (leaf.not_before, leaf.not_after) == (
        served.not_valid_before_utc,
        served.not_valid_after_utc,
    )
    assert leaf.serial == f"{served.serial_number:X}"
    assert leaf.self_signed is (kind == "self_signed")
    assert leaf.signature_hash == "sha256" and leaf.key_type == "EC" and leaf.key_bits == 256
    lines = leaf.describe()
    assert f"valid from {leaf.not_before:%Y-%m-%d %H:%M:%S} UTC to" in lines[3]
    details = {line for f in tls_findings(inspection, now=pki.now) for line in f.details}
    assert f"subject: {leaf.subject}" in details


def test_certificate_description(pki: SimulatorPki) -> None:
    served = pki.certificate("ev", HOST)
    leaf = describe_certificate(served.leaf.public_bytes(serialization.Encoding.DER))
    intermediate = describe_certificate(pki.intermediate.public_bytes(serialization.Encoding.DER))
    root = describe_certificate(pki.root.public_bytes(serialization.Encoding.DER))
    assert isinstance(leaf, CertificateInfo)
    assert leaf.dns_names == (HOST,) and leaf.ip_addresses == ()
    assert (leaf.policy_oids, leaf.validation_level) == (("2.23.140.1.1",), "EV")
    assert (leaf.is_ca, leaf.self_signed) == (False, False)
    assert (intermediate.is_ca, intermediate.self_signed) == (True, False)
    assert (root.is_ca, root.self_signed) == (True, True)
    assert (root.key_type, root.key_bits, root.signature_algorithm) == (
        "RSA",
        2048,
        "sha256WithRSAEncryption",
    )
    assert leaf.signature_algorithm == "sha256WithRSAEncryption"  # signed by the RSA CA
    assert leaf.key_curve == "secp256r1"
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", leaf.sha256_fingerprint)
    assert leaf.not_before.tzinfo is not None and leaf.not_before.utcoffset() == timedelta(0)
    ip_leaf = describe_certificate(
        pki.certificate("valid", "127.0.0.1").leaf.public_bytes(serialization.Encoding.DER)
    )
    assert ip_leaf.ip_addresses == ("127.0.0.1",) and ip_leaf.dns_names == ()


# ---------------------------------------------------------------------- bad inputs


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not a certificate\n", "is not a PEM file of certificates"),
        (b"", "is not a PEM file of certificates"),
        (
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "holds a certificate that cannot be read",
        ),
    ],
)
def test_a_ca_bundle_that_is_not_pem_is_a_usage_error_naming_the_file(
    content: bytes, reason: str, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.crt"
    bundle.write_bytes(content)
    # Checked before any connection: the port is closed, yet the bundle is what fails.
    with pytest.raises(CaBundleError) as caught:
        asyncio.run(inspect_tls(LOOPBACK, _closed_port(), ca_bundle=bundle))
    assert isinstance(caught.value, UsageError)
    assert str(caught.value).startswith(f"CA bundle {bundle}: {reason}")
    assert "\n" not in str(caught.value)


def test_a_missing_or_odd_ca_bundle_is_a_usage_error(tmp_path: Path) -> None:
    for path, reason in ((tmp_path / "nope.pem", "No such file"), (tmp_path, "a directory")):
        with pytest.raises(CaBundleError, match=re.escape(f"CA bundle {path}: ") + ".*" + reason):
            asyncio.run(inspect_tls(LOOPBACK, _closed_port(), ca_bundle=path))


def _raised(coroutine: object) -> TlsInspectionError:
    with pytest.raises(TlsInspectionError) as caught:
        asyncio.run(coroutine)  # type: ignore[arg-type]
    error = caught.value
    assert "\n" not in str(error)
    assert error.__suppress_context__ or error.__context__ is None  # raised "from None"
    return error


def test_connection_refused_is_one_clear_line() -> None:
    port = _closed_port()
    error = _raised(inspect_tls(HOST, port, connect_host=LOOPBACK, timeout_s=5))
    assert (error.phase, error.reason) == ("connect", "refused")
    assert str(error) == f"TCP connect to {HOST}:{port} (127.0.0.1) failed: connection refused"
    # The CLI's translation table prints it as one line, without a traceback.
    env = Environment(stderr=io.StringIO())
    from nfdoctor.cli.errors import report_error

    code = report_error(env, error)
    shown = env.stderr.getvalue()  # type: ignore[attr-defined]
    assert code == 3 and shown == f"nfdoctor: error: {error}\n"


def test_a_plain_http_server_is_not_tls() -> None:
    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def run() -> None:
        server = await asyncio.start_server(http, LOOPBACK, 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            await inspect_tls(LOOPBACK, port, timeout_s=5)

    error = _raised(run())
    assert (error.phase, error.reason) == ("tls", "not_tls")
    assert "does not speak TLS" in str(error) and "plain HTTP port" in str(error)


def test_a_server_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    async def run() -> None:
        server = await asyncio.start_server(silent, LOOPBACK, 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            await inspect_tls(LOOPBACK, port, timeout_s=0.3)

    started = time.monotonic()
    error = _raised(run())
    assert time.monotonic() - started < 2.0
    assert (error.phase, error.reason) == ("tls", "timeout")
    assert "timed out" in str(error)


def test_a_server_that_hangs_up_at_once() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    async def run() -> None:
        server = await asyncio.start_server(hang_up, LOOPBACK, 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            await inspect_tls(LOOPBACK, port, timeout_s=5)

    error = _raised(run())
    assert error.phase == "tls" and error.reason in ("reset", "closed")


def test_a_name_that_does_not_resolve() -> None:
    error = _raised(inspect_tls(HOST, 443, connect_host="nowhere.invalid", timeout_s=5))
    assert (error.phase, error.reason) == ("dns", "dns_failed")
    assert str(error).startswith("DNS lookup for nowhere.invalid failed: ")


def test_bad_arguments_are_value_errors() -> None:
    for kwargs in ({"port": 0}, {"timeout_s": 0.0}, {"timeout_s": float("nan")}):
        arguments = {"host": HOST, "port": 443, **kwargs}
        with pytest.raises(ValueError):
            asyncio.run(inspect_tls(**arguments))  # type: ignore[arg-type]


# ---------------------------------------------------------------------- openssl

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not on PATH")


def _pem(certificates: tuple[x509.Certificate, ...]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


@needs_openssl
@pytest.mark.parametrize("kind", CERT_KINDS)
def test_openssl_verify_agrees(
    kind: str, pki: SimulatorPki, ca_bundle: Path, tmp_path: Path
) -> None:
    assert OPENSSL is not None
    served = pki.certificate(kind, HOST)
    (tmp_path / "leaf.pem").write_bytes(_pem(served.chain[:1]))
    (tmp_path / "chain.pem").write_bytes(_pem(served.chain[1:]))
    untrusted = ["-untrusted", "chain.pem"] if len(served.chain) > 1 else []

    def verify(auth_level: int) -> str:
        command = [OPENSSL, "verify", "-CAfile", str(ca_bundle), "-verify_hostname", HOST]
        command += ["-auth_level", str(auth_level), *untrusted, "leaf.pem"]
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=30)
        return done.stdout + done.stderr

    inspection = inspect(served.server_context(), ca_bundle)
    verdict = inspection.verdict
    # Level 2 is Python's default (what the verdict is taken at).
    said = verify(2)
    if verdict.ok:
        assert said.strip() == "leaf.pem: OK", said
    else:
        text = re.escape(OPENSSL_TEXT[verdict.kind])
        assert re.search(rf"error {verdict.verify_code} at \d+ depth lookup: {text}\n", said), said
    # At level 0 SHA-1 and RSA-1024 pass, as the trust verdict says.
    if verdict.kind in ("weak_signature", "weak_key"):
        assert inspection.trust.ok and verify(0).strip() == "leaf.pem: OK"


async def _s_client(port: int, ca_bundle: Path, *extra: str) -> tuple[int, str]:
    assert OPENSSL is not None
    process = await asyncio.create_subprocess_exec(
        OPENSSL,
        "s_client",
        "-connect",
        f"{LOOPBACK}:{port}",
        "-servername",
        HOST,
        "-verify_return_error",
        "-verify_hostname",
        HOST,
        "-CAfile",
        str(ca_bundle),
        "-brief",
        *extra,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, output.decode()


@needs_openssl
@pytest.mark.parametrize("kind", CERT_KINDS)
def test_openssl_s_client_agrees(kind: str, pki: SimulatorPki, ca_bundle: Path) -> None:
    lowered = ("-cipher", "DEFAULT@SECLEVEL=0")

    async def run() -> tuple[TlsInspection, tuple[int, str], tuple[int, str]]:
        async with tls_server(pki.server_context(kind, HOST)) as port:
            inspection = await inspect_tls(
                HOST, port, connect_host=LOOPBACK, ca_bundle=ca_bundle, timeout_s=5
            )
            default = await _s_client(port, ca_bundle)
            at_level_0 = await _s_client(port, ca_bundle, *lowered)
            return inspection, default, at_level_0

    inspection, (code, said), (code0, said0) = asyncio.run(run())
    verdict = inspection.verdict
    if kind == "tls11":
        # openssl's default level refuses the TLS 1.1 handshake itself, before any certificate.
        assert code != 0 and "Verification" not in said, said
        assert code0 == 0 and "Protocol version: TLSv1.1" in said0, said0
        assert "Verification: OK" in said0 and verdict.ok
    elif verdict.ok:
        assert code == 0 and "Verification: OK" in said, said
        assert f"Protocol version: {inspection.protocol}" in said
    else:
        assert code != 0, said
        assert f"verify error:num={verdict.verify_code}:{OPENSSL_TEXT[verdict.kind]}\n" in said
    if verdict.kind in ("weak_signature", "weak_key"):
        # Reaching the certificate check at level 0: the chain itself is trusted.
        assert code0 == 0 and "Verification: OK" in said0, said0
        assert inspection.trust.ok


def test_a_sha1_self_signed_root_is_a_root_and_its_signature_is_not_weak(
    pki: SimulatorPki, ca_bundle: Path
) -> None:
    root_key = cached_key("intermediate")  # any RSA key: SHA-1 needs one
    old_root = issue_certificate(
        root_key,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old SHA-1 root")]),
        issuer=None,
        issuer_key=root_key,
        not_before=pki.now - timedelta(days=5000),
        not_after=pki.now + timedelta(days=500),
        ca=True,
        sha1=True,
    )
    described = describe_certificate(old_root.public_bytes(serialization.Encoding.DER))
    assert (described.signature_hash, described.self_signed, described.is_ca) == (
        "sha1",
        True,
        True,
    )
    inspection = inspect(pki.server_context("valid", HOST), ca_bundle)
    with_old_root = dataclasses.replace(inspection, chain=(*inspection.chain, described))
    findings = tls_findings(with_old_root, now=pki.now)
    assert "weak_signature" not in {f.code for f in findings}
    assert findings[2].summary.startswith("root old SHA-1 root expires in 500 d")
