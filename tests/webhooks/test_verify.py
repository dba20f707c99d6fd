"""``nfdoctor webhook verify``: captured deliveries verify, and each mistake is named.

Deliveries are signed here with nfdoctor's own declarations (``WEBHOOK.signature``), which
the first tests pin to platforms.md §7 and to the simulator's independent verifier; the CLI
then verifies them with keys it reads from a config whose secrets are ``file:`` references.
Every mistaken signature is made on purpose, one cause at a time, and must be named.
"""

from __future__ import annotations

import io
import json
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from nfdoctor.context import Environment
from nfdoctor.platforms import facebook, lazada, shopee, tiktok, zalo
from nfdoctor.platforms.webhook import (
    DeliveryInputs,
    EventInputs,
    SignatureScheme,
    WebhookKeys,
    WebhookSpec,
    ascii_json,
    utf8_json,
)
from nfdoctor.services.webhook_verify import VerifyRequest, legacy_scheme, verify_delivery
from nfdoctor.simulator import verify as sim
from tests.conftest import CliResult

VIETNAMESE = "Chào shop, áo này còn size M không ạ?"
NOW = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)

# The §7 vectors' keys, so that the vectors verify through the config too.
SHOPEE_URL = "https://crm.example.vn/webhooks/shopee"
SECRETS = {
    "shopee_partner_key": "test_partner_key",
    "lazada_app_secret": "3412gyo124goi3124",
    "tiktok_app_secret": "fake_app_secret",
    "facebook_app_secret": "appsecret123",
    "facebook_verify_token": "fb-verify-token-93e1",
    "zalo_secret_key": "zalo-app-secret-5d1c",
    "zalo_oa_secret": "oa-secret-key",
    "zalo_oa2_secret": "oa2-secret-key-77af",
    "crm_api_key": "crm-api-key-0b6e",
}
ZALO_APP_ID = "1234567890"
ZALO_OA = "388613280878808645"
ZALO_OA2 = "388613280878808646"

CONFIG = """\
crm:
  base_url: https://crm.example.vn
  api_key: file:secrets/crm_api_key
platforms:
  shopee:
    partner_id: 2001887
    partner_key: file:secrets/shopee_partner_key
{shopee_url}    shops:
      - shop_id: 123
  lazada:
    app_key: "123456"
    app_secret: file:secrets/lazada_app_secret
    shops:
      - seller_id: "1234567"
{tiktok}  facebook:
    app_id: "100000000000001"
    app_secret: file:secrets/facebook_app_secret
    verify_token: file:secrets/facebook_verify_token
    pages:
      - page_id: "111"
  zalo:
    app_id: "1234567890"
    secret_key: file:secrets/zalo_secret_key
{zalo}    oas:
      - oa_id: "388613280878808645"
{oa_secret}      - oa_id: "388613280878808646"
        oa_secret: file:secrets/zalo_oa2_secret
"""
TIKTOK = """\
  tiktok:
    app_key: fake_app_key
    app_secret: file:secrets/tiktok_app_secret
    shops:
      - shop_id: "7494726673780148744"
"""


@dataclass
class Setup:
    """A config directory with every secret in a 0600 file, and a place for bodies."""

    root: Path
    cli: Callable[..., CliResult]
    outputs: list[str] = field(default_factory=list)

    def config(
        self,
        *,
        shopee_url: str | None = SHOPEE_URL,
        zalo: str = "",
        tiktok: bool = True,
        oa_secret: bool = True,
        name: str = "nfdoctor.yaml",
    ) -> Path:
        """Write a config (the defaults: every platform, Shopee's URL, Zalo's defaults)."""
        path = self.root / "conf" / name
        path.write_text(
            CONFIG.format(
                shopee_url=f"    webhook_url: {shopee_url}\n" if shopee_url else "",
                tiktok=TIKTOK if tiktok else "",
                zalo="".join(f"    {line}\n" for line in zalo.splitlines()),
                oa_secret="        oa_secret: file:secrets/zalo_oa_secret\n" if oa_secret else "",
            ),
            encoding="utf-8",
        )
        return path

    def body_file(self, body: bytes, name: str = "delivery.json") -> Path:
        """``body`` in a file, byte for byte."""
        path = self.root / "captures" / name
        path.write_bytes(body)
        return path

    def run(self, *args: str, config: Path | None = None) -> CliResult:
        """``nfdoctor webhook verify ARGS --config …``; every output is kept for the leak
        check at the end of the test."""
        result = self.cli("webhook", "verify", *args, "--config", str(config or self.config()))
        self.outputs += [result.stdout, result.stderr]
        return result

    def verify(
        self, platform: str, body: bytes, signature: str, *args: str, config: Path | None = None
    ) -> tuple[CliResult, dict[str, Any]]:
        """Verify ``body`` with ``signature``; the run and its one JSON result."""
        path = self.body_file(body)
        result = self.run(
            platform,
            "--body",
            str(path),
            "--signature",
            signature,
            "-o",
            "json",
            *args,
            config=config,
        )
        assert result.stdout, result.stderr
        document = json.loads(result.stdout)
        assert [r["id"] for r in document["results"]] == ["webhook.verify"]
        return result, document["results"][0]


@pytest.fixture
def setup(tmp_path: Path, cli: Callable[..., CliResult]) -> Iterator[Setup]:
    secrets = tmp_path / "conf" / "secrets"
    secrets.mkdir(parents=True)
    for name, value in SECRETS.items():
        path = secrets / name
        path.write_text(value + "\n", encoding="utf-8")
        path.chmod(0o600)
    (tmp_path / "captures").mkdir()
    made = Setup(root=tmp_path, cli=cli)
    made.config()
    yield made
    leaks = [(value, text) for text in made.outputs for value in SECRETS.values() if value in text]
    assert not leaks, f"a secret value in the output: {leaks[0][0]!r}"


# --- the platforms, as the tests sign for them ----------------------------------------------


