"""``nfdoctor webhook verify PLATFORM``: check a captured delivery's signature, offline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from nfdoctor.choices import FailOn
from nfdoctor.cli.options import (
    ConfigOption,
    DebugOption,
    LangOption,
    OutputOption,
    ShopOption,
)

if TYPE_CHECKING:
    from nfdoctor.context import Environment


def verify(
    platform: Annotated[
        str,
        typer.Argument(help="shopee, lazada, tiktok, facebook or zalo.", show_default=False),
    ],
    body: Annotated[
        str,
        typer.Option(
            "--body",
            help="File holding the delivery's raw body, byte for byte as received "
            "(- reads standard input).",
            show_default=False,
        ),
    ],
    signature: Annotated[
        str,
        typer.Option(
            "--signature",
            help="The signature header's value as captured: sha256=… (Facebook "
            "X-Hub-Signature-256; sha1=… for the legacy X-Hub-Signature), mac=… (Zalo "
            "X-ZEvent-Signature), bare hex (the Authorization header of Shopee, Lazada, TikTok).",
            show_default=False,
        ),
    ],
    url: Annotated[
        Optional[str],  # noqa: UP045 - Typer reads the annotation at runtime on 3.10
        typer.Option(
            "--url",
            help="The callback URL the platform signs (Shopee only; default: webhook_url).",
            show_default=False,
        ),
    ] = None,
    timestamp: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--timestamp",
            help="The signed timestamp (Zalo only; default: the body's timestamp field).",
            show_default=False,
        ),
    ] = None,
    shop: ShopOption = None,
    output: OutputOption = None,
    lang: LangOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Verify a captured delivery's signature with the configured keys, offline.

    Nothing is sent. When it does not verify, name the likely cause by trying each: a
    re-serialised body, another configured secret, another URL (Shopee), a prefix or hex case,
    the low-confidence variants (Zalo's secret and first term, the timestamp).

    Example: nfdoctor webhook verify facebook --body delivery.json --signature sha256=…
    """

    # The command body is the seam: `nfdoctor --version` imports this module, not these.
    import sys

    from nfdoctor.cli.common import ConsoleObserver, guarded, write_report
    from nfdoctor.services.webhook_verify import VerifyRequest, verify_delivery

    def run(env: Environment) -> int:
        request = VerifyRequest(
            platform=platform,
            body=body,
            signature=signature,
            config_path=config,
            shop=shop,
            url=url,
            timestamp=timestamp,
        )
        stdin = getattr(sys.stdin, "buffer", None) if body == "-" else None
        # One quick step: the config's warnings on stderr, and no progress bar.
        observer = ConsoleObserver(env, lambda check_id, total: None)
        report = verify_delivery(env, request, observer=observer, stdin=stdin)
        return write_report(env, report, output=output, write=None, fail_on=FailOn.WARNING)

    guarded(run, debug=debug, lang=lang)
