"""``nfdoctor token status | refresh | import | export`` on the CRM's tokens, as run.

The simulator is started as ``nfdoctor simulator --database … --write-config …`` starts it:
its demo CRM holds the pairs it issued in ``channel_credentials``, and the config it writes
names that store (``tokens: {store: crm}``). Every run's output is searched for every token
and secret; bad input must change nothing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from nfdoctor.context import Environment
from nfdoctor.services.simulator import SimulatorRequest, SimulatorStarted, start_simulator
from nfdoctor.store.database import DatabaseUrl
from nfdoctor.tokens.crm import CrmTokenStore
from nfdoctor.tokens.refresh import run_owner
from tests.conftest import CliResult

FORMATS = ("table", "plain", "json", "junit", "nagios", "prometheus")


@dataclass
class Sim:
    started: SimulatorStarted
    config: Path
    database: Path

    @property
    def state(self) -> Any:
        return self.started.state

    def store(self) -> CrmTokenStore:
        return CrmTokenStore(DatabaseUrl("sqlite", path=self.database))

    def account(self, platform: str, index: int = 0) -> str:
        return str(self.state.accounts[platform][index].account_id)

    def rows(self) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.database) as conn:
            if not conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'channel_credentials'"
            ).fetchone():
                return []
            return conn.execute(
                "SELECT shop_id, access_token, refresh_token, version FROM channel_credentials "
                "ORDER BY shop_id"
            ).fetchall()

    def secrets(self) -> dict[str, str]:
        found = {f"issued {i}": str(v) for i, v in enumerate(self.state.secret_values())}
        for shop_id, access, refresh, _ in self.rows():
            found[f"row {shop_id} access"] = access
            if refresh:
                found[f"row {shop_id} refresh"] = refresh
        return found


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    config = tmp_path / "sim.yaml"
    database = tmp_path / "crm.db"
    started = start_simulator(
        Environment(),
        SimulatorRequest(write_config=config, database=f"sqlite:///{database}", shops=2),
    )
    started.start_in_thread()
    try:
        yield Sim(started=started, config=config, database=database)
    finally:
        started.stop()


def run(cli: Callable[..., CliResult], sim: Sim, *args: str) -> CliResult:
    """``nfdoctor ARGS --config SIM``; nothing any secret in what it printed."""
    result = cli(*args, "--config", str(sim.config))
    leaked = [
        name
        for name, value in sim.secrets().items()
        if value and (value in result.stdout or value in result.stderr)
    ]
    assert not leaked, f"{args}: {leaked}"
    return result


def test_the_config_names_the_crms_tokens(sim: Sim, cli: Callable[..., CliResult]) -> None:
    assert yaml.safe_load(sim.config.read_text())["tokens"] == {"store": "crm"}
    status = run(cli, sim, "token", "status", "-o", "json")
    report = json.loads(status.stdout)
    assert status.code == 0, status.stdout
    for result in report["results"]:
        assert f"store: the CRM's channel_credentials in {sim.database}" in result["details"]


def test_every_token_command_masks_every_token(
    sim: Sim, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    export = tmp_path / "out" / "tokens.json"
    export.parent.mkdir()
    for index, fmt in enumerate(FORMATS):
        debug = ("--debug",) if index % 2 else ()
        assert run(cli, sim, "token", "status", "-o", fmt, *debug).code == 0
        assert run(cli, sim, "token", "refresh", "zalo", "--force", "-o", fmt, *debug).code == 0
    assert run(cli, sim, "token", "refresh", "all", "--debug", "-o", "json").code == 0
    assert run(cli, sim, "token", "export", "--out", str(export), "--debug").code == 0
    assert stat.S_IMODE(export.stat().st_mode) == 0o600
    assert run(cli, sim, "token", "import", "--from", str(export), "--debug").code == 0
    # What stays on disk: journals and recovery files are private.
    state_dir = Path(os.environ["XDG_STATE_HOME"]) / "nfdoctor"
    for directory in (state_dir / "token-journal", state_dir / "token-recovery"):
        if directory.exists():
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700
            for path in directory.iterdir():
                assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_due_is_silent_when_all_is_well(sim: Sim, cli: Callable[..., CliResult]) -> None:
    quiet = run(cli, sim, "token", "refresh", "all", "--due")
    assert (quiet.code, quiet.stdout, quiet.stderr) == (0, "", "")


# --- bad input: a clear line, the right code, nothing changed ---------------------------------


def _unchanged(sim: Sim, before: list[tuple[Any, ...]]) -> None:
    assert sim.rows() == before


def _one_line(result: CliResult) -> str:
    assert result.code == 3, (result.code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_an_unknown_shop(sim: Sim, cli: Callable[..., CliResult]) -> None:
    before = sim.rows()
    line = _one_line(run(cli, sim, "token", "refresh", "zalo", "--shop", "999"))
    assert "--shop: no shop, page or OA '999' in zalo" in line
    _unchanged(sim, before)


def test_facebook_refresh_is_refused_with_the_way_out(
    sim: Sim, cli: Callable[..., CliResult]
) -> None:
    before = sim.rows()
    line = _one_line(run(cli, sim, "token", "refresh", "facebook"))
    assert "Facebook has no refresh token" in line and "token authorize facebook" in line
    _unchanged(sim, before)


def test_a_token_file_others_can_read_is_refused(
    sim: Sim, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"format": "nfdoctor.tokens/v1", "tokens": {}}))
    path.chmod(0o644)
    before = sim.rows()
    line = _one_line(run(cli, sim, "token", "import", "--from", str(path)))
    assert "mode 0644: readable or writable by others" in line and f"chmod 600 {path}" in line
    _unchanged(sim, before)


def test_a_corrupt_token_file_is_refused(
    sim: Sim, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    path = tmp_path / "tokens.json"
    path.write_text('{"format": "nfdoctor.tokens/v1",\n "tokens": {"zalo": {')
    path.chmod(0o600)
    before = sim.rows()
    line = _one_line(run(cli, sim, "token", "import", "--from", str(path)))
    assert str(path) in line and ":2:" in line
    _unchanged(sim, before)


def test_a_token_for_an_account_not_in_the_config_imports_nothing(
    sim: Sim, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    oa = sim.account("zalo")
    record = {
        "access_token": "a" * 20,
        "refresh_token": "r" * 20,
        "access_expires_at": None,
        "refresh_expires_at": None,
        "updated_at": None,
    }
    path = tmp_path / "tokens.json"
    path.write_text(
        json.dumps({"format": "nfdoctor.tokens/v1", "tokens": {"zalo": {oa: record, "42": record}}})
    )
    path.chmod(0o600)
    before = sim.rows()
    line = _one_line(run(cli, sim, "token", "import", "--from", str(path)))
    assert "zalo 42 not in" in line and "nothing was imported" in line
    _unchanged(sim, before)


def test_export_never_to_standard_output(sim: Sim, cli: Callable[..., CliResult]) -> None:
    line = _one_line(run(cli, sim, "token", "export", "--out", "-"))
    assert "never written to standard output" in line


def test_a_lease_held_by_a_live_refresher_past_wait(
    sim: Sim, cli: Callable[..., CliResult]
) -> None:
    oa = sim.account("zalo")
    before = sim.rows()
    # This test process holds the lease (alive), as another host's refresher would.
    with sim.store().hold("zalo", oa, owner=run_owner(), lease_s=60, wait_s=0):
        busy = run(cli, sim, "token", "refresh", "zalo", "--shop", oa, "--wait", "1s", "-o", "json")
    assert busy.code == 2
    (result,) = json.loads(busy.stdout)["results"]
    assert result["status"] == "CRITICAL"
    assert f"the refresh lease of zalo {oa} is held by nfdoctor@" in result["summary"]
    _unchanged(sim, before)


def test_a_crm_without_channel_credentials(sim: Sim, cli: Callable[..., CliResult]) -> None:
    secrets = sim.secrets()
    with sqlite3.connect(sim.database) as conn:
        conn.execute("DROP TABLE channel_credentials")
    result = run(cli, sim, "token", "refresh", "zalo")
    assert not [v for v in secrets.values() if v in result.stdout + result.stderr]
    line = _one_line(result)
    assert "has no channel_credentials table (CRM schema v1.1)" in line


def test_a_keyring_without_a_backend(sim: Sim, cli: Callable[..., CliResult]) -> None:
    document = yaml.safe_load(sim.config.read_text())
    document["tokens"] = {"store": "keyring"}
    sim.config.write_text(yaml.safe_dump(document, allow_unicode=True))
    # conftest gives every test keyring's fail backend, as on a headless server.
    line = _one_line(run(cli, sim, "token", "refresh", "zalo"))
    assert "no usable backend" in line and "tokens: {store: file}" in line
