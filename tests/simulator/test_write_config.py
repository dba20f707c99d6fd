"""write_config: files written atomically with the right modes, a clear error for a
missing directory, and a port that can be reused at once after a stop."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest

from nfdoctor.errors import UsageError
from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.server import SimulatorServer, write_config
from nfdoctor.tokens.store import FileTokenStore


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
