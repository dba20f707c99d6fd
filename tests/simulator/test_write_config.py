"""write_config: files written atomically with the right modes, a clear error for a
missing directory, a port that can be reused at once after a stop, and with ``--tls`` the
https webhook URLs, the CA bundle and the connect_to rules."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest
import yaml

from nfdoctor.config.loader import load_config
from nfdoctor.errors import StateError, UsageError
from nfdoctor.simulator import server
from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.certs import SimulatorPki
from nfdoctor.simulator.server import SimulatorServer, webhook_urls, write_config
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.tokens.store import FileTokenStore
from tests.simulator import NOW


def test_missing_directory_is_a_usage_error_and_nothing_is_written(tmp_path: Path) -> None:
    _, state = build_simulator(7, orders_per_shop=1, conversations_per_account=1)
    before = sorted(tmp_path.rglob("*"))
    target = tmp_path / "nope" / "sim.yaml"
    with pytest.raises(UsageError, match=r"--write-config: directory .*nope does not exist"):
        write_config(target, "http://127.0.0.1:1", state)
    assert sorted(tmp_path.rglob("*")) == before


def test_rewriting_keeps_modes_and_the_token_store_reads_it(tmp_path: Path) -> None:
    _, state = build_simulator(7, orders_per_shop=1, conversations_per_account=1)
    config = tmp_path / "sim.yaml"
    (tmp_path / "sim-secrets").mkdir(mode=0o755)  # left wide by someone: tightened
    write_config(config, "http://127.0.0.1:1", state)
    written = write_config(config, "http://127.0.0.1:1", state)  # twice: replaces in place
    secrets_dir = tmp_path / "sim-secrets"
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    for path in written[1:]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no temp left
    shop = state.accounts["shopee"][0].account_id
    token = FileTokenStore(secrets_dir / "tokens.json").get("shopee", shop)
    current = state.current("shopee", shop, "access")
    assert token is not None and current is not None
    assert token.access_token == current.value


def test_the_port_is_free_again_right_after_stop() -> None:
    app, _ = build_simulator(7, orders_per_shop=1, conversations_per_account=1)
    first = SimulatorServer(app)
    first.start_in_thread()
    port = first.port
    # A keep-alive client connection leaves the server side in TIME_WAIT after the stop.
    with httpx.Client() as client:
        client.get(f"{first.url}/crm/api/status")
        first.stop()
    second = SimulatorServer(app, port=port)
    try:
        assert second.port == port
    finally:
        second.sock.close()


# ---- --tls: https webhook URLs, the CA bundle and connect_to rules --------------------------

PLATFORMS = ("shopee", "lazada", "tiktok", "facebook", "zalo")


def _tls_state() -> tuple[SimulatorState, SimulatorPki]:
    _, state = build_simulator(7, orders_per_shop=1, conversations_per_account=1)
    return state, SimulatorPki(NOW)


def test_with_tls_the_config_names_https_urls_the_bundle_and_connect_to(tmp_path: Path) -> None:
    state, pki = _tls_state()
    config = tmp_path / "sim.yaml"
    written = write_config(
        config, "http://127.0.0.1:41234", state, tls_port=41235, ca_pem=pki.root_pem()
    )
    ca = tmp_path / "sim-ca.pem"
    assert written[0] == config and written[-1] == ca
    assert ca.read_bytes() == pki.root_pem()
    assert stat.S_IMODE(ca.stat().st_mode) == 0o644  # the root certificate is not a secret
    for path in written[1:-1]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert data["webhooks"] == {
        "ca_bundle": "sim-ca.pem",
        "connect_to": [f"{p}.crm.nfdoctor.test:443:127.0.0.1:41235" for p in PLATFORMS],
    }
    urls = {p: data["platforms"][p]["webhook_url"] for p in PLATFORMS}
    assert urls == {p: f"https://{p}.crm.nfdoctor.test/crm/webhooks/{p}" for p in PLATFORMS}
    assert urls == webhook_urls("http://127.0.0.1:41234", https=True)
    assert data["crm"]["status_url"] == "http://127.0.0.1:41234/crm/api/status"  # unchanged
    loaded = load_config(config)
    assert not loaded.warnings
    assert loaded.config.webhooks.ca_bundle == "sim-ca.pem"


def test_without_tls_nothing_about_https_is_written(tmp_path: Path) -> None:
    state, _ = _tls_state()
    config = tmp_path / "sim.yaml"
    written = write_config(config, "http://127.0.0.1:41234", state)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert "webhooks" not in data
    assert data["platforms"]["zalo"]["webhook_url"] == "http://127.0.0.1:41234/crm/webhooks/zalo"
    assert not (tmp_path / "sim-ca.pem").exists()
    assert all(path.name != "sim-ca.pem" for path in written)
    with pytest.raises(ValueError, match="together"):
        write_config(config, "http://127.0.0.1:1", state, tls_port=1)


@pytest.mark.parametrize("had_bundle", [False, True])
def test_a_failed_write_leaves_the_old_bundle_and_config(
    had_bundle: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, pki = _tls_state()
    config = tmp_path / "sim.yaml"
    ca = tmp_path / "sim-ca.pem"
    if had_bundle:
        ca.write_text("old bundle\n")
    real = server.write_atomically

    def failing(path: Path, text: str, *, mode: int = 0o644) -> None:
        if path == config:
            raise StateError(f"cannot write {path}: No space left on device")
        real(path, text, mode=mode)

    monkeypatch.setattr(server, "write_atomically", failing)
    with pytest.raises(StateError, match="No space left"):
        write_config(config, "http://127.0.0.1:1", state, tls_port=2, ca_pem=pki.root_pem())
    assert not config.exists()
    assert not (tmp_path / "sim-secrets").exists()
    if had_bundle:
        assert ca.read_text() == "old bundle\n"
    else:
        assert not ca.exists()
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no temp left


def test_a_bundle_target_that_is_a_directory_is_refused_before_anything(tmp_path: Path) -> None:
    state, pki = _tls_state()
    (tmp_path / "sim-ca.pem").mkdir()
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(UsageError, match=r"--write-config: .*sim-ca\.pem"):
        write_config(
            tmp_path / "sim.yaml", "http://127.0.0.1:1", state, tls_port=2, ca_pem=pki.root_pem()
        )
    assert sorted(tmp_path.rglob("*")) == before
