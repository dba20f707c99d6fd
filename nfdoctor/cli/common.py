"""What every command shares: the guard around its body, logging, writing data, progress.

A command is a plain function: it parses its options, and its body calls one service,
renders what the service returns and gives back an exit code. :func:`guarded` builds the
run's :class:`~nfdoctor.context.Environment`, turns any exception into one line and an exit
code, and exits.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import typer

from nfdoctor.choices import FailOn, OutputFormat
from nfdoctor.cli.errors import report_error
from nfdoctor.cli.streams import standard_streams, write_data
from nfdoctor.context import Environment
from nfdoctor.durations import parse_span
from nfdoctor.errors import ConfigProblem, UsageError, WriteTargetError
from nfdoctor.fsutil import check_write_target as check_target
from nfdoctor.fsutil import write_atomically
from nfdoctor.results import CheckResult, Report
from nfdoctor.secrets.redaction import RedactingFilter

__all__ = [
    "ConsoleObserver",
    "check_write_target",
    "emit",
    "guarded",
    "parse_csv",
    "parse_timeout",
    "progress",
    "write_report",
]


def _setup_logging(env: Environment) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_nfdoctor", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(env.stderr)
    handler._nfdoctor = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter(env.redactor))
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if env.debug else logging.WARNING)
    # httpx logs every URL at INFO, query-string tokens included: keep it quiet unless asked.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG if env.debug else logging.WARNING)


def guarded(
    body: Callable[[Environment], int],
    *,
    debug: bool,
    lang: str | None = None,
    command: str | None = None,
) -> None:
    """Build the environment, run ``body``, turn any exception into a message; exit with its
    code.

    Everything is inside the guard, building the environment (a deleted working directory)
    and writing the output (a closed, full or broken stdout) included. ``command`` (``config
    validate``) keeps a tip from telling the operator to run what they just ran.
    """
    stdout, stderr = standard_streams()
    # Needs nothing from the outside world, so the guard can report even a failure to build
    # the real environment.
    env = Environment(debug=debug, stdout=stdout, stderr=stderr)
    try:
        env = Environment.of_process(stdout=stdout, stderr=stderr, debug=debug, lang=lang)
        _setup_logging(env)
        code = body(env)
    except KeyboardInterrupt:
        env.stderr.write("nfdoctor: interrupted\n")
        code = 130
    except Exception as exc:
        code = report_error(env, exc, command=command)
    raise typer.Exit(code)


def emit(env: Environment, text: str) -> None:
    """Write data to stdout, redacted (OutputError when stdout cannot take it)."""
    write_data(env.stdout, env.redactor.redact(text))


class ConsoleObserver:
    """Shows a service's progress: config warnings on stderr, a bar on a terminal."""

    def __init__(self, env: Environment, advance: Callable[[str, int | None], None]) -> None:
        self.env = env
        self._advance = advance

    def config_warnings(self, problems: Sequence[ConfigProblem]) -> None:
        """One ``nfdoctor: warning:`` line per problem, redacted."""
        for problem in problems:
            line = f"nfdoctor: warning: {problem.located()}"
            self.env.stderr.write(self.env.redactor.redact(line) + "\n")

    def started(self, total: int) -> None:
        """Size the bar."""
        self._advance("", total)

    def finished(self, check_id: str, results: Sequence[CheckResult]) -> None:
        """Move the bar on, naming the check that finished."""
        self._advance(check_id, None)


@contextlib.contextmanager
def progress(env: Environment, what: str = "checking") -> Iterator[ConsoleObserver]:
    """An observer for a service run: a Rich progress bar on stderr when it is a terminal,
    nothing but warnings otherwise (cron, CI, pipes)."""
    if not env.stderr.isatty() or "NO_COLOR" in env.environ:
        yield ConsoleObserver(env, lambda check_id, total: None)
        return
    from rich.console import Console  # only on a terminal: Rich is heavy to import
    from rich.progress import Progress

    with Progress(console=Console(file=env.stderr), transient=True) as bar:
        task = bar.add_task(what, total=None)

        def advance(check_id: str, total: int | None) -> None:
            if total is not None:
                bar.update(task, total=total)
            else:
                bar.update(task, advance=1, description=check_id)

        yield ConsoleObserver(env, advance)


def parse_csv(values: Sequence[str] | None) -> tuple[str, ...]:
    """Repeated and comma-separated option values as one tuple."""
    return tuple(
        part.strip() for value in values or [] for part in value.split(",") if part.strip()
    )


def parse_timeout(timeout: str | None) -> timedelta | None:
    """``--timeout`` as a positive span, or None when not given."""
    if timeout is None:
        return None
    try:
        span = parse_span(timeout)
    except ValueError as exc:
        raise UsageError(f"--timeout: {exc}") from None
    if span.total_seconds() <= 0:
        raise UsageError("--timeout: must be more than zero")
    return span


def check_write_target(write: Path | None, option: str = "--write") -> None:
    """Refuse a target that is not a regular file or cannot be written, before any work."""
    if write is None:
        return
    try:
        check_target(write)
    except WriteTargetError as exc:
        raise UsageError(f"{option}: {exc.reason}") from None


def write_report(
    env: Environment,
    report: Report,
    *,
    output: OutputFormat | None,
    write: Path | None,
    fail_on: FailOn,
) -> int:
    """Render ``report`` to stdout or ``write``; the exit code it calls for."""
    from nfdoctor.render import default_format, render  # renderers load on demand

    fmt = output or default_format(stdout_isatty=env.stdout.isatty(), environ=env.environ)
    text = render(
        report,
        fmt,
        width=max(80, shutil.get_terminal_size((100, 24)).columns),
        lang=env.lang,
        fail_on=fail_on,
        color=fmt is OutputFormat.TABLE and env.stdout.isatty(),
    )
    if write is not None:
        write_atomically(write, env.redactor.redact(text))
    else:
        emit(env, text)
    return report.exit_code(fail_on)
