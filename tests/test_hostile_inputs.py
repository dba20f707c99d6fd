"""Hostile inputs: what must never replace, hang, crash or stay silent, class by class.

Each row is one hostile input of one class (``cls``); every class has at least two. A row
asserts the exit code, the one ``nfdoctor:`` line on stderr (or none, for a broken pipe),
that no traceback appears, and that nothing under the test's directory was created, replaced
or changed: every entry's type (a FIFO stays a FIFO, a device node stays a device node),
bytes, mode and mtime. Device nodes are made by the test in its own directory (``mknod``
needs root: those rows skip elsewhere), never the system's; ``/proc`` and ``/sys`` serve as
places nothing can be written to, even by root.

Rows that are about the process itself (its standard streams, its working directory, its
locale) run as real processes; the others run in-process. A row that could hang runs under
a timeout, so a regression fails instead of hanging the suite. docs/bad-inputs.md lists
these rows for people.
"""

from __future__ import annotations

import os
import resource
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.test_bad_inputs import PYTHON_REPR, assert_nothing_written, snapshot

GOOD = "timezone: Asia/Ho_Chi_Minh\n"
VIETNAMESE = (
    "platforms:\n"
    "  shopee:\n"
    "    partner_id: 2001234\n"
    "    partner_key: env:NFD_TEST_KEY\n"
    "    shops:\n"
    "      - shop_id: 220001\n"
    "        name: Thời Trang Hà My\n"
)
SHOPEE_KEY = {"NFD_TEST_KEY": "test-signing-key-0042"}
LONG = "a" * 300  # one path component longer than NAME_MAX (255)
#: address space a row's process may use: far above nfdoctor's needs, far below the machine's
CHILD_MEMORY = 2 * 1024**3


def _shopee(extra: str = "", shops: str = "      - shop_id: 220001\n") -> str:
    return (
        "platforms:\n  shopee:\n    partner_id: 2001234\n    partner_key: env:NFD_TEST_KEY\n"
        f"{extra}    shops:\n{shops}"
    )


# --- setups: hostile things the test makes in its own directory ------------------------------


def _char_device(name: str) -> Callable[[Path, Path], None]:
    """A character device node like /dev/null (major 1, minor 3), in tmp."""

    def setup(tmp: Path, config: Path) -> None:
        os.mknod(tmp / name, stat.S_IFCHR | 0o666, os.makedev(1, 3))

    return setup


def _fifo(name: str) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, config: Path) -> None:
        os.mkfifo(tmp / name)

    return setup


def _socket(name: str) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, config: Path) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(tmp / name))
        server.close()  # the socket file stays

    return setup


def _directory(name: str) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, config: Path) -> None:
        (tmp / name).mkdir()

    return setup


def _file(name: str, data: bytes = b"not a directory\n") -> Callable[[Path, Path], None]:
    def setup(tmp: Path, config: Path) -> None:
        (tmp / name).write_bytes(data)

    return setup


def _symlink(
    name: str, to: str, then: Callable[[Path, Path], None]
) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, config: Path) -> None:
        then(tmp, config)
        (tmp / name).symlink_to(tmp / to)

    return setup


def _config_bytes(data: bytes) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, config: Path) -> None:
        config.write_bytes(data)

    return setup


def _config_fifo(tmp: Path, config: Path) -> None:
    os.mkfifo(config)


def _nested_yaml(depth: int) -> str:
    return "logs:\n  paths: " + "[" * depth + "]" * depth + "\n"


def _nested_plan(depth: int) -> Callable[[Path, Path], None]:
    return _file("plan.yaml", ("rules: " + "[" * depth + "]" * depth + "\n").encode())


def _plan(text: str) -> Callable[[Path, Path], None]:
    return _file("plan.yaml", text.encode())


