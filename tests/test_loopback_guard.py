"""The guard that keeps every test on loopback really blocks other hosts."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import httpx
import pytest


def test_name_outside_loopback_is_refused_in_process() -> None:
    with pytest.raises(socket.gaierror, match="loopback only"):
        socket.getaddrinfo("partner.shopeemobile.com", 443)


def test_address_outside_loopback_is_refused_without_dns() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(ConnectionRefusedError, match="loopback only"):
            sock.connect(("203.0.113.7", 443))
    finally:
        sock.close()


def test_httpx_to_a_platform_host_fails_before_leaving_the_machine() -> None:
    async def call() -> None:
        async with httpx.AsyncClient() as client:
            await client.get("https://graph.facebook.com/v21.0/me")

    with pytest.raises(httpx.ConnectError, match="loopback only"):
        asyncio.run(call())


def test_loopback_still_resolves() -> None:
    assert socket.getaddrinfo("127.0.0.1", 80)
    assert socket.getaddrinfo("localhost", 80)


def test_child_processes_are_guarded_too() -> None:
    code = "import socket; socket.getaddrinfo('open-api.tiktokglobalshop.com', 443)"
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert completed.returncode != 0
    assert "loopback only" in completed.stderr
