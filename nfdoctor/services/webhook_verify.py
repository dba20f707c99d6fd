"""``webhook verify PLATFORM``: does a captured delivery's signature verify, and if not, why.

Offline: nothing is sent anywhere. The body and the signature header's value come from a
capture (a log, a proxy, a request bin), the keys from the config through
:func:`~nfdoctor.services.webhook_target.receiver`. When the signature does not verify, the
likely cause is found by trying it: each cause recomputes the signature under one changed
assumption and compares, in this order:

1. the body: the bytes the platform signed, before the capture changed them (re-serialised
   JSON, ``\\uXXXX`` escapes decoded or added, a trailing newline, a byte-order mark, CRLF);
2. the secret: a ``webhook_*`` choice of the platform's section that picks another secret
   (Zalo's ``webhook_secret``), then every other secret of the config;
3. the URL, where the platform signs it (Shopee): trailing slash, http/https, query string,
   the configured URL against ``--url``;
4. and 5. the value's shape: a prefix missing, doubled or foreign; upper-case hex;
6. the low-confidence details: a ``webhook_*`` choice that changes only the first term
   (Zalo's ``webhook_mac_id``), and the signed timestamp taken from elsewhere.

The first that matches is named; when none does, the result lists what was tried. A secret
never enters any text: it is named by its key path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import json
import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, get_args, get_origin

from nfdoctor import __version__
from nfdoctor.context import Environment
from nfdoctor.errors import UsageError
from nfdoctor.hints import HINTS
from nfdoctor.platforms.registry import SPECS
from nfdoctor.platforms.registry import spec as platform_spec
from nfdoctor.platforms.spec import Account, PlatformSection, PlatformSpec
from nfdoctor.platforms.webhook import DeliveryInputs, SignatureScheme, WebhookKeys
from nfdoctor.results import CheckResult, Hint, Report, Status
from nfdoctor.services.checkrun import PreparedConfig, prepare
from nfdoctor.services.observer import RunObserver, SilentObserver
from nfdoctor.services.webhook_target import Receiver, receiver, with_other_secrets
from nfdoctor.webhooks.target import secret_lookup

__all__ = [
    "MAX_BODY_BYTES",
    "GivenSignature",
    "VerifyRequest",
    "legacy_scheme",
    "parse_signature",
    "read_body",
    "verify_delivery",
]

CHECK_ID = "webhook.verify"
TITLE = "Webhook signature"

#: a delivery is a few KB; a bigger file is the wrong file, and reading it whole would only
#: make the operator wait
MAX_BODY_BYTES = 16 * 1024 * 1024

#: receiver() wants a URL for every command, but only a platform that signs the URL needs
#: one to verify; this stands in for it and is never shown
_UNSIGNED_URL = "https://url.not.signed.invalid/"


@dataclass(frozen=True, kw_only=True)
class VerifyRequest:
    """A captured delivery, and what to verify it with."""

    platform: str
    #: the file holding the delivery's raw body; ``-``: standard input
    body: str
    #: the signature header's value as captured (``sha256=…``, ``mac=…``, bare hex)
    signature: str
    config_path: Path | None = None
    shop: str | None = None
    #: the callback URL the platform signs, instead of the configured one (Shopee)
    url: str | None = None
    #: the signed timestamp, instead of the body's ``timestamp`` field (Zalo)
    timestamp: str | None = None


def verify_delivery(
    env: Environment,
    request: VerifyRequest,
    *,
    observer: RunObserver | None = None,
    stdin: BinaryIO | None = None,
) -> Report:
    """Verify a captured delivery's signature against the config's keys; the report (OK, or
    CRITICAL naming the likely cause).

    Bad input is a UsageError before anything else is done: an unknown platform, a signature
    that is not the platform's format, a body that cannot be read or is empty, a platform or
    shop not configured, a signing secret that is not configured.
    """
    observer = observer or SilentObserver()
    started_at = env.clock()
    start = env.monotonic()
    name = request.platform.strip().lower()
    if not name:
        raise UsageError(f"PLATFORM: empty; expected one of {', '.join(s.name for s in SPECS)}")
    platform = platform_spec(name)
    if platform.webhook is None:
        raise UsageError(f"{platform.title} delivers no webhooks nfdoctor knows of")
    given = parse_signature(request.signature, platform.webhook.signature, platform.title)
    _check_options(request)
    body = read_body(request.body, stdin)
    prepared = prepare(env, request.config_path, observer)
    scheme = platform.webhook.signature
    url = request.url
    if url is None and not scheme.signs_url:
        url = _UNSIGNED_URL
    target = receiver(prepared, name, shop=request.shop, url=url, check_url=False)
    inputs = _inputs(prepared, target, request, body)
    result = _judge(given, inputs)
    observer.finished(CHECK_ID, [result])
    return Report(
        command=f"webhook verify {name}",
        results=(result,),
        started_at=started_at,
        duration_s=env.monotonic() - start,
        version=__version__,
    )


# --- the inputs ------------------------------------------------------------------------------


def read_body(source: str, stdin: BinaryIO | None) -> bytes:
    """The raw body from the file ``source`` (``-``: ``stdin``), byte for byte; UsageError
    naming the file when it cannot be read, is a directory, is empty or is too big."""
    if source == "-":
        if stdin is None:
            raise UsageError("--body -: there is no standard input to read")
        if stdin.isatty():
            raise UsageError(
                "--body -: standard input is a terminal; pipe the captured body in, or give "
                "the file that holds it"
            )
        data = stdin.read(MAX_BODY_BYTES + 1)
        where = "--body -: standard input"
    else:
        if not source:
            raise UsageError("--body: empty file name; give the file holding the raw body")
        path = Path(source)
        where = f"--body: {source}"
        if path.is_dir():
            raise UsageError(f"{where}: is a directory; give the file holding the raw body")
        try:
            with path.open("rb") as file:
                data = file.read(MAX_BODY_BYTES + 1)
        except FileNotFoundError:
            raise UsageError(f"{where}: no such file") from None
        except PermissionError:
            raise UsageError(f"{where}: permission denied") from None
        except OSError as exc:
            raise UsageError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    if not data:
        raise UsageError(f"{where} is empty; expected the delivery's raw body")
    if len(data) > MAX_BODY_BYTES:
        raise UsageError(
            f"{where} is larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB; a webhook delivery "
            "is a few KB: is it the right file?"
        )
    return bytes(data)


def _check_options(request: VerifyRequest) -> None:
    if request.url is not None and not request.url.strip():
        raise UsageError("--url: empty; give the callback URL the platform signs")
    if request.timestamp is not None and not request.timestamp.isdigit():
        shown = request.timestamp[:40]
        raise UsageError(
            f"--timestamp: expected the delivery's timestamp as digits (Unix milliseconds), "
            f"got {shown!r}"
        )


@dataclass(frozen=True, kw_only=True)
class GivenSignature:
    """The signature as captured, taken apart."""

    #: the hex digest, in the case it was given
    digest: str
    #: the known prefixes in front of it, as written, in order (``("sha256=",)``)
    prefixes: tuple[str, ...]
    #: the scheme the value is in: the platform's, or its legacy one (``sha1=``)
    scheme: SignatureScheme
    legacy: bool


#: prefixes a signature header carries on some platform, stripped before the hex is checked
_PREFIX = re.compile(r"(sha256=|sha1=|mac=|bearer\s+)", re.IGNORECASE)
_NOT_HEX = re.compile(r"[^0-9a-fA-F]")


def _hub_sha1(keys: WebhookKeys, delivery: DeliveryInputs) -> str:
    return hmac.new(keys.secret.encode("utf-8"), delivery.body, hashlib.sha1).hexdigest()


#: legacy headers sent beside a platform's current one, by the current header's name: Meta's
#: X-Hub-Signature (sha1=) beside X-Hub-Signature-256 (platforms.md §5.8; whether Meta still
#: sends it is open, §8 q17). It belongs in the platform's WebhookSpec once that has a field.
_LEGACY: Mapping[str, SignatureScheme] = {
    "x-hub-signature-256": SignatureScheme(
        header="X-Hub-Signature",
        prefix="sha1=",
        digest=_hub_sha1,
        describe="X-Hub-Signature: sha1=HMAC-SHA1(app_secret, raw body), the legacy header",
        hex_length=40,
    )
}


def legacy_scheme(scheme: SignatureScheme) -> SignatureScheme | None:
    """The legacy signature a platform may send beside ``scheme`` (Meta's ``sha1=``)."""
    return _LEGACY.get(scheme.header.lower())


def _expected_form(scheme: SignatureScheme) -> str:
    lead = f"{scheme.prefix} followed by " if scheme.prefix else ""
    return f"{lead}{scheme.hex_length} hex digits (the {scheme.header} header's value)"


def parse_signature(value: str, scheme: SignatureScheme, title: str) -> GivenSignature:
    """``value`` taken apart: its prefixes and its hex digest; UsageError when it is not the
    format of ``scheme`` (or of its legacy scheme), saying what was expected.

    The value itself is never quoted: an operator may paste a secret into the wrong option.
    """
    legacy = legacy_scheme(scheme)
    text = value.strip()
    # A pasted header line ("X-Hub-Signature-256: sha256=…") is the same value.
    for header in (scheme.header, legacy.header if legacy else None):
        if header and text.lower().startswith(header.lower() + ":"):
            text = text[len(header) + 1 :].strip()
            break
    prefixes: list[str] = []
    while match := _PREFIX.match(text):
        prefixes.append(match.group(1))
        text = text[match.end() :]
    expected = _expected_form(scheme)
    if legacy is not None:
        expected += f", or {_expected_form(legacy)}"
    if not text:
        after = f" after {''.join(prefixes)!r}" if prefixes else ""
        raise UsageError(f"--signature: no hex digits{after}; expected {expected}")
    bad = _NOT_HEX.search(text)
    if bad is not None:
        # ``text`` is what is left at the end of the stripped value: count from its start.
        position = len(value.strip()) - len(text) + bad.start() + 1
        raise UsageError(
            f"--signature: not hex ({bad.group()!r} at position {position}); expected {expected}"
        )
    in_legacy = legacy is not None and (
        (bool(prefixes) and prefixes[-1].lower() == legacy.prefix.lower())
        or (not prefixes and len(text) == legacy.hex_length)
    )
    used = legacy if in_legacy and legacy is not None else scheme
    if len(text) != used.hex_length:
        raise UsageError(
            f"--signature: {len(text)} hex digits; expected {_expected_form(used)} for {title}"
        )
    return GivenSignature(
        digest=text, prefixes=tuple(prefixes), scheme=used, legacy=used is not scheme
    )


def _written_url(prepared: PreparedConfig, name: str) -> str | None:
    """``platforms.<name>.webhook_url`` as written in the config file, None if not set."""
    raw = prepared.loaded.raw.get("platforms")
    section = raw.get(name) if isinstance(raw, dict) else None
    written = section.get("webhook_url") if isinstance(section, dict) else None
    return written.strip() if isinstance(written, str) and written.strip() else None


def _signed_url(prepared: PreparedConfig, name: str, url: str, source: str) -> str:
    """The URL the platform signs: ``--url``, else ``webhook_url`` as written in the config.

    The typed config normalises a URL (``https://crm.example.vn`` gains a ``/``), and the
    platform signs the text exactly as set in its console, which the operator copied.
    """
    if source == "--url":
        return url
    return _written_url(prepared, name) or url


@dataclass(frozen=True, kw_only=True)
class _Inputs:
    """Everything one verification works with."""

    prepared: PreparedConfig
    platform: PlatformSpec[Any]
    section: PlatformSection
    account: Account
    #: the signing keys, with every other secret of the config in ``others``
    keys: WebhookKeys
    body: bytes
    #: the signed URL (where the platform signs one) and where it came from
    url: str
    url_source: str
    #: the signed timestamp (where the platform signs one) and where it came from
    timestamp: str | None
    timestamp_source: str
    #: the body's timestamp field, when the platform signs a timestamp
    body_timestamp: str | None
    #: what the operator gave that this platform does not sign, for the details
    ignored: tuple[str, ...]

    @property
    def title(self) -> str:
        """The platform's title."""
        return self.platform.title

    @property
    def current_header(self) -> str:
        """The platform's current signature header."""
        assert self.platform.webhook is not None
        return self.platform.webhook.signature.header

    @property
    def delivery(self) -> DeliveryInputs:
        """What the signature covers, as given."""
        return DeliveryInputs(url=self.url, body=self.body, timestamp=self.timestamp)


def _inputs(
    prepared: PreparedConfig, target: Receiver, request: VerifyRequest, body: bytes
) -> _Inputs:
    """What the verification works with: the receiver's keys with every other secret of the
    config, the signed URL and timestamp where the platform signs them."""
    scheme = target.webhook.signature
    title = target.platform.title
    ignored = []
    if request.url is not None and not scheme.signs_url:
        ignored.append(f"--url: {title} does not sign the URL; ignored")
    timestamp: str | None = None
    body_timestamp: str | None = None
    source = ""
    if scheme.timestamp is None:
        if request.timestamp is not None:
            ignored.append(f"--timestamp: {title} signs no timestamp; ignored")
    else:
        body_timestamp = scheme.timestamp_of(body)
        if request.timestamp is not None:
            timestamp, source = request.timestamp, "--timestamp"
        elif body_timestamp is not None:
            timestamp, source = body_timestamp, "the body's timestamp field"
        else:
            raise UsageError(
                f"--body: {request.body}: no timestamp field, and {title} signs the "
                "delivery's timestamp; give it with --timestamp"
            )
    return _Inputs(
        prepared=prepared,
        platform=target.platform,
        section=target.section,
        account=target.account,
        keys=with_other_secrets(prepared, target.keys),
        body=body,
        url=_signed_url(prepared, target.name, target.url, target.url_source)
        if scheme.signs_url
        else "",
        url_source=target.url_source,
        timestamp=timestamp,
        timestamp_source=source,
        body_timestamp=body_timestamp,
        ignored=tuple(ignored),
    )


# --- the causes --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Attempt:
    """One changed assumption: the inputs under it, and what it means if it matches."""

    kind: str
    #: how it is listed among what was tried
    label: str
    #: what to tell the operator when it matches
    cause: str
    keys: WebhookKeys
    delivery: DeliveryInputs


#: what each kind of attempt is called in the list of what was tried, in the order tried
_KINDS = {
    "body": "the body as sent, before the capture changed it",
    "setting": "other settings of the platform's section",
    "secret": "the other configured secrets",
    "url": "other forms of the signed URL",
    "first_term": "other settings of the platform's section",
    "timestamp": "other signed timestamps",
}


def _hint(kind: str) -> Hint:
    """The catalogue's hint for a cause of kind ``kind`` (``setting`` is a wrong secret)."""
    return HINTS["signature." + ("secret" if kind == "setting" else kind)]


def _attempts(inputs: _Inputs, scheme: SignatureScheme, notes: list[str]) -> Iterator[_Attempt]:
    """Every changed assumption, in the order causes are named; what could not be tried is
    added to ``notes``."""
    keys, delivery = inputs.keys, inputs.delivery
    for label, cause, body in _body_forms(inputs.body, notes):
        yield _Attempt(
            kind="body",
            label=label,
            cause=cause,
            keys=keys,
            delivery=dataclasses.replace(delivery, body=body),
        )
    settings = list(_setting_variants(inputs, notes))
    for attempt in settings:
        if attempt.kind == "setting":
            yield attempt
    tried = {(keys.secret_path, keys.app_key)} | {
        (a.keys.secret_path, a.keys.app_key) for a in settings
    }
    for path, value in keys.others:
        if (path, keys.app_key) in tried or not value:
            continue
        yield _Attempt(
            kind="secret",
            label=path,
            cause=f"the signature matches the secret at {path}, not {keys.secret_path}"
            + _whose_secret(inputs, path),
            keys=dataclasses.replace(keys, secret=value, secret_path=path),
            delivery=delivery,
        )
    if scheme.signs_url:
        for url, what in _url_forms(inputs):
            yield _Attempt(
                kind="url",
                label=url,
                cause=f"{inputs.title} signs the callback URL exactly as configured at "
                f"{inputs.title}: {url} ({what}), and {inputs.url_source} is {inputs.url}",
                keys=keys,
                delivery=dataclasses.replace(delivery, url=url),
            )
    for attempt in settings:
        if attempt.kind == "first_term":
            yield attempt
    if scheme.timestamp is not None:
        for timestamp, label, cause in _timestamp_forms(inputs):
            yield _Attempt(
                kind="timestamp",
                label=label,
                cause=cause,
                keys=keys,
                delivery=dataclasses.replace(delivery, timestamp=timestamp),
            )


def _whose_secret(inputs: _Inputs, path: str) -> str:
    platform = inputs.platform
    prefix = f"platforms.{platform.name}.{platform.accounts_key}["
    if path.startswith(prefix):
        index = path[len(prefix) :].split("]", 1)[0]
        accounts = platform.accounts(inputs.section)
        if index.isdigit() and int(index) < len(accounts):
            other = accounts[int(index)]
            return f": the delivery is for {other.label}; verify it with --shop {other.account_id}"
    return (
        f": the sender signs with the wrong secret, or the config holds {inputs.title}'s secret "
        "under the wrong key"
    )


# The body ----------------------------------------------------------------------------------

#: an escaped backslash (left alone, so ``\\u00e0`` stays text), a surrogate pair, one escape
_ESCAPE = re.compile(
    r"\\\\|\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})|\\u([0-9a-f]{4})", re.IGNORECASE
)


def _escape_non_ascii(text: str) -> str:
    """``text`` with every non-ASCII character as ``\\uXXXX`` (lower-case hex, surrogate pairs
    above U+FFFF), the rest untouched: how Meta writes a body (§5.8)."""
    out = []
    for char in text:
        code = ord(char)
        if code < 0x80:
            out.append(char)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    return "".join(out)


def _unescape_non_ascii(text: str) -> str:
    """``text`` with every ``\\uXXXX`` escape of a non-ASCII character decoded, the rest
    (ASCII escapes such as ``\\u0022``, an escaped backslash) untouched."""

    def decode(match: re.Match[str]) -> str:
        high, low, single = match.groups()
        if high is not None:
            return chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00))
        if single is not None:
            code = int(single, 16)
            if code >= 0x80 and not 0xD800 <= code < 0xE000:
                return chr(code)
        return match.group(0)

    return _ESCAPE.sub(decode, text)


