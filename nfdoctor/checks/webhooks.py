"""The runbook's "check webhook endpoints", per platform: TLS, delivery, subscription.

- ``webhooks.<p>.tls`` — "check SSL certificate valid", as ``check_ssl_cert`` does it: the
  URL's scheme and port, every certificate of the chain the receiver sends (each one's
  expiry on its own), host name, trust, weak signatures and keys, the protocol, and the
  platform's own rules (Lazada: OV or EV only).
- ``webhooks.<p>.delivery`` — "test webhook endpoint manually": signed probe deliveries,
  the acknowledgement latency against the platform's deadline (p50/p95), the answer's
  shape, a wrongly signed probe that must be refused, redirects, and Facebook's GET
  verification handshake.
- ``webhooks.<p>.subscription`` — "verify webhook subscriptions active" and "confirm
  callback URLs correct": what the platform says it delivers to, where its API says it.

The probes are events the CRM acknowledges and drops; nothing lands in an inbox.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nfdoctor.checks.base import Check, CheckContext, format_ms
from nfdoctor.config.loader import LoadedConfig
from nfdoctor.durations import format_span
from nfdoctor.errors import UsageError
from nfdoctor.hints import platform_hint
from nfdoctor.net.connect import connect_target, parse_connect_to
from nfdoctor.platforms.errors import TaxonomyError
from nfdoctor.platforms.registry import SPECS
from nfdoctor.platforms.registry import spec as platform_spec
from nfdoctor.platforms.spec import Account, PlatformSpec
from nfdoctor.results import CheckResult, Hint, Metric, Status, worst_of
from nfdoctor.threads import in_daemon_thread
from nfdoctor.webhooks.delivery import Answer, WebhookSender, load_ca_bundle
from nfdoctor.webhooks.probe import ReceiverProbe, percentile, probe_receiver
from nfdoctor.webhooks.target import Receiver, configured_url, receiver, url_problems

__all__ = [
    "WebhookDeliveryCheck",
    "WebhookSubscriptionCheck",
    "WebhookTlsCheck",
    "webhook_checks",
]

#: above this share of the deadline, an acknowledgement is too close for comfort
NEAR_DEADLINE = 0.8


@dataclass(frozen=True)
class Finding:
    """One thing found about a receiver, with its hint key."""

    status: Status
    text: str
    hint: str | None = None


class _WebhookCheck(Check):
    """A check of one platform's webhook receiver."""

    kind = ""
    what = ""

    def __init__(self, platform: PlatformSpec[Any]) -> None:
        self.spec = platform
        self.platform = platform.name
        self.id = f"webhooks.{platform.name}.{self.kind}"
        self.title = f"{platform.title}: webhook {self.what}"

    def recheck(self) -> str:
        """The command that looks at this receiver again."""
        return f"nfdoctor webhook check {self.platform}"

    def receiver(self, ctx: CheckContext) -> Receiver | CheckResult:
        """The receiver as configured, or the result saying why it cannot be checked."""
        if configured_url(ctx.loaded, self.platform) is None:
            return self.result(
                Status.WARNING,
                f"platforms.{self.platform}.webhook_url is not set: the {self.spec.title} "
                "receiver cannot be checked",
                hint=platform_hint("webhook.url_missing", self.spec.title),
            )
        try:
            return receiver(ctx.loaded, ctx.secrets, self.platform, check_url=False)
        except UsageError as exc:
            return self.result(Status.UNKNOWN, exc.message)

    def judged(
        self,
        findings: Sequence[Finding],
        *,
        lead: Sequence[str] = (),
        details: Sequence[str] = (),
        metrics: Sequence[Metric] = (),
        subject: str | None = None,
        next_command: str | None = None,
    ) -> CheckResult:
        """One result from findings: the worst status; the summary is ``lead`` and the
        findings that are not OK (or, when all are, ``lead`` or the first); every other
        finding is a line of the details, with its status."""
        status = worst_of([Status.OK, *(f.status for f in findings)])
        shown = [f for f in findings if f.status is status and f.status is not Status.OK]
        if not shown and not lead and findings:
            shown = [findings[0]]
        hint_key = next((f.hint for f in shown if f.hint), None)
        failing = status not in (Status.OK, Status.SKIPPED)
        hint: Hint | None = None
        if failing and hint_key:
            hint = platform_hint(hint_key, self.spec.title)
        others = [f"{f.status.value}: {f.text}" for f in findings if f not in shown]
        return self.result(
            status,
            "; ".join([*lead, *(f.text for f in shown)]),
            details=[*others, *details],
            hint=hint,
            next_command=(next_command or self.recheck()) if failing else None,
            metrics=metrics,
            subject=subject,
        )


