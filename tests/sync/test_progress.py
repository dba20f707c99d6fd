"""The sync's progress bar: on a terminal only, per shop and stream, with counts and rate."""

from __future__ import annotations

import io

from nfdoctor.cli.sync_cmd import sync_progress
from nfdoctor.context import Environment
from nfdoctor.platforms.spec import Account
from nfdoctor.sync.engine import JobOutcome


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def outcome(fetched: int, finished: int) -> JobOutcome:
    result = JobOutcome(
        account=Account(platform="lazada", account_id="965520292", name="Mỹ Phẩm"), stream="orders"
    )
    result.windows, result.fetched, result.windows_finished = 5, fetched, finished
    return result


def test_a_terminal_gets_a_bar_per_shop_with_counts() -> None:
    stderr = Terminal()
    env = Environment(stderr=stderr, environ={})
    with sync_progress(env) as update:
        update(outcome(100, 1))
        update(outcome(2500, 5))
    shown = stderr.getvalue()
    assert "lazada 965520292" in shown and "orders" in shown
    assert "records" in shown


def test_a_pipe_or_cron_gets_nothing() -> None:
    stderr = io.StringIO()
    with sync_progress(Environment(stderr=stderr, environ={})) as update:
        update(outcome(100, 1))
    assert stderr.getvalue() == ""
    terminal = Terminal()
    with sync_progress(Environment(stderr=terminal, environ={"NO_COLOR": "1"})) as update:
        update(outcome(100, 1))
    assert terminal.getvalue() == ""
