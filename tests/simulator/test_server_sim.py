"""Serving on loopback, write_config, and the CLI command's argument handling."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from nfdoctor.cli.simulator_cmd import simulator
from nfdoctor.config.loader import load_config
from nfdoctor.errors import UsageError
from nfdoctor.simulator.app import build_simulator
from nfdoctor.simulator.server import SimulatorServer, check_loopback, write_config
from tests.simulator import FakeClock


def test_write_config_loads_cleanly(tmp_path: Path) -> None:
    _, state = build_simulator(seed=7, clock=FakeClock())
    path = tmp_path / "sim.yaml"
    written = write_config(path, "http://127.0.0.1:40001", state, database_path=tmp_path / "crm.db")
    loaded = load_config(path)
    assert not loaded.warnings
    cfg = loaded.config
    assert str(cfg.platforms.shopee.base_url) == "http://127.0.0.1:40001/shopee"
    assert cfg.platforms.shopee.shops[0].shop_id == int(state.accounts["shopee"][0].account_id)
    assert cfg.platforms.tiktok.shops[0].shop_cipher == state.accounts["tiktok"][0].extra["cipher"]
    assert cfg.platforms.zalo.oas[0].oa_secret.display().startswith("file:")
    for file in written[1:]:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
    key_file = tmp_path / "sim-secrets" / "shopee-partner-key"
    assert key_file.read_text().strip() == state.shopee_partner_key
    assert state.shopee_partner_key not in path.read_text()
    assert (tmp_path / "sim-secrets" / "tokens.json").exists()


@pytest.mark.parametrize("host", ["0.0.0.0", "localhost", "192.168.1.10", "::"])
def test_refuses_non_loopback_hosts(host: str) -> None:
    with pytest.raises(UsageError, match=r"127\.0\.0\.1 only"):
        check_loopback(host)
    app, _ = build_simulator(seed=1)
    with pytest.raises(UsageError):
        SimulatorServer(app, host=host, port=0)


def test_real_server_on_port_zero_answers_and_stops() -> None:
    app, _ = build_simulator(seed=1)
    server = SimulatorServer(app, port=0)
    assert server.port > 0 and server.url.startswith("http://127.0.0.1:")
    started = time.monotonic()
    server.start_in_thread()
    try:
        r = httpx.get(server.url + "/crm/api/status", timeout=5, trust_env=False)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert len(r.headers.get_list("date")) == 1
    finally:
        server.stop()
    assert time.monotonic() - started < 5


def test_cli_rejects_a_bad_fault_plan_with_exit_3(tmp_path: Path) -> None:
    plan = tmp_path / "faults.yaml"
    plan.write_text("rules:\n  - fault: nope\n")
    app = typer.Typer()
    app.command()(simulator)
    result = CliRunner().invoke(app, ["--faults", str(plan)])
    assert result.exit_code == 3
    assert "rules[0].fault" in result.output
