"""Run records: which nfdoctor commands ran, with what (secrets masked), when, and how they ended.

A command that changes things (sync, dedupe, token refresh) starts a run, does its work and
finishes the run with its exit code. A run whose process was killed never finishes, and must
not look like one still going: later commands want to see interrupted runs (to resume a sync,
or to show a dedupe that stopped half way). So every run holds a liveness lock for its whole
life, and a reader tells the two apart by it:

- ``finished``: the run recorded its end (``ended_at`` and ``exit_code``);
- ``running``: no end yet, and its process still holds the run's lock;
- ``unfinished``: no end, and nobody holds the lock: the process died (SIGKILL, OOM killer,
  power loss) or could not record its end.

Locks die with their holder (see :mod:`nfdoctor.state.locks`), so this needs no pid checks,
which a reused pid or another host would fool.

:class:`RunLog` is the interface; :class:`FileRunLog` keeps the last ``capacity`` runs in one
JSON document in the state dir (``runs.json``, format ``nfdoctor.runs/v1``), safe for several
processes at once, with each live run's lock in ``runs.live/<id>.lock``. A database-backed log
would keep the records in a table and hold an advisory lock per live run instead.

Arguments are stored only as the caller's ``mask`` returns them (a
:meth:`~nfdoctor.secrets.redaction.Redactor.redact`): a raw value never reaches the file.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from nfdoctor.errors import StateError
from nfdoctor.state.documents import JsonDocument, json_type
from nfdoctor.state.locks import FileStateLock

__all__ = [
    "DEFAULT_CAPACITY",
    "EXIT_OUTCOMES",
    "FORMAT",
    "ActiveRun",
    "FileRun",
    "FileRunLog",
    "RunLog",
    "RunRecord",
    "RunStatus",
    "exit_code_for",
    "open_run_log",
]

#: the run log's format, the ``format`` key of ``runs.json``
FORMAT = "nfdoctor.runs/v1"
DEFAULT_FILE_NAME = "runs.json"
#: a record is a few hundred bytes: 200 of them is tens of KiB, read on every run
DEFAULT_CAPACITY = 200

RunStatus = Literal["running", "finished", "unfinished"]

#: exit codes in words (design.md's exit codes, then the signals' conventional ones)
EXIT_OUTCOMES: Mapping[int, str] = {
    0: "ok",
    1: "warning",
    2: "critical",
    3: "unknown",
    130: "interrupted",
    141: "broken pipe",
}

#: a run id is a file name in runs.live/: nothing that could climb out of it
_RUN_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,63}")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One command run; ``status`` is as seen when the record was read."""

    id: str
    command: str
    #: the arguments as the caller's mask returned them, never the raw values
    arguments: tuple[str, ...]
    started_at: datetime
    ended_at: datetime | None = None
    exit_code: int | None = None
    host: str
    pid: int
    status: RunStatus

    @property
    def outcome(self) -> str:
        """``running``, ``unfinished``, or the exit code in words (``ok``, ``critical`` …)."""
        if self.status != "finished" or self.exit_code is None:
            return self.status
        return EXIT_OUTCOMES.get(self.exit_code, f"exit {self.exit_code}")


class ActiveRun(Protocol):
    """A run this process started; finish it with the command's exit code."""

    @property
    def record(self) -> RunRecord:
        """The run as last recorded by this process."""
        ...

    def finish(self, exit_code: int) -> RunRecord:
        """Record the end and release the run's liveness lock; a second call changes nothing."""
        ...

    def __enter__(self) -> ActiveRun:
        """The run itself; leaving the block finishes it if :meth:`finish` was not called."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Finish the run: 0, 130 for Ctrl-C, SystemExit's code, 3 for any other exception."""
        ...


class RunLog(Protocol):
    """Where runs are recorded; several processes may start and finish runs at once."""

    def describe(self) -> str:
        """Where the records are, in words an operator can act on."""
        ...

    def start(
        self, command: str, arguments: Sequence[str], *, mask: Callable[[str], str]
    ) -> ActiveRun:
        """Record a new run of ``command`` (each argument passed through ``mask``)."""
        ...

    def get(self, run_id: str) -> RunRecord | None:
        """The run with id ``run_id``, or None when the log has no such run."""
        ...

    def recent(self, *, command: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """The recorded runs, newest first; only ``command``'s when given."""
        ...

    def unfinished(self, *, command: str | None = None) -> list[RunRecord]:
        """The runs that ended without recording their end (killed), newest first."""
        ...


def exit_code_for(exc: BaseException | None) -> int:
    """The exit code a run that ended with ``exc`` (None: normally) had."""
    if exc is None:
        return 0
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, SystemExit):
        # As the interpreter does: None is success, a non-integer is printed and exits 1.
        code = exc.code
        return 0 if code is None else code if isinstance(code, int) else 1
    return 3  # UNKNOWN: the command could not judge (design.md)


# --- the file-backed log ------------------------------------------------------------------