@dataclass(frozen=True)
class Platform:
    """One platform's keys as the config holds them, and nfdoctor's signing with them."""

    name: str
    webhook: WebhookSpec
    secret: str
    app_key: str | None
    account: str

    @property
    def scheme(self) -> SignatureScheme:
        return self.webhook.signature

    def payload(self, text: str = VIETNAMESE) -> dict[str, Any]:
        """A chat message with ``text``, as the platform delivers one."""
        return self.webhook.event("message").build(
            EventInputs(
                account_id=self.account,
                message_id=self.webhook.new_message_id(b"verify-test"),
                text=text,
                sender_id=self.webhook.trace_sender,
                now=NOW,
                app_id=ZALO_APP_ID,
            )
        )

    def body(self, text: str = VIETNAMESE) -> bytes:
        """The payload's body, encoded as the platform encodes it."""
        return self.webhook.encode(self.payload(text))

    def sign(
        self,
        body: bytes,
        *,
        secret: str | None = None,
        app_key: str | None = None,
        url: str = SHOPEE_URL,
        timestamp: str | None = None,
    ) -> str:
        """The header's value nfdoctor's declaration gives, under the assumptions given."""
        keys = WebhookKeys(
            secret=secret or self.secret,
            secret_path="(test)",
            app_key=app_key if app_key is not None else self.app_key,
        )
        signed_ts = timestamp if timestamp is not None else self.scheme.timestamp_of(body)
        return self.scheme.header_value(
            keys, DeliveryInputs(url=url, body=body, timestamp=signed_ts)
        )

    def shaped(self, value: str, prefix: str) -> str:
        """``value`` with its own prefix replaced by ``prefix``."""
        return prefix + value.removeprefix(self.scheme.prefix)


PLATFORMS = {
    "shopee": Platform("shopee", shopee.WEBHOOK, SECRETS["shopee_partner_key"], None, "123"),
    "lazada": Platform("lazada", lazada.WEBHOOK, SECRETS["lazada_app_secret"], "123456", "1234567"),
    "tiktok": Platform(
        "tiktok",
        tiktok.WEBHOOK,
        SECRETS["tiktok_app_secret"],
        "fake_app_key",
        "7494726673780148744",
    ),
    "facebook": Platform("facebook", facebook.WEBHOOK, SECRETS["facebook_app_secret"], None, "111"),
    "zalo": Platform("zalo", zalo.WEBHOOK, SECRETS["zalo_oa_secret"], ZALO_APP_ID, ZALO_OA),
}
ALL = sorted(PLATFORMS)


def simulator_value(name: str, keys: WebhookKeys, delivery: DeliveryInputs) -> str:
    """The header's value as the simulator's verifier, written separately, computes it."""
    if name == "shopee":
        return sim.shopee_push_signature(keys.secret, delivery.url, delivery.body)
    if name == "lazada":
        return sim.lazada_push_signature(keys.app_key or "", keys.secret, delivery.body)
    if name == "tiktok":
        return sim.tiktok_push_signature(keys.app_key or "", keys.secret, delivery.body)
    if name == "facebook":
        return sim.facebook_webhook_sha256(keys.secret, delivery.body)
    assert name == "zalo"
    mac = sim.zalo_webhook_mac(
        keys.app_key or "", delivery.body, delivery.timestamp or "", keys.secret
    )
    return "mac=" + mac


# --- nfdoctor's signing: the §7 vectors and the simulator's second opinion -------------------

V4_BODY = (
    b'{"object":"page","entry":[{"id":"111","time":1700000000000,"messaging":[{"sender":'
    b'{"id":"222"},"recipient":{"id":"111"},"timestamp":1700000000000,"message":{"mid":"m_1",'
    b'"text":"xin ch\\u00e0o"}}]}]}'
)
V5_BODY = (
    b'{"app_id":"1234567890","sender":{"id":"246845883529197922"},"recipient":{"id":'
    b'"388613280878808645"},"event_name":"user_send_text","message":{"text":"hello","msg_id":'
    b'"96d3cdf3af150460909"},"timestamp":"1700000000000"}'
)
V10_BODY = (
    b'{"shop_id": 123, "code": 1, "success": 1, "extra": "shop_id 123 is authorized '
    b'successfully", "data": {"more_info": "more info"}, "timestamp": 1470198856}'
)
V11_BODY = (
    b'{"seller_id":"1234567","message_type":0,"data":{"order_status":"unpaid",'
    b'"status_update_time":1603698638,"trade_order_id":"260422900198363",'
    b'"trade_order_line_id":"260422900298363"},"timestamp":1603766859530,"site":"lazada_vn"}'
)
V12_BODY = (
    b'{"type":1,"shop_id":"7494726673780148744","timestamp":1664095733,"data":{"order_id":'
    b'"576684019603311365","order_status":"AWAITING_SHIPMENT","update_time":1664095610}}'
)
V10_URL = "https://www.example.com/example/uri"

#: (id, platform, body, keys, url, expected header value) from platforms.md §7
VECTORS = [
    (
        "V4-sha256",
        "facebook",
        V4_BODY,
        WebhookKeys(secret="appsecret123", secret_path="v"),
        "",
        "sha256=7493948a194e10e6b72c223e8e76d666b4e3485181e047cdef5abe37ec7fc8c0",
    ),
    (
        "V5",
        "zalo",
        V5_BODY,
        WebhookKeys(secret="oa-secret-key", secret_path="v", app_key="1234567890"),
        "",
        "mac=62dd050ba7dd543c945495aaa3739d387346531daeee70d8c193bd18aa7cba5e",
    ),
    (
        "V10",
        "shopee",
        V10_BODY,
        WebhookKeys(secret="test_partner_key", secret_path="v"),
        V10_URL,
        "a08ebd427adc083727aa24fad074cf8f9cd10efcce2e063cd2f53db3d01e749a",
    ),
    (
        "V11",
        "lazada",
        V11_BODY,
        WebhookKeys(secret="3412gyo124goi3124", secret_path="v", app_key="123456"),
        "",
        "64ffc8b10a9921ded17f88bb861dd1c2d879514c51c6731946becba319ec6b63",
    ),
    (
        "V12",
        "tiktok",
        V12_BODY,
        WebhookKeys(secret="fake_app_secret", secret_path="v", app_key="fake_app_key"),
        "",
        "21109834de72ec53c9959716d8514ae388ce1f123e5ffdcafc46713fcdf62b27",
    ),
]
V4_SHA1 = "sha1=593a70442fb46ad4367c1b75ef8561a8833472ed"


