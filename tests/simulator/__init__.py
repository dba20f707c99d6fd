"""Tests of the simulator; helpers shared by them live here (no network, no sockets)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

NOW = datetime(2026, 11, 26, 3, 0, 0, tzinfo=timezone.utc)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        """Move time forward by ``timedelta(**kwargs)``."""
        self.now += timedelta(**kwargs)


def call(app: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request to the ASGI app in-process (the base URL is never contacted)."""

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim.test") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(run())
