"""Inspect a server's TLS: the chain it sends, OpenSSL's verdict on it, and what to report.

Like the monitoring plugin ``check_ssl_cert``: :func:`inspect_tls` connects, collects and
describes every certificate the server sent, asks OpenSSL whether a default client would
accept them, and returns a :class:`TlsInspection` (data: it never prints nor exits);
:func:`tls_findings` turns one into :class:`TlsFinding` s with a status each (leaf and
chain expiry, host name, trust, weak signatures and keys, protocol).

How it goes, in up to four handshakes with one address (``connect_host or host``), each
sending ``server_name or host`` as SNI:

1. **Collect** with verification off, at Python's default settings (OpenSSL security level
   2, TLS 1.2 or later): the chain as sent, the protocol and the cipher. If that handshake
   fails, a second one at ``@SECLEVEL=0`` with TLS 1.0 allowed collects them anyway
   (``design.md``, Known pitfalls): the protocol it negotiates, offering TLS 1.0 to 1.3, is
   the highest the server speaks, and :attr:`TlsInspection.lowered_reason` says why the
   default handshake failed.
2. **Verdict**: ``CERT_REQUIRED`` against the system store or the CA bundle, the host name
   checked by OpenSSL against the SANs only (``hostname_checks_common_name = False``: no CN
   fallback, as browsers and the platforms do). The verdict is OpenSSL's first objection
   (``SSLCertVerificationError.verify_code``) classified into :data:`VERDICT_KINDS`; it is
   taken at the default level unless step 1 needed the lowered one (``tls11``).
3. **Trust of the chain alone**, only when the verdict hides it: OpenSSL stops at its first
   objection and checks trust, then key and signature strength, then the host name, then
   signatures and dates. After ``weak_*``, ``hostname_mismatch``, ``expired`` or
   ``not_yet_valid``, one more handshake without the host name check, with
   ``X509_V_FLAG_NO_CHECK_TIME`` (and at level 0 after ``weak_*``) says whether the chain
   leads to a trusted root. Dates, host names and weaknesses are judged from the parsed
   certificates by :func:`tls_findings`, so each is reported whatever OpenSSL saw first.

``incomplete_chain`` versus ``untrusted_root``: OpenSSL says "unable to get local issuer
certificate" / "unable to verify the first certificate" (20, 21) when the sent chain ends
with a certificate that is not self-signed and whose issuer is neither sent nor in the
store (the server left out its intermediate), and "self-signed certificate in certificate
chain" (19) when it ends with a self-signed root the store does not hold; a lone
self-signed leaf is "self-signed certificate" (18), kind ``self_signed``.

**The sent chain on Python 3.10-3.12.** ``SSLObject.get_unverified_chain()`` is public from
3.13 only, but the C object behind it (``SSLObject._sslobj``) has had
``get_unverified_chain()`` since 3.10 (checked on 3.10, 3.11 and 3.12), returning
``_ssl.Certificate`` objects whose ``public_bytes(ENCODING_DER)`` is the DER (3.13's public
method is exactly that). It is used when the public method is absent; if neither exists
(an unusual build), only the leaf (``getpeercert(binary_form=True)``) is described and
:attr:`TlsInspection.chain_complete` is False. No ``openssl`` subprocess and no pyOpenSSL:
the stdlib gives the chain, and ``cryptography`` (already needed to parse it) cannot do a
handshake.

Failures to reach the server or to handshake at all raise :class:`TlsInspectionError`
(phase ``dns``, ``connect`` or ``tls``; "not TLS" for a server that answers with something
else, e.g. plain HTTP). A CA bundle that is not a PEM file of certificates raises
:class:`CaBundleError`, a usage error, before anything is sent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import socket
import ssl
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from nfdoctor.errors import NfdoctorError, UsageError
from nfdoctor.fsutil import FileRefusedError, os_reason, read_regular_file
from nfdoctor.results import Status

__all__ = [
    "VALIDATION_LEVELS",
    "VERDICT_KINDS",
    "CaBundleError",
    "CertificateInfo",
    "TlsFinding",
    "TlsInspection",
    "TlsInspectionError",
    "TlsVerdict",
    "VerdictKind",
    "describe_certificate",
    "inspect_tls",
    "matches_host",
    "tls_findings",
]

VerdictKind = Literal[
    "ok",
    "expired",
    "not_yet_valid",
    "hostname_mismatch",
    "self_signed",
    "untrusted_root",
    "incomplete_chain",
    "weak_signature",
    "weak_key",
    "other",
]
VERDICT_KINDS: tuple[VerdictKind, ...] = (
    "ok",
    "expired",
    "not_yet_valid",
    "hostname_mismatch",
    "self_signed",
    "untrusted_root",
    "incomplete_chain",
    "weak_signature",
    "weak_key",
    "other",
)

#: CA/Browser Forum policy OIDs (Baseline Requirements §7.1.6.1) -> validation level
VALIDATION_LEVELS: dict[str, str] = {
    "2.23.140.1.1": "EV",
    "2.23.140.1.2.2": "OV",
    "2.23.140.1.2.1": "DV",
    "2.23.140.1.2.3": "IV",
}
_LEVEL_RANK = ("EV", "OV", "IV", "DV")  # a certificate naming two levels has the stronger

# OpenSSL's X509_V_ERR_* codes (x509_vfy.h) and what each means here.
_KIND_BY_VERIFY_CODE: dict[int, VerdictKind] = {
    9: "not_yet_valid",  # CERT_NOT_YET_VALID
    10: "expired",  # CERT_HAS_EXPIRED
    18: "self_signed",  # DEPTH_ZERO_SELF_SIGNED_CERT
    19: "untrusted_root",  # SELF_SIGNED_CERT_IN_CHAIN
    20: "incomplete_chain",  # UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: "incomplete_chain",  # UNABLE_TO_VERIFY_LEAF_SIGNATURE
    62: "hostname_mismatch",  # HOSTNAME_MISMATCH
    64: "hostname_mismatch",  # IP_ADDRESS_MISMATCH
    66: "weak_key",  # EE_KEY_TOO_SMALL
    67: "weak_key",  # CA_KEY_TOO_SMALL
    68: "weak_signature",  # CA_MD_TOO_WEAK
}
#: verdicts that say nothing about whether the chain leads to a trusted root
_HIDES_TRUST = frozenset(
    {"expired", "not_yet_valid", "hostname_mismatch", "weak_signature", "weak_key"}
)
#: verdicts of the trust step that are a refusal of the chain itself
_TRUST_REFUSALS = frozenset({"self_signed", "untrusted_root", "incomplete_chain", "other"})
# X509_V_FLAG_NO_CHECK_TIME (OpenSSL 1.1.0+); ssl.VerifyFlags does not name it.
_NO_CHECK_TIME = 0x200000
_LOWERED_CIPHERS = "ALL:!aNULL:!eNULL:@SECLEVEL=0"
_OLD_PROTOCOLS = frozenset({"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"})
_HASH_NAMES = {"md2": "MD2", "md4": "MD4", "md5": "MD5", "sha1": "SHA-1"}
_WEAK_HASHES = frozenset(_HASH_NAMES)
_MIN_RSA_BITS = 2048
_CA_BUNDLE_LIMIT = 16 * 1024 * 1024
# A peer that never acknowledges close_notify must not hold the inspection.
_CLOSE_GRACE_S = 1.0
# OpenSSL reasons meaning the bytes that came back were not TLS at all.
_NOT_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST",
     "RECORD_LAYER_FAILURE", "UNEXPECTED_RECORD"}
)  # fmt: skip
_SIGNATURE_ALGORITHMS = {
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.1": "ecdsa-with-SHA224",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.2.840.10040.4.3": "dsa-with-SHA1",
    "2.16.840.1.101.3.4.3.2": "dsa-with-SHA256",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
}


class TlsInspectionError(NfdoctorError):
    """The server could not be inspected: not found, not reached, or no TLS handshake.

    ``phase`` is ``dns``, ``connect`` or ``tls``; ``reason`` a short code: ``dns_failed``,
    ``refused``, ``reset``, ``timeout``, ``unreachable``, ``not_tls``, ``closed``,
    ``handshake_failed``, ``no_certificate``, ``unreadable_certificate``.
    """

    def __init__(self, message: str, *, phase: str, reason: str) -> None:
        super().__init__(message)
        self.phase = phase
        self.reason = reason


class CaBundleError(UsageError):
    """The CA bundle given is not a PEM file of certificates (the caller's mistake)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"CA bundle {path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class CertificateInfo:
    """One certificate, described for an operator (whether or not it verified)."""

    subject: str  # RFC 4514
    issuer: str
    common_name: str | None
    serial: str  # hex, upper case, as openssl prints it
    not_before: datetime  # aware, UTC
    not_after: datetime
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    has_san: bool
    signature_algorithm: str  # sha256WithRSAEncryption, ecdsa-with-SHA1, or the OID
    signature_hash: str | None  # sha256, sha1 … (None for Ed25519 and unknown ones)
    key_type: str  # RSA, EC, DSA, Ed25519, Ed448
    key_bits: int | None
    key_curve: str | None  # EC only: secp256r1 …
    policy_oids: tuple[str, ...]
    validation_level: str | None  # EV, OV, DV, IV from the policy OIDs; None otherwise
    self_signed: bool
    is_ca: bool
    sha256_fingerprint: str  # AB:CD:…
    der: bytes = field(repr=False)

    @property
    def short_name(self) -> str:
        """The CN when there is one, else the whole subject."""
        return self.common_name or self.subject or "(empty subject)"

    def describe(self) -> tuple[str, ...]:
        """What an operator needs to see: names, dates, SANs, signature, key, policy."""
        sans = [f"DNS:{n}" for n in self.dns_names] + [f"IP:{a}" for a in self.ip_addresses]
        san_line = f"SAN: {', '.join(sans)}" if sans else "SAN: none (CN only)"
        key = f"{self.key_type} {self.key_bits} bits" if self.key_bits else self.key_type
        if self.key_curve:
            key += f" ({self.key_curve})"
        hash_name = f" ({self.signature_hash})" if self.signature_hash else ""
        policies = ", ".join(
            f"{oid} ({VALIDATION_LEVELS[oid]})" if oid in VALIDATION_LEVELS else oid
            for oid in self.policy_oids
        )
        kind = "CA" if self.is_ca else "end entity"
        if self.self_signed:
            kind += ", self-signed"
        return (
            f"subject: {self.subject}",
            f"issuer: {self.issuer}",
            f"serial: {self.serial}",
            f"valid from {_stamp(self.not_before)} to {_stamp(self.not_after)}",
            san_line,
            f"signature: {self.signature_algorithm}{hash_name}",
            f"key: {key}",
            f"policies: {policies or 'none'}",
            f"type: {kind}",
            f"SHA-256 fingerprint: {self.sha256_fingerprint}",
        )


@dataclass(frozen=True, kw_only=True)
class TlsVerdict:
    """OpenSSL's verdict on the chain: its first objection, classified."""

    kind: VerdictKind
    message: str  # OpenSSL's words ("certificate has expired"), or "ok"
    verify_code: int | None = None  # X509_V_ERR_*, when OpenSSL gave one
    #: taken at OpenSSL security level 0 (TLS 1.0 allowed) rather than the default
    lowered: bool = False

    @property
    def ok(self) -> bool:
        """Whether OpenSSL accepted it."""
        return self.kind == "ok"


@dataclass(frozen=True, kw_only=True)
class TlsInspection:
    """What :func:`inspect_tls` found about one server."""

    host: str
    port: int
    server_name: str  # sent as SNI and checked against the SANs
    address: str  # the IP address connected to
    protocol: str  # TLSv1.3 …: negotiated; with lowered_reason, the highest the server speaks
    cipher: str
    #: why a handshake at the default settings failed, when a lowered one was needed
    lowered_reason: str | None
    chain: tuple[CertificateInfo, ...]  # as sent, leaf first
    #: False when only the leaf could be read (a Python without get_unverified_chain)
    chain_complete: bool
    verdict: TlsVerdict  # what a client (SAN-only host name check) sees first
    trust: TlsVerdict  # whether the chain alone leads to a trusted root
    trust_anchor: CertificateInfo | None  # the root it was verified to, when it was
    trust_store: str  # "the system trust store" or "CA bundle PATH"
    hostname_matches: bool  # the leaf's SANs (never its CN) cover server_name

    @property
    def leaf(self) -> CertificateInfo:
        """The server's own certificate."""
        return self.chain[0]

    @property
    def validation_level(self) -> str | None:
        """The leaf's DV / OV / EV / IV level from its policy OIDs (None when it has none)."""
        return self.leaf.validation_level

    @property
    def where(self) -> str:
        """``host:port`` as written in messages."""
        return f"{_bracketed(self.host)}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class TlsFinding:
    """One thing :func:`tls_findings` judged: a status, a code and a one-line summary."""

    #: leaf_expiry, chain_expiry, not_yet_valid, hostname, trust, self_signed,
    #: incomplete_chain, weak_signature, weak_key or protocol
    code: str
    status: Status
    summary: str  # the measured value next to the expected one
    details: tuple[str, ...] = ()
    #: the certificate a per-certificate finding is about (its subject)
    certificate: str | None = None


# ---------------------------------------------------------------------------- describing


def describe_certificate(der: bytes) -> CertificateInfo:
    """Parse one DER certificate into a :class:`CertificateInfo`; ValueError if unreadable."""
    certificate = x509.load_der_x509_certificate(der)
    san = _extension(certificate, x509.SubjectAlternativeName)
    policies = _extension(certificate, x509.CertificatePolicies)
    constraints = _extension(certificate, x509.BasicConstraints)
    policy_oids = tuple(p.policy_identifier.dotted_string for p in policies or ())
    levels = {VALIDATION_LEVELS[oid] for oid in policy_oids if oid in VALIDATION_LEVELS}
    try:
        hash_algorithm = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        hash_algorithm = None
    key_type, key_bits, key_curve = _describe_key(certificate)
    common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = common_names[0].value if common_names else None
    oid = certificate.signature_algorithm_oid.dotted_string
    return CertificateInfo(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        common_name=common_name if isinstance(common_name, str) else None,
        serial=f"{certificate.serial_number:X}",
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        dns_names=tuple(san.get_values_for_type(x509.DNSName)) if san else (),
        ip_addresses=tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
        if san
        else (),
        has_san=san is not None,
        signature_algorithm=_SIGNATURE_ALGORITHMS.get(oid, oid),
        signature_hash=hash_algorithm.name if hash_algorithm is not None else None,
        key_type=key_type,
        key_bits=key_bits,
        key_curve=key_curve,
        policy_oids=policy_oids,
        validation_level=next((level for level in _LEVEL_RANK if level in levels), None),
        self_signed=_is_self_signed(certificate),
        is_ca=bool(constraints and constraints.ca),
        sha256_fingerprint=certificate.fingerprint(hashes.SHA256()).hex(":").upper(),
        der=der,
    )


def _extension(certificate: x509.Certificate, kind: type[Any]) -> Any:
    """The value of one extension, or None when absent or unreadable (described anyway)."""
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def _describe_key(certificate: x509.Certificate) -> tuple[str, int | None, str | None]:
    try:
        key = certificate.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return "unknown", None, None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size, key.curve.name
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    return type(key).__name__, None, None


def _is_self_signed(certificate: x509.Certificate) -> bool:
    """Issued by itself: same name, and its own key verifies its signature."""
    if certificate.issuer != certificate.subject:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except ValueError:
        # cryptography refuses to verify SHA-1 (and MD5) certificate signatures, which old
        # roots still carry: check the signature with the key itself.
        return _signature_verifies(certificate, certificate.public_key())
    except (TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _signature_verifies(certificate: x509.Certificate, key: object) -> bool:
    """Whether ``key`` verifies ``certificate``'s signature (PKCS#1 v1.5 RSA, ECDSA, DSA)."""
    try:
        algorithm = certificate.signature_hash_algorithm
        if algorithm is None:
            return False
        data, signature = certificate.tbs_certificate_bytes, certificate.signature
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, dsa.DSAPublicKey):
            key.verify(signature, data, algorithm)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def matches_host(certificate: CertificateInfo, name: str) -> bool:
    """Whether the certificate's SANs cover ``name`` (RFC 6125; the CN never counts).

    An IP address matches an IP SAN; a host name a DNS SAN, case-insensitively, where a
    ``*`` is allowed as the whole left-most label of a name of three labels or more and
    stands for exactly one label.
    """
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        return any(_same_ip(address, entry) for entry in certificate.ip_addresses)
    wanted = name.rstrip(".").lower()
    return any(_dns_match(pattern.rstrip(".").lower(), wanted) for pattern in certificate.dns_names)


def _same_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entry: str) -> bool:
    try:
        return ipaddress.ip_address(entry) == address
    except ValueError:
        return False


