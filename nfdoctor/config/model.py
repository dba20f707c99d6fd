"""The typed config: one model per section the design names.

Models allow unknown keys (``extra="allow"``) so the loader can warn about them with a
"did you mean" instead of failing; the ``platforms`` section forbids them, because an
unknown platform is an error, not a typo to shrug at.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)

from nfdoctor.config_fields import Number, Percent, PositiveSpan, Section, Span, Url
from nfdoctor.fsutil import expand_user
from nfdoctor.net.connect import parse_connect_to
from nfdoctor.platforms import registry
from nfdoctor.secrets.reference import SecretRef
from nfdoctor.store.database import parse_database_url


class CrmConfig(Section):
    """The CRM itself: its base URL, status endpoint and API key."""

    base_url: Url | None = None
    status_url: Url | None = None
    api_key: SecretRef | None = None


class DatabaseConfig(Section):
    """The CRM database: ``sqlite:///path`` (embedded default) or ``postgresql://…``."""

    url: str
    # Kept out of the URL so the URL can be shown and logged as it is.
    password: SecretRef | None = None
    timeout: PositiveSpan = timedelta(seconds=5)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        parse_database_url(value)  # raises ValueError naming the accepted forms
        return value


class AiConfig(Section):
    """The CRM's AI chatbot endpoint."""

    endpoint: Url | None = None
    api_key: SecretRef | None = None
    model: str | None = None


class LogsConfig(Section):
    """Where the CRM's error logs live (for ``nfdoctor logs`` and disk checks)."""

    paths: list[str] = Field(default_factory=list)

    @field_validator("paths")
    @classmethod
    def _expandable(cls, value: list[str]) -> list[str]:
        for path in value:
            expand_user(path)  # ValueError naming an unknown ~user
        return value


class PlatformsBase(BaseModel):
    """The ``platforms`` section: one optional section per registered platform, nothing else.

    Its fields come from :mod:`nfdoctor.platforms.registry` (each platform module declares
    its own section model), so a platform is added without touching this module.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


def _platforms_model() -> type[PlatformsBase]:
    fields: dict[str, Any] = {
        platform.name: (platform.config_model | None, None) for platform in registry.SPECS
    }
    return create_model(
        "PlatformsConfig",
        __base__=PlatformsBase,
        __doc__="The platforms nfdoctor knows; any other key is an error.",
        **fields,
    )


if TYPE_CHECKING:
    PlatformsConfig = PlatformsBase
else:
    PlatformsConfig = _platforms_model()


class Thresholds(Section):
    """Where WARNING and CRITICAL start; defaults come from the runbook."""

    token_expiry_warning: Span = timedelta(days=7)  # runbook: alert 7 days before expiry
    token_expiry_critical: Span = timedelta(days=1)
    # `token refresh --due` renews an access token with less than this share of its own
    # lifetime left (a 4-hour Shopee token at 1 h, a 30-day Lazada one at 7.5 d), and at
    # least this long before it expires.
    token_refresh_due_percent: Percent = 25.0
    token_refresh_due_at_least: Span = timedelta(hours=1)
    # order sync health: how far the CRM's orders may lag behind the platform's updates
    order_sync_lag_warning: Span = timedelta(minutes=30)
    order_sync_lag_critical: Span = timedelta(hours=2)
    cert_expiry_warning: Span = timedelta(days=21)  # as check_ssl_cert
    cert_expiry_critical: Span = timedelta(days=7)
    ai_latency: Span = timedelta(seconds=2)  # runbook targets
    message_delivery: Span = timedelta(seconds=5)
    dashboard_latency: Span = timedelta(seconds=3)
    api_latency: Span = timedelta(seconds=1)
    database_latency_warning: Span = timedelta(milliseconds=500)
    database_latency_critical: Span = timedelta(seconds=2)
    disk_free_warning: Percent = 15.0
    disk_free_critical: Percent = 5.0
    memory_available_warning: Percent = 10.0
    memory_available_critical: Percent = 5.0
    load_per_core_warning: Annotated[Number, Field(gt=0)] = 2.0
    load_per_core_critical: Annotated[Number, Field(gt=0)] = 4.0
    rate_limit_usage_warning: Percent = 80.0
    rate_limit_usage_critical: Percent = 95.0
    clock_skew_warning: Span = timedelta(seconds=30)
    check_timeout: PositiveSpan = timedelta(seconds=15)
    config_change_recent: Span = timedelta(hours=24)

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Thresholds:
        pairs = [
            ("token_expiry_warning", "token_expiry_critical", "greater"),
            ("order_sync_lag_warning", "order_sync_lag_critical", "less"),
            ("cert_expiry_warning", "cert_expiry_critical", "greater"),
            ("disk_free_warning", "disk_free_critical", "greater"),
            ("memory_available_warning", "memory_available_critical", "greater"),
            ("database_latency_warning", "database_latency_critical", "less"),
            ("load_per_core_warning", "load_per_core_critical", "less"),
            ("rate_limit_usage_warning", "rate_limit_usage_critical", "less"),
        ]
        for warn, crit, relation in pairs:
            a, b = getattr(self, warn), getattr(self, crit)
            if (relation == "greater" and a < b) or (relation == "less" and a > b):
                raise ValueError(f"{warn} must be {relation} than or equal to {crit}")
        return self


def _connect_to_rule(value: str) -> str:
    parse_connect_to(value)  # ValueError says what is wrong with the rule
    return value


ConnectToRule = Annotated[str, AfterValidator(_connect_to_rule)]


class WebhooksConfig(Section):
    """How ``webhook check``, ``send`` and ``trace`` reach the CRM's webhook receivers."""

    #: PEM file of the CAs to trust for the receivers' certificates (relative to the config);
    #: default: the system store
    ca_bundle: str | None = None
    #: curl-style HOST1:PORT1:HOST2:PORT2: reach a receiver at another address, keeping its
    #: name for TLS and HTTP (a server DNS does not point at yet)
    connect_to: list[ConnectToRule] = Field(default_factory=list)
    #: signed probe deliveries per receiver for the acknowledgement latency (p50/p95)
    probes: Annotated[int, Field(ge=1, le=50)] = 5


