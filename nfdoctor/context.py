"""The outside world of one command, built once and frozen: streams, environment, clock.

httpie's ``Environment``: the CLI builds one :class:`Environment` per process and passes it
down; tests build one with their own environ, streams, clock and directories. No module
reads ``os.environ``, the clock or the cwd on its own. What a run needs beyond this (the
loaded config, its resolved secrets, the platform session) is built by the service before
the run starts and handed to the checks as their own frozen context.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from nfdoctor.errors import UsageError
from nfdoctor.secrets.redaction import Redactor

__all__ = [
    "Environment",
    "current_directory",
    "detect_lang",
    "state_dir_from",
    "utc_now",
]


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)


def detect_lang(environ: Mapping[str, str]) -> str:
    """``vi`` when the locale says Vietnamese (``vi_VN.UTF-8`` …), else ``en``."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = environ.get(name)
        if value:
            return "vi" if value.lower().startswith("vi") else "en"
    return "en"


def state_dir_from(environ: Mapping[str, str]) -> Path:
    """``$XDG_STATE_HOME/nfdoctor`` (``~/.local/state/nfdoctor`` when unset)."""
    base = environ.get("XDG_STATE_HOME") or os.path.join(
        environ.get("HOME", "~"), ".local", "state"
    )
    try:
        return Path(base).expanduser() / "nfdoctor"
    except RuntimeError:  # "~" for a user without a home directory
        return Path(base) / "nfdoctor"


def current_directory() -> Path:
    """The working directory; UsageError when it no longer exists (deleted, unmounted)."""
    try:
        return Path.cwd()
    except OSError as exc:
        raise UsageError(
            f"the current directory cannot be used ({exc.strerror or exc}: deleted or "
            "unmounted?); cd to a directory that exists and run again"
        ) from None


@dataclass(frozen=True, kw_only=True)
class Environment:
    """What a command needs from the outside world, fixed for the whole run."""

    environ: Mapping[str, str] = field(default_factory=dict)
    stdout: TextIO = field(default_factory=io.StringIO)
    stderr: TextIO = field(default_factory=io.StringIO)
    cwd: Path = Path("/")
    clock: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic
    #: every resolved secret is registered here; everything printed goes through it
    redactor: Redactor = field(default_factory=Redactor)
    debug: bool = False
    #: the hint language: ``--lang``, else the locale
    lang: str = "en"

    @classmethod
    def of_process(
        cls,
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        debug: bool = False,
        lang: str | None = None,
    ) -> Environment:
        """The process's environment (UsageError for a working directory that is gone)."""
        environ = dict(os.environ)
        if lang is not None and lang not in ("vi", "en"):
            raise UsageError(f"--lang: expected vi or en, got {lang!r}")
        return cls(
            environ=environ,
            stdout=stdout if stdout is not None else sys.stdout,
            stderr=stderr if stderr is not None else sys.stderr,
            cwd=current_directory(),
            debug=debug,
            lang=lang or detect_lang(environ),
        )

    @property
    def state_dir(self) -> Path:
        """Where nfdoctor keeps its own state between runs."""
        return state_dir_from(self.environ)
