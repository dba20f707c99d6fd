"""Run records: started and finished runs, masked arguments, runs cut short by SIGKILL, the
cap, several processes at once, and a log nfdoctor cannot read left as it is."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from nfdoctor.errors import StateError
from nfdoctor.secrets.redaction import Redactor
from nfdoctor.state.locks import FileStateLock
from nfdoctor.state.runs import FORMAT, FileRunLog, RunRecord, exit_code_for, open_run_log
from tests.state.workers import first_line, kill, release_together

Spawn = Callable[..., Any]
START = datetime(2026, 11, 26, 6, 0, tzinfo=timezone.utc)
PASSWORD = "pg-pass-7c1e93d0"
TOKEN = "EAAG-page-token-5f1c9a0e77"


class Clock:
    """A clock that moves one minute per reading."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def log(tmp_path: Path) -> FileRunLog:
    return open_run_log(tmp_path / "state", clock=Clock(), host="ops-1", pid=4242)


def _no_mask(text: str) -> str:
    return text


def test_a_run_is_recorded_running_then_finished(log: FileRunLog) -> None:
    run = log.start("sync", ["--platform", "shopee", "--since", "2h"], mask=_no_mask)
    record = run.record
    assert re.fullmatch(r"20261126T060100Z-[0-9a-f]{8}", record.id)
    assert (record.command, record.arguments) == ("sync", ("--platform", "shopee", "--since", "2h"))
    assert (record.host, record.pid, record.started_at) == (
        "ops-1",
        4242,
        START + timedelta(minutes=1),
    )
    assert log.get(record.id) == record
    assert record.status == "running" and record.outcome == "running" and record.ended_at is None

    finished = run.finish(2)
    assert finished.status == "finished" and finished.outcome == "critical"
    assert finished.ended_at == START + timedelta(minutes=2) and finished.exit_code == 2
    assert log.get(record.id) == finished
    assert run.finish(0) == finished  # a second finish changes nothing

    stored = json.loads(log.path.read_text(encoding="utf-8"))
    assert stored == {
        "format": "nfdoctor.runs/v1",
        "runs": [
            {
                "id": record.id,
                "command": "sync",
                "arguments": ["--platform", "shopee", "--since", "2h"],
                "started_at": "2026-11-26T06:01:00+00:00",
                "ended_at": "2026-11-26T06:02:00+00:00",
                "exit_code": 2,
                "host": "ops-1",
                "pid": 4242,
            }
        ],
    }
    assert list(log.live_dir.iterdir()) == []  # the finished run's lock file is gone
    assert FORMAT == "nfdoctor.runs/v1"


def test_arguments_are_stored_only_masked(log: FileRunLog) -> None:
    redactor = Redactor()
    redactor.add(PASSWORD)
    redactor.add(TOKEN)
    arguments = [
        f"--database-url=postgresql://crm:{PASSWORD}@db/crm",
        "--token",
        TOKEN,
        "--since=2h",
    ]
    with log.start("token import", arguments, mask=redactor.redact) as run:
        assert PASSWORD not in log.path.read_text() and TOKEN not in log.path.read_text()
    assert run.record.arguments == (
        "--database-url=postgresql://crm:***@db/crm",
        "--token",
        "***",
        "--since=2h",
    )
    text = log.path.read_text(encoding="utf-8")
    assert PASSWORD not in text and TOKEN not in text
    assert all(PASSWORD not in repr(r) and TOKEN not in repr(r) for r in log.recent())


def test_one_string_is_not_taken_for_a_list_of_arguments(log: FileRunLog) -> None:
    with pytest.raises(TypeError, match="not one string"):
        log.start("sync", "--since 2h", mask=_no_mask)
    assert not log.path.exists()


