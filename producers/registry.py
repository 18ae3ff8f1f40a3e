"""The venues, discovered: every package ``producers/<venue>/`` that defines ``VENUE`` (a
``producers.base.Venue``: its defaults and its adapter) is a venue. Discovery registers each
venue's defaults with the configuration (``monitor.core.venues``), so importing this module
before building a configuration is what makes the venues known; the CLI and the test suite do.

Adding a venue touches its own folder (``producers/_template/`` shows what one holds) and its
simulated venue module (``monitor/simulator/venues/``), nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

import producers
from monitor.core.config import ExchangeConfig
from monitor.core.venues import register
from producers.base import Venue, VenueAdapter


def _discover() -> dict[str, Venue]:
    venues: dict[str, Venue] = {}
    for info in sorted(pkgutil.iter_modules(producers.__path__), key=lambda i: i.name):
        if not info.ispkg or info.name.startswith("_"):
            continue  # modules of the producer itself; ``_template``
        venue = getattr(importlib.import_module(f"producers.{info.name}"), "VENUE", None)
        if not isinstance(venue, Venue):
            continue
        name = venue.defaults.name
        if name != info.name or name in venues:
            raise RuntimeError(f"producers/{info.name}: VENUE is named {name!r}")
        venues[name] = venue
        register(venue.defaults)
    return venues


VENUES: Final[Mapping[str, Venue]] = MappingProxyType(_discover())
EXCHANGES: Final[tuple[str, ...]] = tuple(VENUES)  # names, in name order
ADAPTERS: Final[Mapping[str, Callable[[ExchangeConfig], VenueAdapter]]] = MappingProxyType(
    {name: v.adapter for name, v in VENUES.items()}
)
