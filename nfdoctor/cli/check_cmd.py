"""``nfdoctor check PLATFORM|all``: connectivity, API and tokens of each shop, page or OA."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from nfdoctor.choices import FailOn
from nfdoctor.cli.options import (
    ConfigOption,
    DebugOption,
    FailOnOption,
    LangOption,
    OutputOption,
    ShopOption,
    TimeoutOption,
    WriteOption,
)

if TYPE_CHECKING:
    from nfdoctor.context import Environment


def check(
    platform: Annotated[
        str,
        typer.Argument(
            help="shopee, lazada, tiktok, facebook, zalo, or all (every configured platform).",
            show_default=False,
        ),
    ],
    shop: ShopOption = None,
    output: OutputOption = None,
    write: WriteOption = None,
    fail_on: FailOnOption = FailOn.WARNING,
    timeout: TimeoutOption = None,
    lang: LangOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Test a platform's API for each shop: DNS, TCP, TLS, first byte, an authenticated call,
    clock skew, rate-limit headroom, response shape, and the stored tokens.

    Example: nfdoctor check lazada --shop 100234567
    """

    # The command body is the seam: `nfdoctor --version` imports this module, not these.
    from nfdoctor.cli.common import (
        check_write_target,
        guarded,
        parse_timeout,
        progress,
        write_report,
    )
    from nfdoctor.services.check import CheckRequest, check_platforms

    def body(env: Environment) -> int:
        request = CheckRequest(
            platform=platform, config_path=config, shop=shop, timeout=parse_timeout(timeout)
        )
        check_write_target(write)
        with progress(env) as observer:
            report = check_platforms(env, request, observer=observer)
        return write_report(env, report, output=output, write=write, fail_on=fail_on)

    guarded(body, debug=debug, lang=lang)