def _sender(loaded: LoadedConfig, timeout_s: float) -> WebhookSender:
    return WebhookSender(
        connect_to=loaded.config.webhooks.connect_to,
        ca_bundle=load_ca_bundle(loaded),
        timeout_s=timeout_s,
    )


def _timeout_s(ctx: CheckContext, deadline_s: float) -> float:
    """How long one probe may wait: past the deadline (to measure a late answer) and within
    the check's time."""
    check = ctx.config.thresholds.check_timeout.total_seconds()
    return max(deadline_s, min(check / 3, deadline_s * 4 + 2))


class WebhookDeliveryCheck(_WebhookCheck):
    """Signed probe deliveries: acknowledgement time, answer, signature check, handshake."""

    kind = "delivery"
    what = "delivery (ack latency, answer, signature check)"

    async def run(self, ctx: CheckContext) -> Sequence[CheckResult]:
        """Probe the receiver in a loop of its own (a busy run must not inflate latency)."""
        found = self.receiver(ctx)
        if isinstance(found, CheckResult):
            return [found]
        target = found
        handshake = target.webhook.handshake
        token = None
        if handshake is not None:
            path = f"platforms.{self.platform}.{handshake.token_key}"
            token = ctx.secrets.get(path) if path in ctx.secrets else None
        timeout = _timeout_s(ctx, target.webhook.deadline_s)
        probes = ctx.config.webhooks.probes
        loaded = ctx.loaded
        # The probes must fit in the check's time, with room to judge them.
        budget = ctx.config.thresholds.check_timeout.total_seconds() * 0.8

        async def measure() -> ReceiverProbe:
            async with _sender(loaded, timeout) as sender:
                return await probe_receiver(
                    sender,
                    target,
                    probes=probes,
                    now=ctx.clock,
                    timeout_s=timeout,
                    verify_token=token,
                    budget_s=budget,
                )

        probe = await in_daemon_thread(lambda: asyncio.run(measure()), name="nfdoctor-webhook")
        return [judge_delivery(self, probe)]


def judge_delivery(check: _WebhookCheck, probe: ReceiverProbe) -> CheckResult:
    """The delivery result of one receiver's probes."""
    target = probe.receiver
    webhook = target.webhook
    title = target.platform.title
    deadline = webhook.deadline_s
    findings: list[Finding] = []
    sent = f"{len(probe.answers)} sent"
    if probe.skipped:
        sent += f", {probe.skipped} not sent (no time left in the check)"
    details = [
        f"probe: {probe.probe_event}, {sent}, signed as {title} signs "
        f"({webhook.signature.describe})",
        f"{title} waits {format_span(deadline)} for the acknowledgement; retries: "
        f"{webhook.retries}",
    ]
    metrics: list[Metric] = []
    first = probe.answers[0] if probe.answers else None
    next_command = check.recheck()
    if webhook.lost_push_api:
        next_command = f"nfdoctor webhook lost {target.name}"
    if first is None or not first.answered:
        error = first.error if first is not None else "nothing was sent"
        if first is not None and first.error_kind == "tls":
            # The platforms verify certificates too: they cannot deliver either.
            text = (
                f"no delivery possible: {error}; {title} refuses it as well "
                f"(see webhooks.{target.name}.tls)"
            )
            findings.append(Finding(Status.CRITICAL, text, "webhook.tls"))
        else:
            findings.append(Finding(Status.CRITICAL, f"no answer: {error}", "webhook.unreachable"))
        return check.judged(
            findings, details=details, subject=target.url, next_command=next_command
        )
    redirect = next((a for a in probe.answers if a.status and 300 <= a.status < 400), None)
    if redirect is not None:
        findings.append(_redirect_finding(redirect, title))
    refused = [a for a in probe.answers if a.answered and not _acked(a, target)]
    if refused and redirect is None:
        statuses = ", ".join(sorted({str(a.status) for a in refused}))
        findings.append(
            Finding(
                Status.CRITICAL,
                f"{len(refused)} of {len(probe.answers)} probes not acknowledged (HTTP {statuses})"
                + _status_meaning(refused[0]),
                "webhook.refused",
            )
        )
    failed = [a for a in probe.answers if not a.answered]
    if failed:
        findings.append(
            Finding(
                Status.CRITICAL,
                f"{len(failed)} of {len(probe.answers)} probes failed: {failed[0].error}",
                "webhook.unreachable",
            )
        )
    latencies = probe.latencies
    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    if p50 is not None and p95 is not None:
        near = deadline * NEAR_DEADLINE
        metrics += [
            Metric(name="ack_p50", value=p50, unit="s", warn=near, crit=deadline),
            Metric(name="ack_p95", value=p95, unit="s", warn=near, crit=deadline),
        ]
        late = [t for t in latencies if t > deadline]
        timing = (
            f"ack p50 {format_ms(p50)}, p95 {format_ms(p95)} "
            f"(deadline {format_span(deadline)}, {len(latencies)} probes)"
        )
        if p95 > deadline:
            findings.append(
                Finding(
                    Status.CRITICAL,
                    f"{timing}: {len(late)} late; {title} gives up at {format_span(deadline)} and "
                    "delivers again, so the CRM stores duplicates",
                    "webhook.slow_ack",
                )
            )
        elif late or p95 > deadline * NEAR_DEADLINE:
            findings.append(
                Finding(
                    Status.WARNING,
                    f"{timing}: close to {title}'s deadline",
                    "webhook.slow_ack",
                )
            )
        else:
            findings.append(Finding(Status.OK, timing))
    with_body = [a for a in probe.answers if _acked(a, target) and a.body]
    if with_body:
        shown = with_body[0].body[:60].decode("utf-8", "replace")
        findings.append(
            Finding(
                Status.WARNING,
                f"acknowledges with a body ({len(with_body[0].body)} bytes: {shown!r}); "
                f"{title} expects an empty body",
                "webhook.ack_body",
            )
        )
    findings += _signature_findings(probe, title)
    findings += _handshake_findings(probe)
    return check.judged(
        findings, details=details, metrics=metrics, subject=target.url, next_command=next_command
    )