def _dns_match(pattern: str, name: str) -> bool:
    if not pattern.startswith("*."):
        return pattern == name
    rest = pattern[2:]
    if "*" in rest or rest.count(".") < 1:
        return False
    label, _, name_rest = name.partition(".")
    return bool(label) and name_rest == rest


# ---------------------------------------------------------------------------- inspecting


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    server_name: str
    address: str

    @property
    def where(self) -> str:
        shown = f"{_bracketed(self.host)}:{self.port}"
        return shown if self.address == self.host else f"{shown} ({self.address})"


@dataclass(frozen=True)
class _Handshake:
    protocol: str
    cipher: str
    chain: tuple[bytes, ...]
    chain_complete: bool
    verified_chain: tuple[bytes, ...]


class _Deadline:
    """One budget for every step of an inspection."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.ends = time.monotonic() + timeout_s

    def left(self, phase: str, what: str) -> float:
        left = self.ends - time.monotonic()
        if left <= 0:
            raise TlsInspectionError(
                f"{what}: the {self.timeout_s:.3g} s timeout was used up",
                phase=phase,
                reason="timeout",
            )
        return left

    def timed_out(self, phase: str, what: str) -> TlsInspectionError:
        return TlsInspectionError(
            f"{what} timed out (timeout {self.timeout_s:.3g} s)", phase=phase, reason="timeout"
        )


async def inspect_tls(
    host: str,
    port: int,
    *,
    server_name: str | None = None,
    connect_host: str | None = None,
    ca_bundle: Path | None = None,
    timeout_s: float = 10.0,
) -> TlsInspection:
    """Handshake with ``host:port`` and describe and judge what it presents (see the module).

    Connects to ``connect_host`` (a name or address) instead of ``host`` when given, as a
    ``connect_to`` rule does, still sending ``server_name or host`` as SNI and checking the
    certificate against it. ``ca_bundle``: a PEM file of trusted roots instead of the system
    store. ``timeout_s`` bounds the whole inspection. Raises :class:`TlsInspectionError` when
    no handshake is possible and :class:`CaBundleError` for an unusable bundle.
    """
    if not host:
        raise ValueError("host must not be empty")
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be 1-65535, got {port}")
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise ValueError(f"timeout_s must be a positive number of seconds, not {timeout_s!r}")
    trusted_pem = _read_ca_bundle(ca_bundle) if ca_bundle is not None else None
    trust_store = f"CA bundle {ca_bundle}" if ca_bundle is not None else "the system trust store"
    name = (server_name or host).strip("[]")
    deadline = _Deadline(timeout_s)
    address = await _resolve(connect_host or host, port, deadline)
    target = _Target(host=host, port=port, server_name=name, address=address)

    lowered_reason: str | None = None
    try:
        collected = await _handshake(target, _collect_context(lowered=False), deadline)
    except (ssl.SSLError, OSError) as first:
        try:
            collected = await _handshake(target, _collect_context(lowered=True), deadline)
        except (ssl.SSLError, OSError):
            raise _handshake_failure(target, first) from None
        lowered_reason = _describe_ssl_failure(first)
    chain = _describe_chain(target, collected.chain)

    lowered = lowered_reason is not None
    verdict, anchor = await _verify(target, deadline, trusted_pem, lowered=lowered, strict=True)
    trust = verdict
    if verdict.kind in _HIDES_TRUST:
        weak = verdict.kind in ("weak_signature", "weak_key")
        trust, anchor = await _verify(
            target, deadline, trusted_pem, lowered=lowered or weak, strict=False
        )
    return TlsInspection(
        host=host,
        port=port,
        server_name=name,
        address=address,
        protocol=collected.protocol,
        cipher=collected.cipher,
        lowered_reason=lowered_reason,
        chain=chain,
        chain_complete=collected.chain_complete,
        verdict=verdict,
        trust=trust,
        trust_anchor=anchor,
        trust_store=trust_store,
        hostname_matches=matches_host(chain[0], name),
    )


def _read_ca_bundle(path: Path) -> str:
    """The bundle's PEM text, checked to hold certificates; CaBundleError otherwise."""
    try:
        data = read_regular_file(path, limit=_CA_BUNDLE_LIMIT)
    except FileRefusedError as exc:
        raise CaBundleError(path, exc.reason) from None
    except OSError as exc:
        raise CaBundleError(path, os_reason(exc)) from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise CaBundleError(
            path, "is not a PEM file of certificates (no -----BEGIN CERTIFICATE----- block)"
        )
    try:
        x509.load_pem_x509_certificates(data)
        return data.decode("ascii")
    except (ValueError, UnicodeDecodeError) as exc:
        raise CaBundleError(path, f"holds a certificate that cannot be read ({exc})") from None


