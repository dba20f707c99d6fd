"""nfdoctor's exception tree.

Everything below ``cli/`` raises one of these; the CLI's translation table
(:mod:`nfdoctor.cli.errors`) turns each into one line, a next command and an exit code.

    NfdoctorError
    ├── UsageError              bad argument or option value (exit 3)
    ├── ConfigError             config file problems, each with file/line/column/key path (exit 3)
    │   └── ConfigNotFoundError
    ├── SecretError             a secret reference that cannot be resolved (exit 3)
    │   └── KeyringUnavailableError
    ├── StateError              nfdoctor's own state dir cannot be read or written (exit 3)
    │   └── WriteTargetError    a file to write is not a regular file, or its directory is
    │                           missing or read-only (refused before any work is done)
    ├── OutputError             standard output is closed, full or a broken pipe
    ├── DatabaseError           the CRM database (exit 3 where it stops a command)
    │   ├── DatabaseUnreachableError
    │   ├── DatabaseLockedError
    │   └── NotADatabaseError
    └── PlatformError           a platform API call; the classified kinds (token expired,
                                bad signature, rate limited, ...) are in nfdoctor.platforms.errors
"""

from __future__ import annotations

from dataclasses import dataclass


class NfdoctorError(Exception):
    """Base of every error nfdoctor raises on purpose."""

    #: the command an operator should run next, if there is an obvious one
    next_command: str | None = None

    def __init__(self, message: str, *, next_command: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if next_command is not None:
            self.next_command = next_command

    def __str__(self) -> str:
        return self.message


class UsageError(NfdoctorError):
    """A command-line argument or option has a value nfdoctor cannot use."""


@dataclass(frozen=True, kw_only=True)
class ConfigProblem:
    """One problem found in a config file, located as precisely as the YAML allows."""

    file: str
    key_path: str
    message: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    def located(self) -> str:
        """``file:line:col: key: message``, omitting what is unknown."""
        where = self.file
        if not where:
            return f"{self.key_path}: {self.message}" if self.key_path else self.message
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        key = f"{self.key_path}: " if self.key_path else ""
        return f"{where}: {key}{self.message}"


class ConfigError(NfdoctorError):
    """The config cannot be used; carries every problem found, not only the first."""

    next_command = "nfdoctor config validate"

    def __init__(self, problems: list[ConfigProblem] | ConfigProblem) -> None:
        self.problems = problems if isinstance(problems, list) else [problems]
        first = self.problems[0].located()
        more = len(self.problems) - 1
        message = first if not more else f"{first} (and {more} more problem{'s' * (more > 1)})"
        super().__init__(message)


class ConfigNotFoundError(ConfigError):
    """No config file where nfdoctor looked."""

    next_command = "nfdoctor config init"


class SecretError(NfdoctorError):
    """A secret reference (``env:``, ``file:``, ``keyring:``) could not be resolved."""

    next_command: str | None = "nfdoctor config validate"


class KeyringUnavailableError(SecretError):
    """The OS keyring has no usable backend (common on headless servers and in cron)."""

    def __init__(
        self, message: str, *, detail: str | None = None, next_command: str | None = None
    ) -> None:
        super().__init__(message, next_command=next_command)
        #: what went wrong, without the advice that follows it in ``message`` (the token
        #: store gives its own advice)
        self.detail = detail or message


class TokenKeyringUnavailableError(KeyringUnavailableError):
    """The token store's keyring cannot be used: the way out is ``tokens.store: file``, not
    anything ``config validate`` would find."""

    next_command = None


class StateError(NfdoctorError):
    """nfdoctor's own state (under the XDG state dir) cannot be read or written."""


class LeaseBusyError(StateError):
    """Another refresher holds an account's refresh lease beyond the time given to wait."""


class VersionConflictError(StateError):
    """A compare-and-set write found the stored tokens changed since they were read."""


class WriteTargetError(StateError):
    """A file nfdoctor was asked to write cannot be written safely (checked before any work).

    ``reason`` says why without the "cannot write" preamble, so a command can put its option
    name in front (``--write: directory /x does not exist``).
    """

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        shown = reason if reason.startswith(self.path) else f"cannot write {path}: {reason}"
        super().__init__(shown)


class OutputError(NfdoctorError):
    """Standard output cannot take the report: closed, full, or the reader went away."""

    def __init__(self, message: str, *, broken_pipe: bool = False) -> None:
        super().__init__(message)
        #: the reader closed the pipe (``nfdoctor diagnose | head -1``): not worth a message
        self.broken_pipe = broken_pipe


class DatabaseError(NfdoctorError):
    """The CRM database cannot be used."""

    next_command = "nfdoctor diagnose --only database"


class DatabaseUnreachableError(DatabaseError):
    """Connecting to the database failed (refused, DNS, auth, missing file)."""


class DatabaseLockedError(DatabaseError):
    """The database stayed locked by another writer past the busy timeout."""


class NotADatabaseError(DatabaseError):
    """The configured file exists but is not a SQLite database."""


class PlatformError(NfdoctorError):
    """A platform API call failed; subclasses classify by the platform's error code."""
