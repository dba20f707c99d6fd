"""``nfdoctor sync`` refuses bad input with one line and exit 3, and writes nothing."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.sync_helpers import SyncSim, start


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncSim]:
    started = start(tmp_path_factory.mktemp("sync-bad"), shops=1, orders=20)
    try:
        yield started
    finally:
        started.started.stop()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--since", "2026-11-20", "--until", "2026-11-10"], "is not before --until"),
        (["--since", "yesterday"], "--since: 'yesterday' is neither a date/time"),
        (["--since", "2026-13-45"], "--since: '2026-13-45' is neither a date/time"),
        (["--since", "2099-01-01"], "--since: '2099-01-01' is in the future"),
        (["--since", "3d", "--until", "2099-01-01"], "--until: '2099-01-01' is in the future"),
        (["--until", "1d"], "--until needs --since"),
        (["--platform", "amazon", "--since", "3d"], "amazon"),
        (["--platform", "shopee", "--shop", "999", "--since", "3d"], "--shop"),
        (["--platform", "facebook", "--stream", "orders", "--since", "3d"], "has no orders stream"),
        (["--stream", "refunds", "--since", "3d"], "--stream 'refunds': expected one of"),
        (["--shard", "3/2", "--since", "3d"], "--shard 3/2: i must be from 1 to n"),
        (["--shard", "half", "--since", "3d"], "--shard 'half': expected i/n"),
    ],
)
def test_bad_input_is_one_line_exit_3_and_nothing_written(
    sim: SyncSim, args: list[str], line: str
) -> None:
    before = _digest(sim.database)
    result = sim.cli(*args)
    assert result.code == 3, (result.code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and line in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert _digest(sim.database) == before


def test_schema_drift_stops_before_anything_is_written(tmp_path: Path) -> None:
    sim = start(tmp_path, shops=1, orders=20)
    try:
        with sqlite3.connect(sim.database) as conn:
            conn.execute("ALTER TABLE orders DROP COLUMN synced_at")
        before = _digest(sim.database)
        result = sim.cli("--platform", "shopee", "--since", "3d")
        assert result.code == 3, result.stderr
        assert "drifted from the CRM schema: orders.synced_at missing" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert _digest(sim.database) == before
        assert sim.state.rate_counts("shopee")[0] == 0  # not one request was sent
    finally:
        sim.started.stop()


def test_no_database_configured(tmp_path: Path) -> None:
    sim = start(tmp_path, shops=1, orders=20)
    try:
        text = sim.config.read_text(encoding="utf-8")
        start_at = text.index("\ndatabase:")
        end_at = text.index("\n", text.index("url:", start_at))
        sim.config.write_text(text[:start_at] + text[end_at:], encoding="utf-8")
        result = sim.cli("--platform", "shopee", "--since", "3d")
        assert result.code == 3 and "set database.url" in result.stderr, result.stderr
    finally:
        sim.started.stop()