@pytest.mark.parametrize(
    ("platform", "body", "keys", "url", "expected"),
    [v[1:] for v in VECTORS],
    ids=[v[0] for v in VECTORS],
)
def test_section_7_vectors_reproduce(
    platform: str, body: bytes, keys: WebhookKeys, url: str, expected: str
) -> None:
    scheme = PLATFORMS[platform].scheme
    delivery = DeliveryInputs(url=url, body=body, timestamp=scheme.timestamp_of(body))
    assert scheme.header_value(keys, delivery) == expected
    assert simulator_value(platform, keys, delivery) == expected


def test_v4_legacy_sha1_reproduces() -> None:
    legacy = legacy_scheme(facebook.WEBHOOK.signature)
    assert legacy is not None and legacy.header == "X-Hub-Signature"
    keys = WebhookKeys(secret="appsecret123", secret_path="v")
    assert legacy.header_value(keys, DeliveryInputs(url="", body=V4_BODY)) == V4_SHA1
    assert sim.facebook_webhook_sha1("appsecret123", V4_BODY) == V4_SHA1


def test_v4_decoded_text_signs_differently() -> None:
    # §7 V4: hashing the decoded text (à as UTF-8) gives another digest: the §5.8 bug.
    decoded = V4_BODY.replace(b"\\u00e0", "à".encode())
    keys = WebhookKeys(secret="appsecret123", secret_path="v")
    value = facebook.WEBHOOK.signature.header_value(keys, DeliveryInputs(url="", body=decoded))
    assert value != VECTORS[0][-1]


def _random_text(rng: random.Random) -> str:
    alphabet = (
        "abcxyz ABC 0123 \"'\\/<>&%@\n\t\u0000"
        "àáảãạăắằẳẵặâấầẩẫậđèéẻẽẹêếềểễệìíỉĩịòóỏõọôốồổỗộơớờởỡợùúủũụưứừửữựỳýỷỹỵ"
        "ÀÁĐÊƠƯ😀🛍️中文"
    )
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randint(0, 6 if depth < 3 else 3)
    if kind == 0:
        return _random_text(rng)
    if kind == 1:
        return rng.randint(-(2**63), 2**63)
    if kind == 2:
        return rng.choice([True, False, None, 1.5, 0])
    if kind == 3:
        return str(rng.randint(10**17, 10**19))  # ids above 2**53, as strings
    if kind in (4, 5):
        return {_random_text(rng): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def test_signing_agrees_with_the_simulator_on_200_random_deliveries() -> None:
    # hypothesis is not a dev dependency: a seeded loop, the same cases on every run.
    rng = random.Random(20261126)
    for case in range(200):
        secret = _random_text(rng) or "k"
        app_key = _random_text(rng)
        url = f"https://crm.example.vn/{_random_text(rng).replace(' ', '')}?n={case}"
        timestamp = str(rng.randint(0, 2**45))
        payload = {"text": _random_text(rng), "data": _random_json(rng), "n": case}
        for name, platform in PLATFORMS.items():
            body = (
                platform.webhook.encode(payload) if case % 3 else rng.randbytes(rng.randint(1, 80))
            )
            keys = WebhookKeys(secret=secret, secret_path="v", app_key=app_key)
            delivery = DeliveryInputs(url=url, body=body, timestamp=timestamp)
            ours = platform.scheme.header_value(keys, delivery)
            assert ours == simulator_value(name, keys, delivery), (case, name)
        legacy = legacy_scheme(facebook.WEBHOOK.signature)
        assert legacy is not None
        body = ascii_json(payload)
        keys = WebhookKeys(secret=secret, secret_path="v")
        assert legacy.header_value(keys, DeliveryInputs(url="", body=body)) == (
            sim.facebook_webhook_sha1(secret, body)
        ), case


def test_facebook_bodies_are_ascii_and_the_others_utf8() -> None:
    # What the "escaped" cause rests on: Meta sends \uXXXX, the others UTF-8 (§5.8).
    payload = {"text": VIETNAMESE}
    assert facebook.WEBHOOK.encode(payload) == ascii_json(payload)
    assert b"\\u00e0" in facebook.WEBHOOK.encode(payload)
    for name in ("shopee", "lazada", "tiktok", "zalo"):
        assert PLATFORMS[name].webhook.encode(payload) == utf8_json(payload)


# --- the CLI: deliveries that verify -------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_a_vietnamese_delivery_verifies(setup: Setup, name: str) -> None:
    platform = PLATFORMS[name]
    body = platform.body()
    assert VIETNAMESE in json.dumps(json.loads(body), ensure_ascii=False)
    value = platform.sign(body)
    keys = WebhookKeys(secret=platform.secret, secret_path="v", app_key=platform.app_key)
    delivery = DeliveryInputs(
        url=SHOPEE_URL, body=body, timestamp=platform.scheme.timestamp_of(body)
    )
    assert value == simulator_value(name, keys, delivery)
    result, found = setup.verify(name, body, value)
    assert (result.code, found["status"]) == (0, "OK"), found
    assert found["summary"] == f"signature verifies ({platform.scheme.describe})"
    assert found["subject"].startswith(f"{name} {platform.account}")
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("vector", "platform", "body", "url", "expected"),
    [(v[0], v[1], v[2], v[4], v[5]) for v in VECTORS],
    ids=[v[0] for v in VECTORS],
)
def test_section_7_vectors_verify_through_the_config(
    setup: Setup, vector: str, platform: str, body: bytes, url: str, expected: str
) -> None:
    config = setup.config(shopee_url=V10_URL)
    result, found = setup.verify(platform, body, expected, config=config)
    assert (result.code, found["status"]) == (0, "OK"), found


