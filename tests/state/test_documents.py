"""Versioned JSON documents: atomic 0600 writes, locked updates, and files never overwritten
when they cannot be read. Errors locate the problem and never quote the file."""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nfdoctor.errors import StateError
from nfdoctor.state.documents import JsonDocument, decode_json
from tests.state.workers import first_line, release_together

FORMAT = "nfdoctor.checkpoints/v2"
SECRET = "EAAG-page-token-5f1c9a0e77"
Spawn = Callable[..., Any]


def _document(tmp_path: Path, **kwargs: Any) -> JsonDocument:
    return JsonDocument(tmp_path / "state" / "checkpoints.json", FORMAT, **kwargs)


def _fails_and_leaves(document: JsonDocument, expected: str) -> StateError:
    """read, write and update all fail with ``expected`` (a prefix) and change nothing."""
    before = document.path.read_bytes()
    error: StateError | None = None
    for attempt in (
        document.read,
        lambda: document.write({"shops": {}}),
        lambda: document.update(lambda current: {"shops": {}}),
    ):
        with pytest.raises(StateError) as caught:
            attempt()
        message = str(caught.value)
        assert message.startswith(expected), message
        assert "nothing was changed" in message and "\n" not in message
        assert SECRET not in message and SECRET not in repr(caught.value)
        # No chained exception for a traceback to print: json's carries the whole text.
        chained = caught.value.__cause__ or (
            None if caught.value.__suppress_context__ else caught.value.__context__
        )
        assert chained is None
        error = caught.value
    assert document.path.read_bytes() == before
    assert error is not None
    return error