# --- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    """One hostile input. ``{config}`` and ``{tmp}`` in args, env and texts are filled in.

    Rows that could hang or eat memory if the guard regressed run as processes (a timeout,
    an address-space limit), so a regression fails the row instead of the suite.

    ``expect`` is the start of the one ``nfdoctor:`` line on stderr (None: stderr stays
    empty); ``stdout`` is how the process's standard output is connected: ``pipe``,
    ``closed`` (fd 1 closed before start), ``full`` (/dev/full) or ``broken`` (a pipe whose
    reader is gone); ``cwd_deleted`` starts the process in a directory that was removed.
    """

    id: str
    cls: str
    args: tuple[str, ...]
    expect: str | None
    contains: tuple[str, ...] = ()
    yaml: str | None = GOOD
    setup: Callable[[Path, Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    code: int = 3
    process: bool = False
    stdout: str = "pipe"
    cwd_deleted: bool = False
    needs_root: bool = False
    stdout_has: str | None = None  # text the (escaped) output must show


CFG = "nfdoctor: config: {config}"
USAGE = "nfdoctor: usage: "
SECRET = "nfdoctor: secret: {config}"
DIAGNOSE = ("diagnose", "--config", "{config}")
QUICK = (*DIAGNOSE, "--only", "system.load")
SIM = ("simulator", "--port", "0")

ROWS: list[Hostile] = [
    # --- writes that would replace what is not a regular file ---------------------------
    Hostile(
        "init-force-onto-char-device",
        "replace-non-regular",
        ("config", "init", "--path", "{tmp}/devnull", "--force"),
        USAGE + "--path: {tmp}/devnull is a character device, not a regular file",
        setup=_char_device("devnull"),
        needs_root=True,
    ),
    Hostile(
        "init-force-onto-fifo",
        "replace-non-regular",
        ("config", "init", "--path", "{tmp}/pipe", "--force"),
        USAGE + "--path: {tmp}/pipe is a FIFO (named pipe), not a regular file",
        setup=_fifo("pipe"),
    ),
    Hostile(
        "write-onto-char-device",
        "replace-non-regular",
        (*QUICK, "--write", "{tmp}/devnull"),
        USAGE + "--write: {tmp}/devnull is a character device, not a regular file",
        setup=_char_device("devnull"),
        needs_root=True,
    ),
    Hostile(
        "write-onto-fifo",
        "replace-non-regular",
        (*QUICK, "-o", "prometheus", "--write", "{tmp}/out.prom"),
        USAGE + "--write: {tmp}/out.prom is a FIFO (named pipe), not a regular file",
        setup=_fifo("out.prom"),
    ),
    Hostile(
        "write-onto-socket",
        "replace-non-regular",
        (*QUICK, "--write", "{tmp}/sock"),
        USAGE + "--write: {tmp}/sock is a socket, not a regular file",
        setup=_socket("sock"),
    ),
    Hostile(
        "write-through-symlink-to-fifo",
        "replace-non-regular",
        (*QUICK, "--write", "{tmp}/link"),
        USAGE + "--write: {tmp}/link (→ {tmp}/pipe) is a FIFO (named pipe), not a regular file",
        setup=_symlink("link", "pipe", _fifo("pipe")),
    ),
    Hostile(
        "simulator-write-config-onto-fifo",
        "replace-non-regular",
        (*SIM, "--write-config", "{tmp}/sim.yaml"),
        USAGE + "--write-config: {tmp}/sim.yaml is a FIFO (named pipe), not a regular file",
        setup=_fifo("sim.yaml"),
        process=True,
    ),
    Hostile(
        "simulator-write-config-onto-directory",
        "replace-non-regular",
        (*SIM, "--write-config", "{tmp}/sim.yaml"),
        USAGE + "--write-config: {tmp}/sim.yaml is a directory, not a regular file",
        setup=_directory("sim.yaml"),
        process=True,
    ),
    Hostile(
        "simulator-db-onto-char-device",
        "replace-non-regular",
        (*SIM, "--db", "{tmp}/crm.db"),
        USAGE + "--db: {tmp}/crm.db is a character device, not a regular file",
        setup=_char_device("crm.db"),
        process=True,
        needs_root=True,
    ),
    # --- a place nothing can be written to: refused before any check runs or state is kept
    Hostile(
        "write-into-procfs",
        "unwritable-target",
        (*DIAGNOSE, "--write", "/proc/nfdoctor.prom"),
        USAGE + "--write: directory /proc is not writable",
    ),
    Hostile(
        "write-into-sysfs",
        "unwritable-target",
        (*DIAGNOSE, "--write", "/sys/nfdoctor.prom"),
        USAGE + "--write: directory /sys is not writable",
    ),
    Hostile(
        "write-under-a-file",
        "unwritable-target",
        (*DIAGNOSE, "--write", "{tmp}/plain/out.prom"),
        USAGE + "--write: ",
        setup=_file("plain"),
    ),
    Hostile(
        "simulator-write-config-into-procfs",
        "unwritable-target",
        (*SIM, "--write-config", "/proc/sim.yaml"),
        USAGE + "--write-config: directory /proc is not writable",
        process=True,
    ),
    # --- standard streams ----------------------------------------------------------------
    Hostile(
        "stdout-closed",
        "stdout",
        QUICK,
        "nfdoctor: output: cannot write the output to standard output: standard output is closed",
        process=True,
        stdout="closed",
    ),
    Hostile(
        "stdout-full",
        "stdout",
        QUICK,
        "nfdoctor: output: cannot write the output to standard output: No space left on device",
        process=True,
        stdout="full",
    ),
    Hostile(
        "stdout-full-config-show",
        "stdout",
        ("config", "show", "--config", "{config}"),
        "nfdoctor: output: cannot write the output to standard output: No space left on device",
        process=True,
        stdout="full",
    ),
    Hostile(
        # What a shell shows for a command killed by SIGPIPE: `nfdoctor … | head -1`.
        "stdout-broken-pipe",
        "stdout",
        QUICK,
        None,
        code=141,
        process=True,
        stdout="broken",
    ),
    # --- a working directory that was deleted ---------------------------------------------
    Hostile(
        "cwd-deleted-diagnose",
        "working-directory",
        QUICK,
        USAGE + "the current directory cannot be used",
        process=True,
        cwd_deleted=True,
    ),
    Hostile(
        "cwd-deleted-discovery",
        "working-directory",
        ("config", "validate"),
        USAGE + "the current directory cannot be used",
        process=True,
        cwd_deleted=True,
    ),
    # --- an encoding that cannot show Vietnamese: escaped, said once, not a crash --------
    Hostile(
        "encoding-ascii",
        "encoding",
        ("config", "show", "--config", "{config}"),
        "nfdoctor: note: the terminal's encoding (ascii) cannot show some characters",
        yaml=VIETNAMESE,
        env={"PYTHONIOENCODING": "ascii", **SHOPEE_KEY},
        code=0,
        process=True,
        stdout_has="Th\\u1eddi Trang H\\xe0 My",
    ),
    Hostile(
        "encoding-latin-1-and-c-locale",
        "encoding",
        ("config", "show", "--config", "{config}"),
        "nfdoctor: note: the terminal's encoding (iso8859-1) cannot show some characters",
        yaml=VIETNAMESE,
        env={"PYTHONIOENCODING": "latin-1", "LC_ALL": "C", **SHOPEE_KEY},
        code=0,
        process=True,
        stdout_has="Th\\u1eddi Trang H",
    ),
    # --- names too long for the file system --------------------------------------------------
    Hostile(
        "long-name-config",
        "long-name",
        ("config", "validate", "--config", f"{{tmp}}/{LONG}.yaml"),
        f"nfdoctor: config: {{tmp}}/{LONG}.yaml: cannot use the config file: the name is too "
        "long for the file system (--config)",
    ),
    Hostile(
        "long-name-write",
        "long-name",
        (*QUICK, "--write", f"{{tmp}}/{LONG}.prom"),
        f"{USAGE}--write: {{tmp}}/{LONG}.prom: the name is too long for the file system",
    ),
    Hostile(
        "long-name-secret-file",
        "long-name",
        ("config", "validate", "--config", "{config}"),
        SECRET + ":2:3: crm.api_key: secret file ",
        contains=("the name is too long for the file system",),
        yaml=f"crm:\n  api_key: file:{LONG}.key\n",
    ),
    # --- nesting deep enough to exhaust recursion --------------------------------------------
    Hostile(
        "deep-config",
        "deep-nesting",
        ("config", "validate", "--config", "{config}"),
        CFG + ":2:72: nested more than 64 levels deep; refusing to load it",
        yaml=_nested_yaml(2000),
    ),
    Hostile(
        "deep-fault-plan",
        "deep-nesting",
        (*SIM, "--faults", "{tmp}/plan.yaml"),
        USAGE + "{tmp}/plan.yaml:1:71: nested more than 64 levels deep",
        setup=_nested_plan(2000),
        process=True,
    ),
    # --- control bytes in YAML ------------------------------------------------------------
    Hostile(
        "control-byte-in-value",
        "control-bytes",
        ("config", "validate", "--config", "{config}"),
        CFG + ":2:15: control character U+0001 is not allowed in YAML",
        setup=_config_bytes(b"crm:\n  base_url: ab\x01c\n"),
    ),
    Hostile(
        "escape-byte-in-key",
        "control-bytes",
        ("config", "validate", "--config", "{config}"),
        CFG + ":1:4: control character U+001B is not allowed in YAML",
        setup=_config_bytes(b"tim\x1bezone: UTC\n"),
    ),
    Hostile(
        "control-byte-in-fault-plan",
        "control-bytes",
        (*SIM, "--faults", "{tmp}/plan.yaml"),
        USAGE + "{tmp}/plan.yaml:1:8: control character U+0007 is not allowed in YAML",
        setup=_file("plan.yaml", b"seed: 4\x07\n"),
        process=True,
    ),
    # --- ~user for a user that does not exist -----------------------------------------------
    Hostile(
        "tilde-user-secret-file",
        "unknown-user",
        ("config", "validate", "--config", "{config}"),
        SECRET + ":2:3: crm.api_key: secret file ~nfd-no-such-user/key: cannot expand "
        "~nfd-no-such-user",
        yaml="crm:\n  api_key: file:~nfd-no-such-user/key\n",
    ),
    Hostile(
        "tilde-user-log-path",
        "unknown-user",
        ("config", "validate", "--config", "{config}"),
        CFG + ":2:3: logs.paths: ~nfd-no-such-user/crm.log: cannot expand ~nfd-no-such-user",
        yaml="logs:\n  paths: [~nfd-no-such-user/crm.log]\n",
    ),
    Hostile(
        "tilde-user-sqlite-url",
        "unknown-user",
        ("config", "validate", "--config", "{config}"),
        CFG + ":2:3: database.url: ~nfd-no-such-user/crm.db: cannot expand ~nfd-no-such-user",
        yaml="database:\n  url: sqlite:///~nfd-no-such-user/crm.db\n",
    ),
    # --- a keyring backend that does not exist ------------------------------------------------
    Hostile(
        "keyring-backend-missing-module",
        "keyring-backend",
        ("config", "validate", "--config", "{config}"),
        "nfdoctor: keyring: {config}:2:3: crm.api_key: the OS keyring backend cannot be loaded",
        contains=("PYTHON_KEYRING_BACKEND",),
        yaml="crm:\n  api_key: keyring:nextflow/crm\n",
        env={"PYTHON_KEYRING_BACKEND": "nfd_no_such_module.Keyring"},
        process=True,  # keyring picks its backend once per process
    ),
    Hostile(
        "keyring-backend-missing-class",
        "keyring-backend",
        (*QUICK,),
        "nfdoctor: keyring: {config}:2:3: crm.api_key: the OS keyring backend cannot be loaded",
        yaml="crm:\n  api_key: keyring:nextflow/crm\n",
        env={"PYTHON_KEYRING_BACKEND": "keyring.backends.nfd_no_such.Keyring"},
        process=True,
    ),
    # --- reads that would block for ever or never end ------------------------------------------
    Hostile(
        "secret-file-fifo",
        "hang",
        ("config", "validate", "--config", "{config}"),
        SECRET + ":2:3: crm.api_key: secret file {tmp}/conf/key is a FIFO (named pipe), not a "
        "regular file",
        yaml="crm:\n  api_key: file:key\n",
        setup=lambda tmp, config: os.mkfifo(config.parent / "key"),
        process=True,
    ),
    Hostile(
        "secret-file-dev-zero",
        "hang",
        ("config", "validate", "--config", "{config}"),
        SECRET + ":2:3: crm.api_key: secret file /dev/zero is a character device, not a regular "
        "file",
        yaml="crm:\n  api_key: file:/dev/zero\n",
        process=True,
    ),
    Hostile(
        "config-fifo",
        "hang",
        ("config", "validate", "--config", "{config}"),
        CFG + ": config file is a FIFO (named pipe), not a regular file (--config)",
        yaml=None,
        setup=_config_fifo,
        process=True,
    ),
    Hostile(
        "fault-plan-fifo",
        "hang",
        (*SIM, "--faults", "{tmp}/plan.fifo"),
        USAGE + "{tmp}/plan.fifo: the fault plan is a FIFO (named pipe), not a regular file",
        setup=_fifo("plan.fifo"),
        process=True,
    ),
    Hostile(
        "fault-plan-dev-zero",
        "hang",
        (*SIM, "--faults", "/dev/zero"),
        USAGE + "/dev/zero: the fault plan is a character device, not a regular file",
        process=True,
    ),
    # --- values that used to be accepted without complaint -------------------------------------
    Hostile(
        "partner-id-yes",
        "accepted-silently",
        ("config", "validate", "--config", "{config}"),
        CFG + ":3:5: platforms.shopee.partner_id: expected a number, got the boolean true",
        yaml=_shopee().replace("partner_id: 2001234", "partner_id: yes"),
        env=SHOPEE_KEY,
    ),
    Hostile(
        "shop-id-negative",
        "accepted-silently",
        ("config", "validate", "--config", "{config}"),
        CFG + ":6:9: platforms.shopee.shops[0].shop_id: must be more than zero, got -5",
        yaml=_shopee(shops="      - shop_id: -5\n"),
        env=SHOPEE_KEY,
    ),
    Hostile(
        "shop-listed-twice",
        "accepted-silently",
        ("config", "validate", "--config", "{config}"),
        CFG + ":5:5: platforms.shopee.shops: shop_id 220001 is listed twice (items 0 and 2)",
        yaml=_shopee(
            shops="      - shop_id: 220001\n      - shop_id: 220002\n      - shop_id: 220001\n"
        ),
        env=SHOPEE_KEY,
    ),
    Hostile(
        "facebook-page-id-with-slash",
        "accepted-silently",
        ("config", "validate", "--config", "{config}"),
        CFG + ":7:9: platforms.facebook.pages[0].page_id: expected an id of digits only, got "
        "'123/feed'",
        yaml=(
            "platforms:\n  facebook:\n    app_id: '1'\n    app_secret: env:NFD_TEST_KEY\n"
            "    pages:\n      - name: Tiệm\n        page_id: 123/feed\n"
        ),
        env=SHOPEE_KEY,
    ),
    Hostile(
        "postgres-port-out-of-range",
        "accepted-silently",
        ("config", "validate", "--config", "{config}"),
        CFG + ":2:3: database.url: database URL 'postgresql://crm@db.internal:99999/crm': port "
        "99999 is not from 1 to 65535",
        yaml="database:\n  url: postgresql://crm@db.internal:99999/crm\n",
    ),
    Hostile(
        "graph-version-with-path",
        "accepted-silently",
        ("config", "validate", "--config", "{config}"),
        CFG + ":5:5: platforms.facebook.graph_version: expected a Graph API version such as "
        "v25.0, got '../v1.0'",
        yaml=(
            "platforms:\n  facebook:\n    app_id: '1'\n    app_secret: env:NFD_TEST_KEY\n"
            "    graph_version: ../v1.0\n"
        ),
        env=SHOPEE_KEY,
    ),
    Hostile(
        "fault-latency-huge",
        "accepted-silently",
        (*SIM, "--faults", "{tmp}/plan.yaml"),
        USAGE + "{tmp}/plan.yaml: rules[0].ms: must be 0 to 3600000 (an hour), got 10000000000",
        setup=_plan("rules:\n  - fault: latency\n    ms: 10000000000\n"),
        process=True,
    ),
    Hostile(
        "fault-timeout-nan",
        "accepted-silently",
        (*SIM, "--faults", "{tmp}/plan.yaml"),
        USAGE + "{tmp}/plan.yaml: rules[0].seconds: must be more than zero and at most 3600",
        setup=_plan("rules:\n  - fault: timeout\n    seconds: .nan\n"),
        process=True,
    ),
    Hostile(
        "fault-clock-skew-past-the-calendar",
        "accepted-silently",
        (*SIM, "--faults", "{tmp}/plan.yaml"),
        USAGE + "{tmp}/plan.yaml: rules[0].seconds: must be within ±315360000 (ten years)",
        setup=_plan("rules:\n  - fault: clock_skew\n    seconds: 1000000000000\n"),
        process=True,
    ),
]


def test_every_class_has_at_least_two_rows_and_ids_are_unique() -> None:
    ids = [row.id for row in ROWS]
    assert len(ids) == len(set(ids))
    per_class: dict[str, int] = {}
    for row in ROWS:
        per_class[row.cls] = per_class.get(row.cls, 0) + 1
    assert {cls for cls, count in per_class.items() if count < 2} == set()
    assert len(per_class) >= 12


# --- running a row ----------------------------------------------------------------------------


def _fill(text: str, tmp: Path, config: Path) -> str:
    return text.replace("{config}", str(config)).replace("{tmp}", str(tmp))


def _run_process(
    row: Hostile, args: list[str], env: dict[str, str], cwd: Path, timeout: float = 30
) -> CliResult:
    """``python -m nfdoctor ARGS`` with its stdout connected as the row says."""
    argv = [sys.executable, "-m", "nfdoctor", *args]
    stdout_target: int | object = subprocess.PIPE
    closers: list[int] = []
    if row.stdout == "full":
        full = os.open("/dev/full", os.O_WRONLY)
        closers.append(full)
        stdout_target = full
    elif row.stdout == "broken":
        read_end, write_end = os.pipe()
        os.close(read_end)  # nobody will ever read: the first write gets EPIPE
        closers.append(write_end)
        stdout_target = write_end
    gone = cwd.parent / "gone"

    def prepare_child() -> None:
        # An unbounded read (the old /dev/zero bug) must fail this row, not the machine.
        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))
        if row.stdout == "closed":
            os.close(1)
        if row.cwd_deleted:
            os.mkdir(gone)
            os.chdir(gone)
            os.rmdir(gone)

    preexec = prepare_child
    try:
        completed = subprocess.run(
            argv,
            stdout=stdout_target,  # type: ignore[arg-type]
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            timeout=timeout,
            preexec_fn=preexec,
            check=False,
        )
    finally:
        for fd in closers:
            os.close(fd)
    out = completed.stdout.decode("utf-8", "replace") if completed.stdout else ""
    return CliResult(completed.returncode, out, completed.stderr.decode("utf-8", "replace"))


@pytest.fixture
def hostile(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Hostile, Path, list[str]]]:
    row: Hostile = request.param
    if row.needs_root and os.geteuid() != 0:
        pytest.skip("mknod of a device node needs root (CI runs as root)")
    config = tmp_path / "conf" / "nfdoctor.yaml"
    config.parent.mkdir()
    if row.yaml is not None:
        config.write_text(row.yaml, encoding="utf-8")
    if row.setup is not None:
        row.setup(tmp_path, config)
    for name, value in row.env.items():
        monkeypatch.setenv(name, _fill(value, tmp_path, config))
    yield row, config, [_fill(arg, tmp_path, config) for arg in row.args]


@pytest.mark.parametrize("hostile", ROWS, ids=[row.id for row in ROWS], indirect=True)
def test_hostile_input(
    hostile: tuple[Hostile, Path, list[str]], cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    row, config, args = hostile
    before = snapshot(tmp_path)
    if row.process:
        result = _run_process(row, args, dict(os.environ), tmp_path / "work")
    else:
        result = cli(*args)
    shown = f"exit {result.code}\n--- stdout:\n{result.stdout}--- stderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr, shown
    assert result.code == row.code, shown
    lines = result.stderr.splitlines()
    if row.expect is None:
        assert lines == [], shown
    else:
        expect = _fill(row.expect, tmp_path, config)
        ours = [line for line in lines if line.startswith("nfdoctor:")]
        assert len(ours) == 1, shown
        assert ours[0].startswith(expect), f"\n got: {ours[0]}\nwant: {expect}...\n{shown}"
        for text in row.contains:
            assert _fill(text, tmp_path, config) in ours[0], shown
        assert not PYTHON_REPR.search(ours[0]), shown
        assert all(line.startswith(("nfdoctor:", "Tip: ")) for line in lines), shown
    if row.code == 3:
        assert result.stdout == "", shown
    if row.stdout_has is not None:
        assert row.stdout_has in result.stdout, shown
    assert_nothing_written(before, snapshot(tmp_path), tmp_path)


def test_snapshot_sees_a_device_replaced_by_a_file(tmp_path: Path) -> None:
    """The comparison the table relies on notices what the old /dev/null bug did."""
    os.mkfifo(tmp_path / "node")
    before = snapshot(tmp_path)
    (tmp_path / "node").unlink()
    (tmp_path / "node").write_bytes(b"")
    with pytest.raises(AssertionError):
        assert_nothing_written(before, snapshot(tmp_path), tmp_path)


def test_write_config_failing_late_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the secrets were written (the config's own write) removes them all,
    and an existing secrets directory comes back as it was."""
    import nfdoctor.simulator.server as server
    from nfdoctor.errors import StateError
    from nfdoctor.simulator.state import SimulatorState

    state = SimulatorState(seed=3, orders_per_shop=0, conversations_per_account=0)
    kept = tmp_path / "sim-secrets"
    kept.mkdir()
    (kept / "mine.txt").write_text("operator's own note\n")
    before = snapshot(tmp_path)
    real = server.write_atomically

    def fail_on_the_config(path: Path, text: str, *, mode: int = 0o644) -> None:
        if path.name == "sim.yaml":
            raise StateError(f"cannot write {path}: No space left on device")
        real(path, text, mode=mode)

    monkeypatch.setattr(server, "write_atomically", fail_on_the_config)
    with pytest.raises(StateError):
        server.write_config(tmp_path / "sim.yaml", "http://127.0.0.1:1", state)
    after = snapshot(tmp_path)
    assert sorted(set(after) - set(before)) == []
    assert sorted(set(before) - set(after)) == []
    assert (kept / "mine.txt").read_text() == "operator's own note\n"


