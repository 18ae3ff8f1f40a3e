"""The venues the configuration knows: each venue declares its defaults in its own producer folder
(``producers/<venue>/__init__.py``, ``VENUE``), and ``producers.registry`` registers them here
when it discovers the venues. This layer only keeps the table: the contracts never import the
producers (dependency inversion, as a plugin registry does), so adding a venue touches its own
folder and nothing here.

``monitor.core.config`` reads ``registered()`` to fill each exchange's defaults and to refuse an
unknown ``[exchanges.<name>]``; any entry point that builds a configuration imports
``producers.registry`` first (the CLI does; so does the test suite's conftest).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9]{1,19}$")


@dataclass(frozen=True, slots=True)
class VenueDefaults:
    """What a venue's configuration is when the user says nothing."""

    name: str  # the exchange's name in config keys, topics and metric labels: "binance"
    ws_url: str  # the real venue's websocket base
    rest_url: str  # the real venue's REST base (instrument metadata, polls)
    symbols: tuple[str, ...]  # trade and market-context subscriptions, venue spelling
    enabled: bool = False  # run by default (Binance and Bybit), else opt-in

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"venue name {self.name!r}: 2-20 lower-case letters and digits")
        for url, schemes in (
            (self.ws_url, ("ws://", "wss://")),
            (self.rest_url, ("http://", "https://")),
        ):
            if not url.startswith(schemes):
                raise ValueError(f"venue {self.name}: bad default URL {url!r}")


_REGISTERED: dict[str, VenueDefaults] = {}


def register(defaults: VenueDefaults) -> None:
    """Add a venue (idempotent for the same defaults; a different one under a taken name is an
    error)."""
    known = _REGISTERED.get(defaults.name)
    if known is not None and known != defaults:
        raise ValueError(f"venue {defaults.name!r} registered twice with different defaults")
    _REGISTERED[defaults.name] = defaults


def registered() -> Mapping[str, VenueDefaults]:
    """The registered venues, by name, in name order."""
    return MappingProxyType(dict(sorted(_REGISTERED.items())))
