"""``nfdoctor sync``: the CRM's orders and messages re-read from the platforms, exactly.

:mod:`nfdoctor.sync.db` holds nfdoctor's own tables (runs, checkpoints, leases, the shared
rate limit) and the CRM writes; :mod:`nfdoctor.sync.limiter` paces requests across processes;
:mod:`nfdoctor.sync.shard` splits shops between processes; :mod:`nfdoctor.sync.engine` runs
the windows and pages. See docs/sync.md.
"""