# --- the token store: findings in the report, never a hang, a crash or the wrong blame -------


def _edit_tokens(
    edit: Callable[[dict[str, dict[str, dict[str, object]]]], None],
) -> Callable[[Path], None]:
    """Change the simulator's tokens.json in place (``edit`` gets its ``tokens`` object)."""
    import json

    def apply(tokens_path: Path) -> None:
        document = json.loads(tokens_path.read_text(encoding="utf-8"))
        edit(document["tokens"])
        tokens_path.write_text(json.dumps(document), encoding="utf-8")

    return apply


def _first(tokens: dict[str, dict[str, dict[str, object]]], platform: str) -> dict[str, object]:
    return next(iter(tokens[platform].values()))


def _replace_with_fifo(tokens_path: Path) -> None:
    tokens_path.unlink()
    os.mkfifo(tokens_path)


@dataclass(frozen=True)
class TokenRow:
    """A hostile token file; ``says`` is what the rows of ``check_ids`` must say."""

    id: str
    cls: str
    damage: Callable[[Path], None]
    platform: str
    status: str
    says: str
    code: int
    check_ids: tuple[str, ...] = ("api", "token")


TOKEN_ROWS = [
    TokenRow(
        "token-file-fifo",
        "hang",
        _replace_with_fifo,
        "shopee",
        "UNKNOWN",
        "tokens.json is a FIFO (named pipe), not a regular file; nothing was changed",
        3,
    ),
    TokenRow(
        "token-time-end-of-calendar",
        "calendar-edge",
        _edit_tokens(
            lambda t: _first(t, "shopee").update(refresh_expires_at="9999-12-31T23:59:59-01:00")
        ),
        "shopee",
        "UNKNOWN",
        "refresh_expires_at: time out of range (expected a year from 1970 to 9000)",
        3,
    ),
    TokenRow(
        "token-time-start-of-calendar",
        "calendar-edge",
        _edit_tokens(
            lambda t: _first(t, "lazada").update(access_expires_at="0001-01-01T00:00:00+01:00")
        ),
        "lazada",
        "UNKNOWN",
        "access_expires_at: time out of range (expected a year from 1970 to 9000)",
        3,
    ),
    TokenRow(
        "token-with-line-break-header",
        "malformed-token",
        _edit_tokens(lambda t: _first(t, "zalo").update(access_token="abc\r\nX-Injected: 1")),
        "zalo",
        "CRITICAL",
        "the stored access token is malformed: it contains a line break; not sent to Zalo OA",
        2,
    ),
    TokenRow(
        "token-with-space-query",
        "malformed-token",
        _edit_tokens(lambda t: _first(t, "shopee").update(access_token="abc def")),
        "shopee",
        "CRITICAL",
        "the stored access token is malformed: it contains a space or a tab",
        2,
    ),
    TokenRow(
        "token-file-world-readable",
        "token-file-mode",
        lambda path: path.chmod(0o666),
        "tiktok",
        "WARNING",
        "mode 0666: readable by group and others, writable by group and others (run: chmod 600",
        1,
        check_ids=("token",),
    ),
    TokenRow(
        "token-file-group-readable",
        "token-file-mode",
        lambda path: path.chmod(0o640),
        "facebook",
        "WARNING",
        "mode 0640: readable by group (run: chmod 600",
        1,
        check_ids=("token",),
    ),
]


