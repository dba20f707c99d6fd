"""The shared rate limit: processes on one database share one line of slots."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nfdoctor.store.database import parse_database_url
from nfdoctor.store.schema import create_schema_sqlite
from nfdoctor.sync.db import SyncDatabase
from nfdoctor.sync.limiter import HEADROOM, LocalRateLimit, SharedRateLimit

_CHILD = """
import asyncio, json, sys, time
from nfdoctor.store.database import parse_database_url
from nfdoctor.sync.db import SyncDatabase
from nfdoctor.sync.limiter import SharedRateLimit

async def main() -> None:
    db = SyncDatabase(parse_database_url(sys.argv[1]), timeout_s=10)
    pace = SharedRateLimit(db, "lazada", float(sys.argv[2]))
    sent = []
    for _ in range(int(sys.argv[3])):
        await pace()
        sent.append(time.time())
    print(json.dumps(sent))

asyncio.run(main())
"""


def most_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    most, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


@pytest.fixture
def database(tmp_path: Path) -> str:
    path = tmp_path / "crm.db"
    with sqlite3.connect(path) as conn:
        create_schema_sqlite(conn)
    db = SyncDatabase(parse_database_url(f"sqlite:///{path}"), timeout_s=5)
    db.ensure_own_tables()
    db.close()
    return f"sqlite:///{path}"


@pytest.mark.slow
def test_three_processes_share_one_rate(database: str) -> None:
    rate, each = 20.0, 20
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, database, str(rate), str(each)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    sent: list[float] = []
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        sent += json.loads(out)
    # 60 requests at 20/s (sent at 95 %): never more than 20 in any second, no idle line.
    assert most_in_any_second(sent) <= rate
    span = max(sent) - min(sent)
    assert 59 / (rate * HEADROOM) * 0.98 <= span <= 59 / (rate * HEADROOM) + 1.0, span


def test_a_local_line_spaces_requests(database: str) -> None:
    async def run() -> list[float]:
        pace = LocalRateLimit(50.0)
        sent = []
        for _ in range(25):
            await pace()
            sent.append(time.monotonic())
        return sent

    sent = asyncio.run(run())
    assert most_in_any_second(sent) <= 50
    assert sent[-1] - sent[0] >= 24 / (50 * HEADROOM) * 0.98


def test_the_pacer_waits_for_its_slot(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    db = SyncDatabase(parse_database_url(database), timeout_s=5)
    # The database's clock stands still: the slots are exactly one interval apart.
    monkeypatch.setattr("nfdoctor.sync.db.time.time", lambda: 1_800_000_000.0)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    pace = SharedRateLimit(db, "zalo", 10.0, sleep=sleep)

    async def run() -> None:
        for _ in range(5):
            await pace()

    asyncio.run(run())
    # Back to back: the first goes at once, each next one a tenth of a second later.
    assert len(slept) == 4
    step = 1 / (10 * HEADROOM)
    expected = [step, 2 * step, 3 * step, 4 * step]
    assert slept == pytest.approx(expected, abs=2e-3)
    assert pace.waited_s == pytest.approx(sum(slept))
    db.close()
