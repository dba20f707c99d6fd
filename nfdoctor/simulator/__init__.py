"""Local, faithful simulators of the five platform APIs and of the CRM (see README.md).

Use :func:`nfdoctor.simulator.app.build_simulator` for an in-process ASGI app and
:mod:`nfdoctor.simulator.server` to serve it on loopback.
"""

from __future__ import annotations
