"""The platform's webhook receiver as configured, for the ``webhook`` services.

Thin over :mod:`nfdoctor.webhooks.target`, taking the command's prepared config.
"""

from __future__ import annotations

from nfdoctor.platforms.webhook import WebhookKeys
from nfdoctor.services.checkrun import PreparedConfig
from nfdoctor.webhooks import target
from nfdoctor.webhooks.target import Receiver, UrlProblem, url_problems

__all__ = ["Receiver", "UrlProblem", "receiver", "url_problems", "with_other_secrets"]


def receiver(
    prepared: PreparedConfig,
    platform: str,
    *,
    shop: str | None = None,
    url: str | None = None,
    check_url: bool = True,
) -> Receiver:
    """See :func:`nfdoctor.webhooks.target.receiver`."""
    return target.receiver(
        prepared.loaded, prepared.secrets, platform, shop=shop, url=url, check_url=check_url
    )


def with_other_secrets(prepared: PreparedConfig, keys: WebhookKeys) -> WebhookKeys:
    """See :func:`nfdoctor.webhooks.target.with_other_secrets`."""
    return target.with_other_secrets(prepared.loaded, prepared.secrets, keys)
