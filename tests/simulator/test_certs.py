"""The simulator's PKI: what each certificate kind issues and sends, dated from the clock
given, and server contexts that load them without leaving a private key on disk."""

from __future__ import annotations

import contextlib
import os
import ssl
import stat
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from nfdoctor.simulator import certs
from nfdoctor.simulator.certs import (
    CERT_KINDS,
    POLICY_DV,
    POLICY_EV,
    POLICY_OV,
    SimulatorPki,
    server_context,
)
from tests.simulator import NOW

HOST = "zalo.crm.nfdoctor.test"
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def pki() -> SimulatorPki:
    return SimulatorPki(NOW)


def _sans(certificate: x509.Certificate) -> list[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(name) for name in san.get_values_for_type(x509.DNSName)]


def _policies(certificate: x509.Certificate) -> list[str]:
    value = certificate.extensions.get_extension_for_class(x509.CertificatePolicies).value
    return [p.policy_identifier.dotted_string for p in value]


def test_the_kinds_are_the_contracts() -> None:
    assert CERT_KINDS == (
        "valid",
        "dv",
        "ev",
        "expired",
        "not_yet_valid",
        "wrong_host",
        "self_signed",
        "untrusted_root",
        "incomplete_chain",
        "expiring_soon",
        "sha1",
        "rsa1024",
        "tls11",
    )


@pytest.mark.parametrize("kind", CERT_KINDS)
def test_every_leaf_has_sans_a_policy_and_a_chain_that_verifies_by_signature(
    kind: str, pki: SimulatorPki
) -> None:
    served = pki.certificate(kind, HOST)
    leaf = served.leaf
    assert _sans(leaf) == (
        ["www.crm-hosting.test", "crm-hosting.test"] if kind == "wrong_host" else [HOST]
    )
    expected_policy = {"dv": POLICY_DV, "ev": POLICY_EV}.get(kind, POLICY_OV)
    assert _policies(leaf) == [expected_policy]
    # Each certificate sent is signed by the next one (the last by a root or itself).
    if kind != "sha1":  # (test_sha1_and_rsa1024_are_what_they_say checks that one)
        for child, parent in zip(served.chain, served.chain[1:], strict=False):
            child.verify_directly_issued_by(parent)
    if kind == "self_signed":
        assert served.chain == (leaf,)
        leaf.verify_directly_issued_by(leaf)
    elif kind == "incomplete_chain":
        assert served.chain == (leaf,)
        leaf.verify_directly_issued_by(pki.intermediate)
    elif kind == "untrusted_root":
        assert served.chain == (leaf, pki.untrusted_root)
    else:
        assert served.chain == (leaf, pki.intermediate)
        pki.intermediate.verify_directly_issued_by(pki.root)
    assert pki.certificate(kind, HOST) is served  # issued once


def test_dates_follow_the_clock_given(pki: SimulatorPki) -> None:
    def window(kind: str) -> tuple[timedelta, timedelta]:
        leaf = pki.certificate(kind, HOST).leaf
        return leaf.not_valid_before_utc - NOW, leaf.not_valid_after_utc - NOW

    assert window("valid") == (-30 * DAY, 90 * DAY)
    assert window("expired") == (-120 * DAY, -2 * DAY)
    assert window("not_yet_valid") == (2 * DAY, 92 * DAY)
    assert window("expiring_soon")[1] == 3 * DAY
    assert pki.root.not_valid_before_utc < NOW < pki.intermediate.not_valid_after_utc


def test_sha1_and_rsa1024_are_what_they_say(pki: SimulatorPki) -> None:
    sha1 = pki.certificate("sha1", HOST).leaf
    assert sha1.signature_hash_algorithm is not None
    assert sha1.signature_hash_algorithm.name == "sha1"
    assert sha1.signature_algorithm_oid.dotted_string == "1.2.840.113549.1.1.5"
    # The re-signed signature is valid (cryptography verifies SHA-1 only by hand).
    issuer_key = pki.intermediate.public_key()
    assert isinstance(issuer_key, rsa.RSAPublicKey)
    issuer_key.verify(sha1.signature, sha1.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA1())
    key = pki.certificate("rsa1024", HOST).leaf.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 1024
    for kind in ("valid", "expired", "tls11"):
        valid = pki.certificate(kind, HOST).leaf
        assert valid.signature_hash_algorithm is not None
        assert valid.signature_hash_algorithm.name == "sha256"


def test_weak_certificates_load_only_at_security_level_0(pki: SimulatorPki) -> None:
    for kind in ("sha1", "rsa1024"):
        served = pki.certificate(kind, HOST)
        with pytest.raises(ssl.SSLError):
            server_context(served.chain, served.key)  # OpenSSL's default level refuses it
        assert isinstance(served.server_context(), ssl.SSLContext)


def test_tls11_speaks_tls_1_1_at_most(pki: SimulatorPki) -> None:
    context = pki.server_context("tls11", HOST)
    assert context.maximum_version == ssl.TLSVersion.TLSv1_1
    assert pki.server_context("valid", HOST).maximum_version != ssl.TLSVersion.TLSv1_1


def test_the_bundle_is_the_trusted_root_only(pki: SimulatorPki) -> None:
    bundle = x509.load_pem_x509_certificates(pki.root_pem())
    assert bundle == [pki.root]
    assert pki.root.subject != pki.untrusted_root.subject
    assert b"PRIVATE" not in pki.root_pem()


def test_private_keys_touch_disk_only_in_a_private_directory_removed_at_once(
    pki: SimulatorPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    seen: list[tuple[int, list[int]]] = []
    real = certs._private_files

    def watched(chain_pem: bytes, key_pem: bytes) -> Iterator[tuple[Path, Path]]:
        with real(chain_pem, key_pem) as (chain_file, key_file):
            modes = [stat.S_IMODE(os.stat(p).st_mode) for p in (chain_file, key_file)]
            seen.append((stat.S_IMODE(os.stat(chain_file.parent).st_mode), modes))
            assert chain_file.parent.parent == temp
            yield chain_file, key_file

    monkeypatch.setattr(certs, "_private_files", contextlib.contextmanager(watched))
    fresh = SimulatorPki(NOW)
    fresh.server_context("valid", HOST)
    fresh.server_context("rsa1024", HOST)
    assert seen == [(0o700, [0o600, 0o600])] * 2
    assert list(temp.iterdir()) == []


def test_bad_arguments(pki: SimulatorPki) -> None:
    with pytest.raises(ValueError, match="unknown certificate kind 'nope'"):
        pki.certificate("nope", HOST)
    with pytest.raises(ValueError, match="aware"):
        SimulatorPki(NOW.replace(tzinfo=None))


def test_a_whole_pki_is_fast_once_keys_are_made() -> None:
    SimulatorPki(NOW)  # keys made (or already cached) for this process
    started = time.monotonic()
    fresh = SimulatorPki(NOW + DAY)
    for kind in CERT_KINDS:
        fresh.server_context(kind, HOST)
    assert time.monotonic() - started < 2.0
    der = fresh.root.public_bytes(serialization.Encoding.DER)
    assert der != SimulatorPki(NOW).root.public_bytes(serialization.Encoding.DER)
