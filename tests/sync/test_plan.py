"""How a sync is cut up: shards of shops, windows of a range, the request's dates."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nfdoctor.errors import UsageError
from nfdoctor.sync.engine import grid_windows
from nfdoctor.sync.shard import Shard, parse_shard

UTC = timezone.utc


@settings(deadline=None)
@given(
    shops=st.lists(
        st.text(alphabet="0123456789", min_size=1, max_size=19), unique=True, max_size=60
    ),
    count=st.integers(min_value=1, max_value=8),
)
def test_every_shop_is_in_exactly_one_shard(shops: list[str], count: int) -> None:
    for shop in shops:
        holders = [i for i in range(1, count + 1) if Shard(i, count).holds("lazada", shop)]
        assert len(holders) == 1, (shop, holders)


def test_the_assignment_depends_on_the_shop_alone() -> None:
    shops = [str(100000 + i) for i in range(100)]
    before = {s: next(i for i in range(1, 5) if Shard(i, 4).holds("shopee", s)) for s in shops}
    # Another process, the shops listed in another order and one more: no shop moves.
    after = {
        s: next(i for i in range(1, 5) if Shard(i, 4).holds("shopee", s))
        for s in [*reversed(shops), "999"]
    }
    assert all(after[s] == before[s] for s in shops)
    sizes = [sum(1 for s in shops if before[s] == i) for i in range(1, 5)]
    assert min(sizes) >= 15, sizes  # a hash spreads 100 shops over 4 shards roughly evenly


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3/2", "i must be from 1 to n"),
        ("0/2", "i must be from 1 to n"),
        ("1/0", "i must be from 1 to n"),
        ("a/b", "expected i/n"),
        ("1", "expected i/n"),
        ("-1/2", "expected i/n"),
    ],
)
def test_a_bad_shard_is_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_shard(text)


def test_parse_shard() -> None:
    assert parse_shard(" 2 / 4 ") == Shard(2, 4)


def test_windows_follow_the_weekly_utc_grid_and_the_platforms_limit() -> None:
    # The grid counts weeks from the epoch (a Thursday): 2026-11-19 and 2026-11-26 are cuts.
    since = datetime(2026, 11, 10, 10, 30, tzinfo=UTC)
    until = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    windows = grid_windows(since, until, timedelta(days=15))
    assert [(w.start, w.end) for w in windows] == [
        (since, datetime(2026, 11, 12, tzinfo=UTC)),
        (datetime(2026, 11, 12, tzinfo=UTC), datetime(2026, 11, 19, tzinfo=UTC)),
        (datetime(2026, 11, 19, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC)),
        (datetime(2026, 11, 26, tzinfo=UTC), until),
    ]
    # A run an hour later (a resumed one covers both ranges) finds the same keys for the
    # weeks in between.
    later = grid_windows(since, until + timedelta(hours=1), timedelta(days=15))
    assert {w.key() for w in windows[:-1]} <= {w.key() for w in later}
    assert grid_windows(until, since, None) == []
    # A limit below a week cuts the weeks further.
    hours = grid_windows(since, since + timedelta(hours=5), timedelta(hours=2))
    assert [w.end - w.start for w in hours] == [
        timedelta(hours=2),
        timedelta(hours=2),
        timedelta(hours=1),
    ]


@settings(deadline=None)  # a loaded CI machine is slow, not wrong
@given(
    start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
    length=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=90)),
)
def test_windows_cover_the_range_exactly(start: datetime, length: timedelta) -> None:
    since = start.replace(tzinfo=UTC)
    until = since + length
    windows = grid_windows(since, until, timedelta(days=15))
    if length == timedelta(0):
        assert windows == []
        return
    assert windows[0].start == since and windows[-1].end == until
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))
    assert all(timedelta(0) < w.end - w.start <= timedelta(days=7) for w in windows)
