"""``nfdoctor token authorize PLATFORM``: authorise a shop again, without the seller centre."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from nfdoctor.choices import FailOn
from nfdoctor.cli.options import (
    ConfigOption,
    DebugOption,
    FailOnOption,
    LangOption,
    OutputOption,
    WriteOption,
)

if TYPE_CHECKING:
    from nfdoctor.context import Environment


class TerminalConsent:
    """The operator at a terminal: lines on stderr, the system browser, a paste on stdin."""

    def __init__(self, env: Environment) -> None:
        self.env = env

    def tell(self, text: str) -> None:
        """One line on stderr, redacted."""
        self.env.stderr.write(self.env.redactor.redact(text) + "\n")
        self.env.stderr.flush()

    def show_link(self, url: str) -> None:
        """The consent link on stderr, indented, whole (a sign masked would break it)."""
        self.env.stderr.write(f"  {url}\n")
        self.env.stderr.flush()

    def open_browser(self, url: str) -> bool:
        """The system's browser (:mod:`webbrowser`); False when there is none."""
        import webbrowser

        try:
            return webbrowser.open(url, new=1)
        except webbrowser.Error:
            return False

    def read_line(self) -> str | None:
        """One line from stdin; None at its end (or when there is no stdin)."""
        import sys

        if sys.stdin is None:
            return None
        line = sys.stdin.readline()
        return line or None


def authorize(
    platform: Annotated[
        str,
        typer.Argument(help="shopee, lazada, tiktok, facebook or zalo.", show_default=False),
    ],
    shop: Annotated[
        Optional[str],  # noqa: UP045 - Typer reads the annotation at runtime on 3.10
        typer.Option(
            "--shop",
            help="The shop id, Lazada seller id, Facebook page id or Zalo OA id to authorise "
            "(default: the one the platform names, or the only one configured).",
            show_default=False,
        ),
    ] = None,
    no_browser: Annotated[
        bool,
        typer.Option(
            "--no-browser",
            help="Print the link on stderr and read the address the browser ends on (or the "
            "bare code) from stdin: for a server without a browser.",
        ),
    ] = False,
    port: Annotated[
        Optional[int],  # noqa: UP045 - Typer reads the annotation at runtime on 3.10
        typer.Option(
            "--port",
            min=1,
            max=65535,
            help="Loopback port the redirect comes back to (default: the port of the "
            "configured redirect_uri, else any free one).",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        str,
        typer.Option("--timeout", help="How long to wait for the browser, or for the paste."),
    ] = "5m",
    output: OutputOption = None,
    write: WriteOption = None,
    fail_on: FailOnOption = FailOn.WARNING,
    lang: LangOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Authorise a shop, seller, Page or OA again: consent in the browser, new tokens stored.

    Opens the platform's consent page, catches the redirect on 127.0.0.1 (or reads the
    pasted address with --no-browser), checks its state, exchanges the code once, stores the
    new pair and verifies it with an API call. Nothing is stored on any refusal (exit 3).

    Example: nfdoctor token authorize shopee --shop 36192056
    """
    from nfdoctor.cli.common import check_write_target, guarded, parse_timeout, write_report
    from nfdoctor.services.token_authorize import AuthorizeRequest
    from nfdoctor.services.token_authorize import authorize as authorize_account

    def body(env: Environment) -> int:
        check_write_target(write)
        wait = parse_timeout(timeout)
        assert wait is not None  # the option has a default
        request = AuthorizeRequest(
            platform=platform,
            shop=shop,
            config_path=config,
            no_browser=no_browser,
            port=port,
            wait=wait,
        )
        report = authorize_account(env, request, consent=TerminalConsent(env))
        return write_report(env, report, output=output, write=write, fail_on=fail_on)

    guarded(body, debug=debug, lang=lang)
