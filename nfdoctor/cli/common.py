"""What every command shares: its options, building the context, logging, running guarded."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from nfdoctor.context import Context

ConfigOption = Annotated[
    Optional[Path],  # noqa: UP045 - Typer reads the annotation at runtime on 3.10
    typer.Option(
        "--config",
        "-c",
        help="Config file (default: discovery order in the README).",
        show_default=False,
    ),
]
DebugOption = Annotated[
    bool, typer.Option("--debug", help="Show debug logs and tracebacks (secrets still masked).")
]
LangOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--lang", help="Hint language: vi or en (default: from the locale).", show_default=False
    ),
]


def make_context(*, config: Path | None, debug: bool, lang: str | None) -> Context:
    """The run's context, with logging to stderr through the redactor."""
    from nfdoctor.cli.streams import standard_streams
    from nfdoctor.context import Context, current_directory
    from nfdoctor.errors import UsageError

    stdout, stderr = standard_streams()
    ctx = Context(
        config_path=config, debug=debug, stdout=stdout, stderr=stderr, cwd=current_directory()
    )
    _setup_logging(ctx)
    if lang is not None:
        if lang not in ("vi", "en"):
            raise UsageError(f"--lang: expected vi or en, got {lang!r}")
        ctx.lang = lang
    return ctx


def _setup_logging(ctx: Context) -> None:
    import logging

    from nfdoctor.secrets.redaction import RedactingFilter

    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_nfdoctor", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(ctx.stderr)
    handler._nfdoctor = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter(ctx.redactor))
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if ctx.debug else logging.WARNING)
    # httpx logs every URL at INFO, query-string tokens included: keep it quiet unless asked.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG if ctx.debug else logging.WARNING)


def guarded(
    body: Callable[[Context], int],
    *,
    config: Path | None,
    debug: bool,
    lang: str | None = None,
    command: str | None = None,
) -> None:
    """Build the context, run ``body``, turn any exception into a message; exit with its code.

    Everything is inside the guard, building the context (a deleted working directory) and
    writing the output (a closed, full or broken stdout) included.
    """
    from nfdoctor.cli.errors import report_error
    from nfdoctor.cli.streams import standard_streams
    from nfdoctor.context import Context

    stdout, stderr = standard_streams()
    # Needs nothing from the outside world, so the guard can report even a failure to build
    # the real context.
    ctx = Context(debug=debug, stdout=stdout, stderr=stderr, cwd=Path("/"))
    try:
        ctx = make_context(config=config, debug=debug, lang=lang)
        ctx.command = command
        code = body(ctx)
    except KeyboardInterrupt:
        ctx.stderr.write("nfdoctor: interrupted\n")
        code = 130
    except Exception as exc:
        code = report_error(ctx, exc)
    raise typer.Exit(code)


def warn_config(ctx: Context) -> None:
    """Print the loaded config's warnings (unknown keys, inline secrets) to stderr."""
    for problem in ctx.load_config().warnings:
        ctx.stderr.write(ctx.redactor.redact(f"nfdoctor: warning: {problem.located()}") + "\n")


def emit(ctx: Context, text: str) -> None:
    """Write data to stdout, redacted (OutputError when stdout cannot take it)."""
    from nfdoctor.cli.streams import write_data

    write_data(ctx.stdout, ctx.redactor.redact(text))


@contextlib.contextmanager
def progress_observer(ctx: Context, *, total: int) -> Iterator[Callable[..., None] | None]:
    """A Rich progress bar on stderr when it is a terminal; nothing otherwise (cron, CI)."""
    if not ctx.stderr.isatty() or "NO_COLOR" in ctx.environ:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(file=ctx.stderr), transient=True) as progress:
        task = progress.add_task("checking", total=total)

        def advance(check: object, results: object) -> None:
            progress.update(task, advance=1, description=str(getattr(check, "id", "")))

        yield advance
