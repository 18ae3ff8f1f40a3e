"""Which simulated venue lists which scenario symbol, and under which name. Pure module.

Read from each venue's own description (``VenueSpec.venue_symbol`` in ``venues.SPECS``), so a
symbol added to a venue's instrument table is listed here, and a venue added to ``venues`` is
known here without touching this module. A venue that does not list a symbol gets none of its
positions or flow (its share goes to the others).
"""

from __future__ import annotations

from monitor.simulator.instruments import INSTRUMENTS
from monitor.simulator.venues import SPECS


def venue_symbol(venue: str, symbol: str) -> str | None:
    """The venue's name for scenario symbol ``symbol`` (``BTCUSDT``), or None if not listed."""
    if symbol not in INSTRUMENTS:
        return None
    spec = SPECS.get(venue)
    if spec is None:
        raise ValueError(f"unknown venue {venue!r} (known: {sorted(SPECS)})")
    return spec.venue_symbol(symbol)


def listed(venue: str, symbol: str) -> bool:
    return venue_symbol(venue, symbol) is not None
