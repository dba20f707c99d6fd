"""The ``nfdoctor`` command: its Typer app and the process entry point.

Only Typer and the standard library are imported here; every command imports what it
needs when it runs, so ``nfdoctor --version`` and ``--help`` start fast.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Annotated, Any, NoReturn

import typer
import typer.main

# Typer (>= 0.29) vendors Click; these are the classes its parser raises.
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.core import TyperGroup

from nfdoctor import __version__
from nfdoctor.cli.check_cmd import check
from nfdoctor.cli.config_cmd import config_app
from nfdoctor.cli.diagnose import diagnose
from nfdoctor.cli.simulator_cmd import simulator
from nfdoctor.cli.streams import QuietStream, escape_note, install_escaping
from nfdoctor.cli.sync_cmd import sync

HELP = """Troubleshoot NextFlow CRM's Shopee, Lazada, TikTok Shop, Facebook and Zalo integrations.

Exit codes (monitoring-plugins convention): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
Bad arguments and bad config also exit 3, with one line on stderr saying what and where.
Data goes to stdout; messages, warnings and tips go to stderr.

Example: nfdoctor diagnose
"""

app = typer.Typer(
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    # Pretty exceptions can print local variables, and a local may hold a secret.
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nfdoctor {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Troubleshoot NextFlow CRM's multichannel integrations."""


app.command("diagnose")(diagnose)
app.command("check")(check)
app.add_typer(config_app, name="config")
app.command("simulator")(simulator)
app.command("sync")(sync)


class LazyGroup(TyperGroup):
    """A command group whose module is imported, and whose commands are built, only when it
    is used: Typer builds every command of the tree (reading each signature) before it parses
    the arguments, even for ``nfdoctor --version``."""

    def __init__(self, *, name: str, help: str, load: Callable[[], typer.Typer]) -> None:
        super().__init__(name=name, help=help, no_args_is_help=True)
        self._load = load
        self._built: TyperGroup | None = None

    def _group(self) -> Any:
        if self._built is None:
            built = typer.main.get_command(self._load())
            assert isinstance(built, TyperGroup)
            self._built = built
        return self._built

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self._group().list_commands(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return self._group().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        # The built group's, so a typo gets its "did you mean".
        return self._group().resolve_command(ctx, args)


def _webhook_app() -> typer.Typer:
    from nfdoctor.cli.webhook_cmd import webhook_app

    return webhook_app


def _token_app() -> typer.Typer:
    from nfdoctor.cli.token_cmd import token_app

    return token_app


LAZY_GROUPS = (
    (
        "webhook",
        "Check, exercise and repair webhook delivery from the platforms to the CRM.",
        _webhook_app,
    ),
    (
        "token",
        "Tokens: their state, refreshing them safely, authorising a shop again.",
        _token_app,
    ),
)


def command_tree() -> Any:
    """The whole command tree (what ``main`` runs)."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    for name, help_text, load in LAZY_GROUPS:
        root.add_command(LazyGroup(name=name, help=help_text, load=load))
    return root


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point: run the app; Click usage errors exit 3, not Click's 2.

    Nothing escapes as a traceback: what the commands' own guard does not catch (Typer's
    parser, a failure before a command runs) is one line here, with the traceback only
    under ``--debug``.
    """
    install_escaping()
    stderr = QuietStream(sys.stderr)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = command_tree()(args=args, prog_name="nfdoctor", standalone_mode=False)
    except NoArgsIsHelpError:
        code = 0  # Typer has printed the help already
    except ClickException as exc:
        message = exc.format_message()
        command = exc.ctx.command_path if getattr(exc, "ctx", None) else "nfdoctor"  # type: ignore[attr-defined]
        stderr.write(f"nfdoctor: usage: {message} (see `{command} --help`)\n")
        code = 3
    except KeyboardInterrupt:
        stderr.write("nfdoctor: interrupted\n")
        code = 130
    except Exception as exc:  # a bug outside any command's guard: still one line
        if "--debug" in args:
            stderr.write("".join(traceback.format_exception(exc)))
        stderr.write(f"nfdoctor: internal error: {type(exc).__name__}: {exc}\n")
        code = 3
    note = escape_note()
    if note is not None:
        stderr.write(note)
    stderr.flush()
    sys.exit(code if isinstance(code, int) else 0)
