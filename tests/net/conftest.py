"""A test PKI (the simulator's) and real TLS servers on 127.0.0.1 to inspect."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nfdoctor.simulator.certs import SimulatorPki

LOOPBACK = "127.0.0.1"
HOST = "lazada.crm.nfdoctor.test"


@pytest.fixture(scope="session")
def pki() -> SimulatorPki:
    """One PKI for the session, dated from the real clock (OpenSSL judges by it)."""
    return SimulatorPki(datetime.now(timezone.utc))


@pytest.fixture
def ca_bundle(pki: SimulatorPki, tmp_path: Path) -> Path:
    """The PKI's trusted root as a PEM bundle file."""
    path = tmp_path / "root.pem"
    path.write_bytes(pki.root_pem())
    return path


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


@contextlib.asynccontextmanager
async def tls_server(context: ssl.SSLContext) -> AsyncIterator[int]:
    """A real TLS server on 127.0.0.1 presenting ``context``'s chain; yields its port."""
    server = await asyncio.start_server(_hang_up, LOOPBACK, 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