def _json_forms(payload: Any) -> Iterator[tuple[str, bytes]]:
    """``payload`` written the ways JSON libraries write it, each with its description."""
    for separators, ensure_ascii, sort_keys, slashes in itertools.product(
        ((",", ":"), (", ", ": ")), (False, True), (False, True), (False, True)
    ):
        text = json.dumps(
            payload, separators=separators, ensure_ascii=ensure_ascii, sort_keys=sort_keys
        )
        if slashes:
            if "/" not in text:
                continue
            # PHP's json_encode default: every "/" (only ever inside a string) as "\/".
            text = text.replace("/", "\\/")
        words = [
            "without spaces" if separators == (",", ":") else "with a space after ',' and ':'",
            "non-ASCII as \\uXXXX" if ensure_ascii else "non-ASCII as UTF-8",
            "keys sorted" if sort_keys else "keys in the file's order",
        ]
        if slashes:
            words.append("'/' as '\\/'")
        yield ", ".join(words), text.encode("utf-8")


def _body_forms(body: bytes, notes: list[str]) -> Iterator[tuple[str, str, bytes]]:
    """(label, cause, body) for each body the platform may have signed instead of the file's."""
    seen = {body}

    def new(candidate: bytes) -> bool:
        if candidate in seen:
            return False
        seen.add(candidate)
        return True

    not_raw = "the file is not the raw body"
    try:
        text: str | None = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
        notes.append("the body is not UTF-8: its \\uXXXX escapes were not tried")
    if text is not None:
        escaped = _escape_non_ascii(text).encode("ascii")
        if new(escaped):
            yield (
                "non-ASCII escaped as \\uXXXX",
                f"{not_raw}: the signature is over the body with non-ASCII characters escaped "
                "as \\uXXXX, and the file holds them decoded (saved after JSON decoding?)",
                escaped,
            )
        unescaped = _unescape_non_ascii(text).encode("utf-8")
        if new(unescaped):
            yield (
                "\\uXXXX escapes decoded",
                f"{not_raw}: the signature is over the body with its \\uXXXX escapes as UTF-8 "
                "characters, and the file holds them escaped (re-encoded by the capture?)",
                unescaped,
            )
    for ending in (b"\r\n", b"\n"):
        if body.endswith(ending):
            if new(body[: -len(ending)]):
                yield (
                    "trailing newline removed",
                    f"{not_raw}: it ends with a newline the delivery did not have (added by an "
                    "editor, echo or the capture)",
                    body[: -len(ending)],
                )
            break
    else:
        for ending, words in ((b"\n", "newline"), (b"\r\n", "CRLF")):
            if new(body + ending):
                yield (
                    f"trailing {words} added",
                    f"{not_raw}: the delivery ended with a newline the file lacks (stripped by "
                    "the capture)",
                    body + ending,
                )
    bom = b"\xef\xbb\xbf"
    if body.startswith(bom) and new(body[len(bom) :]):
        yield (
            "byte-order mark removed",
            f"{not_raw}: it starts with a UTF-8 byte-order mark the delivery did not have "
            "(saved by an editor?)",
            body[len(bom) :],
        )
    if b"\r\n" in body and new(body.replace(b"\r\n", b"\n")):
        yield (
            "CRLF line ends as LF",
            f"{not_raw}: its line ends were turned into CRLF (saved on Windows?)",
            body.replace(b"\r\n", b"\n"),
        )
    elif b"\n" in body.rstrip(b"\n") and new(body.replace(b"\n", b"\r\n")):
        yield (
            "LF line ends as CRLF",
            f"{not_raw}: its CRLF line ends were turned into LF",
            body.replace(b"\n", b"\r\n"),
        )
    try:
        payload = json.loads(body.removeprefix(bom))
    except ValueError:
        notes.append("the body is not JSON: re-serialisations were not tried")
        return
    for words, candidate in _json_forms(payload):
        if new(candidate):
            yield (
                f"JSON {words}",
                f"{not_raw} but JSON re-serialised from it: the signature is over the same "
                f"JSON written {words}",
                candidate,
            )


