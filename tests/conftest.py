"""Shared fixtures: a clean environment for every test, and ways to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK_GUARD = Path(__file__).resolve().parent / "loopback_guard"

# No test reaches a host outside loopback: in this process, and (PYTHONPATH below) in every
# nfdoctor process a test starts.
sys.path.insert(0, str(LOOPBACK_GUARD))
import sitecustomize as _loopback_guard  # noqa: E402

_loopback_guard.install()

pytest_plugins = (
    ["tests.conftest_pg"] if (Path(__file__).parent / "conftest_pg.py").exists() else []
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No NFDOCTOR_*, proxy or locale leaks in; XDG dirs and cwd point into tmp_path."""
    for name in list(os.environ):
        if (
            name.startswith("NFDOCTOR_")
            or name.lower().endswith("_proxy")
            or name.startswith("LC_")
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NO_COLOR", raising=False)
    # keyring's fail backend: what a headless server or cron has.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(LOOPBACK_GUARD), str(ROOT)]))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield


@dataclass
class CliResult:
    """What one nfdoctor invocation produced."""

    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``nfdoctor ARGS`` in-process; returns exit code, stdout and stderr."""
    from nfdoctor.cli.app import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        else:  # pragma: no cover - main always exits
            code = 0
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


def run_process(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> CliResult:
    """Run ``python -m nfdoctor ARGS`` as a real process (stdout is not a terminal)."""
    completed = subprocess.run(
        [sys.executable, "-m", "nfdoctor", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else dict(os.environ),
        cwd=cwd,
        timeout=timeout,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    """A demo CRM database (schema v1, planted duplicates) in tmp_path."""
    from datetime import datetime, timezone

    from nfdoctor.simulator.crm_data import build_demo_database

    path = tmp_path / "crm.db"
    build_demo_database(path, seed=7, now=datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc))
    return path


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config file; ``{db}`` in the text becomes a demo-style SQLite URL."""

    def write(text: str, name: str = "nfdoctor.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