def _acked(answer: Answer, target: Receiver) -> bool:
    return answer.acknowledged(unauthorized_is_answer=target.webhook.unauthorized_is_answer)


def _status_meaning(answer: Answer) -> str:
    meanings = {
        404: ": wrong route (no receiver at this path)",
        401: ": the receiver refused the signature (wrong secret configured in the CRM?)",
        403: ": forbidden (an IP allow-list or a WAF?)",
        405: ": the route does not take POST",
        413: ": the receiver refuses the body size",
    }
    status = answer.status or 0
    if status in meanings:
        return meanings[status]
    return ": the receiver fails (server error)" if status >= 500 else ""


def _redirect_finding(answer: Answer, title: str) -> Finding:
    location = answer.location or "(no Location header)"
    if urllib.parse.urlsplit(location).scheme == "http":
        return Finding(
            Status.CRITICAL,
            f"redirects to plain http ({answer.status} → {location}); {title} delivers only "
            "to https and follows no redirect",
            "webhook.redirect",
        )
    return Finding(
        Status.CRITICAL,
        f"redirects ({answer.status} → {location}); {title} does not follow redirects: "
        "configure the final URL",
        "webhook.redirect",
    )


def _signature_findings(probe: ReceiverProbe, title: str) -> list[Finding]:
    answer = probe.wrongly_signed
    if answer is None:
        return []
    if not answer.answered:
        return [Finding(Status.OK, f"wrongly signed probe: no answer ({answer.error})")]
    if answer.status is not None and 200 <= answer.status < 300:
        return [
            Finding(
                Status.WARNING,
                f"accepts a wrongly signed delivery (HTTP {answer.status}): anyone can forge "
                f"{title} events; verify the signature and answer 401",
                "webhook.unsigned",
            )
        ]
    if answer.status in (401, 403):
        return [Finding(Status.OK, f"a wrongly signed probe is refused (HTTP {answer.status})")]
    return [
        Finding(
            Status.OK,
            f"a wrongly signed probe is refused with HTTP {answer.status} (401 is usual)",
        )
    ]


_HANDSHAKE_TEXT = {
    "not_found": "answers 404: wrong route for the GET verification",
    "forbidden": "answers 403: the verify token is not configured in the CRM, or differs "
    "from nfdoctor's",
    "redirect": "redirects the GET verification; Facebook follows no redirect",
    "server_error": "fails the GET verification (server error)",
    "not_allowed": "answers 405: the route does not take GET (the verification request)",
    "quoted": "answers the challenge in quotes; the body must be exactly the challenge",
    "json_wrapped": "answers the challenge wrapped in JSON; the body must be exactly the challenge",
    "whitespace": "answers the challenge with extra whitespace or a newline; the body must be "
    "exactly the challenge",
    "other_text": 'answers something else than the challenge ("OK"?); the body must be '
    "exactly hub.challenge",
    "empty": "answers 200 with an empty body; the body must be exactly hub.challenge",
    "failed": "the GET verification got no answer",
}