# The settings ------------------------------------------------------------------------------


def _choices(section: PlatformSection) -> dict[str, list[Any]]:
    """The section's ``webhook_*`` settings that are a choice, each with its values (the
    configured one first): the low-confidence details of a platform's signature, declared
    where the platform declares its config."""
    found = {}
    for field_name, info in type(section).model_fields.items():
        if not field_name.startswith("webhook_") or get_origin(info.annotation) is not Literal:
            continue
        current = getattr(section, field_name)
        found[field_name] = [current, *(v for v in get_args(info.annotation) if v != current)]
    return found


def _setting_variants(inputs: _Inputs, notes: list[str]) -> Iterator[_Attempt]:
    """The keys under every other combination of the section's ``webhook_*`` choices, fewest
    changes first: kind ``setting`` when the secret changes, ``first_term`` otherwise."""
    platform, section, keys = inputs.platform, inputs.section, inputs.keys
    assert platform.webhook is not None
    choices = _choices(section)
    names = sorted(choices)
    updates = [
        {n: v for n, v in zip(names, combo, strict=True) if v != getattr(section, n)}
        for combo in itertools.product(*(choices[n] for n in names))
    ]
    base = f"platforms.{platform.name}"
    for update in sorted((u for u in updates if u), key=len):
        setting = ", ".join(f"{base}.{n}: {v}" for n, v in update.items())
        try:
            variant = platform.webhook.keys(
                section.model_copy(update=update),
                inputs.account.account_id,
                secret_lookup(inputs.prepared.secrets),
                base,
            )
        except UsageError as exc:
            notes.append(f"{setting}: not tried ({exc.message})")
            continue
        changes = []
        if variant.secret_path != keys.secret_path:
            changes.append(f"signed with {variant.secret_path}, not {keys.secret_path}")
        if variant.app_key != keys.app_key:
            changes.append(f"the first term is {variant.app_key!r}, not {keys.app_key!r}")
        if not changes:
            continue  # the same keys: nothing new to try
        yield _Attempt(
            kind="setting" if variant.secret_path != keys.secret_path else "first_term",
            label=setting,
            cause=f"the signature matches when {setting} ({'; '.join(changes)}): set "
            f"{'these' if len(update) > 1 else 'this'} in the config",
            keys=dataclasses.replace(variant, others=()),
            delivery=inputs.delivery,
        )