class FileRunLog:
    """The last ``capacity`` runs in ``runs.json``; live runs hold ``runs.live/<id>.lock``."""

    kind = "file"

    def __init__(
        self,
        path: Path,
        *,
        capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], datetime] = _utc_now,
        lock_timeout_s: float = 10,
        host: str | None = None,
        pid: int | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"a run log keeps at least one run (got capacity {capacity})")
        self.document = JsonDocument(
            path,
            FORMAT,
            kind="run log",
            lock_timeout_s=lock_timeout_s,
            recover="Fix it by hand, or move it aside (the run history starts again)",
        )
        self.path = path
        self.live_dir = path.with_suffix(".live")
        self.capacity = capacity
        self.clock = clock
        self.host = host if host is not None else socket.gethostname()
        self.pid = pid if pid is not None else os.getpid()

    def __repr__(self) -> str:
        return f"FileRunLog({str(self.path)!r})"

    def describe(self) -> str:
        """``run log /path/runs.json``."""
        return f"run log {self.path}"

    def start(
        self, command: str, arguments: Sequence[str], *, mask: Callable[[str], str]
    ) -> FileRun:
        """Take the run's liveness lock, then append its record (trimming the oldest)."""
        if isinstance(arguments, str):
            raise TypeError("arguments is a sequence of arguments, not one string")
        now = self._now()
        record = RunRecord(
            id=f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}",
            command=mask(command),
            arguments=tuple(mask(argument) for argument in arguments),
            started_at=now,
            host=self.host,
            pid=self.pid,
            status="running",
        )
        # The lock is taken before the record is visible, so no reader ever sees a run
        # without a holder and calls it unfinished.
        live = self._live_lock(record.id)
        live.__enter__()
        dropped: list[str] = []

        def append(document: dict[str, Any] | None) -> dict[str, Any]:
            runs = self._raw_runs(document)
            runs.append(_record_to_json(record))
            dropped.extend(str(raw["id"]) for raw in runs[: -self.capacity])
            return {**(document or {}), "runs": runs[-self.capacity :]}

        try:
            self.document.update(append)
        except BaseException:
            self._release(live)
            raise
        for run_id in dropped:
            # A dropped run's lock file is no longer looked at; one still held (a run older
            # than `capacity` others) is only unlinked, and its holder's unlink finds nothing.
            with contextlib.suppress(OSError):
                self._live_lock(run_id).path.unlink()
        return FileRun(self, record, live)

    def get(self, run_id: str) -> RunRecord | None:
        """The run with id ``run_id``, or None when the log has no such run."""
        return next((run for run in self._records() if run.id == run_id), None)

    def recent(self, *, command: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """The recorded runs, newest first; only ``command``'s when given."""
        runs = [run for run in reversed(self._records()) if command in (None, run.command)]
        return runs if limit is None else runs[:limit]

    def unfinished(self, *, command: str | None = None) -> list[RunRecord]:
        """The runs that ended without recording their end (killed), newest first."""
        return [run for run in self.recent(command=command) if run.status == "unfinished"]

    # -- internals

    def _now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the run log's clock must return timezone-aware times")
        return now.astimezone(timezone.utc)

    def _live_lock(self, run_id: str) -> FileStateLock:
        return FileStateLock(self.live_dir / f"{run_id}.lock", timeout_s=0, what=f"run {run_id}")

    def _release(self, live: FileStateLock) -> None:
        live.__exit__(None, None, None)
        with contextlib.suppress(OSError):
            live.path.unlink()

    def _finish(self, record: RunRecord, live: FileStateLock, exit_code: int) -> RunRecord:
        finished = replace(record, ended_at=self._now(), exit_code=exit_code, status="finished")

        def end(document: dict[str, Any] | None) -> dict[str, Any]:
            runs = self._raw_runs(document)
            mine = next((raw for raw in runs if raw["id"] == record.id), None)
            if mine is None:
                # Trimmed while it ran (more than `capacity` runs started since): the end is
                # still worth keeping.
                runs.append(_record_to_json(finished))
            else:
                # Updated in place: keys a newer nfdoctor added to the record are kept.
                mine.update(_record_to_json(finished))
            return {**(document or {}), "runs": runs[-self.capacity :]}

        try:
            self.document.update(end)
        finally:
            # Released after the end is written: a reader that then finds the lock free
            # reads the log again and sees the end (see _records).
            self._release(live)
        return finished

    def _raw_runs(self, document: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """The records as stored, each proven readable (a bad one stops any rewrite)."""
        self._parse(document)
        return [] if document is None else list(document["runs"])

    def _parse(self, document: Mapping[str, Any] | None) -> list[RunRecord]:
        if document is None:
            return []
        raw_runs = document.get("runs")
        if not isinstance(raw_runs, list):
            raise StateError(
                f"{self.path}: runs: expected a list of runs, got {json_type(raw_runs)}; "
                f"nothing was changed. {self.document.recover}"
            )
        return [
            _record_from_json(raw, f"{self.path}: runs[{index}]", self.document.recover)
            for index, raw in enumerate(raw_runs)
        ]

    def _records(self) -> list[RunRecord]:
        """Every record, oldest first, each open one marked running or unfinished."""
        records = self._parse(self.document.read())
        dead = {
            run.id
            for run in records
            if run.ended_at is None and not self._live_lock(run.id).held_elsewhere()
        }
        if not dead:
            return records
        # A run that finished between the read and the probe wrote its end before letting
        # its lock go: read again, and only what is still open there was really cut short.
        latest = {run.id: run for run in self._parse(self.document.read())}
        result: list[RunRecord] = []
        for run in records:
            if run.id in dead:
                now = latest.get(run.id, run)
                run = now if now.ended_at is not None else replace(run, status="unfinished")
            result.append(run)
        return result


class FileRun:
    """A run started through a :class:`FileRunLog`, holding its liveness lock until finished."""

    def __init__(self, log: FileRunLog, record: RunRecord, live: FileStateLock) -> None:
        self._log = log
        self._record = record
        self._live: FileStateLock | None = live

    def __repr__(self) -> str:
        return f"FileRun({self._record.id!r}, {self._record.command!r})"

    @property
    def record(self) -> RunRecord:
        """The run as last recorded by this process."""
        return self._record

    def finish(self, exit_code: int) -> RunRecord:
        """Record the end and release the run's liveness lock; a second call changes nothing."""
        if self._live is None:
            return self._record
        live, self._live = self._live, None
        self._record = self._log._finish(self._record, live, exit_code)
        return self._record

    def __enter__(self) -> FileRun:
        """The run itself; leaving the block finishes it if :meth:`finish` was not called."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Finish the run: 0, 130 for Ctrl-C, SystemExit's code, 3 for any other exception."""
        if self._live is None:
            return
        try:
            self.finish(exit_code_for(exc))
        except StateError:
            # The error that ended the run matters more; this run then reads as unfinished,
            # which is the truth: its end could not be recorded.
            if exc is None:
                raise


def open_run_log(state_dir: Path, **options: Any) -> FileRunLog:
    """The run log in ``state_dir`` (``runs.json``); opening touches nothing on disk."""
    return FileRunLog(state_dir / DEFAULT_FILE_NAME, **options)


# --- serialisation ------------------------------------------------------------------------


def _record_to_json(record: RunRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "command": record.command,
        "arguments": list(record.arguments),
        "started_at": record.started_at.isoformat(),
        "ended_at": None if record.ended_at is None else record.ended_at.isoformat(),
        "exit_code": record.exit_code,
        "host": record.host,
        "pid": record.pid,
    }


def _record_from_json(raw: object, where: str, recover: str) -> RunRecord:
    """A record read from the log; problems name the key, never the value."""

    def bad(key: str, expected: str, value: object) -> StateError:
        return StateError(
            f"{where}.{key}: expected {expected}, got {json_type(value)}; nothing was "
            f"changed. {recover}"
        )

    if not isinstance(raw, dict):
        raise StateError(
            f"{where}: expected an object, got {json_type(raw)}; nothing was changed. {recover}"
        )
    run_id = raw.get("id")
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise StateError(
            f"{where}.id: missing or not a run id (letters, digits, '.', '_', '-'); nothing "
            f"was changed. {recover}"
        )
    for key in ("command", "host"):
        if not isinstance(raw.get(key), str):
            raise bad(key, "a string", raw.get(key))
    arguments = raw.get("arguments")
    if not isinstance(arguments, list) or not all(isinstance(a, str) for a in arguments):
        raise bad("arguments", "a list of strings", arguments)
    if not _is_int(raw.get("pid")):
        raise bad("pid", "an integer", raw.get("pid"))
    if raw.get("exit_code") is not None and not _is_int(raw.get("exit_code")):
        raise bad("exit_code", "an integer or null", raw.get("exit_code"))
    started_at = _parse_time(raw.get("started_at"), f"{where}.started_at", recover)
    if started_at is None:
        raise bad("started_at", "an ISO 8601 time", None)
    ended_at = _parse_time(raw.get("ended_at"), f"{where}.ended_at", recover)
    return RunRecord(
        id=run_id,
        command=raw["command"],
        arguments=tuple(arguments),
        started_at=started_at,
        ended_at=ended_at,
        exit_code=raw.get("exit_code"),
        host=raw["host"],
        pid=raw["pid"],
        status="running" if ended_at is None else "finished",
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_time(value: object, where: str, recover: str) -> datetime | None:
    if value is None:
        return None
    problem = None
    if not isinstance(value, str):
        problem = f"expected an ISO 8601 time or null, got {json_type(value)}"
    else:
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is None or parsed.utcoffset() is None:
                problem = "time has no UTC offset"
            else:
                return parsed.astimezone(timezone.utc)
        except (ValueError, OverflowError):
            problem = "not an ISO 8601 time"
    raise StateError(f"{where}: {problem}; nothing was changed. {recover}")


if TYPE_CHECKING:

    def _file_log_is_a_run_log(log: FileRunLog, run: FileRun) -> tuple[RunLog, ActiveRun]:
        return log, run  # mypy checks both against the protocols here
