"""``nfdoctor webhook check | send | verify | trace | lost``: the CRM's webhook receivers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from nfdoctor.choices import FailOn
from nfdoctor.cli.options import (
    ConfigOption,
    DebugOption,
    FailOnOption,
    LangOption,
    OutputOption,
    TimeoutOption,
    WriteOption,
)

if TYPE_CHECKING:
    from nfdoctor.context import Environment
    from nfdoctor.webhooks.delivery import Delivery

webhook_app = typer.Typer(
    help="Check, exercise and repair webhook delivery from the platforms to the CRM.",
    no_args_is_help=True,
)


@webhook_app.command("check")
def check(
    platform: Annotated[
        str,
        typer.Argument(
            help="shopee, lazada, tiktok, facebook, zalo, or all (every configured platform)."
        ),
    ] = "all",
    output: OutputOption = None,
    write: WriteOption = None,
    fail_on: FailOnOption = FailOn.WARNING,
    timeout: TimeoutOption = None,
    lang: LangOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Check each webhook receiver as its platform sees it.

    URL and TLS certificate (like check_ssl_cert), signed probe deliveries against the
    platform's acknowledgement deadline, the answer, a wrongly signed probe, Facebook's GET
    verification, and what the platform says it delivers to.

    The probes are events the CRM acknowledges and drops: nothing lands in an inbox.

    Example: nfdoctor webhook check lazada
    """
    from nfdoctor.cli.common import (
        check_write_target,
        guarded,
        parse_timeout,
        progress,
        write_report,
    )
    from nfdoctor.services.webhook_check import WebhookCheckRequest, check_webhooks

    def body(env: Environment) -> int:
        request = WebhookCheckRequest(
            platform=platform, config_path=config, timeout=parse_timeout(timeout)
        )
        check_write_target(write)
        with progress(env) as observer:
            report = check_webhooks(env, request, observer=observer)
        return write_report(env, report, output=output, write=write, fail_on=fail_on)

    guarded(body, debug=debug, lang=lang)


PlatformArgument = Annotated[
    str, typer.Argument(help="shopee, lazada, tiktok, facebook or zalo.", show_default=False)
]
UrlOption = Annotated[
    Optional[str],  # noqa: UP045 - Typer reads the annotation at runtime on 3.10
    typer.Option(
        "--url",
        help="Deliver here instead of platforms.PLATFORM.webhook_url (Shopee signs this URL).",
        show_default=False,
    ),
]
WebhookShopOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--shop",
        help="The shop, seller, page or OA the event is for (default: the first configured).",
        show_default=False,
    ),
]


def _show_deliveries(env: Environment, deliveries: Sequence[Delivery]) -> None:
    """``--debug``: the signed request as sent, every configured secret masked."""
    for delivery in deliveries:
        for line in delivery.describe():
            env.stderr.write(env.redactor.redact(f"nfdoctor: debug: {line}") + "\n")
    env.stderr.flush()


