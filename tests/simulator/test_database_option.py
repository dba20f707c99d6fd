"""``nfdoctor simulator --database URL`` (and ``--db PATH``): the demo CRM of the shops it
serves, written to SQLite or PostgreSQL, every target checked before any work."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from nfdoctor.cli.simulator_cmd import simulator
from nfdoctor.config.loader import load_config
from nfdoctor.simulator.registry import SIM_PLATFORMS
from nfdoctor.simulator.state import SimulatorState

PASSWORD = "s3cr3t-demo-pass"


def served_state(shops: int) -> SimulatorState:
    """What `nfdoctor simulator --seed 7 --shops N --database …` serves (ids do not depend
    on the clock)."""
    return SimulatorState(7, accounts_per_platform=shops, shared_message_ids=1)


def run_simulator(*args: str) -> tuple[int, list[str]]:
    """Start the simulator, wait until it serves, stop it with SIGTERM: (exit code, stderr)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nfdoctor", "simulator", "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    port: int | None = None
    while time.monotonic() < deadline and port is None:
        line = process.stderr.readline().decode()
        if line:
            lines.append(line.rstrip("\n"))
        elif process.poll() is not None:
            break
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        port = int(found.group(1)) if found else None
    # The line comes just before the server accepts (and handles SIGTERM): wait for that.
    while port is not None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    lines += process.communicate(timeout=30)[1].decode().splitlines()
    return process.returncode, lines


def invoke(*args: str) -> Any:
    """The command in-process (it must stop before serving: every case here is refused)."""
    app = typer.Typer()
    app.command()(simulator)
    return CliRunner().invoke(app, list(args))


def shop_and_message_ids(conn: Any) -> tuple[list[tuple[str, str]], set[tuple[str, str]]]:
    shops = conn.execute("SELECT channel, external_id FROM shops ORDER BY id").fetchall()
    messages = conn.execute(
        "SELECT s.external_id, m.external_id FROM messages m JOIN shops s ON s.id = m.shop_id"
    ).fetchall()
    return [tuple(s) for s in shops], {tuple(m) for m in messages}


def served_ids(state: SimulatorState) -> tuple[list[tuple[str, str]], set[tuple[str, str]]]:
    accounts = [a for spec in SIM_PLATFORMS for a in state.accounts[spec.name]]
    return (
        [(a.platform, a.account_id) for a in accounts],
        {
            (a.account_id, m.message_id)
            for a in accounts
            for c in a.conversations
            for m in c.messages
        },
    )


@pytest.mark.parametrize("option", ["--database", "--db"])
def test_sqlite_demo_crm_holds_the_served_shops_and_the_config_points_at_it(
    option: str, tmp_path: Path
) -> None:
    target = "sqlite:///crm.db" if option == "--database" else "crm.db"
    code, lines = run_simulator("--shops", "2", option, target, "--write-config", "sim.yaml")
    assert code == 0, lines
    written = [line for line in lines if line.startswith("nfdoctor: demo CRM written to crm.db")]
    assert written and re.search(r"\(10 shops, \d+ messages, 40 duplicated\)$", written[0])
    with sqlite3.connect("crm.db") as conn:
        assert shop_and_message_ids(conn) == served_ids(served_state(2))
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (3 * 2 * 250,)
    conn.close()
    config = yaml.safe_load(Path("sim.yaml").read_text(encoding="utf-8"))
    assert config["database"] == {"url": f"sqlite:///{Path('crm.db').resolve()}"}
    loaded = load_config(Path("sim.yaml"))
    assert not loaded.warnings
    assert loaded.config.database is not None


def test_both_options_or_a_bad_url_are_refused_before_any_work() -> None:
    for args, message in (
        (("--db", "a.db", "--database", "sqlite:///b.db"), "--db is the same as --database"),
        (("--database", "mysql://crm@db/crm"), "--database: unsupported database URL"),
        (("--database", "sqlite:///:memory:"), "--database: an in-memory sqlite database"),
    ):
        result = invoke(*args, "--write-config", "sim.yaml")
        assert result.exit_code == 3, result.output
        assert result.output.count("\n") == 1 and message in result.output
    assert sorted(os.listdir()) == []  # no config, no database, no secrets


def test_every_target_is_checked_before_anything_is_written(tmp_path: Path) -> None:
    Path("crm.db").write_bytes(b"the CRM's own file")
    result = invoke("--database", "crm.db", "--write-config", "sim.yaml")
    assert result.exit_code == 3
    assert "--database: crm.db already exists; refusing to overwrite it" in result.output
    assert Path("crm.db").read_bytes() == b"the CRM's own file"
    Path("sim.yaml").mkdir()
    result = invoke("--database", "sqlite:///new.db", "--write-config", "sim.yaml")
    assert result.exit_code == 3 and "--write-config: sim.yaml is a directory" in result.output
    assert sorted(os.listdir()) == ["crm.db", "sim.yaml"]  # new.db never made


def pg_url_with_password(url: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}password={PASSWORD}"


@pytest.mark.postgres
def test_postgres_demo_crm_is_created_in_the_schema_and_the_password_kept_out(
    pg_schema: Any,
) -> None:
    url = pg_url_with_password(pg_schema.url)  # trust auth: accepted, and never written
    code, lines = run_simulator("--database", url, "--write-config", "sim.yaml")
    assert code == 0, lines
    assert not [line for line in lines if PASSWORD in line]
    with pg_schema.connect() as conn:
        assert shop_and_message_ids(conn) == served_ids(served_state(1))
    text = Path("sim.yaml").read_text(encoding="utf-8")
    assert PASSWORD not in text
    database = yaml.safe_load(text)["database"]
    assert database == {"url": pg_schema.url, "password": "file:sim-secrets/database-password"}
    secret = Path("sim-secrets/database-password")
    assert secret.read_text(encoding="utf-8") == PASSWORD + "\n"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert not load_config(Path("sim.yaml")).warnings

    # A second demo into the same schema would mix with the first: refused, nothing written.
    result = invoke("--database", url, "--write-config", "again.yaml")
    assert result.exit_code == 3
    assert result.output.count("\n") == 1 and PASSWORD not in result.output
    assert "already holds CRM data" in result.output
    assert result.output.startswith("nfdoctor: usage: --database: postgresql://")
    assert not Path("again.yaml").exists()
    with pg_schema.connect() as conn:
        assert shop_and_message_ids(conn) == served_ids(served_state(1))
