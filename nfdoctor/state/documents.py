"""Versioned JSON documents in the state dir: bounded reads, atomic 0600 writes, locked updates.

A document is one JSON object whose ``format`` key names its kind and version
(``"nfdoctor.runs/v1"``). :class:`JsonDocument` reads it with
:func:`nfdoctor.fsutil.read_regular_file` (bounded, never blocks: a FIFO or a device is
refused), replaces it with :func:`nfdoctor.fsutil.write_atomically` (mode 0600, so readers see
the old document or the new one), and runs :meth:`JsonDocument.update` as read, change and
write under the document's lock file ``<file>.lock``.

What nfdoctor cannot read, it never overwrites: a corrupt file, a foreign or newer format is a
:class:`~nfdoctor.errors.StateError` naming the file and line:column, and stays as it is for
the operator. No message ever quotes the file's contents: state files can hold tokens.

The lower-level helpers (:func:`read_state_bytes`, :func:`decode_json`, :func:`write_json`)
are for stores with a format of their own (the token file, which also reads a legacy shape).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nfdoctor.errors import StateError
from nfdoctor.fsutil import FileRefusedError, os_reason, read_regular_file, write_atomically
from nfdoctor.state.locks import FileStateLock

__all__ = [
    "DEFAULT_LIMIT",
    "FORMAT_NAME",
    "JsonDocument",
    "decode_json",
    "dump_json",
    "json_type",
    "read_state_bytes",
    "write_json",
]

#: a state document is kilobytes; this stops /dev/zero and a runaway file
DEFAULT_LIMIT = 4 * 1024 * 1024
#: ``<name>/v<N>``: a lower-case dotted name and a version from 1
FORMAT_NAME = re.compile(r"[a-z][a-z0-9._-]*/v([1-9][0-9]{0,5})")


def json_type(value: object) -> str:
    """What a parsed JSON value is, in words (``a list``, ``null``); never the value itself."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a string" if isinstance(value, str) else type(value).__name__


def read_state_bytes(path: Path, *, limit: int, kind: str) -> bytes | None:
    """The bytes of the ``kind`` file ``path`` (at most ``limit``), or None when it is absent.

    StateError, one line naming the file, when it is not a regular file, too large, or
    unreadable; never blocks.
    """
    try:
        return read_regular_file(path, limit=limit)
    except FileNotFoundError:
        return None
    except FileRefusedError as exc:
        raise StateError(f"the {kind} {path} {exc.reason}; nothing was changed") from None
    except OSError as exc:
        raise StateError(f"cannot read the {kind} {path}: {os_reason(exc)}") from None