@webhook_app.command("send")
def send(
    platform: PlatformArgument,
    shop: WebhookShopOption = None,
    event: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--event",
            help="Deliver the JSON event in FILE (re-encoded as the platform encodes it).",
            show_default=False,
        ),
    ] = None,
    event_type: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--type",
            help="The event nfdoctor makes: message (default), probe, or the platform's "
            "others (order_status, order, postback, follow).",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
    duplicate: Annotated[
        int,
        typer.Option(
            "--duplicate",
            help="Send the same message id N times: does the receiver deduplicate? "
            "(counts the rows when database.url is set)",
        ),
    ] = 1,
    output: OutputOption = None,
    write: WriteOption = None,
    fail_on: FailOnOption = FailOn.WARNING,
    timeout: TimeoutOption = None,
    lang: LangOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Deliver an event to the CRM's webhook, signed exactly as the platform signs it.

    Reports the answer against the platform's acknowledgement deadline.

    The default event is a chat message in Vietnamese, encoded as the platform encodes it
    (Facebook's \\uXXXX escaping, Zalo's string ids and millisecond timestamp): it lands
    in the CRM inbox. Use --type probe for an event the CRM acknowledges and drops.

    Example: nfdoctor webhook send lazada --duplicate 3
    """
    from nfdoctor.cli.common import check_write_target, guarded, parse_timeout, write_report
    from nfdoctor.services.webhook import SendRequest, send_delivery

    def body(env: Environment) -> int:
        check_write_target(write)
        run = send_delivery(
            env,
            SendRequest(
                platform=platform,
                config_path=config,
                shop=shop,
                event_file=event,
                event_type=event_type,
                url=url,
                duplicate=duplicate,
                timeout=parse_timeout(timeout),
            ),
        )
        if debug:
            _show_deliveries(env, run.deliveries)
        return write_report(env, run.report, output=output, write=write, fail_on=fail_on)

    guarded(body, debug=debug, lang=lang)


@webhook_app.command("trace")
def trace(
    platform: PlatformArgument,
    shop: WebhookShopOption = None,
    url: UrlOption = None,
    trace_timeout: Annotated[
        str, typer.Option("--timeout", help="How long to watch the CRM inbox for the message.")
    ] = "30s",
    retries: Annotated[
        int,
        typer.Option(
            "--retries",
            help="Deliver again this many times when the acknowledgement is later than the "
            "platform's deadline, as the platform does (0: never).",
        ),
    ] = 1,
    cleanup: Annotated[
        bool,
        typer.Option("--cleanup", help="Delete exactly the messages rows the test message caused."),
    ] = False,
    output: OutputOption = None,
    write: WriteOption = None,
    fail_on: FailOnOption = FailOn.WARNING,
    lang: LangOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Send a test message and watch the CRM database until it is in the inbox.

    The delivery-to-inbox time against the 5 s target, and whether it arrived exactly once
    (runbook 3.1 step 4).

    nfdoctor writes nothing to the CRM itself; the rows the message caused are named, and
    --cleanup deletes exactly those.

    Example: nfdoctor webhook trace zalo --cleanup
    """
    from nfdoctor.cli.common import check_write_target, guarded, parse_timeout, write_report
    from nfdoctor.services.webhook import TraceRequest, trace_delivery

    def body(env: Environment) -> int:
        check_write_target(write)
        span = parse_timeout(trace_timeout)
        assert span is not None
        run = trace_delivery(
            env,
            TraceRequest(
                platform=platform,
                config_path=config,
                shop=shop,
                url=url,
                timeout=span,
                retries=retries,
                cleanup=cleanup,
            ),
        )
        if debug:
            _show_deliveries(env, run.deliveries)
        return write_report(env, run.report, output=output, write=write, fail_on=fail_on)

    guarded(body, debug=debug, lang=lang)


@webhook_app.command("lost")
def lost(
    platform: Annotated[str, typer.Argument(help="shopee (the only platform that keeps them).")],
    shop: WebhookShopOption = None,
    url: UrlOption = None,
    replay: Annotated[
        bool,
        typer.Option(
            "--replay",
            help="Re-deliver each lost push to the CRM's webhook, signed as Shopee signs it.",
        ),
    ] = False,
    confirm: Annotated[
        bool,
        typer.Option(
            "--confirm",
            help="Then confirm each page to Shopee, only when the CRM acknowledged all of it.",
        ),
    ] = False,
    output: OutputOption = None,
    write: WriteOption = None,
    fail_on: FailOnOption = FailOn.WARNING,
    lang: LangOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """List the pushes Shopee could not deliver; re-deliver and confirm them.

    The last 3 days' lost pushes; --replay re-delivers them to the CRM, --confirm confirms to
    Shopee what the CRM acknowledged.

    Without --replay nothing is sent anywhere. A push acknowledged once is never re-delivered
    by a later run (a journal in the state dir keeps them).

    Example: nfdoctor webhook lost shopee --replay --confirm
    """
    from nfdoctor.cli.common import check_write_target, guarded, write_report
    from nfdoctor.services.webhook_lost import LostRequest, recover_lost_pushes

    def body(env: Environment) -> int:
        check_write_target(write)
        report = recover_lost_pushes(
            env,
            LostRequest(
                platform=platform,
                config_path=config,
                shop=shop,
                url=url,
                replay=replay,
                confirm=confirm,
            ),
        )
        return write_report(env, report, output=output, write=write, fail_on=fail_on)

    guarded(body, debug=debug, lang=lang)


# --- verify (nfdoctor/cli/webhook_verify_cmd.py) ---
from nfdoctor.cli.webhook_verify_cmd import verify  # noqa: E402 - one block per command

webhook_app.command("verify")(verify)