def _describe_chain(target: _Target, ders: Sequence[bytes]) -> tuple[CertificateInfo, ...]:
    if not ders:
        raise TlsInspectionError(
            f"{target.where} sent no certificate", phase="tls", reason="no_certificate"
        )
    described = []
    for index, der in enumerate(ders, start=1):
        try:
            described.append(describe_certificate(der))
        except ValueError as exc:
            raise TlsInspectionError(
                f"certificate {index} sent by {target.where} cannot be read: {exc}",
                phase="tls",
                reason="unreadable_certificate",
            ) from None
    return tuple(described)


async def _resolve(name: str, port: int, deadline: _Deadline) -> str:
    """The first address of ``name`` (itself when it is an address)."""
    bare = name.strip("[]")
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        return bare
    what = f"DNS lookup for {name}"
    loop = asyncio.get_running_loop()
    left = deadline.left("dns", what)
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(bare, port, type=socket.SOCK_STREAM), left)
    except asyncio.TimeoutError:
        raise deadline.timed_out("dns", what) from None
    except socket.gaierror as exc:
        raise TlsInspectionError(
            f"{what} failed: {exc.strerror or exc}", phase="dns", reason="dns_failed"
        ) from None
    except (OSError, UnicodeError) as exc:
        detail = _describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        raise TlsInspectionError(
            f"{what} failed: {detail}", phase="dns", reason="dns_failed"
        ) from None
    if not infos:
        raise TlsInspectionError(f"{what} returned no addresses", phase="dns", reason="dns_failed")
    return str(infos[0][4][0])


