"""The ``webhooks:`` section and the Zalo signing options: defaults, and located refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from nfdoctor.config.loader import load
from tests.conftest import CliResult


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nfdoctor.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(tmp_path: Path) -> None:
    loaded = load(
        explicit=_write(tmp_path, "timezone: Asia/Ho_Chi_Minh\n"), environ={}, cwd=tmp_path
    )
    webhooks = loaded.config.webhooks
    assert (webhooks.ca_bundle, webhooks.connect_to, webhooks.probes) == (None, [], 5)
    thresholds = loaded.config.thresholds
    assert (thresholds.cert_expiry_warning.days, thresholds.cert_expiry_critical.days) == (21, 7)


@pytest.mark.parametrize(
    ("section", "says"),
    [
        ("connect_to: [crm.example.vn:443:10.0.0.7]", "webhooks.connect_to[0]: 'crm.example.vn"),
        ("connect_to: ['crm.example.vn:443:10.0.0.7:99999']", "PORT2 must be a port number"),
        ("probes: 0", "webhooks.probes: must be at least 1, got 0"),
        ("probes: 51", "webhooks.probes: must be at most 50"),
    ],
)
def test_bad_values_are_located(
    section: str, says: str, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    path = _write(tmp_path, f"webhooks:\n  {section}\n")
    result = cli("config", "validate", "--config", str(path))
    assert result.code == 3
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"nfdoctor: config: {path}:2:")
    assert says in first, first


def test_zalo_signing_options_are_checked(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    path = _write(
        tmp_path,
        "platforms:\n  zalo:\n    app_id: '1'\n    secret_key: env:K\n"
        "    webhook_secret: app_secret\n",
    )
    result = cli("config", "validate", "--config", str(path))
    assert result.code == 3
    assert "platforms.zalo.webhook_secret" in result.stderr
    assert "'oa_secret'" in result.stderr and "'secret_key'" in result.stderr
