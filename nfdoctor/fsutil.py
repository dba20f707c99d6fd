"""Filesystem helpers for files other programs read while nfdoctor writes them."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from nfdoctor.errors import StateError


def write_atomically(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` (UTF-8) so readers see the old file or the new, never half."""
    # node_exporter's textfile collector may read the file at any moment; a rename within
    # one directory is atomic, an in-place write is not. The temp file must therefore live
    # in the target directory (same filesystem), and is hidden from "*.prom" globs by its dot.
    directory = path.parent
    if not directory.is_dir():
        # Creating it would hide a typo in --write; the operator should see the path.
        raise StateError(f"cannot write {path}: directory {directory} does not exist")
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise StateError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; the collector usually runs as another user.
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException as exc:
        # BaseException: a Ctrl-C between mkstemp and replace must not leave a stray file.
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        if isinstance(exc, (OSError, UnicodeError)):
            reason = getattr(exc, "strerror", None) or exc
            raise StateError(f"cannot write {path}: {reason}") from exc
        raise
    _sync_directory(directory)


def _sync_directory(directory: Path) -> None:
    # Make the rename itself durable across a crash. Not possible everywhere (Windows cannot
    # open a directory), and the new file is already in place, so failure is not an error.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