NotifyLevel = Literal["warning", "critical", "unknown"]
_DEFAULT_NOTIFY: tuple[NotifyLevel, ...] = ("critical", "unknown")


class TokensConfig(Section):
    """Where access/refresh tokens live: they are state, not config."""

    # auto (default): the CRM's channel_credentials when database.url is set and has the
    # table, else the OS keyring; crm: always the CRM's table; keyring: the OS keyring;
    # file: a 0600 JSON file, locked, for headless servers
    store: Literal["auto", "crm", "keyring", "file"] = "auto"
    path: str | None = None  # file store; relative to the config file; default: state dir


class SyncConfig(Section):
    """``nfdoctor sync``: the request rate each platform allows, and how hard to push."""

    # requests per second per platform, shared by every shop and every nfdoctor process on
    # the same CRM database (default: the platform's declared default, docs/sync.md)
    rate_limits: dict[str, Annotated[float, Field(gt=0, le=10000)]] = Field(default_factory=dict)
    # requests in flight at once in one process (all platforms); the rate limit is the cap
    concurrency: Annotated[int, Field(ge=1, le=200)] = 16
    # chat messages newer than this are left to the CRM's webhooks (their retries may still
    # come; a message synced first would be stored twice by a late retry)
    message_settle: Span = timedelta(minutes=10)
    # the lease on (platform, shop, stream), renewed while the sync runs
    lease: PositiveSpan = timedelta(seconds=60)

    @field_validator("rate_limits")
    @classmethod
    def _known_platforms(cls, value: dict[str, float]) -> dict[str, float]:
        names = registry.names()
        for name in value:
            if name not in names:
                raise ValueError(f"unknown platform {name!r}; expected one of {', '.join(names)}")
        return value


class NotificationsConfig(Section):
    """Where a failing unattended run is reported."""

    webhook_url: SecretRef | None = None  # chat webhooks carry their token in the URL
    on: list[NotifyLevel] = Field(default_factory=lambda: list(_DEFAULT_NOTIFY))


class NfdoctorConfig(Section):
    """The whole config file."""

    crm: CrmConfig = Field(default_factory=CrmConfig)
    database: DatabaseConfig | None = None
    ai: AiConfig = Field(default_factory=AiConfig)
    logs: LogsConfig = Field(default_factory=LogsConfig)
    platforms: PlatformsConfig = Field(default_factory=PlatformsConfig)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    tokens: TokensConfig = Field(default_factory=TokensConfig)
    timezone: str = "Asia/Ho_Chi_Minh"
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as Asia/Ho_Chi_Minh"
            ) from None
        return value