def test_round_trip_format_first_private_file_and_directory(tmp_path: Path) -> None:
    document = _document(tmp_path)
    assert document.read() is None  # no file yet, and nothing created to find that out
    assert not document.path.parent.exists()
    kept = document.write({"shops": {"shopee/1": "2026-11-26T06:00:00+00:00"}, "format": "x"})
    assert kept == {"format": FORMAT, "shops": {"shopee/1": "2026-11-26T06:00:00+00:00"}}
    assert document.read() == kept
    text = document.path.read_text(encoding="utf-8")
    assert text.startswith('{\n  "format": "nfdoctor.checkpoints/v2",\n') and text.endswith("}\n")
    assert stat.S_IMODE(document.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(document.path.parent.stat().st_mode) == 0o700
    document.write({"shops": {}, "note": "đồng bộ"})
    assert "đồng bộ" in document.path.read_text(encoding="utf-8")  # UTF-8 as is, not \\u escapes


def test_update_gives_fn_a_copy_it_may_change_in_place(tmp_path: Path) -> None:
    document = _document(tmp_path)
    document.write({"shops": {"a": 1}})

    def bump(current: dict[str, Any] | None) -> dict[str, Any]:
        assert current is not None
        current["shops"]["a"] += 1  # in place: still a change to write
        return current

    assert document.update(bump)["shops"] == {"a": 2}
    assert document.read() == {"format": FORMAT, "shops": {"a": 2}}


def test_update_that_changes_nothing_does_not_rewrite(tmp_path: Path) -> None:
    document = _document(tmp_path)
    document.write({"shops": {"a": 1}})
    inode = document.path.stat().st_ino
    assert document.update(lambda current: current or {}) == {"format": FORMAT, "shops": {"a": 1}}
    assert document.path.stat().st_ino == inode  # a rewrite renames a new file in


def test_update_that_raises_writes_nothing_and_releases_the_lock(tmp_path: Path) -> None:
    document = _document(tmp_path, lock_timeout_s=0.2)
    document.write({"shops": {}})
    before = document.path.read_bytes()

    def fails(current: dict[str, Any] | None) -> dict[str, Any]:
        raise RuntimeError("platform said no")

    with pytest.raises(RuntimeError, match="platform said no"):
        document.update(fails)
    assert document.path.read_bytes() == before
    document.write({"shops": {"b": 1}})  # the lock is free


def test_concurrent_updates_from_processes_lose_nothing(tmp_path: Path, spawn: Spawn) -> None:
    path = tmp_path / "counter.json"
    workers = [spawn("doc-count", str(path), "30") for _ in range(3)]
    assert release_together(workers) == [0, 0, 0]
    assert json.loads(path.read_text()) == {"format": "nfdoctor.test-counter/v1", "count": 90}


def test_update_while_another_process_holds_the_lock_names_the_document(
    tmp_path: Path, spawn: Spawn
) -> None:
    document = _document(tmp_path, lock_timeout_s=0.2, kind="checkpoint file")
    holder = spawn("hold", "file", str(document.lock_path))
    assert first_line(holder) == "held"
    with pytest.raises(StateError) as caught:
        document.update(lambda current: {"shops": {}})
    assert str(caught.value).startswith(
        f"the checkpoint file {document.path} is locked by another nfdoctor run: "
        f"{document.lock_path} was not released within 0.2 s"
    )
    assert not document.path.exists()
    assert document.read() is None  # reading needs no lock


CORRUPT = '{\n  "format": "nfdoctor.checkpoints/v2",\n  "token": "' + SECRET + '" "shops": {}\n}\n'


def test_corrupt_document_is_located_and_never_overwritten(tmp_path: Path) -> None:
    document = _document(tmp_path)
    document.path.parent.mkdir()
    document.path.write_text(CORRUPT, encoding="utf-8")
    column = CORRUPT.splitlines()[2].index('"shops"') + 1
    _fails_and_leaves(
        document, f"{document.path}:3:{column}: not valid JSON (Expecting ',' delimiter)"
    )


@pytest.mark.parametrize(
    ("text", "where", "expected"),
    [
        ('\n\n  ["' + SECRET + '"]', "3:3", "expected a JSON object, got a list"),
        ('{"shops": {}, "token": "' + SECRET + '"}', "1:1", 'no "format" key: not a state file'),
        (
            '{"shops": {},\n "format": "' + SECRET + '"}',
            "2:12",
            "\"format\" is not 'nfdoctor.checkpoints/v2': not a state file",
        ),
        ('{"format": "nfdoctor.tokens/v2"}', "1:12", '"format" is not'),
        ('{"format": 2}', "1:12", '"format" is not'),
        (
            '{"format": "nfdoctor.checkpoints/v1", "format": "nfdoctor.checkpoints/v3"}',
            "1:49",  # the key json.loads kept: the last
            "state file format version v3 (this nfdoctor reads v2); nothing was changed. "
            "A newer nfdoctor wrote it",
        ),
        (
            '{"format": "nfdoctor.checkpoints/v1"}',
            "1:12",
            "state file format version v1 (this nfdoctor reads v2); nothing was changed. "
            "Fix it by hand",
        ),
    ],
)
def test_foreign_documents_are_located_and_left_alone(
    tmp_path: Path, text: str, where: str, expected: str
) -> None:
    document = _document(tmp_path)
    document.path.parent.mkdir()
    document.path.write_text(text, encoding="utf-8")
    _fails_and_leaves(document, f"{document.path}:{where}: {expected}")


def test_a_fifo_is_refused_at_once_and_stays(tmp_path: Path) -> None:
    document = _document(tmp_path)
    document.path.parent.mkdir()
    os.mkfifo(document.path)
    started = time.monotonic()
    with pytest.raises(StateError) as caught:
        document.read()
    assert str(caught.value) == (
        f"the state file {document.path} is a FIFO (named pipe), not a regular file; "
        "nothing was changed"
    )
    with pytest.raises(StateError, match="FIFO"):
        document.update(lambda current: {})
    assert time.monotonic() - started < 2  # nobody waited for a writer
    assert stat.S_ISFIFO(document.path.stat().st_mode)


def test_a_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    document = _document(tmp_path, limit=1024)
    document.path.parent.mkdir()
    document.path.write_text(json.dumps({"format": FORMAT, "pad": "x" * 2000}))
    with pytest.raises(StateError, match=re.escape("is larger than 1 KiB; nothing was changed")):
        document.update(lambda current: {})


def test_decode_json_says_where_and_never_what() -> None:
    with pytest.raises(StateError) as caught:
        decode_json(b"\xff" + SECRET.encode(), "f.json", recover="Move it aside", kind="x")
    assert str(caught.value) == "f.json: not UTF-8 (byte 0); nothing was changed. Move it aside"
    with pytest.raises(StateError) as caught:
        decode_json(b"[" * 200_000, "f.json", recover="R", kind="run log")
    assert str(caught.value) == (
        "f.json: nested too deeply to be a run log; nothing was changed. R"
    )


@pytest.mark.parametrize("bad", ["checkpoints", "nfdoctor.x/1", "Nfdoctor.x/v1", "x/v0", ""])
def test_format_names_are_name_slash_version(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="<name>/v<N>"):
        JsonDocument(tmp_path / "x.json", bad)