def test_every_token_class_has_two_rows_counting_both_tables() -> None:
    counts: dict[str, int] = {}
    for row in [*ROWS, *TOKEN_ROWS]:
        counts[row.cls] = counts.get(row.cls, 0) + 1
    assert {cls for cls, count in counts.items() if count < 2} == set()


@pytest.fixture(scope="module")
def token_simulator() -> Iterator[tuple[str, object]]:
    from nfdoctor.simulator.app import build_simulator
    from nfdoctor.simulator.server import SimulatorServer

    app, state = build_simulator(seed=11, orders_per_shop=0, conversations_per_account=0)
    server = SimulatorServer(app, port=0)
    server.start_in_thread()
    try:
        yield server.url, state
    finally:
        server.stop()


@pytest.mark.parametrize("row", TOKEN_ROWS, ids=[row.id for row in TOKEN_ROWS])
def test_hostile_token_file(
    row: TokenRow,
    token_simulator: tuple[str, object],
    tmp_path: Path,
    cli: Callable[..., CliResult],
) -> None:
    import re

    from nfdoctor.simulator.server import write_config

    url, state = token_simulator
    config = tmp_path / "conf" / "sim.yaml"
    config.parent.mkdir()
    write_config(config, url, state)  # type: ignore[arg-type]
    tokens = config.parent / "sim-secrets" / "tokens.json"
    row.damage(tokens)
    kind = stat.S_IFMT(tokens.lstat().st_mode)
    before = snapshot(tmp_path)
    result = cli("check", row.platform, "--config", str(config), "-o", "plain")
    shown = f"exit {result.code}\n--- stdout:\n{result.stdout}--- stderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr, shown
    assert result.code == row.code, shown
    for check in row.check_ids:
        pattern = re.compile(
            rf"^([A-Z]+) +platforms\.{row.platform}\.{check}( · \S.*?)? {{2,}}(.*)$"
        )
        lines = [m for m in map(pattern.match, result.stdout.splitlines()) if m]
        assert len(lines) == 1, shown
        assert lines[0].group(1) == row.status, shown
        assert row.says in lines[0].group(3), shown
    # Blamed on the token, never on the platform ("server overload", "unreachable").
    assert "transient" not in result.stdout and "server-side failure" not in result.stdout
    assert stat.S_IFMT(tokens.lstat().st_mode) == kind
    assert_nothing_written(before, snapshot(tmp_path), tmp_path)
