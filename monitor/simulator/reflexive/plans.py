"""Each venue's connections, subscribe requests and instrument REST paths, as a client sends them.

Pure module. What a recording of a venue starts with: the sockets a client opens (path, query) and
the requests it sends on each, in the venue's documented forms (docs/venues.md), for the venue's
spelling of the scenario's symbols. They are the requests the project's producers send (a test
checks the two agree), built by each venue's module (``VenueSpec.client_plan``, on the venue's
``base_path``), because the simulator never imports ``producers``. The REST paths are
``VenueSpec.rest_paths``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from monitor.simulator.clientplan import Connection
from monitor.simulator.venues import SPECS

HOST: Final = "ws://127.0.0.1"
REST_HOST: Final = "http://127.0.0.1"

__all__ = ["HOST", "REST_HOST", "Connection", "base_url", "connections", "rest_paths"]


def base_url(venue: str) -> str:
    return HOST + SPECS[venue].base_path


def rest_paths(venue: str) -> tuple[str, ...]:
    """The REST paths (with query) of the instrument metadata the venue's adapter loads."""
    return SPECS[venue].rest_paths


def connections(venue: str, venue_symbols: Sequence[str], now_s: float) -> list[Connection]:
    """The sockets to open on ``venue`` for its symbols (venue spelling, in order) and the
    requests to send on each; ``now_s`` is the epoch second a request that carries one (Gate)."""
    syms = list(dict.fromkeys(venue_symbols))
    return SPECS[venue].client_plan(base_url(venue), syms, now_s)
