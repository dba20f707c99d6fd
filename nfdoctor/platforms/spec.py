"""What a platform is, declared once: its :class:`PlatformSpec`.

Each platform module (``shopee``, ``lazada``, ``tiktok``, ``facebook``, ``zalo``) ends with
one ``SPEC``: its name and title, what it calls an account and where the config lists them,
its production hosts, how far its clock check tolerates skew, its config section, what it
can do, and how to build its client. :mod:`nfdoctor.platforms.registry` lists the specs;
everything else asks the registry, never compares a platform's name to a string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from pydantic import Field

from nfdoctor.config_fields import Section, Url
from nfdoctor.platforms.authorization import AuthorizationSpec
from nfdoctor.platforms.base import ApiSession, Clock, PlatformClient, TokenSet
from nfdoctor.platforms.sync import SyncSpec
from nfdoctor.platforms.webhook import WebhookSpec

__all__ = [
    "Account",
    "Capabilities",
    "ClientInputs",
    "PlatformSection",
    "PlatformSpec",
]

#: most connections nfdoctor opens to one platform at once (design.md: 50 per run)
MAX_CONNECTIONS = 50


@dataclass(frozen=True, kw_only=True)
class Account:
    """One shop, seller, Page or OA as configured: the unit that has its own tokens."""

    platform: str
    account_id: str
    name: str | None = None

    @property
    def label(self) -> str:
        """``shopee 12345678 (Thời Trang Hà My)``: how reports name the account."""
        suffix = f" ({self.name})" if self.name else ""
        return f"{self.platform} {self.account_id}{suffix}"


class PlatformSection(Section):
    """What every platform's config section has besides credentials and its accounts."""

    enabled: bool = True
    base_url: Url | None = None
    webhook_url: Url | None = None
    #: connections open at once to this platform in one run, shared by its shops
    max_connections: Annotated[int, Field(ge=1, le=MAX_CONNECTIONS)] = 10


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """What a platform offers that nfdoctor's commands care about."""

    refresh_tokens: bool
    #: a refresh spends the refresh token (a second refresher would get an error)
    single_use_refresh: bool
    orders: bool
    messages: bool
    #: the platform can say what it thinks of a token (Facebook's ``debug_token``)
    introspection: bool
    #: how the platform signs webhook deliveries, in words (platforms.md §x.8)
    webhook_signature: str
    #: without refresh tokens: why, and what keeps access alive instead (for the operator)
    no_refresh_token: str | None = None


S = TypeVar("S", bound=PlatformSection)


@dataclass(frozen=True, kw_only=True)
class ClientInputs(Generic[S]):
    """Everything a platform's builder needs to make a client for one account."""

    section: S
    account_id: str
    #: a resolved secret of this section by field name (``"partner_key"``)
    secret: Callable[[str], str]
    session: ApiSession
    #: the token host where it is not the API host (Lazada, TikTok, Zalo)
    token_url: str | None
    clock: Clock
    access_token: str
    refresh_token: str | None = None
    on_refresh: Callable[[TokenSet], None] | None = None


def _default_api_base(spec: PlatformSpec[Any], section: PlatformSection) -> str:
    return str(section.base_url).rstrip("/") if section.base_url else spec.api_url


@dataclass(frozen=True, kw_only=True)
class PlatformSpec(Generic[S]):
    """One platform, declared."""

    name: str
    title: str
    #: where the config lists the accounts (``shops``), the id key in each, and the noun
    accounts_key: str
    account_id_key: str
    account_noun: str
    #: production API base URL
    api_url: str
    #: production token host, where it is not the API host, and the config key overriding it
    token_url: str | None = None
    token_url_key: str | None = None
    #: how far this host's clock may be (behind, ahead) of the platform's before signed
    #: requests are refused, in seconds; None when requests carry no timestamp
    clock_tolerance_s: tuple[float, float] | None = None
    config_model: type[S]
    capabilities: Capabilities
    build_client: Callable[[ClientInputs[S]], PlatformClient]
    #: the API base for a config section (default: ``base_url`` or :attr:`api_url`)
    api_base: Callable[[S], str] | None = None
    #: how the platform delivers webhooks (platforms.md §x.8)
    webhook: WebhookSpec | None = None
    #: how a seller authorises the app again and the code becomes tokens (§x.3)
    authorization: AuthorizationSpec[S] | None = None
    #: how ``nfdoctor sync`` lists its orders and messages (§x.5), and its request rate
    sync: SyncSpec | None = None

    def section(self, platforms: object) -> S | None:
        """This platform's section of the config's ``platforms`` (the model the config
        assembles from the registry), or None when the config has none."""
        section = getattr(platforms, self.name, None)
        if section is not None and not isinstance(section, self.config_model):
            raise TypeError(f"platforms.{self.name} is a {type(section).__name__}")
        return section

    def accounts(self, section: S) -> list[Account]:
        """The accounts the section lists, in order."""
        return [
            Account(
                platform=self.name,
                account_id=str(getattr(item, self.account_id_key)),
                name=getattr(item, "name", None),
            )
            for item in getattr(section, self.accounts_key)
        ]

    def base_url(self, section: S) -> str:
        """The API base URL the section points at."""
        if self.api_base is not None:
            return self.api_base(section)
        return _default_api_base(self, section)

    def token_host(self, section: S) -> str | None:
        """The token host the section points at, where it is not the API host."""
        if self.token_url is None:
            return None
        configured = getattr(section, self.token_url_key, None) if self.token_url_key else None
        return str(configured).rstrip("/") if configured else self.token_url

    def urls(self, section: S) -> list[str]:
        """Every host the platform's calls go to: the API base and the token host."""
        token = self.token_host(section)
        return [self.base_url(section), *([token] if token else [])]

    def skew_acceptable(self, skew_s: float) -> bool:
        """Whether a request timestamp with this clock skew (local minus server) would pass."""
        if self.clock_tolerance_s is None:
            return True
        behind, ahead = self.clock_tolerance_s
        # The Date header has one-second resolution, so allow one second of slack.
        return -behind - 1.0 <= skew_s <= ahead + 1.0
