"""Platform API clients: one spec per platform, signing as ``httpx.Auth``, one error taxonomy.

Modules: :mod:`.errors` (taxonomy), :mod:`.base` (interface and shared machinery),
:mod:`.ratelimit` (usage headers, Retry-After, clock skew), :mod:`.spec` (what a platform
declares), one module per platform ending in its ``SPEC``, and :mod:`.registry`, the one
list of platforms. This package imports nothing heavy on its own; import the registry (or a
platform module) where a platform is needed.
"""

from __future__ import annotations