def _collect_context(*, lowered: bool) -> ssl.SSLContext:
    """No verification: the chain and protocol are collected whatever they are."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if lowered:
        _lower(context)
    return context


def _verify_context(trusted_pem: str | None, *, lowered: bool, strict: bool) -> ssl.SSLContext:
    """What a default client does (``strict``), or the chain's trust alone (no host name, no
    dates)."""
    context = ssl.create_default_context(cadata=trusted_pem)
    context.hostname_checks_common_name = False
    if not strict:
        context.check_hostname = False
        context.verify_flags = ssl.VerifyFlags(context.verify_flags | _NO_CHECK_TIME)
    if lowered:
        _lower(context)
    return context


def _lower(context: ssl.SSLContext) -> None:
    """Security level 0 and TLS 1.0 allowed: what it takes to see SHA-1, RSA-1024, TLS 1.1."""
    context.set_ciphers(_LOWERED_CIPHERS)
    # Python deprecates naming TLS 1.0 with a warning; reaching old servers is the point.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1


async def _verify(
    target: _Target,
    deadline: _Deadline,
    trusted_pem: str | None,
    *,
    lowered: bool,
    strict: bool,
) -> tuple[TlsVerdict, CertificateInfo | None]:
    """One verifying handshake: OpenSSL's verdict, and the root it verified to."""
    context = _verify_context(trusted_pem, lowered=lowered, strict=strict)
    try:
        done = await _handshake(target, context, deadline)
    except ssl.SSLCertVerificationError as exc:
        code = exc.verify_code if isinstance(exc.verify_code, int) else None
        kind = _KIND_BY_VERIFY_CODE.get(code, "other") if code is not None else "other"
        message = str(exc.verify_message or _describe_ssl_failure(exc)).rstrip(".")
        return TlsVerdict(kind=kind, message=message, verify_code=code, lowered=lowered), None
    except (ssl.SSLError, OSError) as exc:
        # The collecting handshake worked at this level, so this is not the certificate.
        message = f"the verifying handshake failed: {_describe_ssl_failure(exc)}"
        return TlsVerdict(kind="other", message=message, lowered=lowered), None
    anchor = None
    if done.verified_chain:
        try:
            anchor = describe_certificate(done.verified_chain[-1])
        except ValueError:
            anchor = None
    return TlsVerdict(kind="ok", message="ok", lowered=lowered), anchor


