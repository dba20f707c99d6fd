"""Fixtures for the state tests: worker processes that are never left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

Worker = subprocess.Popen[str]


@pytest.fixture
def spawn() -> Iterator[Callable[..., Worker]]:
    """Start ``python -m tests.state.workers ARGS`` (pipes on stdin and stdout); every worker
    still alive when the test ends is killed."""
    workers: list[Worker] = []

    def start(*args: str) -> Worker:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.state.workers", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        for stream in (worker.stdin, worker.stdout):
            if stream is not None and not stream.closed:
                stream.close()
