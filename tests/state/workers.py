"""Child processes for the state tests (run as ``python -m tests.state.workers ACTION ...``).

Every action that holds something prints one line once it does, so the test knows when to
look (or to SIGKILL it). Actions that run together print "ready" and wait for a line on
stdin, so their work really overlaps.

    hold file LOCK_PATH | hold pg URL NAME        hold the lock until stdin closes
    count file LOCK_PATH - DIR N | count pg URL NAME DIR N | count none - - DIR N
                                                  N increments of DIR/counter under the lock
                                                  (none: without one); exit 1 if another
                                                  holder was ever inside at the same time
    doc-count PATH N                              N JsonDocument.update increments
    run-start LOG_PATH                            start a run, print its id, wait for stdin
    run-many LOG_PATH N                           N runs started and finished
    token-hold TOKEN_FILE                         FileTokenStore.update that never returns
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from nfdoctor.state.documents import JsonDocument
from nfdoctor.state.locks import FileStateLock, PostgresAdvisoryLock
from nfdoctor.state.runs import FileRunLog

#: the window between reading and writing the counter: without a lock, updates get lost
RACE_WINDOW_S = 0.002


def pg_connect(url: str) -> Any:
    """An autocommit connection named as nfdoctor names its sessions."""
    import psycopg

    return psycopg.connect(url, autocommit=True, application_name="nfdoctor")


def lock_for(kind: str, target: str, name: str) -> AbstractContextManager[None]:
    """The lock a worker holds: a lock file, an advisory lock, or none at all."""
    if kind == "file":
        return FileStateLock(Path(target), timeout_s=30)
    if kind == "pg":
        return PostgresAdvisoryLock(name, pg_connect(target), timeout_s=30)
    return contextlib.nullcontext()


def count(lock: AbstractContextManager[None], directory: Path, times: int) -> int:
    """``times`` read-increment-write cycles of ``directory/counter`` under ``lock``."""
    counter = directory / "counter"
    inside = directory / "inside"
    overlapped = False
    for _ in range(times):
        with lock:
            try:
                # O_EXCL: if another holder is inside too, this fails: the lock let both in.
                os.close(os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                overlapped = True
            value = int(counter.read_text() or "0") if counter.exists() else 0
            time.sleep(RACE_WINDOW_S)
            counter.write_text(str(value + 1))
            with contextlib.suppress(FileNotFoundError):
                inside.unlink()
    return 1 if overlapped else 0


def _increment(document: dict[str, Any] | None) -> dict[str, Any]:
    current = dict(document or {})
    value = int(current.get("count", 0))
    time.sleep(RACE_WINDOW_S)
    current["count"] = value + 1
    return current


def _wait_for_go() -> None:
    # "ready" once imports are done, then wait: workers released together really overlap.
    print("ready", flush=True)
    sys.stdin.readline()


def main(argv: list[str]) -> int:
    action, *args = argv
    if action == "hold":
        kind, target, *rest = args
        with lock_for(kind, target, rest[0] if rest else "-"):
            print("held", flush=True)
            sys.stdin.read()
        return 0
    if action == "count":
        kind, target, name, directory, times = args
        lock = lock_for(kind, target, name)
        _wait_for_go()
        return count(lock, Path(directory), int(times))
    if action == "doc-count":
        document = JsonDocument(Path(args[0]), "nfdoctor.test-counter/v1", lock_timeout_s=30)
        _wait_for_go()
        for _ in range(int(args[1])):
            document.update(_increment)
        return 0
    if action == "run-start":
        log = FileRunLog(Path(args[0]))
        run = log.start("sync", ["--since", "2h"], mask=str)
        print(run.record.id, flush=True)
        sys.stdin.read()
        return 0
    if action == "run-many":
        log = FileRunLog(Path(args[0]), lock_timeout_s=30)
        _wait_for_go()
        for index in range(int(args[1])):
            with log.start("dedupe", [f"--n={index}"], mask=str) as run:
                run.finish(index % 4)
        return 0
    if action == "token-hold":
        from nfdoctor.tokens import FileTokenStore

        def never_returns(current: Any) -> Any:
            print("inside", flush=True)
            time.sleep(3600)
            return current

        FileTokenStore(Path(args[0])).update("shopee", "12345678", never_returns)
        return 0
    raise SystemExit(f"unknown action {action!r}")


# --- used by the tests ------------------------------------------------------------------


def first_line(worker: subprocess.Popen[str]) -> str:
    """The worker's first line of output (what it holds, or a run id), without the newline."""
    assert worker.stdout is not None
    return worker.stdout.readline().rstrip("\n")


def release_together(workers: list[subprocess.Popen[str]], timeout: float = 60) -> list[int]:
    """Let ``workers`` start at once, once all are ready; their exit codes."""
    for worker in workers:
        assert first_line(worker) == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.close()
    return [worker.wait(timeout=timeout) for worker in workers]


def kill(worker: subprocess.Popen[str]) -> None:
    """SIGKILL ``worker`` and wait until it is gone: no clean-up code of its runs."""
    worker.send_signal(signal.SIGKILL)
    assert worker.wait(timeout=10) == -signal.SIGKILL


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
