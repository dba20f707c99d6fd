"""The platform session: everything one run needs to talk to the platforms, owned in one place.

A service opens one :class:`PlatformSession` for a run (``async with``), and every check or
command that talks to a platform goes through it; nobody else makes or closes an HTTP client.
It holds, per platform in scope, the HTTP client and its :class:`~nfdoctor.platforms.base.
ApiSession` (base URL, per-call timeout, the connection slots shared by the platform's
shops), one TLS context for all of them, the token store, and builds a client per account
from the platform's spec.

Connections: each platform gets ``max_connections`` (default 10) at once; five platforms
stay within design.md's run-wide cap of 50, one platform's many shops cannot starve the
others or burst its rate limit, and a call's wait for a slot is measured as queueing, apart
from the platform's latency.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from nfdoctor.config.model import NfdoctorConfig
from nfdoctor.platforms.base import (
    ApiSession,
    Clock,
    ConnectionSlots,
    FetchRetry,
    PlatformClient,
    RequestStats,
    TokenSet,
)
from nfdoctor.platforms.registry import spec as platform_spec
from nfdoctor.platforms.spec import Account, ClientInputs, PlatformSection, PlatformSpec
from nfdoctor.secrets.redaction import Redactor
from nfdoctor.secrets.resolver import ResolvedSecrets
from nfdoctor.threads import in_daemon_thread
from nfdoctor.tokens.store import StoredToken, TokenStore

__all__ = ["PlatformSession", "make_tls_context"]


def make_tls_context() -> ssl.SSLContext:
    """The TLS context every platform client shares (the CA bundle loads once, ~20 ms)."""
    context = httpx.create_ssl_context()
    # As browsers and the platforms do: no fallback to the certificate's CN when it has no
    # subjectAltName (Python 3.11 still falls back).
    context.hostname_checks_common_name = False
    return context


@dataclass
class _Platform:
    """One platform's part of the session."""

    spec: PlatformSpec[Any]
    section: PlatformSection
    accounts: list[Account]
    api: ApiSession | None = None


@dataclass
class PlatformSession:
    """One run's clients, connections, TLS context and token store (``async with``)."""

    config: NfdoctorConfig
    secrets: ResolvedSecrets
    token_store: TokenStore
    redactor: Redactor
    clock: Clock
    #: the accounts in scope per platform (from :func:`nfdoctor.platforms.registry.select_accounts`)
    accounts: Mapping[str, list[Account]]
    call_timeout_s: float = 10.0
    #: every HTTP call goes through this transport when set (tests: the simulator in-process)
    transport: httpx.AsyncBaseTransport | None = None
    tls: ssl.SSLContext | None = None
    #: per platform, awaited before every request (sync: the shared rate limit)
    pacers: Mapping[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)
    #: how repeatable reads are retried (None: the defaults of FetchRetry)
    retry: FetchRetry | None = None
    _platforms: dict[str, _Platform] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for name, accounts in self.accounts.items():
            platform = platform_spec(name)
            section = platform.section(self.config.platforms)
            if section is None:
                raise ValueError(f"{name} has accounts in scope but no config section")
            self._platforms[name] = _Platform(spec=platform, section=section, accounts=accounts)
        if self.tls is None and self._platforms:
            # Before the event loop: loading the CA bundle is CPU work that would delay every
            # shop's first request.
            self.tls = make_tls_context()

    async def __aenter__(self) -> PlatformSession:
        for platform in self._platforms.values():
            cap = platform.section.max_connections
            http = httpx.AsyncClient(
                transport=self.transport,
                verify=self.tls if self.tls is not None else True,
                timeout=self.call_timeout_s,
                follow_redirects=False,
                # As large as the slots: queueing happens (and is measured) in the slots.
                limits=httpx.Limits(max_connections=cap, max_keepalive_connections=cap),
                headers={"user-agent": "nfdoctor"},
            )
            platform.api = ApiSession(
                http,
                base_url=platform.spec.base_url(platform.section),
                timeout_s=self.call_timeout_s,
                slots=ConnectionSlots(cap),
                pacer=self.pacers.get(platform.spec.name),
                retry=self.retry,
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for platform in self._platforms.values():
            if platform.api is not None:
                await platform.api.http.aclose()
                platform.api = None

    # -- what the checks and commands ask

    @property
    def platform_names(self) -> list[str]:
        """The platforms in scope, in report order."""
        return list(self._platforms)

    def spec(self, name: str) -> PlatformSpec[Any]:
        """The spec of a platform in scope."""
        return self._platforms[name].spec

    def section(self, name: str) -> PlatformSection:
        """The config section of a platform in scope."""
        return self._platforms[name].section

    def stats(self, name: str) -> RequestStats:
        """What the run sent to ``name`` and how it answered (inside ``async with``)."""
        api = self._platforms[name].api
        assert api is not None, "the session is not open"
        return api.stats

    def accounts_of(self, name: str) -> list[Account]:
        """The accounts of ``name`` in scope."""
        return self._platforms[name].accounts

    def urls(self, name: str) -> list[str]:
        """The hosts the platform's calls go to (API base, token host), as configured."""
        platform = self._platforms[name]
        return platform.spec.urls(platform.section)

    def max_connections(self, name: str) -> int:
        """nfdoctor's own cap on connections open at once to ``name``."""
        return self._platforms[name].section.max_connections

    def client(
        self,
        account: Account,
        *,
        access_token: str,
        refresh_token: str | None = None,
        on_refresh: Callable[[TokenSet], None] | None = None,
    ) -> PlatformClient:
        """A client for ``account`` on the session's connections (closed with the session)."""
        platform = self._platforms[account.platform]
        if platform.api is None:
            raise RuntimeError("PlatformSession.client() outside `async with`")
        prefix = f"platforms.{account.platform}."
        inputs: ClientInputs[Any] = ClientInputs(
            section=platform.section,
            account_id=account.account_id,
            secret=lambda name: self.secrets.get(prefix + name),
            session=platform.api,
            token_url=platform.spec.token_host(platform.section),
            clock=self.clock,
            access_token=access_token,
            refresh_token=refresh_token,
            on_refresh=on_refresh,
        )
        return platform.spec.build_client(inputs)

    async def stored_token(self, account: Account) -> StoredToken | None:
        """The account's stored token, its values registered for masking.

        Read in a daemon thread: a keyring call may block, and Ctrl-C must not wait for it.
        """
        token = await in_daemon_thread(
            lambda: self.token_store.get(account.platform, account.account_id),
            name="nfdoctor-token-store",
        )
        if token is not None:
            for value in token.secret_values():
                self.redactor.add(value)
        return token