def test_the_legacy_sha1_header_verifies(setup: Setup) -> None:
    result, found = setup.verify("facebook", V4_BODY, V4_SHA1)
    assert (result.code, found["status"]) == (0, "OK"), found
    assert "sha1=HMAC-SHA1" in found["summary"] and "legacy" in found["summary"]
    assert any("X-Hub-Signature-256" in line for line in found["details"])


def test_body_from_standard_input(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    body = PLATFORMS["lazada"].body()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body)))
    result = setup.run(
        "lazada", "--body", "-", "--signature", PLATFORMS["lazada"].sign(body), "-o", "json"
    )
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["status"] == "OK"


def test_a_platform_that_signs_no_url_needs_none(setup: Setup) -> None:
    # Lazada has no webhook_url in the config, and --url is not part of its signature.
    body = PLATFORMS["lazada"].body()
    result, found = setup.verify(
        "lazada", body, PLATFORMS["lazada"].sign(body), "--url", "https://elsewhere.example/x"
    )
    assert result.code == 0, found
    assert "--url: Lazada does not sign the URL; ignored" in found["details"]


def test_shopee_signs_the_url_as_written_in_the_config(setup: Setup) -> None:
    # The typed config turns https://crm.example.vn into https://crm.example.vn/; Shopee
    # signs the text as set in its console, which the config repeats.
    config = setup.config(shopee_url="https://crm.example.vn")
    body = PLATFORMS["shopee"].body()
    value = PLATFORMS["shopee"].sign(body, url="https://crm.example.vn")
    result, found = setup.verify("shopee", body, value, config=config)
    assert result.code == 0, found


def test_config_warnings_go_to_stderr(setup: Setup) -> None:
    config = setup.config()
    inline = config.read_text().replace(
        "app_secret: file:secrets/lazada_app_secret", f"app_secret: {SECRETS['lazada_app_secret']}"
    )
    config.write_text(inline)
    body = PLATFORMS["lazada"].body()
    result, found = setup.verify("lazada", body, PLATFORMS["lazada"].sign(body), config=config)
    assert (result.code, found["status"]) == (0, "OK")
    assert "nfdoctor: warning:" in result.stderr and "platforms.lazada.app_secret" in result.stderr


def test_plain_output_of_a_verified_delivery(setup: Setup) -> None:
    body = PLATFORMS["tiktok"].body()
    path = setup.body_file(body)
    result = setup.run(
        "tiktok", "--body", str(path), "--signature", PLATFORMS["tiktok"].sign(body), "-o", "plain"
    )
    assert result.code == 0
    assert (
        "OK        webhook.verify · tiktok 7494726673780148744  signature verifies" in result.stdout
    )


def test_the_command_is_documented(cli: Callable[..., CliResult]) -> None:
    result = cli("webhook", "verify", "--help")
    assert result.code == 0
    assert "Example: nfdoctor webhook verify" in result.stdout
    assert "--signature" in result.stdout and "--body" in result.stdout


# --- the CLI: each mistake, named -----------------------------------------------------------


def assert_cause(result: CliResult, found: dict[str, Any], *words: str) -> None:
    """CRITICAL, exit 2, and the summary names the cause in these words."""
    assert (result.code, found["status"]) == (2, "CRITICAL"), found
    assert found["summary"].startswith("signature does not verify: "), found["summary"]
    for word in words:
        assert word in found["summary"], (word, found["summary"])
    assert "no likely cause" not in found["summary"]


@pytest.mark.parametrize("name", ALL)
def test_re_serialised_json_is_named(setup: Setup, name: str) -> None:
    platform = PLATFORMS[name]
    body = platform.body()
    captured = json.dumps(platform.payload(), indent=2, ensure_ascii=False).encode()
    result, found = setup.verify(name, captured, platform.sign(body))
    escapes = "non-ASCII as \\uXXXX" if name == "facebook" else "non-ASCII as UTF-8"
    assert_cause(result, found, "JSON re-serialised", "without spaces", escapes, "file's order")
    assert found["hint"]["en"].startswith("Verify the raw request body")


@pytest.mark.parametrize(
    ("separators", "ensure_ascii", "sort_keys", "words"),
    [
        (
            (", ", ": "),
            True,
            False,
            "with a space after ',' and ':', non-ASCII as \\uXXXX, keys in",
        ),
        ((",", ":"), False, True, "without spaces, non-ASCII as UTF-8, keys sorted"),
        (
            (", ", ": "),
            False,
            True,
            "with a space after ',' and ':', non-ASCII as UTF-8, keys sorted",
        ),
    ],
)
def test_each_re_serialisation_is_told_apart(
    setup: Setup,
    separators: tuple[str, str],
    ensure_ascii: bool,
    sort_keys: bool,
    words: str,
) -> None:
    platform = PLATFORMS["tiktok"]
    payload = platform.payload()
    signed = json.dumps(
        payload, separators=separators, ensure_ascii=ensure_ascii, sort_keys=sort_keys
    ).encode()
    captured = json.dumps(payload, indent=1, ensure_ascii=False).encode()
    result, found = setup.verify("tiktok", captured, platform.sign(signed))
    assert_cause(result, found, words)


def test_php_escaped_slashes_are_named(setup: Setup) -> None:
    platform = PLATFORMS["lazada"]
    payload = {"text": VIETNAMESE, "url": "https://shopee.vn/a/b"}
    signed = json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()
    result, found = setup.verify("lazada", utf8_json(payload), platform.sign(signed))
    assert_cause(result, found, "'/' as '\\/'")