def _handshake_findings(probe: ReceiverProbe) -> list[Finding]:
    if probe.handshake_untested is not None:
        return [
            Finding(
                Status.WARNING,
                f"GET verification not tested: {probe.handshake_untested}",
                "webhook.handshake",
            )
        ]
    handshake = probe.handshake
    if handshake is None:
        return []
    if handshake.verdict != "ok":
        text = _HANDSHAKE_TEXT.get(
            handshake.verdict, f"GET verification answered HTTP {handshake.answer.status}"
        )
        body = handshake.answer.body[:40].decode("utf-8", "replace")
        return [
            Finding(
                Status.CRITICAL,
                f"GET verification: {text} (got {body!r}, challenge {handshake.challenge})",
                "webhook.handshake",
            )
        ]
    if handshake.checks_token is False:
        return [
            Finding(
                Status.WARNING,
                "GET verification: echoes the challenge whatever the verify token; check "
                "hub.verify_token and answer 403 when it differs",
                "webhook.handshake",
            )
        ]
    return [Finding(Status.OK, "GET verification answers the challenge")]


class WebhookSubscriptionCheck(_WebhookCheck):
    """What the platform says it delivers to, against the configured URL."""

    kind = "subscription"
    what = "subscription (the platform's side)"

    async def run(self, ctx: CheckContext) -> Sequence[CheckResult]:
        """Ask the platform, per account (Shopee: once, its push config is the app's)."""
        webhook = self.spec.webhook
        assert webhook is not None
        if webhook.registration is None:
            return [
                self.result(
                    Status.SKIPPED,
                    f"{self.spec.title} has no API that says where it delivers; check it in "
                    "the platform's console",
                )
            ]
        found = self.receiver(ctx)
        if isinstance(found, CheckResult):
            return [found]
        session = ctx.session()
        accounts = session.accounts_of(self.platform)
        if found.webhook.registration_per_app:
            accounts = accounts[:1]
        return list(await asyncio.gather(*(self._ask(ctx, found, a) for a in accounts)))

    async def _ask(self, ctx: CheckContext, target: Receiver, account: Account) -> CheckResult:
        webhook = target.webhook
        assert webhook.registration is not None
        session = ctx.session()
        token = await session.stored_token(account)
        if token is None:
            return self.result(
                Status.SKIPPED, "no stored token to ask the platform with", subject=account.label
            )
        client = session.client(account, access_token=token.access_token)
        try:
            registration = await webhook.registration(client)
        except TaxonomyError as exc:
            return self.result(
                Status.CRITICAL if exc.category.value != "rate_limited" else Status.WARNING,
                f"{webhook.registration_api}: {exc.message}",
                next_command=f"nfdoctor check {self.platform} --shop {account.account_id}",
                subject=account.label,
            )
        findings: list[Finding] = []
        configured = target.url
        if registration.urls and configured not in registration.urls:
            near = [u for u in registration.urls if u.rstrip("/") == configured.rstrip("/")]
            why = " (they differ only by a trailing slash)" if near else ""
            findings.append(
                Finding(
                    Status.CRITICAL,
                    f"{self.spec.title} delivers to {', '.join(registration.urls)}, not to the "
                    f"configured {configured}{why}",
                    "webhook.url_mismatch",
                )
            )
        elif registration.urls:
            findings.append(Finding(Status.OK, f"{self.spec.title} delivers to {configured}"))
        if registration.messages_subscribed is False:
            findings.append(
                Finding(
                    Status.CRITICAL,
                    "chat messages are not among the subscribed events",
                    "webhook.not_subscribed",
                )
            )
        elif registration.messages_subscribed:
            findings.append(Finding(Status.OK, "subscribed to chat messages"))
        health = "webhook.push_health"
        findings += [Finding(Status.CRITICAL, p, health) for p in registration.problems]
        findings += [Finding(Status.WARNING, w, health) for w in registration.warnings]
        return self.judged(
            findings,
            details=[f"{webhook.registration_api}:", *registration.details],
            subject=account.label,
            next_command=f"nfdoctor webhook lost {self.platform}"
            if webhook.lost_push_api
            else None,
        )