async def _handshake(target: _Target, context: ssl.SSLContext, deadline: _Deadline) -> _Handshake:
    """Connect and handshake once; ssl.SSLError / OSError of the handshake pass through."""
    sock = await _connect(target, deadline)
    what = f"TLS handshake with {target.where}"
    try:
        left = deadline.left("tls", what)
    except TlsInspectionError:
        sock.close()
        raise
    opening = asyncio.open_connection(
        sock=sock, ssl=context, server_hostname=target.server_name, ssl_handshake_timeout=left
    )
    try:
        # From here the transport owns the socket and closes it when the handshake fails.
        _, writer = await asyncio.wait_for(opening, left)
    except asyncio.TimeoutError:
        await asyncio.sleep(0)  # let the cancelled transport run its close callbacks
        raise deadline.timed_out("tls", what) from None
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        if not isinstance(ssl_object, ssl.SSLObject):  # pragma: no cover - asyncio gives one
            raise TlsInspectionError(f"{what}: no TLS session", phase="tls", reason="closed")
        cipher = ssl_object.cipher()
        chain, complete = _sent_chain(ssl_object)
        return _Handshake(
            protocol=ssl_object.version() or "unknown",
            cipher=cipher[0] if cipher else "unknown",
            chain=chain,
            chain_complete=complete,
            verified_chain=_verified_chain(ssl_object),
        )
    finally:
        await _close(writer)


