"""The process's standard streams, made safe to write to whatever they are connected to.

- stdout or stderr closed when nfdoctor starts (``nfdoctor diagnose >&-``): Python sets
  ``sys.stdout`` to None. Data written to a closed stdout is an :class:`OutputError`; talk
  written to a closed stderr is dropped.
- A stream whose encoding cannot show Vietnamese (``PYTHONIOENCODING=ascii``, a Latin-1
  locale): characters it cannot encode are escaped (``\\u1edd``) instead of crashing the run,
  and one note on stderr says so when it happened.
- stdout full or a broken pipe: :func:`write_data` raises :class:`OutputError`, and
  :func:`silence_stdout` keeps the interpreter's final flush from failing a second time.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import os
import sys
from typing import Any, TextIO

from nfdoctor.errors import OutputError

__all__ = [
    "ESCAPE_ERRORS",
    "ClosedStream",
    "QuietStream",
    "escape_note",
    "install_escaping",
    "silence_stdout",
    "standard_streams",
    "write_data",
]

#: the codec error handler that escapes what an encoding cannot show
ESCAPE_ERRORS = "nfdoctor-escape"
_escaped = {"count": 0}
_SAMPLE = "Thời Trang Hà My"  # Vietnamese needs more than Latin-1


def _escape(error: UnicodeError) -> tuple[str | bytes, int]:
    _escaped["count"] += 1
    return codecs.backslashreplace_errors(error)


codecs.register_error(ESCAPE_ERRORS, _escape)


def install_escaping() -> None:
    """Escape instead of crashing on stdout/stderr whose encoding cannot show Vietnamese."""
    for stream in (sys.stdout, sys.stderr):
        if stream is None or not hasattr(stream, "reconfigure"):
            continue
        try:
            _SAMPLE.encode(stream.encoding or "ascii")
        except (UnicodeError, LookupError):
            with contextlib.suppress(Exception):
                stream.reconfigure(errors=ESCAPE_ERRORS)


def escape_note() -> str | None:
    """The one note to print when characters were escaped during this run, else None."""
    if not _escaped["count"]:
        return None
    encoding = getattr(sys.stdout, "encoding", None) or getattr(sys.stderr, "encoding", "?")
    return (
        f"nfdoctor: note: the terminal's encoding ({encoding}) cannot show some characters "
        "(Vietnamese names); they are written escaped, like \\u1edd. Use a UTF-8 locale "
        "(LANG=C.UTF-8) to see them.\n"
    )


class ClosedStream:
    """Stands in for a standard stream that was closed before nfdoctor started."""

    encoding = "utf-8"

    def __init__(self, name: str) -> None:
        self.name = name

    def write(self, text: str) -> int:
        """Always fails: there is nowhere to write."""
        raise OSError(errno.EBADF, f"standard {self.name} is closed")

    def flush(self) -> None:
        """Nothing to flush."""

    def isatty(self) -> bool:
        """A closed stream is no terminal."""
        return False


class QuietStream:
    """A stream for talk (stderr): a write that fails is dropped, never raised.

    When stderr itself is gone there is nobody left to tell, and a failure to say "warning"
    must not turn a measured run into a crash.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text`` if the stream takes it."""
        with contextlib.suppress(OSError, ValueError, AttributeError):
            return int(self._stream.write(text))
        return len(text)

    def flush(self) -> None:
        """Flush if the stream lets us."""
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self._stream.flush()

    def isatty(self) -> bool:
        """Whether the wrapped stream is a terminal."""
        try:
            return bool(self._stream.isatty())
        except (OSError, ValueError, AttributeError):
            return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def standard_streams() -> tuple[TextIO, TextIO]:
    """``(stdout, stderr)`` for a command: a closed stdout fails on write, stderr never does."""
    stdout: Any = sys.stdout if sys.stdout is not None else ClosedStream("output")
    stderr: Any = QuietStream(sys.stderr)
    return stdout, stderr


def write_data(stream: TextIO, text: str) -> None:
    """Write the run's data to ``stream`` and flush; OutputError if it cannot take it."""
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        raise OutputError("the reader of standard output went away", broken_pipe=True) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise OutputError(f"cannot write the output to standard output: {reason}") from None


def silence_stdout() -> None:
    """Point fd 1 at /dev/null, so the interpreter's last flush of what could not be written
    does not fail again (and print "Exception ignored") at exit."""
    if sys.stdout is None:
        return
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