# The URL -----------------------------------------------------------------------------------


def _url_forms(inputs: _Inputs) -> Iterator[tuple[str, str]]:
    """(url, how it differs) for each URL the platform may have signed instead."""
    primary = inputs.url
    bases = [(primary, "")]
    name = inputs.platform.name
    configured = inputs.platform.section(inputs.prepared.loaded.config.platforms)
    normalised = str(configured.webhook_url) if configured and configured.webhook_url else None
    if inputs.url_source == "--url":
        for other in (_written_url(inputs.prepared, name), normalised):
            if other:
                bases.append((other, f"the configured platforms.{name}.webhook_url"))
    elif normalised:
        bases.append((normalised, f"platforms.{name}.webhook_url as nfdoctor normalises it"))
    queries = {urllib.parse.urlsplit(url).query for url, _ in bases} - {""}
    seen = {primary}
    for base, base_what in bases:
        parts = urllib.parse.urlsplit(base)
        slash_toggled = parts.path[:-1] if parts.path.endswith("/") else parts.path + "/"
        other_scheme = {"https": "http", "http": "https"}.get(parts.scheme.lower())
        query_options: list[tuple[str, str]] = [(parts.query, "")]
        if parts.query:
            query_options.append(("", "without the query string"))
        else:
            query_options += [(q, f"with the query string ?{q}") for q in sorted(queries)]
        for (path, path_what), (scheme, scheme_what), (query, query_what) in itertools.product(
            [(parts.path, ""), (slash_toggled, _slash_words(parts.path))],
            [(parts.scheme, "")] + ([(other_scheme, f"{other_scheme}://")] if other_scheme else []),
            query_options,
        ):
            url = urllib.parse.urlunsplit((scheme, parts.netloc, path, query, parts.fragment))
            if url in seen:
                continue
            seen.add(url)
            what = [w for w in (base_what, path_what, scheme_what, query_what) if w]
            yield url, ", ".join(what)


