"""Fixtures for the platform client tests: a fixed clock and no real network."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import respx

from nfdoctor.platforms.base import ApiSession

NOW = datetime(2026, 11, 20, 8, 0, 0, tzinfo=timezone.utc)


def fixed_clock() -> datetime:
    """The tests' clock: always :data:`NOW`."""
    return NOW


@pytest.fixture
def mock_http() -> Iterator[respx.MockRouter]:
    """A respx router that fails any request not explicitly mocked (no real network)."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


def make_client(
    client_cls: type[Any], auth_cls: type[Any], default_base_url: str, /, **options: Any
) -> Any:
    """A client built as the product builds one (its auth, then a session), from the flat
    keyword options the tests speak in: each option goes to whichever of the session, the
    client and the auth takes it.

    ``base_url``, ``transport``, ``timeout_s`` and ``http`` (a shared AsyncClient) make the
    session; the client's own keywords (``page_id``, ``seller_id``, ``shop_cipher`` …) go to
    it; everything else to the auth (which also gets ``base_url`` where it signs the path).
    """
    base = options.pop("base_url", default_base_url)
    transport = options.pop("transport", None)
    timeout_s = options.pop("timeout_s", 10.0)
    http = options.pop("http", None)
    if http is not None:
        session = ApiSession(http, base_url=base, timeout_s=timeout_s)
    else:
        session = ApiSession.standalone(base, transport=transport, timeout_s=timeout_s)
    client_keys = set(inspect.signature(client_cls).parameters) - {"auth", "session"}
    client_options = {key: options.pop(key) for key in list(options) if key in client_keys}
    if "base_url" in inspect.signature(auth_cls).parameters:
        options["base_url"] = base
    return client_cls(auth_cls(**options), session, **client_options)
