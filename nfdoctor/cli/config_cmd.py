"""``nfdoctor config init | validate | show``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from nfdoctor.cli.options import ConfigOption, DebugOption

if TYPE_CHECKING:
    from nfdoctor.cli.common import ConsoleObserver
    from nfdoctor.context import Environment

config_app = typer.Typer(
    help="Write, check and show the config (secrets are always masked).",
    no_args_is_help=True,
)


def _warnings_only(env: Environment) -> ConsoleObserver:
    from nfdoctor.cli.common import ConsoleObserver

    return ConsoleObserver(env, lambda check_id, total: None)


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

    # The command body is the seam: `nfdoctor --version` imports this module, not these.
    from nfdoctor.cli.common import guarded
    from nfdoctor.services.config import write_template

    def body(env: Environment) -> int:
        target = write_template(path, environ=env.environ, force=force)
        env.stderr.write(f"wrote {target}\nNext: edit it, then run `nfdoctor config validate`\n")
        return 0

    guarded(body, debug=debug)


@config_app.command("validate")
def validate(config: ConfigOption = None, debug: DebugOption = False) -> None:
    """Check the config: YAML, types, key paths, and that every secret reference resolves.

    Example: nfdoctor config validate --config /etc/nfdoctor/config.yaml
    """

    # The command body is the seam: `nfdoctor --version` imports this module, not these.
    from nfdoctor.cli.common import emit, guarded
    from nfdoctor.services.config import validate_config

    def body(env: Environment) -> int:
        found = validate_config(env, config, observer=_warnings_only(env))
        emit(
            env,
            f"{found.path}: valid ({found.summary}, {found.secrets_resolved} secret(s) resolved)\n",
        )
        return 1 if found.warnings else 0

    guarded(body, debug=debug, command="config validate")


@config_app.command("show")
def show(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of YAML.")] = False,
    debug: DebugOption = False,
) -> None:
    """Print the effective config (defaults filled in) with every secret masked.

    Example: nfdoctor config show --json | jq .thresholds
    """

    # The command body is the seam: `nfdoctor --version` imports this module, not these.
    from nfdoctor.cli.common import emit, guarded
    from nfdoctor.services.config import show_config

    def body(env: Environment) -> int:
        shown = show_config(env, config, as_json=as_json, observer=_warnings_only(env))
        emit(env, shown.text)
        return 0

    guarded(body, debug=debug)