def _slash_words(path: str) -> str:
    return "without the trailing slash" if path.endswith("/") else "with a trailing slash"


# The timestamp -----------------------------------------------------------------------------


def _timestamp_forms(inputs: _Inputs) -> Iterator[tuple[str, str, str]]:
    """(timestamp, label, cause) for each timestamp the platform may have signed instead."""
    used = inputs.timestamp or ""
    seen = {used}
    candidates: list[tuple[str, str, str]] = []
    body_ts = inputs.body_timestamp
    if inputs.timestamp_source == "--timestamp" and body_ts is not None:
        candidates.append(
            (
                body_ts,
                f"the body's timestamp field {body_ts}",
                f"the signed timestamp is the body's timestamp field ({body_ts}), not "
                f"--timestamp {used}: leave --timestamp out",
            )
        )
    if len(used) >= 13:
        candidates.append(
            (
                used[:-3],
                f"{used[:-3]} (seconds)",
                f"the signed timestamp is in seconds ({used[:-3]}), not milliseconds as "
                f"{inputs.timestamp_source} has it",
            )
        )
    elif used:
        candidates.append(
            (
                used + "000",
                f"{used}000 (milliseconds)",
                f"the signed timestamp is in milliseconds ({used}000), not seconds as "
                f"{inputs.timestamp_source} has it",
            )
        )
    candidates.append(
        (
            "",
            "no timestamp",
            f"the signature is made without any timestamp, not with {used} from "
            f"{inputs.timestamp_source}",
        )
    )
    for timestamp, label, cause in candidates:
        if timestamp not in seen:
            seen.add(timestamp)
            yield timestamp, label, cause


