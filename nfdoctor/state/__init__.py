"""The one place for nfdoctor's own state: locks, versioned JSON documents, run records.

- :mod:`nfdoctor.state.locks`: :class:`StateLock`, a file lock and a PostgreSQL advisory
  lock behind it; both released when their holder dies, even by SIGKILL.
- :mod:`nfdoctor.state.documents`: :class:`JsonDocument`, a ``{"format": "<name>/v<N>"}``
  file read bounded, written atomically 0600, updated under its lock, never overwritten when
  it cannot be read.
- :mod:`nfdoctor.state.runs`: :class:`RunLog` and :class:`FileRunLog`, which commands ran,
  how they ended, and which were cut short.

Where each file lives and how to add state: docs/state.md.
"""

from __future__ import annotations

from nfdoctor.state.documents import JsonDocument
from nfdoctor.state.locks import FileStateLock, PostgresAdvisoryLock, StateLock, advisory_key
from nfdoctor.state.runs import (
    ActiveRun,
    FileRunLog,
    RunLog,
    RunRecord,
    open_run_log,
)

__all__ = [
    "ActiveRun",
    "FileRunLog",
    "FileStateLock",
    "JsonDocument",
    "PostgresAdvisoryLock",
    "RunLog",
    "RunRecord",
    "StateLock",
    "advisory_key",
    "open_run_log",
]
