"""The one way nfdoctor reads and writes files: never block, never replace what is not ours.

Writes (:func:`write_atomically`) go to a temporary file beside the target, renamed over it,
so readers see the old file or the new one. A rename replaces whatever has the name, which
for root includes ``/dev/null``, a FIFO or a socket: :func:`check_write_target` refuses any
existing target that is not a regular file, and proves the directory writable, before any
work is done. Reads (:func:`read_regular_file`) open without blocking (a FIFO with no writer
would hang the run), refuse anything but a regular file, and stop at a size cap (``/dev/zero``
never ends).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from nfdoctor.errors import StateError, WriteTargetError

__all__ = [
    "FileRefusedError",
    "check_write_target",
    "describe_kind",
    "expand_user",
    "os_reason",
    "read_regular_file",
    "regular_file_size",
    "write_atomically",
]


class FileRefusedError(Exception):
    """A file nfdoctor was asked to read is not one it will read; ``reason`` says why.

    Not an :class:`~nfdoctor.errors.NfdoctorError`: each caller knows what the file is (a
    secret, a config, a token file) and raises its own error with the reason in it.
    """

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        #: refused for its size (else for what it is: a FIFO, a device, a directory)
        self.too_large = too_large


def describe_kind(mode: int) -> str:
    """What a file of ``st_mode`` is, in words: ``a FIFO (named pipe)``, ``a directory`` …"""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISREG, "a regular file"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def os_reason(exc: OSError) -> str:
    """An OSError in words, without Python's ``[Errno N]`` preamble."""
    if exc.errno == errno.ENAMETOOLONG:
        return "the name is too long for the file system"
    return exc.strerror or str(exc)


def expand_user(text: str) -> Path:
    """``text`` as a path with ``~`` and ``~user`` expanded; ValueError for an unknown user."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        user = text[1:].split("/", 1)[0] or os.environ.get("USER", "")
        raise ValueError(
            f"{text}: cannot expand ~{user} (no such user, or no home directory)"
        ) from None


# --- reading ------------------------------------------------------------------------------


def _open_regular(path: Path) -> tuple[int, os.stat_result]:
    """An fd opened for reading without blocking, and its stat; FileRefusedError unless it
    is a regular file (the fd is then closed)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise FileRefusedError(os_reason(exc)) from None
        raise
    try:
        info = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise FileRefusedError(f"is {describe_kind(info.st_mode)}, not a regular file")
    return fd, info


def regular_file_size(path: Path) -> int:
    """The size of ``path`` after proving it a readable regular file; never blocks.

    FileRefusedError for a FIFO, a device, a socket or a directory; OSError passes through.
    """
    fd, info = _open_regular(path)
    os.close(fd)
    return info.st_size


def regular_file_size_unopened(path: Path) -> int:
    """:func:`regular_file_size` without opening the file: for a SQLite database, which this
    process may have open. Closing any descriptor of a file drops every POSIX lock the
    process holds on it, the locks its SQLite connections hold included (fcntl(2)), and a
    writer that lost its lock mid-transaction corrupts or fails (SQLITE_IOERR_RDLOCK)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise FileRefusedError(os_reason(exc)) from None
        raise
    if not stat.S_ISREG(info.st_mode):
        raise FileRefusedError(f"is {describe_kind(info.st_mode)}, not a regular file")
    if not os.access(path, os.R_OK):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
    return info.st_size


def read_regular_file(path: Path, *, limit: int) -> bytes:
    """The bytes of ``path``, at most ``limit`` of them; never blocks.

    FileRefusedError when ``path`` is not a regular file (a FIFO, a device, a socket, a
    directory) or is larger than ``limit``; OSError (FileNotFoundError, PermissionError …)
    passes through for the caller to word.
    """
    fd, info = _open_regular(path)
    try:
        if info.st_size > limit:
            raise FileRefusedError(f"is larger than {_size(limit)}", too_large=True)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # it grew while being read
            raise FileRefusedError(f"is larger than {_size(limit)}", too_large=True)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _size(count: int) -> str:
    if count >= 1024 * 1024 and count % (1024 * 1024) == 0:
        return f"{count // (1024 * 1024)} MiB"
    if count >= 1024 and count % 1024 == 0:
        return f"{count // 1024} KiB"
    return f"{count} bytes"


# --- writing ------------------------------------------------------------------------------


def check_write_target(path: Path) -> Path:
    """The file a write to ``path`` would replace (symlinks followed), after proving it safe.

    WriteTargetError (one line, naming the path) when the target exists and is not a regular
    file, when its directory is missing, or when nothing can be created there. Nothing is
    created, and no directory's contents or times change.
    """
    try:
        target = Path(os.path.realpath(path)) if os.path.islink(path) else path
        info = target.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise WriteTargetError(path, f"{path}: {os_reason(exc)}") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        shown = path if target == path else f"{path} (→ {target})"
        kind = describe_kind(info.st_mode)
        advice = "name a file" if stat.S_ISDIR(info.st_mode) else "name a regular file"
        raise WriteTargetError(path, f"{shown} is {kind}, not a regular file; {advice}")
    directory = target.parent
    try:
        is_dir = directory.is_dir()
    except OSError as exc:
        raise WriteTargetError(path, f"{path}: {os_reason(exc)}") from None
    if not is_dir:
        # Creating it would hide a typo; the operator should see the path.
        raise WriteTargetError(path, f"directory {directory} does not exist")
    problem = _unwritable(directory)
    if problem is not None:
        raise WriteTargetError(path, problem)
    return target


def _unwritable(directory: Path) -> str | None:
    """Why no file can be created in ``directory``, or None when one can."""
    # O_TMPFILE makes a nameless file: it proves the directory writable (read-only mounts,
    # sysfs and permissions included, even for root, which os.access cannot) without adding
    # an entry or touching the directory's mtime.
    tmpfile = getattr(os, "O_TMPFILE", None)
    if tmpfile is not None:
        try:
            fd = os.open(directory, tmpfile | os.O_WRONLY, 0o600)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                return f"directory {directory} is not writable ({os_reason(exc)})"
        else:
            os.close(fd)
            return None
    # A file system without O_TMPFILE (procfs, sysfs, some network ones): create and remove a
    # named file. os.access cannot stand in: for root it says "writable" to /proc and /sys.
    try:
        fd, name = tempfile.mkstemp(prefix=".nfdoctor-probe.", dir=directory)
    except OSError as exc:
        return f"directory {directory} is not writable ({os_reason(exc)})"
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return None


def write_atomically(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` (UTF-8) so readers see the old file or the new, never half.

    Refuses (WriteTargetError) a target that exists and is not a regular file; a symlink is
    followed and the file it names is replaced.
    """
    # node_exporter's textfile collector may read the file at any moment; a rename within
    # one directory is atomic, an in-place write is not. The temp file must therefore live
    # in the target directory (same filesystem), and is hidden from "*.prom" globs by its dot.
    target = check_write_target(path)
    directory = target.parent
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name[:64]}.", dir=directory)
    except OSError as exc:
        raise StateError(f"cannot write {path}: {os_reason(exc)}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; the collector usually runs as another user.
        os.chmod(temp_name, mode)
        # Checked again at the last moment: a FIFO or device put there meanwhile stays.
        check_write_target(path)
        os.replace(temp_name, target)
    except BaseException as exc:
        # BaseException: a Ctrl-C between mkstemp and replace must not leave a stray file.
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        if isinstance(exc, (OSError, UnicodeError)):
            reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
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
