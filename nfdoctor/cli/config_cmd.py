"""``nfdoctor config init | validate | show``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from nfdoctor.cli.common import ConfigOption, DebugOption, emit, guarded, warn_config

if TYPE_CHECKING:
    from nfdoctor.context import Context

config_app = typer.Typer(
    help="Write, check and show the config (secrets are always masked).",
    no_args_is_help=True,
)


@config_app.command("init")
def init(
    path: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--path",
            help="Where to write (default: $XDG_CONFIG_HOME/nfdoctor/config.yaml).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    debug: DebugOption = False,
) -> None:
    """Write a commented config template that uses secret references, never values.

    Example: nfdoctor config init --path /etc/nfdoctor/config.yaml
    """

    def body(ctx: Context) -> int:
        from nfdoctor.config.service import write_template

        target = write_template(path, environ=ctx.environ, force=force)
        ctx.stderr.write(f"wrote {target}\nNext: edit it, then run `nfdoctor config validate`\n")
        return 0

    guarded(body, config=None, debug=debug)


@config_app.command("validate")
def validate(config: ConfigOption = None, debug: DebugOption = False) -> None:
    """Check the config: YAML, types, key paths, and that every secret reference resolves.

    Example: nfdoctor config validate --config /etc/nfdoctor/config.yaml
    """

    def body(ctx: Context) -> int:
        from nfdoctor.config.service import summarise

        loaded = ctx.load_config()
        warn_config(ctx)
        resolved = ctx.resolve_all_secrets()
        emit(ctx, f"{loaded.path}: valid ({summarise(loaded)}, {resolved} secret(s) resolved)\n")
        return 1 if loaded.warnings else 0

    guarded(body, config=config, debug=debug, command="config validate")


@config_app.command("show")
def show(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of YAML.")] = False,
    debug: DebugOption = False,
) -> None:
    """Print the effective config (defaults filled in) with every secret masked.

    Example: nfdoctor config show --json | jq .thresholds
    """

    def body(ctx: Context) -> int:
        from nfdoctor.config.service import effective_config_text

        loaded = ctx.load_config()
        warn_config(ctx)
        emit(ctx, effective_config_text(loaded, as_json=as_json))
        return 0

    guarded(body, config=config, debug=debug)
