"""``nfdoctor check PLATFORM|all``: connectivity, API and tokens of each shop, page or OA."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from nfdoctor.choices import FailOn
from nfdoctor.cli.common import ConfigOption, DebugOption, LangOption, guarded, warn_config
from nfdoctor.cli.reporting import (
    FailOnOption,
    OutputOption,
    ShopOption,
    TimeoutOption,
    WriteOption,
    check_write_target,
    parse_timeout,
    platform_run,
    run_and_render,
)

if TYPE_CHECKING:
    from nfdoctor.context import Context


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

    def body(ctx: Context) -> int:
        from nfdoctor.checks.platforms import platform_checks
        from nfdoctor.errors import UsageError

        name = platform.strip().lower()
        if not name:
            raise UsageError("PLATFORM: empty; expected a platform name or all")
        per_check_timeout = parse_timeout(timeout)
        check_write_target(write)
        loaded = ctx.load_config()
        warn_config(ctx)
        ctx.resolve_all_secrets()
        check_timeout = per_check_timeout or loaded.config.thresholds.check_timeout
        run = platform_run(
            ctx, platforms=[] if name == "all" else [name], shop=shop, check_timeout=check_timeout
        )
        checks = platform_checks(run)
        if not checks:
            raise UsageError(
                f"no platform is configured in {loaded.path}; add a platforms: section "
                "(see nfdoctor config init)"
            )
        return run_and_render(
            ctx,
            checks,
            command=f"check {name}",
            timeout=check_timeout,
            output=output,
            write=write,
            fail_on=fail_on,
        )

    guarded(body, config=config, debug=debug, lang=lang)