def test_facebook_body_saved_after_decoding_is_named(setup: Setup) -> None:
    platform = PLATFORMS["facebook"]
    body = platform.body()
    decoded = utf8_json(platform.payload())  # the same text, with à instead of \u00e0
    assert decoded != body and b"\\u00e0" in body
    result, found = setup.verify("facebook", decoded, platform.sign(body))
    assert_cause(result, found, "escaped as \\uXXXX", "holds them decoded")
    # The same mistake is named for the legacy header too.
    legacy = legacy_scheme(platform.scheme)
    assert legacy is not None
    sha1 = legacy.header_value(
        WebhookKeys(secret=platform.secret, secret_path="v"), DeliveryInputs(url="", body=body)
    )
    result, found = setup.verify("facebook", decoded, sha1)
    assert_cause(result, found, "escaped as \\uXXXX")


@pytest.mark.parametrize("name", ["shopee", "lazada", "tiktok", "zalo"])
def test_body_saved_with_escapes_is_named(setup: Setup, name: str) -> None:
    platform = PLATFORMS[name]
    body = platform.body()
    escaped = ascii_json(platform.payload())
    result, found = setup.verify(name, escaped, platform.sign(body))
    assert_cause(result, found, "escapes as UTF-8", "holds them escaped")


@pytest.mark.parametrize("name", ALL)
def test_trailing_newline_added_by_the_capture_is_named(setup: Setup, name: str) -> None:
    platform = PLATFORMS[name]
    body = platform.body()
    result, found = setup.verify(name, body + b"\n", platform.sign(body))
    assert_cause(result, found, "ends with a newline the delivery did not have")


@pytest.mark.parametrize("name", ["lazada", "zalo"])
def test_trailing_newline_removed_by_the_capture_is_named(setup: Setup, name: str) -> None:
    platform = PLATFORMS[name]
    body = platform.body()
    result, found = setup.verify(name, body, platform.sign(body + b"\n"))
    assert_cause(result, found, "ended with a newline the file lacks")


def test_byte_order_mark_is_named(setup: Setup) -> None:
    platform = PLATFORMS["shopee"]
    body = platform.body()
    result, found = setup.verify("shopee", b"\xef\xbb\xbf" + body, platform.sign(body))
    assert_cause(result, found, "byte-order mark")


@pytest.mark.parametrize(
    ("name", "other"),
    [
        ("lazada", "tiktok_app_secret"),
        ("tiktok", "lazada_app_secret"),
        ("shopee", "facebook_app_secret"),
        ("facebook", "facebook_verify_token"),
        ("zalo", "crm_api_key"),
    ],
)
def test_another_configured_secret_is_named_by_its_key(setup: Setup, name: str, other: str) -> None:
    platform = PLATFORMS[name]
    body = platform.body()
    result, found = setup.verify(name, body, platform.sign(body, secret=SECRETS[other]))
    path = {
        "tiktok_app_secret": "platforms.tiktok.app_secret",
        "lazada_app_secret": "platforms.lazada.app_secret",
        "facebook_app_secret": "platforms.facebook.app_secret",
        "facebook_verify_token": "platforms.facebook.verify_token",
        "crm_api_key": "crm.api_key",
    }[other]
    assert_cause(result, found, f"matches the secret at {path}, not ")
    assert found["hint"]["en"].startswith("The delivery is signed with another secret")


def test_zalo_app_secret_instead_of_the_oa_secret_names_the_setting(setup: Setup) -> None:
    platform = PLATFORMS["zalo"]
    body = platform.body()
    value = platform.sign(body, secret=SECRETS["zalo_secret_key"])
    result, found = setup.verify("zalo", body, value)
    assert_cause(
        result,
        found,
        "platforms.zalo.webhook_secret: secret_key",
        "signed with platforms.zalo.secret_key, not platforms.zalo.oas[0].oa_secret",
    )


def test_zalo_oa_secret_when_the_app_secret_is_configured_names_the_setting(
    setup: Setup,
) -> None:
    config = setup.config(zalo="webhook_secret: secret_key")
    platform = PLATFORMS["zalo"]
    body = platform.body()
    result, found = setup.verify("zalo", body, platform.sign(body), config=config)
    assert_cause(
        result,
        found,
        "platforms.zalo.webhook_secret: oa_secret",
        "signed with platforms.zalo.oas[0].oa_secret, not platforms.zalo.secret_key",
    )


def test_another_oas_secret_names_the_oa(setup: Setup) -> None:
    platform = PLATFORMS["zalo"]
    body = platform.body()
    value = platform.sign(body, secret=SECRETS["zalo_oa2_secret"])
    result, found = setup.verify("zalo", body, value)
    assert_cause(result, found, "platforms.zalo.oas[1].oa_secret", f"--shop {ZALO_OA2}")
    # and with --shop, it verifies
    result, found = setup.verify("zalo", body, value, "--shop", ZALO_OA2)
    assert result.code == 0, found


@pytest.mark.parametrize(
    ("configured", "signed", "what"),
    [
        (SHOPEE_URL, SHOPEE_URL + "/", "with a trailing slash"),
        (SHOPEE_URL + "/", SHOPEE_URL, "without the trailing slash"),
        (SHOPEE_URL, SHOPEE_URL.replace("https://", "http://"), "http://"),
        (SHOPEE_URL + "?src=shopee", SHOPEE_URL, "without the query string"),
    ],
    ids=["slash-added", "slash-removed", "http", "query-removed"],
)
def test_shopee_url_variants_are_named(
    setup: Setup, configured: str, signed: str, what: str
) -> None:
    config = setup.config(shopee_url=configured)
    platform = PLATFORMS["shopee"]
    body = platform.body()
    result, found = setup.verify("shopee", body, platform.sign(body, url=signed), config=config)
    assert_cause(
        result,
        found,
        f"Shopee signs the callback URL exactly as configured at Shopee: {signed} (",
        what,
        f"platforms.shopee.webhook_url is {configured}",
    )
    assert found["hint"]["en"].startswith("The platform signs the callback URL")


