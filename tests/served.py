"""The simulator on loopback as an operator runs it: HTTPS receivers, and the config it writes.

``serve`` starts a built simulator (``build_simulator``) on 127.0.0.1 with the CRM's webhook
receivers over HTTPS (certificates from a CA made for the run, ``connect_to`` rules and the CA
bundle in the written config), as ``nfdoctor simulator --tls --write-config`` does, so a
healthy simulator is healthy for the webhook checks too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nfdoctor.simulator.certs import SimulatorPki
from nfdoctor.simulator.server import CrmTlsSites, SimulatorServer, webhook_urls, write_config
from nfdoctor.simulator.state import SimulatorState
from nfdoctor.store.database import DatabaseUrl


@contextmanager
def serve(
    app: Any,
    state: SimulatorState,
    config: Path | None = None,
    *,
    tls: bool = True,
    tls_kinds: Mapping[str, str] | None = None,
    database: DatabaseUrl | None = None,
    **server_options: Any,
) -> Iterator[SimulatorServer]:
    """Serve ``app`` (HTTPS receivers unless ``tls=False``), write ``config`` if given; the
    running server, stopped on exit."""
    pki = SimulatorPki(state.clock()) if tls else None
    sites = CrmTlsSites(pki, tls_kinds) if pki is not None else None
    server = SimulatorServer(app, port=0, state=state, tls=sites, **server_options)
    state.webhook_urls = webhook_urls(server.url, https=tls)
    server.start_in_thread()
    try:
        if config is not None:
            write_config(
                config,
                server.url,
                state,
                database=database,
                tls_port=server.tls_port if tls else None,
                ca_pem=pki.root_pem() if pki is not None else None,
            )
        yield server
    finally:
        server.stop()
