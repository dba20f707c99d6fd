"""Bounded, backend-aware access to the OS keyring.

On headless servers and in cron keyring's default backend is usually ``fail`` (every call
raises) and a configured ``null`` backend silently discards writes; a D-Bus backend with
no session bus can hang. Every call here is bounded by a timeout and such backends are
reported as unusable, naming the alternatives.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TypeVar

from nfdoctor.errors import KeyringUnavailableError

T = TypeVar("T")

ALTERNATIVES = (
    "use env:VAR or file:PATH instead, or install a backend "
    "(pip install keyrings.alt) and set PYTHON_KEYRING_BACKEND"
)
UNUSABLE_BACKENDS = {
    "keyring.backends.fail.Keyring": "no usable backend (keyring's 'fail' backend)",
    "keyring.backends.null.Keyring": "the 'null' backend, which discards everything",
}


def call_bounded(fn: Callable[[], T], timeout_s: float, what: str) -> T:
    """Run ``fn`` in a daemon thread so a hung keyring cannot hang nfdoctor's exit."""
    outcome: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=1)

    def target() -> None:
        try:
            outcome.put((True, fn()))
        except BaseException as exc:  # re-raised in the caller's thread
            outcome.put((False, exc))

    threading.Thread(target=target, name="nfdoctor-keyring", daemon=True).start()
    try:
        ok, value = outcome.get(timeout=timeout_s)
    except queue.Empty:
        detail = f"the OS keyring did not answer within {timeout_s:g} s ({what})"
        raise KeyringUnavailableError(f"{detail}; {ALTERNATIVES}", detail=detail) from None
    if not ok:
        raise value  # type: ignore[misc]
    return value  # type: ignore[return-value]


def keyring_backend_name(timeout_s: float = 3.0) -> str:
    """Dotted class name of the active keyring backend (imports keyring lazily)."""

    def find() -> str:
        import keyring

        try:
            backend = keyring.get_keyring()
        except Exception as exc:
            # PYTHON_KEYRING_BACKEND or keyringrc.cfg naming a backend that cannot be loaded
            # (a typo, an uninstalled package): keyring raises ImportError and friends.
            detail = (
                f"the OS keyring backend cannot be loaded ({type(exc).__name__}: {exc}; "
                "check PYTHON_KEYRING_BACKEND)"
            )
            raise KeyringUnavailableError(f"{detail}; {ALTERNATIVES}", detail=detail) from None
        return f"{type(backend).__module__}.{type(backend).__qualname__}"

    return call_bounded(find, timeout_s, "finding the backend")


def ensure_usable_backend(timeout_s: float = 3.0) -> str:
    """The backend name, or KeyringUnavailableError if it cannot hold secrets."""
    name = keyring_backend_name(timeout_s)
    problem = UNUSABLE_BACKENDS.get(name)
    if problem:
        detail = f"the OS keyring has {problem}"
        raise KeyringUnavailableError(f"{detail}; {ALTERNATIVES}", detail=detail)
    return name


def get_password(service: str, name: str, *, timeout_s: float = 3.0) -> str | None:
    """Read one secret from the keyring, bounded; None when it has no such entry."""
    ensure_usable_backend(timeout_s)

    def read() -> str | None:
        import keyring
        import keyring.errors

        try:
            return keyring.get_password(service, name)
        except keyring.errors.KeyringError as exc:
            detail = f"the OS keyring failed reading {service}/{name}: {exc}"
            raise KeyringUnavailableError(f"{detail}; {ALTERNATIVES}", detail=detail) from None

    return call_bounded(read, timeout_s, f"reading {service}/{name}")
