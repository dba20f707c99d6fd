"""The simulated platforms, in the order the seed draws them (which is part of the data).

Adding a platform means one module with its :class:`~nfdoctor.simulator.spec.SimPlatform`
and one entry here: the state, the app, the fault plan, the CRM, the config writer and the
demo CRM data take everything else from the declaration.
"""

from __future__ import annotations

from typing import Any

from nfdoctor.simulator.facebook import FACEBOOK
from nfdoctor.simulator.lazada import LAZADA
from nfdoctor.simulator.shopee import SHOPEE
from nfdoctor.simulator.spec import SimPlatform
from nfdoctor.simulator.tiktok import TIKTOK
from nfdoctor.simulator.zalo import ZALO

__all__ = ["NAMES", "SIM_PLATFORMS", "sim_platform"]

#: every simulated platform; the order is the order of the seeded draws
SIM_PLATFORMS: tuple[SimPlatform[Any], ...] = (SHOPEE, LAZADA, TIKTOK, FACEBOOK, ZALO)

#: the platforms' names, in the same order
NAMES: tuple[str, ...] = tuple(p.name for p in SIM_PLATFORMS)

_BY_NAME = {p.name: p for p in SIM_PLATFORMS}


def sim_platform(name: str) -> SimPlatform[Any]:
    """The declaration of the platform called ``name`` (KeyError naming the known ones)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no simulated platform {name!r} (known: {', '.join(NAMES)})") from None
