"""Blocking work from async code without ever waiting for it at exit or on Ctrl-C.

asyncio's default executor (``asyncio.to_thread``) is joined when the loop closes, so one
call that never returns (a FIFO opened for reading, a keyring on a dead D-Bus, a silent
host) holds the whole run past its timeouts and past Ctrl-C. A daemon thread is abandoned
instead, and its late result dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["in_daemon_thread"]

T = TypeVar("T")


def in_daemon_thread(fn: Callable[[], T], *, name: str = "nfdoctor-worker") -> asyncio.Future[T]:
    """Run ``fn`` in a daemon thread; await the returned future for its result.

    Cancelling the future (a timeout, Ctrl-C) returns at once; the thread runs on unwatched
    until it ends or the process exits.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(ok: bool, value: object) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)  # type: ignore[arg-type]
        else:
            future.set_exception(value)  # type: ignore[arg-type]

    def target() -> None:
        value: object
        try:
            value, ok = fn(), True
        except BaseException as exc:
            value, ok = exc, False
        # If the loop has closed, the run moved on without this result.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(deliver, ok, value)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future