async def _connect(target: _Target, deadline: _Deadline) -> socket.socket:
    what = f"TCP connect to {target.where}"
    family = socket.AF_INET6 if ":" in target.address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        left = deadline.left("connect", what)
        await asyncio.wait_for(loop.sock_connect(sock, (target.address, target.port)), left)
    except asyncio.TimeoutError:
        sock.close()
        raise deadline.timed_out("connect", what) from None
    except OSError as exc:
        sock.close()
        reason = "refused" if isinstance(exc, ConnectionRefusedError) else "unreachable"
        raise TlsInspectionError(
            f"{what} failed: {_describe_os_error(exc)}", phase="connect", reason=reason
        ) from None
    except BaseException:
        sock.close()
        raise
    return sock


def _sent_chain(ssl_object: ssl.SSLObject) -> tuple[tuple[bytes, ...], bool]:
    """The certificates the peer sent, DER, leaf first; and whether that is all of them."""
    public = getattr(ssl_object, "get_unverified_chain", None)  # Python 3.13+
    if public is not None:
        return tuple(bytes(der) for der in public() or ()), True
    private = _private_chain(ssl_object, "get_unverified_chain")
    if private is not None:
        return private, True
    leaf = ssl_object.getpeercert(binary_form=True)
    return ((leaf,) if leaf else ()), False


def _verified_chain(ssl_object: ssl.SSLObject) -> tuple[bytes, ...]:
    """The chain OpenSSL verified, up to the root from the store (empty when unverified)."""
    public = getattr(ssl_object, "get_verified_chain", None)  # Python 3.13+
    if public is not None:
        return tuple(bytes(der) for der in public() or ())
    return _private_chain(ssl_object, "get_verified_chain") or ()


def _private_chain(ssl_object: ssl.SSLObject, method: str) -> tuple[bytes, ...] | None:
    """Python 3.10-3.12: the C object's chain method (see the module docstring)."""
    getter = getattr(getattr(ssl_object, "_sslobj", None), method, None)
    if getter is None:
        return None
    encoding = getattr(ssl, "_ssl", None)
    der_format = getattr(encoding, "ENCODING_DER", None)
    if der_format is None:
        return None
    return tuple(bytes(cert.public_bytes(der_format)) for cert in getter() or ())


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close politely within a short grace, else abort; never raises."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), timeout=_CLOSE_GRACE_S)
    except (asyncio.TimeoutError, OSError, ssl.SSLError):
        writer.transport.abort()
        await asyncio.sleep(0)


def _handshake_failure(target: _Target, exc: BaseException) -> TlsInspectionError:
    """The error for a server no handshake worked with (even at the lowered level)."""
    what = f"TLS handshake with {target.where}"
    if isinstance(exc, ssl.SSLError) and exc.reason in _NOT_TLS_REASONS:
        return TlsInspectionError(
            f"{target.where} does not speak TLS ({_describe_ssl_failure(exc)}): "
            "is it a plain HTTP port?",
            phase="tls",
            reason="not_tls",
        )
    if isinstance(exc, ConnectionResetError):
        reason, detail = "reset", "connection reset by peer"
    elif isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, EOFError)):
        reason, detail = "closed", "the server closed the connection"
    elif isinstance(exc, ssl.SSLError):
        reason, detail = "handshake_failed", _describe_ssl_failure(exc)
    elif isinstance(exc, OSError):
        reason, detail = "reset", _describe_os_error(exc)
    else:  # pragma: no cover - only SSLError and OSError are passed
        reason, detail = "handshake_failed", str(exc)
    return TlsInspectionError(
        f"{what} failed: {detail} (also with TLS 1.0 and security level 0 allowed)",
        phase="tls",
        reason=reason,
    )