def test_shopee_configured_url_against_url_option_is_named(setup: Setup) -> None:
    platform = PLATFORMS["shopee"]
    body = platform.body()
    other = "https://crm2.example.vn/hooks/shopee"
    result, found = setup.verify("shopee", body, platform.sign(body), "--url", other)
    assert_cause(
        result,
        found,
        f"exactly as configured at Shopee: {SHOPEE_URL} (the configured "
        "platforms.shopee.webhook_url)",
        f"--url is {other}",
    )


def test_shopee_query_string_added_is_named(setup: Setup) -> None:
    config = setup.config(shopee_url=SHOPEE_URL + "?src=shopee")
    platform = PLATFORMS["shopee"]
    body = platform.body()
    signed = SHOPEE_URL + "?src=shopee"
    result, found = setup.verify(
        "shopee", body, platform.sign(body, url=signed), "--url", SHOPEE_URL, config=config
    )
    assert_cause(result, found, f"exactly as configured at Shopee: {signed} (")


@pytest.mark.parametrize(
    ("name", "prefix", "words"),
    [
        ("facebook", "", "lacks the 'sha256=' prefix Facebook sends in X-Hub-Signature-256"),
        ("facebook", "sha256=sha256=", "the prefix 'sha256=' appears 2 times"),
        ("zalo", "", "lacks the 'mac=' prefix Zalo OA sends in X-ZEvent-Signature"),
        ("zalo", "mac=mac=", "the prefix 'mac=' appears 2 times"),
        ("shopee", "Bearer ", "carries 'Bearer ', which Shopee does not send in Authorization"),
        ("lazada", "Bearer ", "carries 'Bearer ', which Lazada does not send"),
        ("tiktok", "Bearer ", "carries 'Bearer ', which TikTok Shop does not send"),
        ("lazada", "sha256=", "carries 'sha256=', which Lazada does not send"),
        ("tiktok", "sha256=", "carries 'sha256=', which TikTok Shop does not send"),
        ("facebook", "Bearer sha256=", "carries 'Bearer ', which Facebook does not send"),
    ],
)
def test_a_wrong_prefix_is_named(setup: Setup, name: str, prefix: str, words: str) -> None:
    platform = PLATFORMS[name]
    body = platform.body()
    result, found = setup.verify(name, body, platform.shaped(platform.sign(body), prefix))
    assert_cause(result, found, words)
    assert found["hint"]["en"].startswith("Compare the whole header value")


@pytest.mark.parametrize("name", ALL)
def test_upper_case_hex_is_named(setup: Setup, name: str) -> None:
    platform = PLATFORMS[name]
    body = platform.body()
    value = platform.sign(body)
    upper = platform.scheme.prefix + value.removeprefix(platform.scheme.prefix).upper()
    result, found = setup.verify(name, body, upper)
    assert_cause(result, found, "the hex digest is in upper case", "sends lower-case hex")


def test_zalo_oa_id_as_the_first_term_names_the_setting(setup: Setup) -> None:
    platform = PLATFORMS["zalo"]
    body = platform.body()
    result, found = setup.verify("zalo", body, platform.sign(body, app_key=ZALO_OA))
    assert_cause(
        result,
        found,
        "platforms.zalo.webhook_mac_id: oa_id",
        f"the first term is '{ZALO_OA}', not '{ZALO_APP_ID}'",
    )
    assert "Sources disagree" in found["hint"]["en"]


def test_zalo_both_settings_wrong_are_named_together(setup: Setup) -> None:
    platform = PLATFORMS["zalo"]
    body = platform.body()
    value = platform.sign(body, app_key=ZALO_OA, secret=SECRETS["zalo_secret_key"])
    result, found = setup.verify("zalo", body, value)
    assert_cause(
        result,
        found,
        "platforms.zalo.webhook_mac_id: oa_id, platforms.zalo.webhook_secret: secret_key",
    )


def test_zalo_timestamp_option_against_the_body_field_is_named(setup: Setup) -> None:
    platform = PLATFORMS["zalo"]
    body = platform.body()
    field_ts = platform.scheme.timestamp_of(body)
    assert field_ts is not None
    result, found = setup.verify("zalo", body, platform.sign(body), "--timestamp", "1700000000123")
    assert_cause(result, found, f"the body's timestamp field ({field_ts})", "leave --timestamp out")
    assert found["hint"]["en"].startswith("The signed timestamp comes from somewhere else")


def test_zalo_timestamp_from_elsewhere_verifies_with_the_option(setup: Setup) -> None:
    # "vice versa": the mac is over a header's timestamp, not the body's field; --timestamp
    # gives it, and the details say the body's field differs.
    platform = PLATFORMS["zalo"]
    body = platform.body()
    value = platform.sign(body, timestamp="1700000000123")
    result, found = setup.verify("zalo", body, value)
    assert "no likely cause was found" in found["summary"]
    assert (
        "not tried: a timestamp from the delivery's headers: if it carried one, give it with "
        "--timestamp" in found["details"]
    )
    result, found = setup.verify("zalo", body, value, "--timestamp", "1700000000123")
    assert result.code == 0, found
    assert any(
        line.startswith(
            "timestamp signed: 1700000000123 (--timestamp); the body's timestamp field is"
        )
        for line in found["details"]
    ), found["details"]


