"""The typed config: one model per section the design names.

Models allow unknown keys (``extra="allow"``) so the loader can warn about them with a
"did you mean" instead of failing; the ``platforms`` section forbids them, because an
unknown platform is an error, not a typo to shrug at.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from nfdoctor.durations import bounded_span, parse_span
from nfdoctor.fsutil import expand_user
from nfdoctor.platforms import DEFAULT_GRAPH_VERSION, PLATFORMS
from nfdoctor.secrets.reference import SecretRef

PLATFORM_NAMES = PLATFORMS


def _span(value: Any) -> Any:
    """Accept ``"7d"``-style spans, and bare numbers as seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a time span such as 30s or 7d, got a boolean")
    if isinstance(value, (int, float)):
        return bounded_span(float(value), value)
    if isinstance(value, str):
        return parse_span(value)
    return value


def _not_bool(value: Any) -> Any:
    """YAML reads ``yes``/``no``/``on`` as booleans, and a boolean is an int to Python."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got the boolean {str(value).lower()}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value}")
    return value


#: a shop or partner id that is a number: positive, never a boolean
PositiveId = Annotated[int, BeforeValidator(_not_bool), Field(gt=0)]
Number = Annotated[float, BeforeValidator(_not_bool)]

_TEXT_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_DIGITS_ID = re.compile(r"^[0-9]+$")


def _text_id(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected {what}, got the boolean {str(value).lower()}")
        if isinstance(value, int) and value > 0:
            value = str(value)  # an unquoted numeric id is what the operator meant
        if isinstance(value, str) and not pattern.match(value.strip()):
            raise ValueError(f"expected {what}, got {value!r}")
        return value

    return BeforeValidator(check)


#: Lazada seller ids: letters, digits, ``_ . -``, no spaces or slashes
SellerId = Annotated[str, _text_id(_TEXT_ID, "an id of letters and digits")]
#: TikTok shop ids, Facebook page ids, Zalo OA ids: all digits
DigitsId = Annotated[str, _text_id(_DIGITS_ID, "an id of digits only")]


def _unique_accounts(items: list[Any], key: str) -> list[Any]:
    """Refuse an account listed twice: its results and tokens would be reported twice."""
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        value = str(getattr(item, key))
        if value in seen:
            raise ValueError(
                f"{key} {value} is listed twice (items {seen[value]} and {index}); list each once"
            )
        seen[value] = index
    return items


Span = Annotated[
    timedelta,
    BeforeValidator(_span),
    PlainSerializer(lambda v: f"{v.total_seconds():g}s", return_type=str),
]
PositiveSpan = Annotated[Span, Field(gt=timedelta(0))]
Url = Annotated[AnyHttpUrl, PlainSerializer(str, return_type=str)]
Percent = Annotated[float, BeforeValidator(_not_bool), Field(ge=0, le=100, allow_inf_nan=False)]


class Section(BaseModel):
    """Base of every config section: unknown keys are kept so they can be warned about."""

    model_config = ConfigDict(extra="allow", frozen=True, str_strip_whitespace=True)


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
        from nfdoctor.store.database import parse_database_url

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


# Taxonomy categories a configurable ambiguous error code may be mapped to.
ErrorCategoryName = Literal[
    "token_expired", "token_invalid", "bad_signature", "bad_credentials", "bad_parameters"
]


class PlatformBase(Section):
    """What every platform section has besides credentials and its list of shops."""

    enabled: bool = True
    base_url: Url | None = None
    webhook_url: Url | None = None


class ShopeeShop(Section):
    """One Shopee shop."""

    shop_id: PositiveId
    name: str | None = None


class ShopeeConfig(PlatformBase):
    """Shopee Open Platform v2 partner app."""

    partner_id: PositiveId
    partner_key: SecretRef
    shops: list[ShopeeShop] = Field(default_factory=list)

    @field_validator("shops")
    @classmethod
    def _unique(cls, value: list[ShopeeShop]) -> list[ShopeeShop]:
        return _unique_accounts(value, "shop_id")


class LazadaShop(Section):
    """One Lazada seller account."""

    seller_id: SellerId
    name: str | None = None


class LazadaConfig(PlatformBase):
    """Lazada Open Platform app (Vietnam)."""

    app_key: str
    app_secret: SecretRef
    auth_url: Url | None = None  # token host (default https://auth.lazada.com/rest)
    # Low confidence (platforms.md §3.2, Java sample only): append the raw body to the sign base.
    sign_raw_body: bool = False
    shops: list[LazadaShop] = Field(default_factory=list)

    @field_validator("shops")
    @classmethod
    def _unique(cls, value: list[LazadaShop]) -> list[LazadaShop]:
        return _unique_accounts(value, "seller_id")


class TiktokShop(Section):
    """One TikTok Shop."""

    shop_id: DigitsId
    shop_cipher: str | None = None
    name: str | None = None


class TiktokConfig(PlatformBase):
    """TikTok Shop Open API app."""

    app_key: str
    app_secret: SecretRef
    auth_url: Url | None = None  # token host (default https://auth.tiktok-shops.com)
    # 36009004 means token, sign, app_key or timestamp trouble alike (platforms.md §4.6);
    # which category to report it as.
    code_36009004_means: ErrorCategoryName = "token_invalid"
    shops: list[TiktokShop] = Field(default_factory=list)

    @field_validator("shops")
    @classmethod
    def _unique(cls, value: list[TiktokShop]) -> list[TiktokShop]:
        return _unique_accounts(value, "shop_id")


class FacebookPage(Section):
    """One Facebook page connected to Messenger."""

    page_id: DigitsId
    name: str | None = None


class FacebookConfig(PlatformBase):
    """Meta app for the Graph API and Messenger Platform."""

    app_id: str
    app_secret: SecretRef
    verify_token: SecretRef | None = None
    # It becomes part of every Graph URL: a "/" or ".." would send calls elsewhere.
    graph_version: str = DEFAULT_GRAPH_VERSION
    appsecret_proof: bool = True
    # Low confidence (platforms.md §5.3): debug_token's expires_at 0 means "never expires".
    zero_expiry_means_never: bool = True
    # Bare code 100 is also a wrong appsecret_proof (platforms.md §5.2).
    code_100_means: ErrorCategoryName = "bad_parameters"
    pages: list[FacebookPage] = Field(default_factory=list)

    @field_validator("graph_version")
    @classmethod
    def _version_shape(cls, value: str) -> str:
        if not re.fullmatch(r"v[0-9]{1,3}\.[0-9]{1,2}", value):
            raise ValueError(f"expected a Graph API version such as v25.0, got {value!r}")
        return value

    @field_validator("pages")
    @classmethod
    def _unique(cls, value: list[FacebookPage]) -> list[FacebookPage]:
        return _unique_accounts(value, "page_id")


class ZaloOA(Section):
    """One Zalo Official Account."""

    oa_id: DigitsId
    name: str | None = None
    oa_secret: SecretRef | None = None


class ZaloConfig(PlatformBase):
    """Zalo app with its Official Accounts."""

    app_id: str
    secret_key: SecretRef
    oauth_url: Url | None = None  # token host (default https://oauth.zaloapp.com/v4)
    # Low confidence (platforms.md §6.2): whether the OA API wants appsecret_proof.
    appsecret_proof: bool = True
    # The "3 months" refresh-token lifetime is not in the response (platforms.md §6.3).
    refresh_token_lifetime: PositiveSpan = timedelta(days=90)
    oas: list[ZaloOA] = Field(default_factory=list)

    @field_validator("oas")
    @classmethod
    def _unique(cls, value: list[ZaloOA]) -> list[ZaloOA]:
        return _unique_accounts(value, "oa_id")


class PlatformsConfig(BaseModel):
    """The five platforms; any other key is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shopee: ShopeeConfig | None = None
    lazada: LazadaConfig | None = None
    tiktok: TiktokConfig | None = None
    facebook: FacebookConfig | None = None
    zalo: ZaloConfig | None = None


class Thresholds(Section):
    """Where WARNING and CRITICAL start; defaults come from the runbook."""

    token_expiry_warning: Span = timedelta(days=7)  # runbook: alert 7 days before expiry
    token_expiry_critical: Span = timedelta(days=1)
    cert_expiry_warning: Span = timedelta(days=14)
    cert_expiry_critical: Span = timedelta(days=3)
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


NotifyLevel = Literal["warning", "critical", "unknown"]
_DEFAULT_NOTIFY: tuple[NotifyLevel, ...] = ("critical", "unknown")


class TokensConfig(Section):
    """Where access/refresh tokens live: they are state, not config."""

    # keyring: the OS keyring (default); file: a 0600 JSON file, locked, for headless servers
    store: Literal["keyring", "file"] = "keyring"
    path: str | None = None  # file store; relative to the config file; default: state dir


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
