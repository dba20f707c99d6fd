"""``--shard i/n``: which shops one of n processes syncs.

A shop's shard is a hash of its platform and id, not its place in the config: every process
computes the same assignment from nothing but the shop itself, adding or removing a shop
moves no other shop, and the n shards together hold every shop exactly once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from nfdoctor.errors import UsageError

__all__ = ["Shard", "parse_shard"]

_FORM = re.compile(r"^\s*(\d{1,4})\s*/\s*(\d{1,4})\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def holds(self, platform: str, account_id: str) -> bool:
        """Whether this shard syncs the account."""
        digest = hashlib.sha256(f"{platform}/{account_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"2/4"`` -> Shard(2, 4); a clear usage error for anything else."""
    match = _FORM.match(text)
    if match is None:
        raise UsageError(f"--shard {text!r}: expected i/n, e.g. 1/4 (shard 1 of 4)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {text}: i must be from 1 to n (got shard {index} of {count})")
    return Shard(index, count)