@pytest.mark.parametrize(
    ("transform", "words"),
    [
        (lambda ts: "", "without any timestamp"),
        (lambda ts: ts[:-3], "in seconds"),
    ],
    ids=["none", "seconds"],
)
def test_zalo_other_timestamps_are_named(
    setup: Setup, transform: Callable[[str], str], words: str
) -> None:
    platform = PLATFORMS["zalo"]
    body = platform.body()
    field_ts = platform.scheme.timestamp_of(body)
    assert field_ts is not None
    signed_ts = transform(field_ts)
    value = platform.sign(body, timestamp=signed_ts)
    assert value == "mac=" + sim.zalo_webhook_mac(ZALO_APP_ID, body, signed_ts, platform.secret)
    result, found = setup.verify("zalo", body, value)
    assert_cause(result, found, words)


@pytest.mark.parametrize("name", ALL)
def test_no_likely_cause_lists_what_was_tried(setup: Setup, name: str) -> None:
    platform = PLATFORMS[name]
    body = platform.body()
    value = platform.sign(body + b" (another delivery)")
    result, found = setup.verify(name, body, value)
    assert (result.code, found["status"]) == (2, "CRITICAL")
    assert "no likely cause was found" in found["summary"]
    tried = "\n".join(found["details"])
    assert "tried the body as sent, before the capture changed it:" in tried
    assert "JSON without spaces" in tried
    assert "tried the other configured secrets:" in tried and "crm.api_key" in tried
    if name == "shopee":
        (urls,) = [x for x in found["details"] if x.startswith("tried other forms of the signed")]
        assert f"; {SHOPEE_URL}/;" in urls and SHOPEE_URL.replace("https", "http") in urls
    if name == "zalo":
        assert "platforms.zalo.webhook_mac_id: oa_id" in tried
        assert "tried other signed timestamps:" in tried
    assert found["hint"]["en"].startswith("Make sure the body file and the signature")


def test_expected_and_given_are_shown_shortened(setup: Setup) -> None:
    platform = PLATFORMS["facebook"]
    body = platform.body()
    value = platform.sign(body)
    _, found = setup.verify("facebook", body + b"\n", value)
    shown = [line for line in found["details"] if line.startswith(("expected:", "given:"))]
    digest = value.removeprefix("sha256=")
    assert f"given: sha256={digest[:8]}…{digest[-4:]} (64 hex digits)" in shown
    # never the whole signature: a computed one could be replayed
    assert not any(digest in line for line in found["details"])


# --- bad input: exit 3, one line, nothing on stdout ----------------------------------------


def assert_usage(result: CliResult, *words: str) -> None:
    assert result.code == 3, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nfdoctor: usage: "), lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in result.stderr


GOOD = PLATFORMS["lazada"].sign(PLATFORMS["lazada"].body())


def test_missing_body_file(setup: Setup) -> None:
    result = setup.run("lazada", "--body", "nope.json", "--signature", GOOD)
    assert_usage(result, "--body: nope.json: no such file")
    assert not (setup.root / "xdg-state").exists()


def test_body_is_a_directory(setup: Setup) -> None:
    result = setup.run("lazada", "--body", str(setup.root / "captures"), "--signature", GOOD)
    assert_usage(result, f"--body: {setup.root / 'captures'}: is a directory")


def test_empty_body_file(setup: Setup) -> None:
    path = setup.body_file(b"")
    result = setup.run("lazada", "--body", str(path), "--signature", GOOD)
    assert_usage(result, f"--body: {path} is empty")


