"""Opening a SQLite database must not drop the locks this process already holds on it.

POSIX record locks belong to the process, and closing *any* descriptor of a file drops all
of them (fcntl(2)). nfdoctor once checked a database file by opening and closing it before
connecting: a second connection made while the first held the write lock silently freed
that lock, and another process then wrote alongside it (seen as SQLITE_IOERR_RDLOCK and
SQLITE_IOERR_DELETE_NOENT with four sync shards on one CRM).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from nfdoctor.store.database import connect_sqlite_rw

_OTHER_WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0.2, isolation_level=None)
try:
    conn.execute("BEGIN IMMEDIATE")
except sqlite3.OperationalError:
    print("locked")
else:
    print("got the write lock")
"""


def test_a_new_connection_leaves_the_held_write_lock_in_place(tmp_path: Path) -> None:
    path = tmp_path / "crm.db"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (x)")
    holder = connect_sqlite_rw(path, timeout_s=1)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    # Another connection of this process to the same file, while the lock is held.
    other = connect_sqlite_rw(path, timeout_s=1)
    other.close()
    probe = subprocess.run(
        [sys.executable, "-c", _OTHER_WRITER, str(path)], capture_output=True, text=True
    )
    holder.execute("COMMIT")
    holder.close()
    assert probe.stdout.strip() == "locked", probe.stdout + probe.stderr
