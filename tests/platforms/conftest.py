"""Fixtures for the platform client tests: a fixed clock and no real network."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
import respx

NOW = datetime(2026, 11, 20, 8, 0, 0, tzinfo=timezone.utc)


def fixed_clock() -> datetime:
    """The tests' clock: always :data:`NOW`."""
    return NOW


@pytest.fixture
def mock_http() -> Iterator[respx.MockRouter]:
    """A respx router that fails any request not explicitly mocked (no real network)."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router