# --- the verdict -----------------------------------------------------------------------------


def _shape_problems(given: GivenSignature, title: str) -> list[str]:
    """What is wrong with the value's prefix and hex case, when its digest is right."""
    expected = given.scheme.prefix
    header = given.scheme.header
    written = given.prefixes
    problems = []
    if written != ((expected,) if expected else ()):
        foreign = [p for p in written if p.lower() != expected.lower()]
        if not written:
            problems.append(f"the value lacks the {expected!r} prefix {title} sends in {header}")
        elif foreign:
            shown = "".join(foreign)
            should = (
                f"; the value starts with {expected!r}"
                if expected
                else "; it sends the bare hex digest"
            )
            problems.append(
                f"the value carries {shown!r}, which {title} does not send in {header}{should}"
            )
        elif len(written) > 1:
            problems.append(
                f"the prefix {expected!r} appears {len(written)} times; {title} sends it once"
            )
        else:
            problems.append(f"the prefix is written {written[0]!r}; {title} sends {expected!r}")
    if given.digest != given.digest.lower():
        problems.append(
            f"the hex digest is in upper case; {title} sends lower-case hex, and a receiver "
            "comparing exactly rejects it"
        )
    return problems


def _matches(computed: str, given: GivenSignature) -> bool:
    return hmac.compare_digest(computed.encode("ascii"), given.digest.lower().encode("ascii"))


