"""Who holds a lease or wrote a journal: ``nfdoctor[ role]@host:pid:nonce``, and whether it
still runs."""

from __future__ import annotations

import os
import socket

__all__ = ["dead_here", "gone"]


def dead_here(owner: object) -> bool:
    """Whether ``owner`` is a process of this host that is no longer running.

    Another host's process, or one that cannot be told (another user's, a pid reused since),
    counts as alive: its lease then runs out by its time, which is the safe side.
    """
    if not isinstance(owner, str) or "@" not in owner:
        return False
    host, _, rest = owner.rpartition("@")[2].partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists, as another user's process: alive
    return False


def gone(owner: object) -> bool:
    """Whether the run ``owner`` names is over: a process of this host that no longer runs,
    or an earlier run of this very process (its runs go one after another)."""
    if not isinstance(owner, str) or "@" not in owner:
        return False
    host_pid = owner.rsplit("@", 1)[-1].split(":")[:2]
    if host_pid == [socket.gethostname(), str(os.getpid())]:
        return True
    return dead_here(owner)
