"""The simulator's PKI: a CA generated at start and the CRM receivers' certificates.

At start the simulator makes, in memory, a trusted root CA (the one the written CA bundle
holds), an intermediate it signed, and a second, "untrusted" root that no bundle holds.
For a host name and a kind from :data:`CERT_KINDS`, :meth:`SimulatorPki.certificate` issues
the leaf and the chain a server of that kind sends, and :meth:`SimulatorPki.server_context`
turns it into a server :class:`ssl.SSLContext`.

Every date is measured from the ``now`` the PKI is built with (the simulator's clock):
``expiring_soon`` has exactly 3 days left at that moment, ``expired`` ended 2 days before
it. A TLS client judges dates by its own clock, so with a fake clock far from the real time
every certificate looks expired or not yet valid to it.

Keys are made once per process and reused (:func:`cached_key`): the two RSA 2048 keys of
the trusted CA take tens of milliseconds each, and tests build many PKIs. The CA is RSA
because SHA-1 certificates can only be made with it (below); leaves are EC P-256, except
``rsa1024``. Private keys stay in memory: :func:`server_context` has to hand them to the
``ssl`` module as files, which it does in a private (0700) temporary directory removed
right after loading.

``cryptography`` refuses to sign a certificate with SHA-1, so the ``sha1`` leaf is issued
with SHA-256 and re-signed: its to-be-signed part gets the sha1WithRSAEncryption algorithm
identifier (the same length as sha256WithRSAEncryption's, so no DER length changes) and a
PKCS#1 v1.5 SHA-1 signature by the intermediate's RSA key.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import shutil
import ssl
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CERT_KINDS",
    "DEFAULT_CERT_KIND",
    "POLICY_DV",
    "POLICY_EV",
    "POLICY_OV",
    "ServerCertificate",
    "SimulatorPki",
    "cached_key",
    "issue_certificate",
    "server_context",
]

#: what the fault plan's ``tls:`` section may choose per platform (docs in the README)
CERT_KINDS: tuple[str, ...] = (
    "valid",  # OV policy, leaf + intermediate sent, root in the bundle
    "dv",  # as valid, with the CA/B Forum DV policy OID
    "ev",  # as valid, with the EV policy OID
    "expired",
    "not_yet_valid",
    "wrong_host",
    "self_signed",
    "untrusted_root",  # chain up to a root that is not in the bundle
    "incomplete_chain",  # the server sends the leaf without its intermediate
    "expiring_soon",  # expires in 3 days
    "sha1",  # leaf signed with SHA-1
    "rsa1024",  # leaf key RSA 1024
    "tls11",  # a valid certificate on a server that speaks at most TLS 1.1
)
DEFAULT_CERT_KIND = "valid"

# CA/Browser Forum certificate policy OIDs (Baseline Requirements §7.1.6.1).
POLICY_EV = "2.23.140.1.1"
POLICY_OV = "2.23.140.1.2.2"
POLICY_DV = "2.23.140.1.2.1"

_POLICY_BY_KIND = {"dv": POLICY_DV, "ev": POLICY_EV}
#: what a ``wrong_host`` server presents: the certificate of another site on the same server
_WRONG_HOST_NAMES = ("www.crm-hosting.test", "crm-hosting.test")
#: kinds whose server context must run at OpenSSL security level 0 to load or speak them
_LEGACY_KINDS = frozenset({"sha1", "rsa1024", "tls11"})

_ORGANIZATION = "NextFlow CRM (nfdoctor simulator)"
_ROOT_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nfdoctor simulator"),
        x509.NameAttribute(NameOID.COMMON_NAME, "nfdoctor simulator root CA"),
    ]
)
_INTERMEDIATE_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nfdoctor simulator"),
        x509.NameAttribute(NameOID.COMMON_NAME, "nfdoctor simulator issuing CA 1"),
    ]
)
_UNTRUSTED_ROOT_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Untrusted Example"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Untrusted Example root CA (in no bundle)"),
    ]
)

# sha256WithRSAEncryption and sha1WithRSAEncryption AlgorithmIdentifiers, DER: both 15 bytes.
_RSA_SHA256_ALGORITHM = bytes.fromhex("300d06092a864886f70d01010b0500")
_RSA_SHA1_ALGORITHM = bytes.fromhex("300d06092a864886f70d0101050500")


@functools.cache
def cached_key(role: str) -> CertificateIssuerPrivateKeyTypes:
    """This process's key for ``role``, made on first use.

    ``root`` and ``intermediate``: RSA 2048 (SHA-1 re-signing needs RSA); ``rsa1024``: RSA
    1024; anything else (``untrusted-root``, ``leaf``, a test's own role): EC P-256.
    """
    if role in ("root", "intermediate"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if role == "rsa1024":
        return rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return ec.generate_private_key(ec.SECP256R1())


def issue_certificate(
    subject_key: CertificateIssuerPrivateKeyTypes,
    *,
    subject: x509.Name,
    issuer: x509.Certificate | None,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    not_before: datetime,
    not_after: datetime,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    ca: bool = False,
    path_length: int | None = None,
    policy_oids: Sequence[str] = (),
    sha1: bool = False,
) -> x509.Certificate:
    """One X.509 v3 certificate, as a public CA would make it.

    ``issuer`` None makes it self-signed (``issuer_key`` must then be ``subject_key``).
    No ``dns_names`` and no ``ip_addresses``: no SAN extension at all (a CN-only
    certificate). ``path_length``: how many CAs may follow below a CA (None: no limit).
    ``sha1``: signed with SHA-1 (``issuer_key`` must be RSA).
    """
    public_key = subject_key.public_key()
    issuer_name = issuer.subject if issuer is not None else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_key_usage(ca=ca, rsa_key=isinstance(subject_key, rsa.RSAPrivateKey)), True)
    )
    if issuer is not None or not ca:
        authority = issuer_key.public_key()
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority), critical=False
        )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if policy_oids:
        policies = [x509.PolicyInformation(x509.ObjectIdentifier(o), None) for o in policy_oids]
        builder = builder.add_extension(x509.CertificatePolicies(policies), critical=False)
    certificate = builder.sign(issuer_key, hashes.SHA256())
    if sha1:
        if not isinstance(issuer_key, rsa.RSAPrivateKey):
            raise ValueError("a SHA-1 certificate needs an RSA issuer key")
        certificate = _resigned_with_sha1(certificate, issuer_key)
    return certificate


def _key_usage(*, ca: bool, rsa_key: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        # TLS 1.2 RSA key exchange encrypts to the key; EC keys only sign.
        key_encipherment=rsa_key and not ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _resigned_with_sha1(
    certificate: x509.Certificate, issuer_key: rsa.RSAPrivateKey
) -> x509.Certificate:
    """``certificate`` (RSA, SHA-256) with its algorithm and signature replaced by SHA-1's."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    tbs = certificate.tbs_certificate_bytes
    if tbs.count(_RSA_SHA256_ALGORITHM) != 1 or der.count(tbs) != 1:
        raise ValueError("unexpected certificate layout for SHA-1 re-signing")
    new_tbs = tbs.replace(_RSA_SHA256_ALGORITHM, _RSA_SHA1_ALGORITHM)
    signature = issuer_key.sign(new_tbs, padding.PKCS1v15(), hashes.SHA1())
    if len(signature) != len(certificate.signature):
        raise ValueError("the SHA-1 signature does not fit the certificate's layout")
    new_der = der.replace(tbs, new_tbs)
    # After the TBS come the outer AlgorithmIdentifier and the signature BIT STRING.
    outer = new_der.rindex(_RSA_SHA256_ALGORITHM)
    new_der = new_der[:outer] + _RSA_SHA1_ALGORITHM + new_der[outer + len(_RSA_SHA1_ALGORITHM) :]
    if not new_der.endswith(certificate.signature):
        raise ValueError("unexpected certificate layout for SHA-1 re-signing")
    new_der = new_der[: -len(signature)] + signature
    return x509.load_der_x509_certificate(new_der)


def _pem(certificates: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


@contextlib.contextmanager
def _private_files(chain_pem: bytes, key_pem: bytes) -> Iterator[tuple[Path, Path]]:
    """The chain and the key as files in a fresh 0700 directory, removed on exit."""
    directory = Path(tempfile.mkdtemp(prefix="nfdoctor-sim-tls."))  # mkdtemp: 0700
    try:
        paths = (directory / "chain.pem", directory / "key.pem")
        for path, data in zip(paths, (chain_pem, key_pem), strict=True):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        yield paths
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def server_context(
    chain: Sequence[x509.Certificate],
    key: CertificateIssuerPrivateKeyTypes,
    *,
    legacy: bool = False,
    max_tls11: bool = False,
) -> ssl.SSLContext:
    """A TLS server context sending ``chain`` (leaf first) with ``key``.

    ``legacy``: OpenSSL security level 0, without which OpenSSL refuses to load a SHA-1 or
    RSA-1024 certificate. ``max_tls11``: TLS 1.0 to 1.1 only (implies ``legacy``: OpenSSL 3
    speaks them at level 0 only).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if legacy or max_tls11:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    if max_tls11:
        # Python deprecates the old versions with a warning; speaking them is the point here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with _private_files(_pem(chain), key_pem) as (chain_file, key_file):
        context.load_cert_chain(chain_file, key_file)
    return context


@dataclass(frozen=True)
class ServerCertificate:
    """What a server of one kind presents for one host name."""

    kind: str
    host: str
    #: what the server sends, leaf first
    chain: tuple[x509.Certificate, ...]
    key: CertificateIssuerPrivateKeyTypes = field(repr=False)

    @property
    def leaf(self) -> x509.Certificate:
        """The server's own certificate."""
        return self.chain[0]

    def chain_pem(self) -> bytes:
        """The sent chain as PEM, leaf first."""
        return _pem(self.chain)

    def server_context(self) -> ssl.SSLContext:
        """A server context presenting this chain (at security level 0 where the kind needs
        it, TLS 1.1 at most for ``tls11``)."""
        return server_context(
            self.chain,
            self.key,
            legacy=self.kind in _LEGACY_KINDS,
            max_tls11=self.kind == "tls11",
        )


class SimulatorPki:
    """A trusted root, its intermediate and an untrusted root, dated from ``now``."""

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        # X.509 times have whole seconds; so do the dates measured from here.
        self.now = now.astimezone(timezone.utc).replace(microsecond=0)
        self.root_key = cached_key("root")
        self.intermediate_key = cached_key("intermediate")
        self.untrusted_root_key = cached_key("untrusted-root")
        ca_from, ca_to = self.now - timedelta(days=400), self.now + timedelta(days=3650)
        self.root = issue_certificate(
            self.root_key,
            subject=_ROOT_NAME,
            issuer=None,
            issuer_key=self.root_key,
            not_before=ca_from,
            not_after=ca_to,
            ca=True,
        )
        self.intermediate = issue_certificate(
            self.intermediate_key,
            subject=_INTERMEDIATE_NAME,
            issuer=self.root,
            issuer_key=self.root_key,
            not_before=ca_from,
            not_after=self.now + timedelta(days=1825),
            ca=True,
            path_length=0,
        )
        self.untrusted_root = issue_certificate(
            self.untrusted_root_key,
            subject=_UNTRUSTED_ROOT_NAME,
            issuer=None,
            issuer_key=self.untrusted_root_key,
            not_before=ca_from,
            not_after=ca_to,
            ca=True,
        )
        self._issued: dict[tuple[str, str], ServerCertificate] = {}

    def root_pem(self) -> bytes:
        """The trusted root as PEM: the whole CA bundle a client needs (not a secret)."""
        return _pem([self.root])

    def certificate(self, kind: str, host: str) -> ServerCertificate:
        """The leaf and sent chain for ``host`` of ``kind`` (issued once per pair)."""
        if kind not in CERT_KINDS:
            raise ValueError(f"unknown certificate kind {kind!r} (expected one of CERT_KINDS)")
        issued = self._issued.get((kind, host))
        if issued is None:
            issued = self._issue(kind, host)
            self._issued[(kind, host)] = issued
        return issued

    def server_context(self, kind: str, host: str) -> ssl.SSLContext:
        """A server context for ``host`` presenting the certificate of ``kind``."""
        return self.certificate(kind, host).server_context()

    def _issue(self, kind: str, host: str) -> ServerCertificate:
        day = timedelta(days=1)
        not_before, not_after = self.now - 30 * day, self.now + 90 * day
        if kind == "expired":
            not_before, not_after = self.now - 120 * day, self.now - 2 * day
        elif kind == "not_yet_valid":
            not_before, not_after = self.now + 2 * day, self.now + 92 * day
        elif kind == "expiring_soon":
            not_before, not_after = self.now - 87 * day, self.now + 3 * day
        dns_names, ip_addresses = _split_names(host)
        if kind == "wrong_host":
            dns_names, ip_addresses = _WRONG_HOST_NAMES, ()
        key = cached_key("rsa1024" if kind == "rsa1024" else "leaf")
        issuer: x509.Certificate | None = self.intermediate
        issuer_key = self.intermediate_key
        if kind == "self_signed":
            issuer, issuer_key = None, key
        elif kind == "untrusted_root":
            issuer, issuer_key = self.untrusted_root, self.untrusted_root_key
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, (dns_names or ip_addresses)[0])]
        if kind != "dv":  # DV certificates carry no organisation
            subject.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION))
            subject.insert(0, x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"))
        leaf = issue_certificate(
            key,
            subject=x509.Name(subject),
            issuer=issuer,
            issuer_key=issuer_key,
            not_before=not_before,
            not_after=not_after,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            policy_oids=(_POLICY_BY_KIND.get(kind, POLICY_OV),),
            sha1=kind == "sha1",
        )
        chain: tuple[x509.Certificate, ...] = (leaf, self.intermediate)
        if kind in ("self_signed", "incomplete_chain"):
            chain = (leaf,)
        elif kind == "untrusted_root":
            # The untrusted root is sent: the chain ends with a self-signed root that the
            # client does not trust (a missing intermediate is incomplete_chain instead).
            chain = (leaf, self.untrusted_root)
        return ServerCertificate(kind=kind, host=host, chain=chain, key=key)


def _split_names(host: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``host`` as SAN entries: (DNS names, IP addresses)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return (host,), ()
    return (), (host,)