def _short(prefix: str, digest: str) -> str:
    # Enough to tell two signatures apart, not a signature anyone could reuse.
    return f"{prefix}{digest[:8]}…{digest[-4:]} ({len(digest)} hex digits)"


def _judge(given: GivenSignature, inputs: _Inputs) -> CheckResult:
    scheme = given.scheme
    title = inputs.title
    expected = scheme.digest(inputs.keys, inputs.delivery)
    details = _context_lines(given, inputs, expected)
    subject = inputs.account.label

    def result(
        status: Status, summary: str, extra: Sequence[str], hint: Hint | None
    ) -> CheckResult:
        return CheckResult(
            id=CHECK_ID,
            title=TITLE,
            status=status,
            summary=summary,
            details=(*extra, *details),
            hint=hint,
            subject=subject,
        )

    shape = _shape_problems(given, title)
    if _matches(expected, given):
        if not shape:
            return result(Status.OK, f"signature verifies ({scheme.describe})", (), None)
        return result(
            Status.CRITICAL, f"signature does not verify: {'; '.join(shape)}", (), _hint("shape")
        )
    notes: list[str] = []
    tried: dict[str, list[str]] = {}
    for attempt in _attempts(inputs, scheme, notes):
        tried.setdefault(_KINDS[attempt.kind], []).append(attempt.label)
        if _matches(scheme.digest(attempt.keys, attempt.delivery), given):
            cause = "; ".join([attempt.cause, *shape])
            return result(
                Status.CRITICAL, f"signature does not verify: {cause}", (), _hint(attempt.kind)
            )
    lines = [f"tried {kind}: {'; '.join(labels)}" for kind, labels in tried.items()]
    if scheme.timestamp is not None and inputs.timestamp_source != "--timestamp":
        notes.append(
            "a timestamp from the delivery's headers: if it carried one, give it with --timestamp"
        )
    lines += [f"not tried: {note}" for note in notes]
    return result(
        Status.CRITICAL,
        "signature does not verify, and no likely cause was found: the body and the signature "
        "are not from the same delivery, or the secret is not the one the platform has",
        lines,
        _hint("none"),
    )


