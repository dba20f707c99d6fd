"""Tests contact loopback only: no platform host outside 127.0.0.1 is ever reached.

Imported in-process by ``tests/conftest.py`` and, through ``PYTHONPATH``, by every
``python -m nfdoctor`` the tests start (Python imports ``sitecustomize`` at start-up).
Name resolution and ``connect`` refuse anything that is not loopback, so a config that
still points at ``partner.shopeemobile.com`` fails loudly instead of calling it.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


class NonLoopbackBlocked(socket.gaierror):
    """A test tried to reach a host outside loopback."""


def is_loopback(host: object) -> bool:
    """Whether ``host`` (name or address) is this machine."""
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(text.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not is_loopback(host):
        raise NonLoopbackBlocked(socket.EAI_NONAME, f"tests reach loopback only, not {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def _check_address(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(address[0]):
        raise ConnectionRefusedError(f"tests reach loopback only, not {address[0]!r}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address)
    return _real_connect_ex(self, address)


def install() -> None:
    """Put the guard in place (idempotent)."""
    socket.getaddrinfo = _guarded_getaddrinfo
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


install()
