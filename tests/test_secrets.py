"""Secret references, resolution, the keyring without a backend, and redaction."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from nfdoctor.errors import KeyringUnavailableError, SecretError
from nfdoctor.secrets.redaction import RedactingFilter, Redactor
from nfdoctor.secrets.reference import SecretRef
from nfdoctor.secrets.resolver import SecretResolver


@pytest.mark.parametrize(
    ("text", "kind", "target"),
    [
        ("env:SHOPEE_KEY", "env", "SHOPEE_KEY"),
        ("file:/etc/nfdoctor/k", "file", "/etc/nfdoctor/k"),
        ("keyring:nfdoctor/shopee", "keyring", "nfdoctor/shopee"),
        ("shpk1234567890", "inline", "shpk1234567890"),
        ("https://hooks.example/x", "inline", "https://hooks.example/x"),
    ],
)
def test_reference_forms(text: str, kind: str, target: str) -> None:
    ref = SecretRef.parse(text)
    assert (ref.kind, ref.target) == (kind, target)


@pytest.mark.parametrize(
    "text", ["env:", "env:1BAD", "keyring:nfdoctor", "keyring:/x", "file:", ""]
)
def test_bad_references(text: str) -> None:
    with pytest.raises(ValueError):
        SecretRef.parse(text)


def test_inline_secret_never_in_repr() -> None:
    ref = SecretRef.parse("very-secret-inline")
    assert "very-secret-inline" not in repr(ref)
    assert "very-secret-inline" not in str(ref)
    assert "very-secret-inline" not in ref.display()


def _resolver(tmp_path: Path, environ: dict[str, str] | None = None) -> SecretResolver:
    return SecretResolver(redactor=Redactor(), environ=environ or {}, base_dir=tmp_path)


def test_env_and_file_resolution_register_for_redaction(tmp_path: Path) -> None:
    (tmp_path / "k").write_text("file-secret-value\n")
    resolver = _resolver(tmp_path, {"K": "env-secret-value"})
    assert resolver.resolve(SecretRef.parse("env:K"), where="c.yaml:1: a") == "env-secret-value"
    assert resolver.resolve(SecretRef.parse("file:k"), where="c.yaml:2: b") == "file-secret-value"
    text = resolver.redactor.redact("env-secret-value and file-secret-value")
    assert text == "*** and ***"


def test_missing_env_var_names_variable_and_place(tmp_path: Path) -> None:
    with pytest.raises(SecretError) as caught:
        _resolver(tmp_path).resolve(SecretRef.parse("env:NOPE"), where="c.yaml:3:5: crm.api_key")
    assert str(caught.value).startswith(
        "c.yaml:3:5: crm.api_key: environment variable NOPE is not set"
    )


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_text(""), "is empty"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b"\xff\xfe\x00bad"), "not UTF-8"),
    ],
)
def test_file_secret_problems(tmp_path: Path, setup: object, message: str) -> None:
    target = tmp_path / "secret"
    setup(target)  # type: ignore[operator]
    with pytest.raises(SecretError, match=message):
        _resolver(tmp_path).resolve(SecretRef.parse("file:secret"), where="w")


def test_keyring_without_backend_is_a_clear_error(tmp_path: Path) -> None:
    # conftest selects keyring's fail backend, as on a headless server.
    with pytest.raises(KeyringUnavailableError) as caught:
        _resolver(tmp_path).resolve(SecretRef.parse("keyring:nfdoctor/shopee"), where="c.yaml:4: k")
    message = str(caught.value)
    assert message.startswith("c.yaml:4: k: the OS keyring has no usable backend")
    assert "env:VAR or file:PATH" in message


def test_keyring_null_backend_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    import keyring.core

    keyring.core.init_backend()
    try:
        with pytest.raises(KeyringUnavailableError, match="discards everything"):
            _resolver(tmp_path).resolve(SecretRef.parse("keyring:a/b"), where="w")
    finally:
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
        keyring.core.init_backend()


def test_redaction_of_urls_and_query_parameters() -> None:
    redactor = Redactor()
    text = redactor.redact(
        "GET https://partner.shopeemobile.com/api/v2/shop/get_shop_info?partner_id=1"
        "&timestamp=2&access_token=abcd1234&shop_id=3&sign=deadbeef postgresql://u:pw123@h/db"
    )
    assert "abcd1234" not in text and "deadbeef" not in text and "pw123" not in text
    assert "partner_id=1" in text and "shop_id=3" in text and "postgresql://u:***@h/db" in text


def test_short_values_are_not_masked_everywhere() -> None:
    redactor = Redactor()
    redactor.add("1")
    assert redactor.redact("partner 1 of 10") == "partner 1 of 10"


def test_logging_filter_masks_messages_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    redactor = Redactor()
    redactor.add("topsecret-token")
    logger = logging.getLogger("nfdoctor.test")
    handler_filter = RedactingFilter(redactor)
    record = logger.makeRecord("n", logging.INFO, "f", 1, "token %s", ("topsecret-token",), None)
    assert handler_filter.filter(record)
    assert record.getMessage() == "token ***"
    try:
        raise RuntimeError("failed with topsecret-token")
    except RuntimeError:
        import sys

        record = logger.makeRecord("n", logging.ERROR, "f", 1, "x", (), sys.exc_info())
    handler_filter.filter(record)
    assert record.exc_text is not None and "topsecret-token" not in record.exc_text