@pytest.mark.parametrize(
    ("raised", "code", "outcome"),
    [
        (None, 0, "ok"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (SystemExit(2), 2, "critical"),
        (SystemExit(None), 0, "ok"),
        (SystemExit("bad"), 1, "warning"),
        (RuntimeError("boom"), 3, "unknown"),
        (StateError("disk full"), 3, "unknown"),
    ],
)
def test_leaving_the_block_finishes_the_run(
    log: FileRunLog, raised: BaseException | None, code: int, outcome: str
) -> None:
    assert exit_code_for(raised) == code
    try:
        with log.start("dedupe", [], mask=_no_mask) as run:
            if raised is not None:
                raise raised
    except BaseException as exc:
        assert exc is raised  # never swallowed
    record = log.get(run.record.id)
    assert record is not None and record.status == "finished"
    assert (record.exit_code, record.outcome) == (code, outcome)


def test_an_explicit_finish_wins_over_the_block(log: FileRunLog) -> None:
    with log.start("sync", [], mask=_no_mask) as run:
        run.finish(141)
    record = log.get(run.record.id)
    assert record is not None and (record.exit_code, record.outcome) == (141, "broken pipe")
    with log.start("sync", [], mask=_no_mask) as run:
        run.finish(77)
    assert run.record.outcome == "exit 77"


def test_a_run_killed_with_sigkill_reads_as_unfinished(tmp_path: Path, spawn: Spawn) -> None:
    path = tmp_path / "state" / "runs.json"
    worker = spawn("run-start", str(path))
    run_id = first_line(worker)
    log = FileRunLog(path)
    running = log.get(run_id)
    assert running is not None and running.status == "running"
    assert log.unfinished() == []
    kill(worker)
    cut_short = log.get(run_id)
    assert cut_short is not None
    assert (cut_short.status, cut_short.outcome) == ("unfinished", "unfinished")
    assert cut_short.ended_at is None and cut_short.exit_code is None
    assert cut_short.command == "sync" and cut_short.arguments == ("--since", "2h")
    assert log.unfinished(command="sync") == [cut_short]
    assert log.unfinished(command="dedupe") == []

    # Later runs are recorded as usual; the cut-short one stays visible.
    with log.start("sync", [], mask=_no_mask):
        pass
    assert [r.status for r in log.recent(command="sync")] == ["finished", "unfinished"]


def test_a_run_that_finishes_while_being_looked_at_is_not_called_unfinished(
    log: FileRunLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = log.start("sync", [], mask=_no_mask)
    real = FileStateLock.held_elsewhere

    def finishes_first(lock: FileStateLock) -> bool:
        # The run ends between the reader's read of the log and its look at the lock.
        run.finish(0)
        return real(lock)

    monkeypatch.setattr(FileStateLock, "held_elsewhere", finishes_first)
    record = log.get(run.record.id)
    assert record is not None and record.status == "finished" and record.exit_code == 0


def test_the_log_keeps_the_last_capacity_runs(tmp_path: Path) -> None:
    log = open_run_log(tmp_path, capacity=3, clock=Clock())
    ids = []
    for index in range(5):
        with log.start("sync", [str(index)], mask=_no_mask) as run:
            ids.append(run.record.id)
    assert [r.id for r in log.recent()] == ids[:1:-1]
    assert [r.arguments for r in log.recent(limit=2)] == [("4",), ("3",)]


def test_a_run_trimmed_while_running_is_kept_when_it_finishes(tmp_path: Path) -> None:
    log = open_run_log(tmp_path, capacity=2, clock=Clock())
    long_run = log.start("sync", ["long"], mask=_no_mask)
    for _ in range(2):
        with log.start("diagnose", [], mask=_no_mask):
            pass
    assert log.get(long_run.record.id) is None
    assert not (log.live_dir / f"{long_run.record.id}.lock").exists()
    long_run.finish(0)
    kept = log.get(long_run.record.id)
    assert kept is not None and kept.status == "finished"
    assert len(log.recent()) == 2


def test_processes_starting_and_finishing_runs_at_once_lose_none(
    tmp_path: Path, spawn: Spawn
) -> None:
    path = tmp_path / "runs.json"
    workers = [spawn("run-many", str(path), "15") for _ in range(3)]
    assert release_together(workers) == [0, 0, 0]
    runs = FileRunLog(path).recent()
    assert len(runs) == 45 and len({r.id for r in runs}) == 45
    assert {r.status for r in runs} == {"finished"}
    assert sorted(r.exit_code for r in runs if r.exit_code is not None) == sorted(
        [i % 4 for i in range(15)] * 3
    )
    assert list((tmp_path / "runs.live").iterdir()) == []


@pytest.fixture
def written_log(tmp_path: Path) -> Iterator[Callable[[object], FileRunLog]]:
    def write(document: object) -> FileRunLog:
        path = tmp_path / "runs.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        return FileRunLog(path)

    yield write


def _record(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": "20261126T060100Z-0a1b2c3d",
        "command": "sync",
        "arguments": [],
        "started_at": "2026-11-26T06:01:00Z",
        "ended_at": None,
        "exit_code": None,
        "host": "ops-1",
        "pid": 1,
    }
    record.update(changes)
    return record


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"id": "../../etc/passwd"}, "runs[0].id: missing or not a run id"),
        ({"id": TOKEN + "/x"}, "runs[0].id: missing or not a run id"),
        ({"arguments": [TOKEN, 5]}, "runs[0].arguments: expected a list of strings, got a list"),
        ({"pid": True}, "runs[0].pid: expected an integer, got a boolean"),
        ({"exit_code": "0"}, "runs[0].exit_code: expected an integer or null, got a string"),
        ({"started_at": TOKEN}, "runs[0].started_at: not an ISO 8601 time"),
        ({"ended_at": "2026-11-26T06:01:00"}, "runs[0].ended_at: time has no UTC offset"),
        ({"host": None}, "runs[0].host: expected a string, got null"),
    ],
)
def test_a_bad_record_names_its_key_and_stops_every_rewrite(
    written_log: Callable[[object], FileRunLog], changes: dict[str, object], expected: str
) -> None:
    log = written_log({"format": FORMAT, "runs": [_record(**changes)]})
    before = log.path.read_bytes()
    for attempt in (log.recent, lambda: log.start("sync", [], mask=_no_mask)):
        with pytest.raises(StateError) as caught:
            attempt()
        message = str(caught.value)
        assert message.startswith(f"{log.path}: {expected}")
        assert "nothing was changed" in message and TOKEN not in message
    assert log.path.read_bytes() == before
    assert not log.live_dir.exists() or list(log.live_dir.iterdir()) == []


