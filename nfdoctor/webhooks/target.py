"""What every ``webhook`` command needs first: the platform's receiver as configured.

A :class:`Receiver` is one account's view of one platform's webhook: the platform's
declarations, its config section, the account, the keys its deliveries are signed with, and
the URL they go to. Everything is checked here, before anything is sent: an unknown platform,
a platform not configured, a shop that is not there, a missing or plain-http URL, a port where
the platform allows none, a signing secret that is not configured.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nfdoctor.config.loader import LoadedConfig
from nfdoctor.errors import UsageError
from nfdoctor.platforms.registry import select_accounts
from nfdoctor.platforms.registry import spec as platform_spec
from nfdoctor.platforms.spec import Account, PlatformSection, PlatformSpec
from nfdoctor.platforms.webhook import WebhookKeys, WebhookSpec
from nfdoctor.secrets.resolver import ResolvedSecrets

__all__ = [
    "Receiver",
    "UrlProblem",
    "configured_url",
    "receiver",
    "secret_lookup",
    "url_problems",
    "with_other_secrets",
]


@dataclass(frozen=True, kw_only=True)
class Receiver:
    """One platform's webhook receiver, for one account."""

    platform: PlatformSpec[Any]
    webhook: WebhookSpec
    section: PlatformSection
    account: Account
    keys: WebhookKeys
    #: where deliveries go: ``--url`` or the section's ``webhook_url``
    url: str
    #: where the URL came from, for messages (``--url`` or ``platforms.x.webhook_url``)
    url_source: str

    @property
    def name(self) -> str:
        """The platform's name."""
        return self.platform.name


@dataclass(frozen=True)
class UrlProblem:
    """Something the platform will not accept about a webhook URL."""

    #: "scheme", "port", "query"…
    kind: str
    message: str


def url_problems(url: str, webhook: WebhookSpec, title: str) -> list[UrlProblem]:
    """What ``title`` would refuse about ``url``: every platform requires https; TikTok and
    Zalo a domain without a port (platforms.md §4.8, §6.8)."""
    parts = urllib.parse.urlsplit(url)
    problems = []
    if parts.scheme != "https":
        problems.append(
            UrlProblem("scheme", f"{title} delivers only to https:// URLs, not {parts.scheme}://")
        )
    try:
        port = parts.port
    except ValueError:
        port = None
        problems.append(UrlProblem("port", f"the URL's port is not a number: {url!r}"))
    if port is not None and not webhook.port_allowed:
        problems.append(
            UrlProblem("port", f"{title} accepts a domain without a port (got :{port})")
        )
    if not parts.hostname:
        problems.append(UrlProblem("host", f"the URL has no host: {url!r}"))
    return problems


def secret_lookup(secrets: ResolvedSecrets) -> Callable[[str], str | None]:
    """``key path -> value`` of a resolved secret, None where the config sets none."""

    def lookup(key_path: str) -> str | None:
        return secrets.get(key_path) if key_path in secrets else None

    return lookup


def receiver(
    loaded: LoadedConfig,
    secrets: ResolvedSecrets,
    platform: str,
    *,
    shop: str | None = None,
    url: str | None = None,
    check_url: bool = True,
) -> Receiver:
    """The receiver of ``platform`` for ``shop`` (default: its first account).

    UsageError for an unknown or unconfigured platform, an unknown shop, a platform without
    accounts, no URL, and (``check_url``) a URL the platform would refuse.
    """
    name = platform.strip().lower()
    spec = platform_spec(name)
    if spec.webhook is None:
        raise UsageError(f"{spec.title} delivers no webhooks nfdoctor knows of")
    accounts = select_accounts(
        loaded.config.platforms,
        only=(name,),
        account_id=shop.strip() if shop else None,
    ).get(name, [])
    if not accounts:
        raise UsageError(
            f"platforms.{name} lists no {spec.account_noun}; add one under "
            f"platforms.{name}.{spec.accounts_key}"
        )
    section = spec.section(loaded.config.platforms)
    assert section is not None  # select_accounts found it enabled
    account = accounts[0]
    source = "--url" if url is not None else f"platforms.{name}.webhook_url"
    target = url if url is not None else configured_url(loaded, name)
    if not target:
        raise UsageError(
            f"platforms.{name}.webhook_url is not set; set it to the CRM's {spec.title} "
            "webhook URL, or give --url"
        )
    if check_url:
        problems = url_problems(target, spec.webhook, spec.title)
        if problems:
            raise UsageError(f"{source}: {problems[0].message}")
    keys = spec.webhook.keys(
        section, account.account_id, secret_lookup(secrets), f"platforms.{name}"
    )
    return Receiver(
        platform=spec,
        webhook=spec.webhook,
        section=section,
        account=account,
        keys=keys,
        url=target,
        url_source=source,
    )


def configured_url(loaded: LoadedConfig, platform: str) -> str | None:
    """``platforms.<platform>.webhook_url`` exactly as written in the file.

    Not the validated value: validation normalises a URL (a trailing ``/`` added to a bare
    host, the host lower-cased, a default port dropped), and Shopee signs the URL exactly as
    configured at Shopee, which is what the operator wrote.
    """
    section = (
        loaded.raw.get("platforms", {}).get(platform) if isinstance(loaded.raw, dict) else None
    )
    value = section.get("webhook_url") if isinstance(section, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def with_other_secrets(
    loaded: LoadedConfig, secrets: ResolvedSecrets, keys: WebhookKeys
) -> WebhookKeys:
    """``keys`` with every other secret of the config, for naming a signature made with the
    wrong one (``webhook verify``)."""
    paths = sorted({s.key_path for s in loaded.secrets if s.key_path in secrets})
    others = tuple((path, secrets.get(path)) for path in paths if path != keys.secret_path)
    return dataclasses.replace(keys, others=others)