class WebhookTlsCheck(_WebhookCheck):
    """The receiver's URL and certificate, as the platform (and check_ssl_cert) sees them."""

    kind = "tls"
    what = "URL and TLS certificate"

    async def run(self, ctx: CheckContext) -> Sequence[CheckResult]:
        """Inspect the receiver's TLS (the chain it sends, its verdict)."""
        found = self.receiver(ctx)
        if isinstance(found, CheckResult):
            return [found]
        return [await judge_tls(self, ctx, found)]


async def judge_tls(check: _WebhookCheck, ctx: CheckContext, target: Receiver) -> CheckResult:
    """The TLS result of one receiver."""
    from nfdoctor.net.tls import inspect_tls, tls_findings

    title = target.platform.title
    findings = [
        Finding(Status.CRITICAL, problem.message, "webhook.url")
        for problem in url_problems(target.url, target.webhook, title)
    ]
    parts = urllib.parse.urlsplit(target.url)
    if parts.scheme != "https" or not parts.hostname:
        return check.judged(findings, subject=target.url)
    host = parts.hostname
    try:
        port = parts.port or 443
    except ValueError:
        return check.judged(findings, subject=target.url)
    rules = [parse_connect_to(rule) for rule in ctx.config.webhooks.connect_to]
    connect = connect_target(rules, host, port)
    thresholds = ctx.config.thresholds
    try:
        # Through connect_to: the connection goes to its address, the name stays the URL's.
        inspection = await inspect_tls(
            connect[0] if connect else host,
            connect[1] if connect else port,
            server_name=host,
            ca_bundle=load_ca_bundle(ctx.loaded),
            timeout_s=min(10.0, thresholds.check_timeout.total_seconds() / 2),
        )
    except UsageError:
        raise
    except Exception as exc:
        findings.append(Finding(Status.CRITICAL, f"TLS: {exc}", "webhook.unreachable"))
        return check.judged(findings, subject=target.url)
    details: list[str] = []
    judged = tls_findings(
        inspection,
        now=ctx.clock(),
        warning_days=thresholds.cert_expiry_warning.days,
        critical_days=thresholds.cert_expiry_critical.days,
    )
    for finding in judged:
        findings.append(Finding(finding.status, finding.summary, "webhook.tls"))
    # The trust finding describes every certificate sent; a failing finding adds its own
    # lines. Each line once.
    for finding in sorted(judged, key=lambda f: f.code != "trust"):
        chain_wide = finding.certificate is None
        if finding.code == "trust" or (chain_wide and finding.status is not Status.OK):
            details += [f"  {line}" for line in finding.details if f"  {line}" not in details]
    leaf = inspection.leaf
    days = (leaf.not_after - ctx.clock()).total_seconds() / 86400
    trusted = "trusted" if inspection.trust.ok else "not trusted"
    level = inspection.validation_level
    lead = (
        f"{inspection.protocol}, {level or 'no validation policy'} certificate valid until "
        f"{leaf.not_after:%Y-%m-%d} ({days:.0f} d), chain of {len(inspection.chain)} "
        f"{trusted} by {inspection.trust_store}"
    )
    metrics = [
        Metric(
            name="leaf_expires_in",
            value=round(days * 86400),
            unit="s",
            warn=thresholds.cert_expiry_warning.total_seconds(),
            crit=thresholds.cert_expiry_critical.total_seconds(),
        )
    ]
    levels = target.webhook.certificate_levels
    if levels is not None and level not in levels:
        findings.append(
            Finding(
                Status.CRITICAL,
                f"{title} requires an {' or '.join(sorted(levels))} certificate; this one is "
                + (f"{level}-validated" if level else "without a CA/B Forum validation policy")
                + " (DV certificates do not work)",
                "webhook.cert_level",
            )
        )
    failing = any(f.status is not Status.OK for f in findings)
    return check.judged(
        findings,
        lead=() if failing else (lead,),
        details=details,
        metrics=metrics,
        subject=target.url,
    )


def webhook_checks(platforms: Sequence[str] | None = None) -> list[Check]:
    """The webhook checks of ``platforms`` (default: every platform), in report order."""
    wanted = SPECS if platforms is None else [platform_spec(name) for name in platforms]
    checks: list[Check] = []
    for platform in wanted:
        if platform.webhook is None:
            continue
        checks += [
            WebhookTlsCheck(platform),
            WebhookDeliveryCheck(platform),
            WebhookSubscriptionCheck(platform),
        ]
    return checks
