"""Network probes: where a connection to a platform drops, and how long each step takes."""

from __future__ import annotations

from nfdoctor.net.probe import (
    PHASES,
    ConnectionTiming,
    Resolver,
    default_ssl_context,
    origin_of,
    probe_many,
    probe_url,
)

__all__ = [
    "PHASES",
    "ConnectionTiming",
    "Resolver",
    "default_ssl_context",
    "origin_of",
    "probe_many",
    "probe_url",
]
