"""The first diagnose checks, each on controlled inputs."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from nfdoctor.checks.base import CheckContext
from nfdoctor.checks.config_changes import ConfigChangesCheck
from nfdoctor.checks.system import DiskCheck, LoadCheck, MemoryCheck, read_meminfo
from nfdoctor.results import Status
from tests.checking import NOW, context_from_file


def _ctx(
    tmp_path: Path, text: str = "{}\n", clock: Callable[[], datetime] = lambda: NOW
) -> CheckContext:
    """The check context a run on this config file would build (secrets resolved for real)."""
    path = tmp_path / "nfdoctor.yaml"
    path.write_text(text)
    return context_from_file(path, state_dir=tmp_path / "state" / "nfdoctor", clock=clock)


@pytest.mark.parametrize(
    ("load", "cores", "status"),
    [(1.0, 2, Status.OK), (4.0, 2, Status.WARNING), (8.5, 2, Status.CRITICAL)],
)
def test_load_per_core(tmp_path: Path, load: float, cores: int, status: Status) -> None:
    check = LoadCheck(loadavg=lambda: (load, 1.0, 1.0), cpu_count=lambda: cores)
    (result,) = check.run(_ctx(tmp_path))
    assert result.status is status
    assert result.metrics[0].value == pytest.approx(load / cores)


def test_memory_thresholds(tmp_path: Path) -> None:
    check = MemoryCheck(meminfo=lambda: {"MemTotal": 1000, "MemAvailable": 80})
    (result,) = check.run(_ctx(tmp_path))
    assert result.status is Status.WARNING
    assert "(8 %)" in result.summary
    check = MemoryCheck(meminfo=lambda: {"MemTotal": 1000, "MemAvailable": 40})
    assert check.run(_ctx(tmp_path))[0].status is Status.CRITICAL


def test_meminfo_parser(tmp_path: Path) -> None:
    sample = tmp_path / "meminfo"
    sample.write_text(
        "MemTotal:       16318412 kB\nMemAvailable:    8159206 kB\nHugePages_Total: 0\n"
    )
    info = read_meminfo(sample)
    assert info["MemTotal"] == 16318412 * 1024 and info["HugePages_Total"] == 0


def test_disk_thresholds_follow_config(tmp_path: Path) -> None:
    # 101 % free is impossible, so a warning threshold of 100 makes any real disk WARNING.
    ctx = _ctx(tmp_path, "thresholds:\n  disk_free_warning: 100\n  disk_free_critical: 0\n")
    results = DiskCheck().run(ctx)
    assert results and all(r.status is Status.WARNING for r in results)
    assert any("nfdoctor state" in d for r in results for d in r.details)


def test_config_changes_first_run_then_change_then_quiet(tmp_path: Path) -> None:
    now = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)
    clock = [now]
    secret_file = tmp_path / "key"
    secret_file.write_text("first-secret-value")
    text = "crm:\n  api_key: file:key\nthresholds:\n  api_latency: 1s\n"
    ctx = _ctx(tmp_path, text, clock=lambda: clock[0])
    (first,) = ConfigChangesCheck().run(ctx)
    assert first.status is Status.OK and first.summary.startswith("first run")

    # Edit a threshold and rotate the secret's value.
    secret_file.write_text("second-secret-value")
    clock[0] = now + timedelta(hours=1)
    ctx = _ctx(tmp_path, text.replace("1s", "2s"), clock=lambda: clock[0])
    (second,) = ConfigChangesCheck().run(ctx)
    assert second.status is Status.WARNING
    assert 'thresholds.api_latency: "1s" → "2s"' in " ".join(second.details)
    assert "crm.api_key: secret value changed" in " ".join(second.details)

    state_files = list((tmp_path / "state" / "nfdoctor").glob("config-*.json"))
    state_text = state_files[0].read_text()
    assert "first-secret-value" not in state_text and "second-secret-value" not in state_text
    assert json.loads(state_text)["version"] == 1

    # Same config two days later: the change has aged out of the 24 h window.
    clock[0] = now + timedelta(days=2)
    ctx = _ctx(tmp_path, text.replace("1s", "2s"), clock=lambda: clock[0])
    (third,) = ConfigChangesCheck().run(ctx)
    assert third.status is Status.OK
    assert third.summary.startswith("no changes in the last 24 h; last change")


def test_config_changes_survives_corrupt_state(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    ConfigChangesCheck().run(ctx)
    (state,) = (tmp_path / "state" / "nfdoctor").glob("config-*.json")
    state.write_text("{not json")
    (result,) = ConfigChangesCheck().run(_ctx(tmp_path))
    assert result.status is Status.OK and result.summary.startswith("first run")
    # The damaged history is kept aside, not overwritten, and a new baseline is in place.
    assert state.with_name(state.name + ".corrupt").read_text() == "{not json"
    assert json.loads(state.read_text())["version"] == 1


def test_config_changes_never_stores_url_passwords(tmp_path: Path) -> None:
    text = "database:\n  url: postgresql://crm:pw-in-url-9d2f@127.0.0.1:1/crm\n"
    ConfigChangesCheck().run(_ctx(tmp_path, text))
    ctx = _ctx(tmp_path, text.replace("pw-in-url-9d2f", "pw-rotated-77ab"))
    (result,) = ConfigChangesCheck().run(ctx)
    assert "database.url: secret value changed" in result.details[0]
    state = next((tmp_path / "state" / "nfdoctor").glob("config-*.json")).read_text()
    assert "pw-in-url-9d2f" not in state and "pw-rotated-77ab" not in state