def test_empty_standard_input(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    result = setup.run("lazada", "--body", "-", "--signature", GOOD)
    assert_usage(result, "--body -: standard input is empty")


def test_body_path_through_a_file(setup: Setup) -> None:
    path = setup.body_file(b"{}") / "delivery.json"
    result = setup.run("lazada", "--body", str(path), "--signature", GOOD)
    assert_usage(result, f"--body: {path}: cannot read it (Not a directory)")


def test_unreadable_body_file(setup: Setup) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = setup.body_file(b"{}")
    path.chmod(0)
    result = setup.run("lazada", "--body", str(path), "--signature", GOOD)
    assert_usage(result, f"--body: {path}: permission denied")


@pytest.mark.parametrize(
    ("platform", "signature", "words"),
    [
        ("lazada", "xyz", "--signature: not hex ('x' at position 1); expected 64 hex digits"),
        (
            "lazada",
            GOOD[:-1],
            "--signature: 63 hex digits; expected 64 hex digits (the "
            "Authorization header's value) for Lazada",
        ),
        ("facebook", "sha256=" + GOOD[:40], "40 hex digits; expected sha256= followed by 64"),
        ("facebook", "sha1=" + GOOD, "64 hex digits; expected sha1= followed by 40 hex digits"),
        ("zalo", "mac=", "--signature: no hex digits after 'mac='; expected mac= followed by 64"),
        ("zalo", "mac=" + GOOD[:-1] + "g", "not hex ('g' at position 68)"),
        ("shopee", "", "--signature: no hex digits; expected 64 hex digits"),
    ],
    ids=["not-hex", "short", "fb-short", "sha1-long", "prefix-only", "zalo-not-hex", "empty"],
)
def test_signature_in_the_wrong_format(
    setup: Setup, platform: str, signature: str, words: str
) -> None:
    path = setup.body_file(PLATFORMS[platform].body())
    result = setup.run(platform, "--body", str(path), "--signature", signature)
    assert_usage(result, words)


def test_unknown_platform(setup: Setup) -> None:
    path = setup.body_file(b"{}")
    result = setup.run("shoppe", "--body", str(path), "--signature", GOOD)
    assert_usage(result, "unknown platform 'shoppe' (did you mean 'shopee'?)")


def test_platform_not_configured(setup: Setup) -> None:
    config = setup.config(tiktok=False, name="no-tiktok.yaml")
    body = PLATFORMS["tiktok"].body()
    path = setup.body_file(body)
    result = setup.run(
        "tiktok", "--body", str(path), "--signature", PLATFORMS["tiktok"].sign(body), config=config
    )
    assert_usage(result, "tiktok is not configured")


def test_zalo_oa_without_its_oa_secret(setup: Setup) -> None:
    config = setup.config(oa_secret=False, name="no-oa-secret.yaml")
    body = PLATFORMS["zalo"].body()
    path = setup.body_file(body)
    result = setup.run(
        "zalo", "--body", str(path), "--signature", PLATFORMS["zalo"].sign(body), config=config
    )
    assert_usage(result, "platforms.zalo.oas[0].oa_secret: not configured")


def test_zalo_body_without_a_timestamp(setup: Setup) -> None:
    body = b'{"app_id":"1234567890","event_name":"user_send_text"}'
    path = setup.body_file(body)
    value = PLATFORMS["zalo"].sign(body, timestamp="1")
    result = setup.run("zalo", "--body", str(path), "--signature", value)
    assert_usage(result, f"--body: {path}: no timestamp field", "give it with --timestamp")


def test_timestamp_that_is_not_digits(setup: Setup) -> None:
    path = setup.body_file(PLATFORMS["zalo"].body())
    value = PLATFORMS["zalo"].sign(PLATFORMS["zalo"].body())
    result = setup.run("zalo", "--body", str(path), "--signature", value, "--timestamp", "now")
    assert_usage(result, "--timestamp: expected the delivery's timestamp as digits")


def test_unknown_shop(setup: Setup) -> None:
    path = setup.body_file(PLATFORMS["lazada"].body())
    result = setup.run("lazada", "--body", str(path), "--signature", GOOD, "--shop", "999")
    assert_usage(result, "--shop: no shop, page or OA '999' in lazada")


def test_missing_signature_option(setup: Setup) -> None:
    path = setup.body_file(PLATFORMS["lazada"].body())
    result = setup.run("lazada", "--body", str(path))
    assert_usage(result, "--signature")


# --- secrets never in any output ------------------------------------------------------------

FORMATS = ("table", "plain", "json", "junit", "nagios", "prometheus")


def _scenarios(setup: Setup) -> list[tuple[str, ...]]:
    """(platform, body file, signature, extra…) runs covering every kind of outcome."""
    runs = []
    for name, platform in PLATFORMS.items():
        body = platform.body()
        ok = setup.body_file(body, f"{name}.json")
        runs.append((name, str(ok), platform.sign(body)))  # OK
        runs.append((name, str(ok), platform.sign(body + b"x")))  # no cause found
        newline = setup.body_file(body + b"\n", f"{name}-newline.json")
        runs.append((name, str(newline), platform.sign(body)))  # the body
    zalo_body = PLATFORMS["zalo"].body()
    zalo_path = str(setup.body_file(zalo_body, "zalo.json"))
    runs.append(
        ("zalo", zalo_path, PLATFORMS["zalo"].sign(zalo_body, secret=SECRETS["zalo_secret_key"]))
    )
    runs.append(("zalo", zalo_path, PLATFORMS["zalo"].sign(zalo_body, app_key=ZALO_OA)))
    lazada_body = PLATFORMS["lazada"].body()
    lazada_path = str(setup.body_file(lazada_body, "lazada.json"))
    runs.append(
        (
            "lazada",
            lazada_path,
            PLATFORMS["lazada"].sign(lazada_body, secret=SECRETS["crm_api_key"]),
        )
    )
    shopee_body = PLATFORMS["shopee"].body()
    shopee_path = str(setup.body_file(shopee_body, "shopee.json"))
    runs.append(
        ("shopee", shopee_path, PLATFORMS["shopee"].sign(shopee_body, url=SHOPEE_URL + "/"))
    )
    runs.append(("facebook", str(setup.body_file(V4_BODY, "v4.json")), V4_SHA1))
    runs.append(("lazada", "missing.json", GOOD))  # bad input
    runs.append(("lazada", lazada_path, "not-a-signature"))  # bad input
    return runs


def test_no_secret_in_any_output_with_or_without_debug(setup: Setup) -> None:
    # Each run costs ~40 ms (most of it Typer building the command tree), so every scenario
    # runs in one format (taking turns) with and without --debug, and one scenario whose
    # cause names a secret's key runs in every format; the report's own text is checked in
    # every format below, and the fixture greps every output of every test in this file.
    runs = _scenarios(setup)
    codes = set()
    for index, (platform, body, signature, *extra) in enumerate(runs):
        for debug in ((), ("--debug",)):
            fmt = FORMATS[index % len(FORMATS)]
            args = (platform, "--body", body, "--signature", signature, *extra, *debug)
            codes.add(setup.run(*args, "-o", fmt).code)
    lazada = PLATFORMS["lazada"]
    platform, body, signature = (
        "lazada",
        str(setup.root / "captures" / "lazada.json"),
        lazada.sign(lazada.body(), secret=SECRETS["crm_api_key"]),
    )
    assert (platform, body, signature) in runs
    for fmt in FORMATS:
        for debug in ((), ("--debug",)):
            args = (platform, "--body", body, "--signature", signature, *debug)
            assert setup.run(*args, "-o", fmt).code == 2
    assert codes == {0, 2, 3}  # every kind of outcome was produced
    assert len(setup.outputs) >= 2 * (2 * len(runs) + 2 * len(FORMATS))


def test_the_service_puts_no_secret_in_the_report(setup: Setup) -> None:
    # Below the CLI's redaction: the report's own text, rendered in every format, holds no
    # secret (the redactor is a second line of defence, not the first).
    from nfdoctor.choices import OutputFormat
    from nfdoctor.render import render

    config = setup.config()
    texts = []
    for platform, body, signature, *_ in _scenarios(setup):
        if body == "missing.json" or signature == "not-a-signature":
            continue
        env = Environment(cwd=setup.root)
        report = verify_delivery(
            env,
            VerifyRequest(platform=platform, body=body, signature=signature, config_path=config),
        )
        for fmt in OutputFormat:
            texts.append(render(report, fmt, lang="en"))
            texts.append(render(report, fmt, lang="vi"))
    assert len(texts) > 40
    for text in texts:
        for value in SECRETS.values():
            assert value not in text, value
