"""The one list of platforms nfdoctor knows, in the order reports list them.

Adding a platform is one module declaring its ``SPEC`` (see :mod:`nfdoctor.platforms.spec`)
and one line in :data:`SPECS`. Everything else asks this module: the config's ``platforms``
section, the checks, the accounts in scope, the clients.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from nfdoctor.errors import UsageError
from nfdoctor.platforms import facebook, lazada, shopee, tiktok, zalo
from nfdoctor.platforms.spec import Account, PlatformSection, PlatformSpec

__all__ = ["SPECS", "configured", "enabled_specs", "names", "select_accounts", "spec"]

SPECS: tuple[PlatformSpec[Any], ...] = (
    shopee.SPEC,
    lazada.SPEC,
    tiktok.SPEC,
    facebook.SPEC,
    zalo.SPEC,
)
_BY_NAME = {platform.name: platform for platform in SPECS}


def names() -> tuple[str, ...]:
    """Every platform's name, in report order."""
    return tuple(_BY_NAME)


def spec(name: str) -> PlatformSpec[Any]:
    """The spec of the platform called ``name`` (UsageError with a "did you mean")."""
    found = _BY_NAME.get(name)
    if found is None:
        close = difflib.get_close_matches(name, list(_BY_NAME), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"unknown platform {name!r}{hint}; expected one of {', '.join(_BY_NAME)}")
    return found


def configured(platforms: object) -> list[tuple[PlatformSpec[Any], PlatformSection]]:
    """Every platform with a section in the config's ``platforms``, enabled or not."""
    found = []
    for platform in SPECS:
        section = platform.section(platforms)
        if section is not None:
            found.append((platform, section))
    return found


def enabled_specs(platforms: object) -> list[tuple[PlatformSpec[Any], PlatformSection]]:
    """Platforms with a section that is not ``enabled: false``, in report order."""
    return [(platform, section) for platform, section in configured(platforms) if section.enabled]


def select_accounts(
    platforms: object, *, only: Sequence[str] = (), account_id: str | None = None
) -> dict[str, list[Account]]:
    """The accounts in scope per enabled platform; UsageError for a platform or id not found.

    ``only`` empty means every enabled platform. ``account_id`` keeps only the account with
    that id (in whichever selected platform has it).
    """
    enabled = {platform.name: (platform, section) for platform, section in enabled_specs(platforms)}
    for name in only:
        spec(name)  # unknown: a UsageError with a "did you mean"
        if name not in enabled:
            raise UsageError(
                f"{name} is not configured (no enabled platforms.{name} section); "
                f"configured: {', '.join(enabled) or 'none'}"
            )
    scope = {
        name: platform.accounts(section)
        for name, (platform, section) in enabled.items()
        if not only or name in only
    }
    if account_id is None:
        return scope
    narrowed = {
        name: [a for a in accounts if a.account_id == account_id]
        for name, accounts in scope.items()
    }
    narrowed = {name: accounts for name, accounts in narrowed.items() if accounts}
    if not narrowed:
        known = [a.account_id for accounts in scope.values() for a in accounts]
        close = difflib.get_close_matches(account_id, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        where = ", ".join(scope) or "any platform"
        raise UsageError(f"--shop: no shop, page or OA {account_id!r} in {where}{hint}")
    return narrowed
