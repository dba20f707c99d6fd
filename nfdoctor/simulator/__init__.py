"""Local, faithful simulators of the five platform APIs and of the CRM (see README.md).

Use :func:`nfdoctor.simulator.app.build_simulator` for an in-process ASGI app,
:mod:`nfdoctor.simulator.server` to serve it on loopback, and
:mod:`nfdoctor.simulator.crm_data` for the demo CRM made from what it serves. Each platform
is declared once, in its own module (:mod:`nfdoctor.simulator.registry` lists them).
"""

from __future__ import annotations