def _describe_ssl_failure(exc: BaseException) -> str:
    """OpenSSL's reason in words (``unsupported protocol``), or the OS's."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return str(exc.verify_message).rstrip(".")
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason
        if isinstance(reason, str) and reason:
            return reason.lower().replace("_", " ")
        return str(exc.strerror or exc) or type(exc).__name__
    if isinstance(exc, OSError):
        return _describe_os_error(exc)
    return str(exc) or type(exc).__name__


def _describe_os_error(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by peer"
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# ---------------------------------------------------------------------------- judging


def tls_findings(
    inspection: TlsInspection,
    *,
    now: datetime,
    warning_days: int = 21,
    critical_days: int = 7,
) -> list[TlsFinding]:
    """Judge an inspection as ``check_ssl_cert`` does; pure (``now`` is the clock).

    In order: the leaf's expiry, each other sent certificate's expiry (one finding each),
    a not-yet-valid certificate, the host name, trust (or self-signed, or incomplete chain),
    each SHA-1/MD5-signed certificate but a root, each RSA/DSA key under 2048 bits, and the
    protocol. Expiry is CRITICAL when expired or under ``critical_days``, WARNING under
    ``warning_days``; weak signatures and keys and a protocol below TLS 1.2 are WARNINGs;
    a host name mismatch and a chain OpenSSL refuses are CRITICAL.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if not 0 <= critical_days <= warning_days:
        raise ValueError("expected 0 <= critical_days <= warning_days")
    findings: list[TlsFinding] = []
    chain = inspection.chain
    for index in range(len(chain)):
        findings.append(
            _expiry_finding(inspection, index, now=now, warn=warning_days, crit=critical_days)
        )
    for index, certificate in enumerate(chain):
        if now < certificate.not_before:
            findings.append(
                TlsFinding(
                    code="not_yet_valid",
                    status=Status.CRITICAL,
                    summary=f"{_role(inspection, index)} is not valid until "
                    f"{_stamp(certificate.not_before)} (in {_span(certificate.not_before - now)})"
                    ", expected valid now",
                    details=certificate.describe(),
                    certificate=certificate.subject,
                )
            )
    findings.append(_hostname_finding(inspection))
    findings.append(_trust_finding(inspection))
    findings += _weakness_findings(inspection)
    findings.append(_protocol_finding(inspection))
    return findings


def _role(inspection: TlsInspection, index: int) -> str:
    certificate = inspection.chain[index]
    if index == 0:
        role = "leaf"
    elif certificate.self_signed:
        role = "root"
    else:
        role = "intermediate"
    return f"{role} {certificate.short_name}"


def _expiry_finding(
    inspection: TlsInspection, index: int, *, now: datetime, warn: int, crit: int
) -> TlsFinding:
    certificate = inspection.chain[index]
    left = certificate.not_after - now
    day = certificate.not_after.strftime("%Y-%m-%d")
    expected = f"warn < {warn} d, crit < {crit} d"
    if left <= timedelta(0):
        status = Status.CRITICAL
        measured = f"expired {_span(-left)} ago ({day})"
    else:
        if left < timedelta(days=crit):
            status = Status.CRITICAL
        elif left < timedelta(days=warn):
            status = Status.WARNING
        else:
            status = Status.OK
        measured = f"expires in {_span(left)} ({day})"
    return TlsFinding(
        code="leaf_expiry" if index == 0 else "chain_expiry",
        status=status,
        summary=f"{_role(inspection, index)} {measured}, {expected}",
        details=certificate.describe(),
        certificate=certificate.subject,
    )


def _hostname_finding(inspection: TlsInspection) -> TlsFinding:
    leaf = inspection.leaf
    name = inspection.server_name
    sans = [f"DNS:{n}" for n in leaf.dns_names] + [f"IP:{a}" for a in leaf.ip_addresses]
    details = (
        f"SAN: {', '.join(sans) if sans else 'none'}",
        f"CN: {leaf.common_name or 'none'} (never used for the host name, as browsers and "
        "the platforms do)",
        f"OpenSSL: {inspection.verdict.message}",
    )
    if inspection.hostname_matches:
        return TlsFinding(
            code="hostname",
            status=Status.OK,
            summary=f"{name} is covered by the certificate's SAN, expected covered",
            details=details,
            certificate=leaf.subject,
        )
    if not leaf.has_san:
        cn = leaf.common_name or "(none)"
        measured = f"the certificate has no SAN (its CN {cn} does not count)"
    else:
        measured = f"{name} is not in the certificate's SAN ({', '.join(sans) or 'empty'})"
    return TlsFinding(
        code="hostname",
        status=Status.CRITICAL,
        summary=f"{measured}, expected {name} covered",
        details=details,
        certificate=leaf.subject,
    )


def _chain_details(inspection: TlsInspection) -> tuple[str, ...]:
    lines: list[str] = []
    total = len(inspection.chain)
    for index, certificate in enumerate(inspection.chain):
        lines.append(f"certificate {index + 1} of {total} sent ({_role(inspection, index)}):")
        lines += [f"  {line}" for line in certificate.describe()]
    if not inspection.chain_complete:
        lines.append("only the leaf could be read (this Python does not expose the chain)")
    return tuple(lines)