def _context_lines(given: GivenSignature, inputs: _Inputs, expected: str) -> list[str]:
    scheme = given.scheme
    keys = inputs.keys
    lines = [f"scheme: {scheme.describe}"]
    if given.legacy:
        lines.append(
            f"the value is the legacy {scheme.header} header's; {inputs.title} also sends "
            f"{inputs.current_header}, the one to verify"
        )
    lines.append(f"secret: {keys.secret_path}")
    if keys.app_key is not None:
        lines.append(f"first term: {keys.app_key}")
    if scheme.signs_url:
        lines.append(f"URL signed: {inputs.url} ({inputs.url_source})")
    if inputs.timestamp is not None:
        line = f"timestamp signed: {inputs.timestamp} ({inputs.timestamp_source})"
        if inputs.body_timestamp not in (None, inputs.timestamp):
            line += f"; the body's timestamp field is {inputs.body_timestamp}"
        lines.append(line)
    fingerprint = hashlib.sha256(inputs.body).hexdigest()[:16]
    lines.append(f"body: {len(inputs.body)} bytes, SHA-256 {fingerprint}…")
    lines.append(f"expected: {_short(scheme.prefix, expected)}")
    lines.append(f"given: {_short(''.join(given.prefixes), given.digest)}")
    lines += inputs.ignored
    return lines