def test_a_log_of_another_format_is_left_alone(
    written_log: Callable[[object], FileRunLog],
) -> None:
    log = written_log({"format": "nfdoctor.runs/v2", "runs": []})
    with pytest.raises(StateError, match=re.escape("run log format version v2 (this nfdoctor")):
        log.start("sync", [], mask=_no_mask)
    log = written_log({"format": FORMAT, "runs": {}})
    with pytest.raises(StateError, match=re.escape("runs: expected a list of runs, got an object")):
        log.recent()


def test_records_written_by_others_read_back(written_log: Callable[[object], FileRunLog]) -> None:
    log = written_log(
        {
            "format": FORMAT,
            "runs": [
                _record(ended_at="2026-11-26T13:05:00+07:00", exit_code=0, shard="1/4"),
                _record(id="20261126T060200Z-ffffffff"),  # no end and no lock file: cut short
            ],
        }
    )
    first, second = log.recent()[::-1]
    assert first == RunRecord(
        id="20261126T060100Z-0a1b2c3d",
        command="sync",
        arguments=(),
        started_at=START + timedelta(minutes=1),
        ended_at=START + timedelta(minutes=5),
        exit_code=0,
        host="ops-1",
        pid=1,
        status="finished",
    )
    assert second.status == "unfinished"
    assert log.get("nope") is None
    # A key this version does not know is kept when the log is rewritten.
    with log.start("sync", [], mask=_no_mask):
        pass
    assert json.loads(log.path.read_text())["runs"][0]["shard"] == "1/4"


def test_the_clock_must_be_aware_and_the_capacity_positive(tmp_path: Path) -> None:
    naive = FileRunLog(tmp_path / "runs.json", clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        naive.start("sync", [], mask=_no_mask)
    with pytest.raises(ValueError, match="at least one run"):
        FileRunLog(tmp_path / "runs.json", capacity=0)
