"""The one context object: what a command needs from the outside world, in one place.

Tests build a :class:`Context` with their own environ, streams, clock and directories; no
module reads ``os.environ``, the clock or the cwd on its own.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nfdoctor.secrets.redaction import Redactor

if TYPE_CHECKING:
    from nfdoctor.config.loader import LoadedConfig
    from nfdoctor.secrets.resolver import SecretResolver
    from nfdoctor.tokens.store import TokenStore


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


def current_directory() -> Path:
    """The working directory; UsageError when it no longer exists (deleted, unmounted)."""
    from nfdoctor.errors import UsageError

    try:
        return Path.cwd()
    except OSError as exc:
        raise UsageError(
            f"the current directory cannot be used ({exc.strerror or exc}: deleted or "
            "unmounted?); cd to a directory that exists and run again"
        ) from None


def state_dir_from(environ: Mapping[str, str]) -> Path:
    """``$XDG_STATE_HOME/nfdoctor`` (``~/.local/state/nfdoctor`` when unset)."""
    base = environ.get("XDG_STATE_HOME") or os.path.join(
        environ.get("HOME", "~"), ".local", "state"
    )
    return Path(base).expanduser() / "nfdoctor"


@dataclass
class Context:
    """Config, streams, environment, clock and directories for one command run."""

    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    cwd: Path = field(default_factory=Path.cwd)
    clock: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic
    redactor: Redactor = field(default_factory=Redactor)
    config_path: Path | None = None  # --config, when given
    lang: str | None = None  # --lang, when given
    debug: bool = False
    command: str | None = None  # "config validate": the command being run, for tips
    #: httpx.AsyncBaseTransport for every platform call; None = the network (tests swap it)
    http_transport: Any = None
    #: async clean-ups the check runner awaits before its event loop closes
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _token_store: TokenStore | None = None
    _loaded: LoadedConfig | None = None
    _resolver: SecretResolver | None = None

    @property
    def language(self) -> str:
        """The hint language: ``--lang`` or the locale."""
        return self.lang or detect_lang(self.environ)

    @property
    def state_dir(self) -> Path:
        """Where nfdoctor keeps its own state between runs."""
        return state_dir_from(self.environ)

    def load_config(self) -> LoadedConfig:
        """Find, load and validate the config once per run (ConfigError on problems)."""
        if self._loaded is None:
            from nfdoctor.config.loader import discover, load_config

            path = discover(explicit=self.config_path, environ=self.environ, cwd=self.cwd)
            self._loaded = load_config(path)
        return self._loaded

    @property
    def secrets(self) -> SecretResolver:
        """The run's secret resolver; every value it resolves is registered for redaction."""
        if self._resolver is None:
            from nfdoctor.secrets.resolver import SecretResolver

            base_dir = self._loaded.base_dir if self._loaded else self.cwd
            self._resolver = SecretResolver(
                redactor=self.redactor, environ=self.environ, base_dir=base_dir
            )
        return self._resolver

    def resolve_all_secrets(self) -> int:
        """Resolve every secret the config references, failing on the first that cannot be.

        Commands do this up front so a missing secret stops the run before anything is
        measured or written, with one line saying which key and where.
        """
        loaded = self.load_config()
        for secret in loaded.secrets:
            self.secrets.resolve(secret.ref, where=secret.where)
        return len(loaded.secrets)

    def secret_at(self, key_path: str) -> str:
        """The resolved value of the secret written at ``key_path`` (``platforms.x.app_secret``)."""
        from nfdoctor.errors import ConfigError, ConfigProblem

        loaded = self.load_config()
        for secret in loaded.secrets:
            if secret.key_path == key_path:
                return self.secrets.resolve(secret.ref, where=secret.where)
        raise ConfigError(
            [ConfigProblem(file=str(loaded.path), key_path=key_path, message="missing")]
        )

    def token_store(self) -> TokenStore:
        """The run's token store, as ``tokens:`` in the config says (keyring by default)."""
        if self._token_store is None:
            from nfdoctor.tokens.store import open_token_store

            loaded = self.load_config()
            self._token_store = open_token_store(
                loaded.config.tokens, base_dir=loaded.base_dir, state_dir=self.state_dir
            )
        return self._token_store
