"""The fault plan: YAML rules that make simulated platforms misbehave, reproducibly.

A plan is a list of rules, each naming a platform, a path glob, a fault kind and its
parameters, a ``probability`` (default 1.0), an optional ``times`` budget and an optional
``account`` (one shop / seller / page / OA id; see :func:`request_accounts` for how a
request's account is found). Which rule fires on which request is decided by
``random.Random(seed)``, so a seed replays a run. The :class:`FaultInjector` wraps one
platform's ASGI app and applies the rules.

Example (see ``examples/faults-demo.yaml`` and the simulator README)::

    seed: 42
    rules:
      - platform: shopee
        endpoint: /api/v2/order/*
        fault: http_429
        retry_after: 2
        probability: 0.3

A plan may also cap each platform's request rate, ``rate_limits: {lazada: 40}`` (API
requests per second, all accounts together; :mod:`nfdoctor.simulator.ratelimit`): the
:class:`FaultInjector` refuses the requests over it, before any rule is tried.

Beside the rules, a plan may say how the platforms' side of webhooks behaves: ``tls:`` (the
certificate kind of each platform's CRM receiver under ``--tls``), ``emitter:`` (the
platforms deliver chat message events, with their retry schedules), ``registrations:``
(what each platform's side holds about the webhook) and ``lost_pushes:`` (Shopee pushes
given up on before the simulator started). Rules on ``platform: crm`` may use the CRM
receiver faults (:data:`~nfdoctor.simulator.crm.RECEIVER_FAULTS`), which the CRM app
applies itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fnmatch
import json
import math
import random
import typing
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import yaml
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nfdoctor.config.yamlcheck import YamlShapeError, check_yaml
from nfdoctor.durations import bounded_span, parse_span
from nfdoctor.errors import UsageError
from nfdoctor.fsutil import FileRefusedError, os_reason, read_regular_file
from nfdoctor.simulator.authorize import ISSUED_KEY
from nfdoctor.simulator.base import SCOPE_KEY
from nfdoctor.simulator.certs import CERT_KINDS
from nfdoctor.simulator.crm import (
    CRM_NAME,
    RECEIVER_FAULTS,
    RECEIVER_FAULTS_KEY,
    WRONG_CHALLENGE_ANSWERS,
)
from nfdoctor.simulator.emitter import DEFAULT_COMPRESS, DEFAULT_EVERY, EmitterPlan
from nfdoctor.simulator.model import TokenEvent
from nfdoctor.simulator.ratelimit import MAX_RATE_LIMIT
from nfdoctor.simulator.registry import NAMES, sim_platform
from nfdoctor.simulator.spec import ErrorBody, RequestView
from nfdoctor.simulator.state import SimulatorState

__all__ = [
    "AFTER_ISSUE_KINDS",
    "FAULT_KINDS",
    "ErrorBody",
    "FaultInjector",
    "FaultPlan",
    "FaultRule",
    "SimulatedConnectionReset",
    "load_fault_plan",
    "request_accounts",
]

# kind -> {parameter: (type, required)}
FAULT_KINDS: dict[str, dict[str, tuple[type, bool]]] = {
    "latency": {"ms": (int, True)},
    # The platform acts (a token rotated, an order changed), then its answer is held: a
    # client that gives up or dies meanwhile never learns what was done.
    "slow_answer": {"ms": (int, True)},
    "http_429": {"retry_after": (int, False)},
    "http_5xx": {"status": (int, False)},
    "connection_reset": {},
    "timeout": {"seconds": (float, True)},
    "malformed_body": {},
    "html_error_page": {},
    "expired_token": {},
    "revoked_token": {},
    "clock_skew": {"seconds": (int, True)},
    "schema_drift": {"field": (str, True), "rename_to": (str, True)},
    # The token endpoints: tokens issued (the old refresh token or code spent), then the
    # connection dropped before the answer leaves.
    "drop_after_issue": {},
    # The CRM's webhook receivers (platform: crm only); the CRM app applies them.
    "slow_ack": {"ms": (int, True)},
    "wrong_challenge": {"answer": (str, True)},
    "http_status": {"status": (int, True)},
    "ack_body": {"text": (str, True)},
    "redirect_http": {},
    "unsigned_ok": {},
}
assert set(RECEIVER_FAULTS) <= set(FAULT_KINDS)
#: kinds decided after the platform answered, and only when it issued tokens: they fire
#: (and use up their ``times``) on token issues only, whatever their ``endpoint`` glob
AFTER_ISSUE_KINDS = ("drop_after_issue",)
assert set(AFTER_ISSUE_KINDS) <= set(FAULT_KINDS)
_PLATFORMS = (*NAMES, CRM_NAME, "*")
#: a fault holds a request for at most this long, so the simulator always shuts down soon
MAX_HOLD_S = 3600.0
#: a skewed clock stays within a decade of the real one (datetime's range ends at year 9999)
MAX_SKEW_S = 10 * 365 * 86400
#: kind -> {parameter: (lowest, highest, how to say it)}; every number of a plan is bounded
_BOUNDS: dict[str, dict[str, tuple[float, float, str]]] = {
    "latency": {"ms": (0, MAX_HOLD_S * 1000, "0 to 3600000 (an hour)")},
    "slow_answer": {"ms": (0, MAX_HOLD_S * 1000, "0 to 3600000 (an hour)")},
    "timeout": {"seconds": (0.001, MAX_HOLD_S, "more than zero and at most 3600 (an hour)")},
    "http_429": {"retry_after": (0, 86400, "0 to 86400 (a day)")},
    "http_5xx": {"status": (500, 599, "between 500 and 599")},
    "clock_skew": {"seconds": (-MAX_SKEW_S, MAX_SKEW_S, "within ±315360000 (ten years)")},
    "slow_ack": {"ms": (0, MAX_HOLD_S * 1000, "0 to 3600000 (an hour)")},
    "http_status": {"status": (300, 599, "between 300 and 599")},
}
#: kind -> {parameter: the values it takes}
_CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "wrong_challenge": {"answer": WRONG_CHALLENGE_ANSWERS},
}
#: an ``ack_body`` text is a short answer, not a document
MAX_ACK_BODY = 64 * 1024
_COMMON_KEYS = {"platform", "endpoint", "fault", "probability", "times", "account", "shop"}

Sleep = Callable[[float], Awaitable[None]]

_HTML_502 = (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n<body>\n"
    "<center><h1>502 Bad Gateway</h1></center>\n<hr><center>cloudflare</center>\n"
    "</body></html>\n"
)


class SimulatedConnectionReset(ConnectionResetError):
    """Raised inside the app so the client sees the connection drop mid-response."""


@dataclass(frozen=True, kw_only=True)
class FaultRule:
    """One rule of the plan."""

    platform: str
    kind: str
    endpoint: str = "*"
    probability: float = 1.0
    times: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    #: only requests for this shop / seller / page / OA id (see :func:`request_accounts`)
    account: str | None = None
    #: only requests for the N-th account (1-based); turned into ``account`` at start
    shop: int | None = None

    def matches_path(self, platform: str, path: str) -> bool:
        """Whether this rule is about that platform and path (whatever the account)."""
        return self.platform in ("*", platform) and fnmatch.fnmatchcase(path, self.endpoint)

    def matches(self, platform: str, path: str, accounts: Collection[str] = ()) -> bool:
        """Whether this rule is about that platform, path and (if it names one) account."""
        if not self.matches_path(platform, path):
            return False
        return self.account is None or self.account in accounts


class FaultPlan:
    """Rules plus the seeded RNG and per-rule counters that decide when they fire."""

    def __init__(
        self, rules: list[FaultRule] | None = None, *, seed: int = 7, source: str = "fault plan"
    ) -> None:
        self.rules = list(rules or [])
        self.seed = seed
        self.source = source
        self.rng = random.Random(seed)
        self.fired: list[int] = [0] * len(self.rules)
        #: token state to set up at start (``tokens:`` in the plan), see build_simulator
        self.token_settings: list[TokenSetting] = []
        #: platform -> {numeric setting: value} (``limits:`` in the plan), see apply_limits
        self.limits: dict[str, dict[str, int]] = {}
        #: platform -> certificate kind of its CRM receiver under ``--tls`` (``tls:``)
        self.tls: dict[str, str] = {}
        #: the platforms' webhook deliveries (``emitter:``); None: off
        self.emitter: EmitterPlan | None = None
        #: platform -> what its side holds about the webhook, instead of the configured URL
        self.registrations: dict[str, dict[str, Any]] = {}
        #: platform -> how many lost pushes it holds at start (``lost_pushes:``)
        self.lost_pushes: dict[str, int] = {}
        #: platform -> its ceiling in API requests per second (``rate_limits:``)
        self.rate_limits: dict[str, int] = {}

    def needs_accounts(self, platform: str, path: str) -> bool:
        """Whether a live rule for this platform and path names an account (so the request's
        account must be worked out before :meth:`pick`)."""
        return any(
            rule.account is not None
            and rule.matches_path(platform, path)
            and (rule.times is None or self.fired[index] < rule.times)
            for index, rule in enumerate(self.rules)
        )

    def pick(
        self,
        platform: str,
        path: str,
        accounts: Collection[str] = (),
        *,
        after_issue: bool = False,
    ) -> list[FaultRule]:
        """The rules that fire for this request (each consumes one of its ``times``).

        ``accounts``: the account ids the request is for; a rule with ``account`` matches
        only when its id is among them. ``after_issue``: pick among the kinds decided once
        the platform issued tokens (:data:`AFTER_ISSUE_KINDS`) instead of the others.
        """
        chosen = []
        for index, rule in enumerate(self.rules):
            if (rule.kind in AFTER_ISSUE_KINDS) != after_issue:
                continue
            if not rule.matches(platform, path, accounts):
                continue
            if rule.times is not None and self.fired[index] >= rule.times:
                continue
            # Always draw, so one rule's outcome does not shift the next rule's randomness.
            roll = self.rng.random()
            if roll < rule.probability:
                self.fired[index] += 1
                chosen.append(rule)
        return chosen

    @classmethod
    def from_mapping(
        cls, data: Any, *, source: str, default_seed: int = 7, text: str | None = None
    ) -> FaultPlan:
        """Validate a parsed plan; every problem raises :class:`UsageError` with file and key
        (and, for ``rate_limits:`` when ``text`` is the plan's YAML, the line)."""

        def bad(key: str, message: str) -> UsageError:
            return UsageError(f"{source}: {key}: {message}")

        if data is None:
            return cls([], seed=default_seed)
        if not isinstance(data, dict):
            raise bad("(top)", "expected a mapping with 'rules' (and optional 'seed')")
        unknown = set(data) - set(_SECTIONS)
        if unknown:
            raise bad(sorted(unknown)[0], f"unknown key (expected {', '.join(_SECTIONS)})")
        seed = data.get("seed", default_seed)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise bad("seed", "must be an integer")
        raw_rules = data.get("rules", [])
        if not isinstance(raw_rules, list):
            raise bad("rules", "must be a list")
        rules = [_parse_rule(item, f"rules[{i}]", bad) for i, item in enumerate(raw_rules)]
        raw_tokens = data.get("tokens", [])
        if not isinstance(raw_tokens, list):
            raise bad("tokens", "must be a list")
        plan = cls(rules, seed=seed, source=source)
        plan.token_settings = [
            _parse_token_setting(item, f"tokens[{i}]", bad) for i, item in enumerate(raw_tokens)
        ]
        plan.limits = _parse_limits(data.get("limits", {}), bad)
        plan.tls = _parse_tls(data.get("tls", {}), bad)
        plan.emitter = _parse_emitter(data.get("emitter"), bad)
        plan.registrations = _parse_registrations(data.get("registrations", {}), bad)
        plan.lost_pushes = _parse_lost_pushes(data.get("lost_pushes", {}), bad)
        plan.rate_limits = _parse_rate_limits(data.get("rate_limits"), source, text)
        return plan

    def resolve_shops(self, state: SimulatorState) -> None:
        """Turn ``shop: N`` (the N-th account, 1-based) into the account id of this state,
        so a plan works whatever ``--seed`` makes the ids."""
        for index, rule in enumerate(self.rules):
            if rule.shop is None:
                continue
            self.rules[index] = dataclasses.replace(
                rule, account=_nth_account(state, rule.platform, rule.shop, self.source)
            )

    def apply_limits(self, state: SimulatorState) -> None:
        """Set the platforms' numeric knobs as the plan's ``limits:`` section says (a Meta
        app's hourly call allowance, a Zalo OA's calls per minute)."""
        for name, values in self.limits.items():
            settings = sim_platform(name).settings(state)
            for field_name, value in values.items():
                setattr(settings, field_name, value)

    def apply_rate_limits(self, state: SimulatorState) -> None:
        """Cap the platforms' request rates as the plan's ``rate_limits:`` section says."""
        for name, limit in self.rate_limits.items():
            state.set_rate_limit(name, limit)

    def apply_token_settings(self, state: SimulatorState) -> None:
        """Age tokens as the plan's ``tokens:`` section says (an expired Zalo token …)."""
        for setting in self.token_settings:
            account = _nth_account(state, setting.platform, setting.shop, self.source)
            if setting.access_expires_in is not None:
                state.age_token(setting.platform, account, expires_in=setting.access_expires_in)
            if setting.refresh_expires_in is not None:
                state.expire_refresh(
                    setting.platform, account, expires_in=setting.refresh_expires_in
                )

    def check_accounts(self, state: SimulatorState) -> None:
        """Every ``account`` a rule names must exist on its platform: a typo would otherwise
        make the rule silently never fire."""
        for index, rule in enumerate(self.rules):
            if rule.account is None:
                continue
            platforms = NAMES if rule.platform == "*" else (rule.platform,)
            if any(state.account(p, rule.account) is not None for p in platforms):
                continue
            known = ", ".join(
                a.account_id for p in platforms for a in state.accounts.get(p, [])[:3]
            )
            where = "any platform" if rule.platform == "*" else rule.platform
            raise UsageError(
                f"{self.source}: rules[{index}].account: no account {rule.account} on {where} "
                f"in this simulator (e.g. {known}; ids depend on --seed and --shops)"
            )


#: the top-level keys of a plan
_SECTIONS = (
    "seed",
    "rules",
    "tokens",
    "limits",
    "tls",
    "emitter",
    "registrations",
    "lost_pushes",
    "rate_limits",
)


@dataclass(frozen=True, kw_only=True)
class TokenSetting:
    """``tokens:`` entry: make the N-th account's tokens expire at a given distance from now."""

    platform: str
    shop: int
    access_expires_in: timedelta | None = None
    refresh_expires_in: timedelta | None = None


def _signed_span(value: Any) -> timedelta:
    """``2h``, ``-2h`` (already expired 2 h ago) or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a time span such as 2h or -2h")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or abs(value) > MAX_SKEW_S:
            raise ValueError(f"{value!r} is not a time span within ten years")
        return timedelta(seconds=value)
    text = str(value).strip()
    if text.startswith("-"):
        return -parse_span(text[1:])
    return parse_span(text)


def _nth_account(state: SimulatorState, platform: str, shop: int, source: str) -> str:
    accounts = state.accounts.get(platform, [])
    if not 1 <= shop <= len(accounts):
        raise UsageError(
            f"{source}: shop: {shop}: {platform} has {len(accounts)} account(s) in this "
            "simulator (raise --shops)"
        )
    return accounts[shop - 1].account_id


#: the largest value a ``limits:`` knob takes (calls per hour or minute)
MAX_LIMIT_VALUE = 10**9


def _parse_limits(data: Any, bad: Callable[[str, str], UsageError]) -> dict[str, dict[str, int]]:
    """``limits: {platform: {setting: number}}``: only a platform's whole-number settings."""
    if not isinstance(data, dict):
        raise bad("limits", "must be a mapping of platform to settings")
    limits: dict[str, dict[str, int]] = {}
    for name, values in data.items():
        if name not in NAMES:
            raise bad(f"limits.{name}", f"expected one of {', '.join(NAMES)}")
        if not isinstance(values, dict):
            raise bad(f"limits.{name}", "must be a mapping of setting to number")
        numeric = _numeric_settings(sim_platform(name).settings_type)
        parsed: dict[str, int] = {}
        for key, value in values.items():
            if key not in numeric:
                shown = ", ".join(numeric) or "none"
                raise bad(f"limits.{name}.{key}", f"not a limit of {name} (limits: {shown})")
            ok = isinstance(value, int) and not isinstance(value, bool)
            if not ok or not 1 <= value <= MAX_LIMIT_VALUE:
                raise bad(
                    f"limits.{name}.{key}", f"must be a whole number from 1 to {MAX_LIMIT_VALUE}"
                )
            parsed[key] = value
        limits[name] = parsed
    return limits


def _numeric_settings(settings_type: type) -> list[str]:
    """The whole-number fields of a platform's settings (its knobs, not its credentials)."""
    if not dataclasses.is_dataclass(settings_type):
        return []
    hints = typing.get_type_hints(settings_type)
    return [f.name for f in dataclasses.fields(settings_type) if hints.get(f.name) is int]


def _parse_shop(item: Mapping[str, Any], where: str, bad: Callable[[str, str], UsageError]) -> int:
    shop = item.get("shop")
    if isinstance(shop, bool) or not isinstance(shop, int) or shop < 1:
        raise bad(f"{where}.shop", "must be a positive integer (1 = the first account)")
    return shop


def _parse_token_setting(
    item: Any, where: str, bad: Callable[[str, str], UsageError]
) -> TokenSetting:
    if not isinstance(item, dict):
        raise bad(where, "each entry must be a mapping")
    unknown = set(item) - {"platform", "shop", "access_expires_in", "refresh_expires_in"}
    if unknown:
        raise bad(f"{where}.{sorted(unknown)[0]}", "unknown key")
    platform = item.get("platform")
    if platform not in NAMES:
        raise bad(f"{where}.platform", f"expected one of {', '.join(NAMES)}")
    spans: dict[str, timedelta | None] = {}
    for key in ("access_expires_in", "refresh_expires_in"):
        if key not in item:
            spans[key] = None
            continue
        try:
            spans[key] = _signed_span(item[key])
        except ValueError as exc:
            raise bad(f"{where}.{key}", str(exc)) from None
    spec = sim_platform(platform)
    if spans["refresh_expires_in"] is not None and spec.refresh_lifetime is None:
        raise bad(f"{where}.refresh_expires_in", f"{spec.label} tokens have no refresh token")
    if all(v is None for v in spans.values()):
        raise bad(where, "set access_expires_in and/or refresh_expires_in")
    return TokenSetting(
        platform=platform,
        shop=_parse_shop(item, where, bad),
        access_expires_in=spans["access_expires_in"],
        refresh_expires_in=spans["refresh_expires_in"],
    )


def _parse_rule(item: Any, where: str, bad: Callable[[str, str], UsageError]) -> FaultRule:
    if not isinstance(item, dict):
        raise bad(where, "each rule must be a mapping")
    kind = item.get("fault")
    if kind not in FAULT_KINDS:
        raise bad(f"{where}.fault", f"expected one of {', '.join(FAULT_KINDS)}, got {kind!r}")
    platform = item.get("platform", "*")
    if platform not in _PLATFORMS:
        raise bad(f"{where}.platform", f"expected one of {', '.join(_PLATFORMS)}")
    endpoint = item.get("endpoint", "*")
    if not isinstance(endpoint, str) or not endpoint:
        raise bad(f"{where}.endpoint", "must be a path glob such as /api/v2/order/*")
    probability = item.get("probability", 1.0)
    if (
        not isinstance(probability, (int, float))
        or isinstance(probability, bool)
        or not 0 <= probability <= 1
    ):
        raise bad(f"{where}.probability", "must be a number between 0 and 1")
    times = item.get("times")
    if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
        raise bad(f"{where}.times", "must be a positive integer")
    account = item.get("account")
    if kind in RECEIVER_FAULTS and platform != CRM_NAME:
        raise bad(
            f"{where}.platform",
            f"{kind} is a fault of the CRM's webhook receivers: use platform: {CRM_NAME}",
        )
    if kind in ("expired_token", "revoked_token") and platform == CRM_NAME:
        raise bad(f"{where}.fault", f"{kind} is about platform tokens; the CRM takes none")
    if kind in AFTER_ISSUE_KINDS and platform == CRM_NAME:
        raise bad(f"{where}.fault", f"{kind} is about platform tokens; the CRM issues none")
    shop = _parse_shop(item, where, bad) if "shop" in item else None
    if shop is not None and (account is not None or platform in ("*", CRM_NAME)):
        raise bad(f"{where}.shop", "needs one platform, and not together with account")
    if account is not None:
        if isinstance(account, bool) or not isinstance(account, (int, str)) or not str(account):
            raise bad(f"{where}.account", "must be a shop, seller, page or OA id")
        if platform == CRM_NAME:
            raise bad(f"{where}.account", "the CRM has no accounts; use it with a platform")
        account = str(account).strip()
    spec = FAULT_KINDS[kind]
    for key in set(item) - _COMMON_KEYS - set(spec):
        raise bad(f"{where}.{key}", f"not a parameter of {kind}")
    params: dict[str, Any] = {}
    for key, (typ, required) in spec.items():
        if key not in item:
            if required:
                raise bad(f"{where}.{key}", f"{kind} needs {key}")
            continue
        value = item[key]
        ok = isinstance(value, (int, float) if typ is float else typ) and not isinstance(
            value, bool
        )
        if not ok:
            raise bad(f"{where}.{key}", f"must be a {typ.__name__}")
        params[key] = value
    for key, (low, high, words) in _BOUNDS.get(kind, {}).items():
        value = params.get(key)
        if value is None:
            continue
        # NaN compares false with everything: it would pass a plain range test and then
        # make the fault silently inert (or crash the request that applies it).
        if not math.isfinite(value) or not low <= value <= high:
            raise bad(f"{where}.{key}", f"must be {words}, got {value!r}")
    for key, choices in _CHOICES.get(kind, {}).items():
        if params.get(key) not in choices:
            raise bad(f"{where}.{key}", f"expected one of {', '.join(choices)}")
    if kind == "ack_body" and len(params["text"]) > MAX_ACK_BODY:
        raise bad(f"{where}.text", f"must be at most {MAX_ACK_BODY} characters")
    return FaultRule(
        platform=platform,
        kind=kind,
        endpoint=endpoint,
        probability=float(probability),
        times=times,
        params=params,
        account=account,
        shop=shop,
    )


# --- the webhook sections: tls, emitter, registrations, lost_pushes ---------------------------

#: an emitter ticks at least every day and at most every 10 ms
_EVERY_BOUNDS = (0.01, 86400.0)
#: retry gaps are divided by at most this (a 12-hour gap then takes about 4 ms)
MAX_COMPRESS = 10_000_000
#: a retry schedule has at most this many steps, each at most this long
MAX_RETRIES = 100
MAX_RETRY_GAP = timedelta(days=7)
#: at most this many lost pushes per platform at start
MAX_LOST_PUSHES = 10_000
#: Shopee's blocked_shop_id_list holds at most 500 shops (§2.8): no list is longer
MAX_REGISTRATION_ITEMS = 500


def _span(value: Any) -> timedelta:
    """``2s``, ``30m`` or a number of seconds (zero or more)."""
    if isinstance(value, bool):
        raise ValueError("expected a time span such as 2s or 30m")
    if isinstance(value, (int, float)):
        return bounded_span(float(value), value)
    if not isinstance(value, str):
        raise ValueError("expected a time span such as 2s or 30m")
    return parse_span(value)


def _platform_key(
    name: Any, where: str, bad: Callable[[str, str], UsageError], allowed: Collection[str] = NAMES
) -> str:
    if name not in allowed:
        raise bad(f"{where}.{name}", f"expected one of {', '.join(allowed)}")
    return str(name)


def _parse_tls(data: Any, bad: Callable[[str, str], UsageError]) -> dict[str, str]:
    """``tls: {platform: kind}``: the certificate each platform's CRM receiver presents."""
    if not isinstance(data, dict):
        raise bad("tls", "must be a mapping of platform to certificate kind")
    kinds: dict[str, str] = {}
    for name, kind in data.items():
        platform = _platform_key(name, "tls", bad)
        if kind not in CERT_KINDS:
            raise bad(f"tls.{platform}", f"expected one of {', '.join(CERT_KINDS)}, got {kind!r}")
        kinds[platform] = str(kind)
    return kinds


def _parse_emitter(data: Any, bad: Callable[[str, str], UsageError]) -> EmitterPlan | None:
    """``emitter:``: the platforms deliver chat message events (absent or null: off)."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise bad("emitter", "must be a mapping (every, platforms, compress, retry_schedule)")
    known = ("every", "platforms", "compress", "retry_schedule")
    for key in data:
        if key not in known:
            raise bad(f"emitter.{key}", f"unknown key (expected {', '.join(known)})")
    every = DEFAULT_EVERY
    if "every" in data:
        low, high = _EVERY_BOUNDS
        try:
            every = _span(data["every"])
        except ValueError as exc:
            raise bad("emitter.every", str(exc)) from None
        if not low <= every.total_seconds() <= high:
            raise bad("emitter.every", "must be from 10ms to 1d, e.g. 2s")
    platforms = NAMES
    if "platforms" in data:
        raw = data["platforms"]
        if not isinstance(raw, list) or not raw:
            raise bad("emitter.platforms", f"must be a list of some of {', '.join(NAMES)}")
        for index, name in enumerate(raw):
            if name not in NAMES:
                raise bad(f"emitter.platforms[{index}]", f"expected one of {', '.join(NAMES)}")
            if raw.index(name) != index:
                raise bad(f"emitter.platforms[{index}]", f"{name} is listed twice")
        platforms = tuple(str(name) for name in raw)
    compress = DEFAULT_COMPRESS
    if "compress" in data:
        value = data["compress"]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or not 1 <= value <= MAX_COMPRESS:
            raise bad(
                "emitter.compress",
                f"must be a number from 1 (real time) to {MAX_COMPRESS}, got {value!r}",
            )
        compress = float(value)
    schedules = _parse_retry_schedule(data.get("retry_schedule", {}), bad)
    return EmitterPlan(
        every=every, platforms=platforms, compress=compress, retry_schedule=schedules
    )


def _parse_retry_schedule(
    data: Any, bad: Callable[[str, str], UsageError]
) -> dict[str, tuple[timedelta, ...]]:
    where = "emitter.retry_schedule"
    if not isinstance(data, dict):
        raise bad(where, "must be a mapping of platform to a list of gaps, e.g. shopee: [1m, 5m]")
    schedules: dict[str, tuple[timedelta, ...]] = {}
    for name, gaps in data.items():
        platform = _platform_key(name, where, bad)
        if not isinstance(gaps, list) or len(gaps) > MAX_RETRIES:
            raise bad(
                f"{where}.{platform}",
                f"must be a list of at most {MAX_RETRIES} gaps between attempts, e.g. [1m, 5m]",
            )
        parsed = []
        for index, gap in enumerate(gaps):
            try:
                span = _span(gap)
            except ValueError as exc:
                raise bad(f"{where}.{platform}[{index}]", str(exc)) from None
            if span > MAX_RETRY_GAP:
                raise bad(f"{where}.{platform}[{index}]", "must be at most 7d")
            parsed.append(span)
        schedules[platform] = tuple(parsed)
    return schedules


def _parse_registrations(
    data: Any, bad: Callable[[str, str], UsageError]
) -> dict[str, dict[str, Any]]:
    """``registrations: {platform: {field: value}}``: the platform side's view of the webhook,
    for the platforms whose API reports it."""
    if not isinstance(data, dict):
        raise bad("registrations", "must be a mapping of platform to fields")
    with_api = [
        spec.name
        for spec in map(sim_platform, NAMES)
        if spec.webhooks and spec.webhooks.registration_fields
    ]
    registrations: dict[str, dict[str, Any]] = {}
    for name, values in data.items():
        if name in NAMES and name not in with_api:
            raise bad(
                f"registrations.{name}",
                f"{sim_platform(name).label} has no webhook registration API in the simulator "
                f"(these do: {', '.join(with_api)})",
            )
        platform = _platform_key(name, "registrations", bad, with_api)
        fields = sim_platform(platform).webhooks.registration_fields  # type: ignore[union-attr]
        if not isinstance(values, dict):
            raise bad(
                f"registrations.{platform}", f"must be a mapping with some of {', '.join(fields)}"
            )
        parsed: dict[str, Any] = {}
        for key, value in values.items():
            where = f"registrations.{platform}.{key}"
            if key not in fields:
                raise bad(where, f"unknown field (expected {', '.join(fields)})")
            parsed[str(key)] = _registration_value(value, fields[key], where, bad)
        registrations[platform] = parsed
    return registrations


def _registration_value(
    value: Any, kind: str, where: str, bad: Callable[[str, str], UsageError]
) -> Any:
    if kind == "url":
        if value is None:
            return None
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise bad(where, "must be an http:// or https:// URL, or null (none registered)")
        return value
    if kind == "text":
        if not isinstance(value, str) or not value or len(value) > 1000:
            raise bad(where, "must be a line of text")
        return value
    if kind == "strings":
        if value is None:
            return None
        if (
            not isinstance(value, list)
            or len(value) > MAX_REGISTRATION_ITEMS
            or not all(isinstance(v, str) and v for v in value)
        ):
            raise bad(where, "must be a list of names, e.g. [messages], or null")
        return list(value)
    ok = isinstance(value, list) and len(value) <= MAX_REGISTRATION_ITEMS
    if not ok or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise bad(where, f"must be a list of at most {MAX_REGISTRATION_ITEMS} whole numbers")
    return list(value)


def _parse_lost_pushes(data: Any, bad: Callable[[str, str], UsageError]) -> dict[str, int]:
    """``lost_pushes: {platform: N}``, for the platforms that keep lost pushes (Shopee)."""
    if not isinstance(data, dict):
        raise bad("lost_pushes", "must be a mapping of platform to a number of pushes")
    keeping = [
        name
        for name in NAMES
        if (hooks := sim_platform(name).webhooks) is not None and hooks.keeps_lost_pushes
    ]
    counts: dict[str, int] = {}
    for name, count in data.items():
        if name in NAMES and name not in keeping:
            raise bad(
                f"lost_pushes.{name}",
                f"{sim_platform(name).label} has no lost-push API (these do: {', '.join(keeping)})",
            )
        platform = _platform_key(name, "lost_pushes", bad, keeping)
        ok = isinstance(count, int) and not isinstance(count, bool)
        if not ok or not 0 <= count <= MAX_LOST_PUSHES:
            raise bad(
                f"lost_pushes.{platform}", f"must be a whole number from 0 to {MAX_LOST_PUSHES}"
            )
        counts[platform] = count
    return counts


def _parse_rate_limits(data: Any, source: str, text: str | None) -> dict[str, int]:
    """``rate_limits: {platform: requests per second}``; errors name the file and line."""

    def bad(keys: tuple[str, ...], message: str) -> UsageError:
        line = _key_line(text, keys)
        where = f"{source}:{line}" if line is not None else source
        return UsageError(f"{where}: {'.'.join(keys)}: {message}")

    if data is None:
        return {}
    if not isinstance(data, dict):
        raise bad(("rate_limits",), "must be a mapping of platform to requests per second")
    limits: dict[str, int] = {}
    for name, value in data.items():
        keys = ("rate_limits", str(name))
        if name not in NAMES:
            raise bad(keys, f"not a simulated platform (expected one of {', '.join(NAMES)})")
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok or not 1 <= value <= MAX_RATE_LIMIT:
            raise bad(
                keys, f"must be a whole number of requests per second from 1 to {MAX_RATE_LIMIT}"
            )
        limits[name] = value
    return limits


def _key_line(text: str | None, keys: tuple[str, ...]) -> int | None:
    """The 1-based line of the key at ``keys`` (a path of mapping keys) in the YAML ``text``."""
    if text is None:
        return None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return None
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                line, node = key_node.start_mark.line + 1, value_node
                break
        else:
            return None
    return line


#: a fault plan is a few dozen lines
MAX_PLAN_BYTES = 1024 * 1024


def load_fault_plan(path: Path, *, default_seed: int = 7) -> FaultPlan:
    """Read and validate a fault-plan YAML file (never blocking, at most 1 MiB, 64 levels)."""
    try:
        text = read_regular_file(path, limit=MAX_PLAN_BYTES).decode("utf-8")
    except FileRefusedError as exc:
        raise UsageError(f"{path}: the fault plan {exc.reason}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the fault plan: {os_reason(exc)}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: the fault plan is not UTF-8 text (byte {exc.start})") from None
    try:
        check_yaml(text)
        data = yaml.safe_load(text)
    except YamlShapeError as exc:
        raise UsageError(f"{path}:{exc.line}:{exc.column}: {exc.message}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{path}{where}: not valid YAML") from None
    return FaultPlan.from_mapping(data, source=str(path), default_seed=default_seed, text=text)


def _rename(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {(new if k == old else k): _rename(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename(v, old, new) for v in value]
    return value


def request_accounts(
    platform: str, path: str, scope: Scope, body: bytes, state: SimulatorState
) -> set[str]:
    """The account ids a request is for, as far as cheaply known (for ``account:`` rules).

    - every platform: the owner of any token the request presents that this simulator
      issued (expired, used or revoked ones too): ``access_token`` in the query or a form
      body (Shopee, Lazada, Facebook), ``x-tts-access-token`` (TikTok), the ``access_token``
      header (Zalo), ``Authorization: Bearer`` (Facebook), ``refresh_token`` in the query,
      a form or a JSON body (the token endpoints), Facebook's ``input_token``; and the
      account of an authorization code it presents (``code`` in the query, a form or a JSON
      body, TikTok's ``auth_code``); a Facebook User token or code names the Pages granted;
    - what the platform's module adds (``SimPlatform.request_accounts``): Shopee the
      ``shop_id`` in the query or the refresh call's JSON body, TikTok the shop whose cipher
      is ``shop_cipher``, Facebook the page id as the node of ``/{version}/{page-id}/{edge}``.

    Not looked at: Facebook conversation ids (``/{conversation-id}/messages`` is known through
    its token only), request bodies other than forms and JSON objects, CRM webhooks.
    """
    if platform not in state.accounts:
        return set()
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    fields: dict[str, Any] = {}
    content_type = headers.get("content-type", "")
    if body and content_type.startswith("application/x-www-form-urlencoded"):
        fields = dict(parse_qsl(body.decode("utf-8", "replace")))
    elif body and body.lstrip()[:1] == b"{":
        with contextlib.suppress(ValueError):
            parsed = json.loads(body)
            fields = parsed if isinstance(parsed, dict) else {}
    presented = [
        query.get("access_token"),
        query.get("refresh_token"),
        query.get("input_token"),
        fields.get("access_token"),
        fields.get("refresh_token"),
        headers.get("x-tts-access-token"),
        headers.get("access_token"),
    ]
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        presented.append(auth[7:].strip())
    accounts: set[str] = set()
    for value in presented:
        token = state.tokens.get(value) if isinstance(value, str) else None
        if token is not None and token.platform == platform:
            accounts.add(token.owner)
            accounts.update(token.grants)
    for value in (query.get("code"), query.get("auth_code"), fields.get("code")):
        code = state.auth_codes.get(value) if isinstance(value, str) else None
        if code is not None and code.platform == platform:
            accounts.add(code.account)
            accounts.update(code.grants)
    named = sim_platform(platform).request_accounts
    if named is not None:
        accounts |= named(state, RequestView(path, query, fields, headers))
    return accounts


async def _buffer_body(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole request body, and a ``receive`` that hands it to the app again."""
    chunks: list[bytes] = []
    pending: list[Message] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            pending.append(message)  # a disconnect: pass it on after the body
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    pending.insert(0, {"type": "http.request", "body": body, "more_body": False})

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return body, replay


class FaultInjector:
    """ASGI wrapper: refuses what is over the platform's rate limit, picks the rules for each
    request, applies them, and adds ``Date``.

    ``rate_limited``: the platform's requests count towards its ceiling
    (``state.admit_request``), except the ``browser_paths`` (globs: consent pages).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        platform: str,
        plan: FaultPlan,
        state: SimulatorState,
        error_body: ErrorBody,
        sleep: Sleep = asyncio.sleep,
        rate_limited: bool = False,
        browser_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.platform = platform
        self.plan = plan
        self.state = state
        self.error_body = error_body
        self.sleep = sleep
        self.rate_limited = rate_limited
        self.browser_paths = browser_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run one request through the plan."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = scope.get("root_path", "")
        path = scope["path"][len(root) :] if scope["path"].startswith(root) else scope["path"]
        if (
            self.rate_limited
            and not any(fnmatch.fnmatchcase(path, glob) for glob in self.browser_paths)
            and not self.state.admit_request(self.platform)
        ):
            await self._over_the_limit(scope, send, path)
            return
        accounts: set[str] = set()
        if self.plan.needs_accounts(self.platform, path):
            body, receive = await _buffer_body(receive)
            accounts = request_accounts(self.platform, path, scope, body, self.state)
        rules = self.plan.pick(self.platform, path, accounts)
        kinds = {rule.kind: rule for rule in rules}
        skew = sum(int(r.params["seconds"]) for r in rules if r.kind == "clock_skew")
        now = self.state.clock() + timedelta(seconds=skew)
        info: dict[str, Any] = {"now": now}
        # The CRM app applies its receivers' faults itself (store first, then answer slowly …).
        info[RECEIVER_FAULTS_KEY] = {
            rule.kind: rule.params for rule in rules if rule.kind in RECEIVER_FAULTS
        }
        if "revoked_token" in kinds:
            info["token_fault"] = "revoked"
        elif "expired_token" in kinds:
            info["token_fault"] = "expired"
        scope = {**scope, SCOPE_KEY: info}

        for rule in rules:
            if rule.kind == "latency":
                await self.sleep(rule.params["ms"] / 1000)
            elif rule.kind == "timeout":
                await self.sleep(float(rule.params["seconds"]))
        # Stamped when the answer leaves, as a real server does: stamped before the injected
        # latency, a 1.5 s delay would read as 1.5 s of clock skew.
        answered = self.state.clock() + timedelta(seconds=skew)
        date = format_datetime(answered, usegmt=True).encode("ascii")

        if "connection_reset" in kinds:
            # Start a response with no length, then fail: under uvicorn the socket closes
            # mid-message (a protocol error for the client); in-process the error propagates.
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise SimulatedConnectionReset("simulated connection reset")
        if "html_error_page" in kinds:
            await self._send(send, 502, [(b"content-type", b"text/html")], _HTML_502.encode(), date)
            return
        if "http_429" in kinds:
            retry_after = int(kinds["http_429"].params.get("retry_after", 1))
            status, payload = self.error_body("rate_limit", 429)
            headers = [
                (b"content-type", b"application/json"),
                (b"retry-after", b"%d" % retry_after),
            ]
            await self._send(send, status, headers, json.dumps(payload).encode(), date)
            return
        if "http_5xx" in kinds:
            status, payload = self.error_body(
                "server", int(kinds["http_5xx"].params.get("status", 503))
            )
            headers = [(b"content-type", b"application/json")]
            await self._send(send, status, headers, json.dumps(payload).encode(), date)
            return

        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        status = int(start.get("status", 500))
        headers = [
            (k, v)
            for k, v in start.get("headers", [])
            if k.lower() not in (b"content-length", b"date")
        ]
        issued: list[TokenEvent] = info.get(ISSUED_KEY) or []
        if issued:
            owners = {event.account for event in issued if event.account is not None}
            if self.plan.pick(self.platform, path, accounts | owners, after_issue=True):
                # The platform has issued (and spent the old refresh token or the code);
                # the client gets the status line and then a dead connection, never the
                # tokens, as when a proxy or the network fails at that moment.
                for event in issued:
                    event.delivered = False
                await send({"type": "http.response.start", "status": status, "headers": headers})
                raise SimulatedConnectionReset("simulated drop after the tokens were issued")
        if "slow_answer" in kinds:
            await self.sleep(kinds["slow_answer"].params["ms"] / 1000)
        body = b"".join(chunks)
        if "schema_drift" in kinds:
            params = kinds["schema_drift"].params
            with contextlib.suppress(ValueError):  # not JSON: nothing to rename
                body = json.dumps(
                    _rename(json.loads(body), params["field"], params["rename_to"]),
                    ensure_ascii=False,
                    separators=(",", ":"),
                ).encode("utf-8")
        if "malformed_body" in kinds:
            body = body[: max(1, len(body) // 2)]
        await self._send(send, status, headers, body, date)

    async def _over_the_limit(self, scope: Scope, send: Send, path: str) -> None:
        """The platform's own answer to a request over its ceiling, with ``Retry-After: 1``
        (the window is one second)."""
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        view = RequestView(path, query, {}, headers)
        status, payload = sim_platform(self.platform).rate_limited(self.state, view)
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        date = format_datetime(self.state.clock(), usegmt=True).encode("ascii")
        answer = [(b"content-type", b"application/json"), (b"retry-after", b"1")]
        await self._send(send, status, answer, body, date)

    @staticmethod
    async def _send(
        send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, date: bytes
    ) -> None:
        all_headers = [*headers, (b"date", date), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": all_headers})
        await send({"type": "http.response.body", "body": body})