def _trust_finding(inspection: TlsInspection) -> TlsFinding:
    trust = inspection.trust
    store = inspection.trust_store
    details = (f"OpenSSL: {trust.message}", *_chain_details(inspection))
    last = inspection.chain[-1]
    if trust.kind not in _TRUST_REFUSALS:
        anchor = inspection.trust_anchor
        to = f"root {anchor.short_name}" if anchor is not None else "a root"
        return TlsFinding(
            code="trust",
            status=Status.OK,
            summary=f"the chain leads to {to} in {store}, expected a trusted root",
            details=details,
        )
    if trust.kind == "self_signed":
        return TlsFinding(
            code="self_signed",
            status=Status.CRITICAL,
            summary=f"the certificate is self-signed ({inspection.leaf.short_name}), "
            f"expected one issued by a CA in {store}",
            details=details,
            certificate=inspection.leaf.subject,
        )
    if trust.kind == "incomplete_chain":
        sent = len(inspection.chain)
        return TlsFinding(
            code="incomplete_chain",
            status=Status.CRITICAL,
            summary=f"the {sent} certificate{'s' * (sent > 1)} sent stop at "
            f"{last.short_name}, whose issuer ({last.issuer}) was not sent and is not in "
            f"{store} (intermediate missing), expected the chain up to a trusted root",
            details=details,
            certificate=last.subject,
        )
    if trust.kind == "untrusted_root":
        return TlsFinding(
            code="trust",
            status=Status.CRITICAL,
            summary=f"the chain ends at root {last.short_name}, which is not in {store}, "
            "expected a trusted root",
            details=details,
            certificate=last.subject,
        )
    return TlsFinding(
        code="trust",
        status=Status.CRITICAL,
        summary=f"OpenSSL refused the chain: {trust.message}, expected a chain to a root "
        f"in {store}",
        details=details,
    )


def _weakness_findings(inspection: TlsInspection) -> list[TlsFinding]:
    findings: list[TlsFinding] = []
    level = "refused at OpenSSL's default security level"
    for index, certificate in enumerate(inspection.chain):
        hash_name = certificate.signature_hash
        # A root's self-signature is never checked: only its key is trusted.
        if hash_name in _WEAK_HASHES and not certificate.self_signed:
            findings.append(
                TlsFinding(
                    code="weak_signature",
                    status=Status.WARNING,
                    summary=f"{_role(inspection, index)} is signed with {_HASH_NAMES[hash_name]} "
                    f"({certificate.signature_algorithm}), {level}, expected SHA-256 or "
                    "stronger",
                    details=certificate.describe(),
                    certificate=certificate.subject,
                )
            )
    for index, certificate in enumerate(inspection.chain):
        bits = certificate.key_bits
        if certificate.key_type in ("RSA", "DSA") and bits is not None and bits < _MIN_RSA_BITS:
            findings.append(
                TlsFinding(
                    code="weak_key",
                    status=Status.WARNING,
                    summary=f"{_role(inspection, index)} has an {certificate.key_type} key of "
                    f"{bits} bits, {level}, expected {_MIN_RSA_BITS} bits or more",
                    details=certificate.describe(),
                    certificate=certificate.subject,
                )
            )
    verdict = inspection.verdict
    found = {finding.code for finding in findings}
    if verdict.kind in ("weak_signature", "weak_key") and verdict.kind not in found:
        # OpenSSL saw a weakness the parsed chain does not show (e.g. in the store's root).
        findings.append(
            TlsFinding(
                code=verdict.kind,
                status=Status.WARNING,
                summary=f"OpenSSL refuses the chain at its default security level: "
                f"{verdict.message}",
                details=_chain_details(inspection),
            )
        )
    return findings


def _protocol_finding(inspection: TlsInspection) -> TlsFinding:
    protocol, cipher = inspection.protocol, inspection.cipher
    details: tuple[str, ...] = (f"protocol: {protocol}", f"cipher: {cipher}")
    lowered = inspection.lowered_reason
    if lowered is not None:
        details += (
            f"a handshake at Python's default settings failed: {lowered}",
            "connected again at OpenSSL security level 0 with TLS 1.0 to 1.3 offered",
        )
    if protocol in _OLD_PROTOCOLS:
        most = " at most" if lowered is not None else ""
        return TlsFinding(
            code="protocol",
            status=Status.WARNING,
            summary=f"the server speaks {protocol}{most}, expected TLS 1.2 or later",
            details=details,
        )
    if lowered is not None:
        return TlsFinding(
            code="protocol",
            status=Status.WARNING,
            summary=f"{protocol} ({cipher}) only at OpenSSL security level 0 ({lowered}), "
            "expected a handshake at the default settings",
            details=details,
        )
    return TlsFinding(
        code="protocol",
        status=Status.OK,
        summary=f"{protocol} ({cipher}), expected TLS 1.2 or later",
        details=details,
    )


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _span(delta: timedelta) -> str:
    """``3 d``, ``2 d 23 h``, ``5 h 12 min``, ``40 min`` (never rounded up)."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min"