def decode_json(data: bytes, where: str, *, recover: str, kind: str) -> object:
    """Parsed JSON, or StateError with line and column (never with the text: it can hold
    tokens). ``kind`` names what the data should be (``token document``)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StateError(
            f"{where}: not UTF-8 (byte {exc.start}); nothing was changed. {recover}"
        ) from None
    try:
        return json.loads(text)
    except RecursionError:
        raise StateError(
            f"{where}: nested too deeply to be a {kind}; nothing was changed. {recover}"
        ) from None
    except json.JSONDecodeError as exc:
        # "from None": the JSONDecodeError carries the whole document, tokens included.
        raise StateError(
            f"{where}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); nothing was "
            f"changed. {recover}"
        ) from None


def dump_json(data: Mapping[str, Any]) -> str:
    """The text every state document is written as: indented, UTF-8 as is, a final newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_json(path: Path, data: Mapping[str, Any], *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically (mode 0600 unless told), durable on return."""
    # Serialise before touching the disk: a failure here leaves the file as it was. The
    # temp file is created 0600 by mkstemp, so the contents are never briefly readable.
    write_atomically(path, dump_json(data), mode=mode)


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``text``, as json's own errors count them."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - text.rfind("\n", 0, offset)


def _skip_space(text: str, index: int) -> int:
    while text[index : index + 1] in (" ", "\t", "\n", "\r"):
        index += 1
    return index


def _member_offsets(text: str) -> tuple[int, dict[str, int]]:
    """Where the top-level value starts, and where each of its members' values start.

    Only called on text json.loads accepted; a later duplicate key wins, as in json.loads.
    """
    decoder = json.JSONDecoder()
    start = _skip_space(text, 0)
    offsets: dict[str, int] = {}
    if text[start : start + 1] != "{":
        return start, offsets
    index = _skip_space(text, start + 1)
    while text[index : index + 1] == '"':
        key, index = decoder.raw_decode(text, index)
        index = _skip_space(text, _skip_space(text, index) + 1)  # past the ':'
        offsets[str(key)] = index
        _, index = decoder.raw_decode(text, index)
        index = _skip_space(text, index)
        if text[index : index + 1] != ",":
            break
        index = _skip_space(text, index + 1)
    return start, offsets


class JsonDocument:
    """One versioned JSON document (``{"format": "<name>/v<N>", ...}``) under the state dir."""

    def __init__(
        self,
        path: Path,
        format: str,
        *,
        kind: str = "state file",
        limit: int = DEFAULT_LIMIT,
        lock_timeout_s: float = 10,
        recover: str | None = None,
    ) -> None:
        match = FORMAT_NAME.fullmatch(format)
        if match is None:
            raise ValueError(f"a document format is '<name>/v<N>' (got {format!r})")
        self.path = path
        self.format = format
        self.version = int(match.group(1))
        self.kind = kind
        self.limit = limit
        self.lock_path = path.with_name(path.name + ".lock")
        self.lock_timeout_s = lock_timeout_s
        self.recover = recover or "Fix it by hand, or move it aside to start a new one"

    def __repr__(self) -> str:
        return f"JsonDocument({str(self.path)!r}, {self.format!r})"

    def lock(self) -> FileStateLock:
        """A new hold on the document's lock file (``<file>.lock``); not needed to read."""
        return FileStateLock(
            self.lock_path, timeout_s=self.lock_timeout_s, what=f"the {self.kind} {self.path}"
        )

    def read(self) -> dict[str, Any] | None:
        """The document, or None when there is no file; StateError if it is not one of ours."""
        # No lock: writers replace the file by rename, so a reader sees the old or the new.
        data = read_state_bytes(self.path, limit=self.limit, kind=self.kind)
        if data is None:
            return None
        document = decode_json(data, str(self.path), recover=self.recover, kind=self.kind)
        self._check_format(document, data)
        assert isinstance(document, dict)  # _check_format proved it
        return document

    def write(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the document with ``document`` (its ``format`` set), under the lock.

        The file there is read first: one that is not ours is an error and stays as it is.
        """
        return self.update(lambda current: document)

    def update(self, fn: Callable[[dict[str, Any] | None], Mapping[str, Any]]) -> dict[str, Any]:
        """Read, apply ``fn`` and write back, all under the lock; returns what was kept.

        ``fn`` gets a copy of the document (None when there is none) that it may change in
        place, and returns the new one. If it raises, nothing is written; if it returns the
        document unchanged, nothing is written either.
        """
        with self.lock():
            current = self.read()
            changed = fn(copy.deepcopy(current))
            new = {"format": self.format, **{k: v for k, v in changed.items() if k != "format"}}
            if new != current:
                write_json(self.path, new)
            return new

    def _check_format(self, document: object, data: bytes) -> None:
        if isinstance(document, dict) and document.get("format") == self.format:
            return
        # The error path only: find where the problem is, for the operator's editor.
        text = data.decode("utf-8")
        start, members = _member_offsets(text)
        where = f"{self.path}:{'{}:{}'.format(*_position(text, members.get('format', start)))}"
        unchanged = "nothing was changed"
        if not isinstance(document, dict):
            raise StateError(
                f"{where}: expected a JSON object, got {json_type(document)}; {unchanged}. "
                f"{self.recover}"
            )
        found = document.get("format")
        if "format" not in document:
            raise StateError(
                f'{where}: no "format" key: not a {self.kind} ({self.format!r}); {unchanged}. '
                f"{self.recover}"
            )
        name = self.format.rsplit("/", 1)[0]
        match = FORMAT_NAME.fullmatch(found) if isinstance(found, str) else None
        if match is None or match.group(0).rsplit("/", 1)[0] != name:
            # The value is not shown: a foreign file's "format" could be anything.
            raise StateError(
                f'{where}: "format" is not {self.format!r}: not a {self.kind}; {unchanged}. '
                f"{self.recover}"
            )
        version = int(match.group(1))
        then = "A newer nfdoctor wrote it" if version > self.version else self.recover
        raise StateError(
            f"{where}: {self.kind} format version v{version} (this nfdoctor reads "
            f"v{self.version}); {unchanged}. {then}"
        )
