"""The translation table: each nfdoctor exception becomes one line, a tip, and an exit code.

Ordered: the first matching row wins, so subclasses come before their bases.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass

from nfdoctor import errors
from nfdoctor.cli.streams import silence_stdout
from nfdoctor.context import Environment

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3
#: the reader of stdout went away (``nfdoctor diagnose | head -1``): what a shell reports for
#: a command killed by SIGPIPE (128 + 13), as other CLIs do
EXIT_BROKEN_PIPE = 141


@dataclass(frozen=True)
class Translation:
    """How one kind of error is shown to the operator."""

    kind: type[BaseException]
    prefix: str
    exit_code: int


TABLE: tuple[Translation, ...] = (
    Translation(errors.ConfigNotFoundError, "config", EXIT_UNKNOWN),
    Translation(errors.ConfigError, "config", EXIT_UNKNOWN),
    Translation(errors.KeyringUnavailableError, "keyring", EXIT_UNKNOWN),
    Translation(errors.SecretError, "secret", EXIT_UNKNOWN),
    Translation(errors.UsageError, "usage", EXIT_UNKNOWN),
    Translation(errors.StateError, "state", EXIT_UNKNOWN),
    Translation(errors.OutputError, "output", EXIT_UNKNOWN),
    Translation(errors.DatabaseError, "database", EXIT_UNKNOWN),
    Translation(errors.PlatformError, "platform", EXIT_UNKNOWN),
    Translation(errors.NfdoctorError, "error", EXIT_UNKNOWN),
)


def report_error(env: Environment, exc: BaseException, *, command: str | None = None) -> int:
    """Write the one-line message (and tip) for ``exc`` to stderr; return its exit code."""
    redact = env.redactor.redact
    if isinstance(exc, errors.OutputError):
        if env.stdout is sys.stdout and sys.stdout is sys.__stdout__:
            silence_stdout()
        if exc.broken_pipe:
            return EXIT_BROKEN_PIPE  # nobody is reading: nothing to say
    if env.debug:
        env.stderr.write(redact("".join(traceback.format_exception(exc))))
    for row in TABLE:
        if isinstance(exc, row.kind):
            assert isinstance(exc, errors.NfdoctorError)
            env.stderr.write(redact(f"nfdoctor: {row.prefix}: {exc.message}") + "\n")
            if isinstance(exc, errors.ConfigError) and len(exc.problems) > 1:
                for problem in exc.problems[1:]:
                    env.stderr.write(redact(f"  also: {problem.located()}") + "\n")
            if exc.next_command and exc.next_command != f"nfdoctor {command}":
                env.stderr.write(f"Tip: run `{exc.next_command}`\n")
            return row.exit_code
    # Not one of ours: a bug or an unexpected environment. One line; details with --debug.
    env.stderr.write(redact(f"nfdoctor: internal error: {type(exc).__name__}: {exc}") + "\n")
    if not env.debug:
        env.stderr.write("Tip: run again with --debug for the traceback\n")
    return EXIT_UNKNOWN
