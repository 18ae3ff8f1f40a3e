"""The sans-I/O contract between a venue adapter and the websocket session that drives it.

An adapter is pure: it plans connections (URL + subscribe frames), turns one received frame into
normalized events plus any frames to send back (pongs), and builds its client heartbeat. It never
touches a socket, so it is tested from recorded frames with no network. ``producers.session`` owns
the I/O: connecting, backoff, heartbeats, the stale-feed watchdog, rotation, counting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from monitor.core.config import ExchangeConfig
from monitor.core.schema import Event
from monitor.core.venues import VenueDefaults


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    name: str  # short, bounded label: "liquidations", "trades"
    url: str
    subscribe: tuple[str, ...] = ()  # text frames sent right after the socket opens
    headers: tuple[tuple[str, str], ...] = ()  # extra handshake headers (Gate: X-Gate-Size-Decimal)


@dataclass(slots=True)
class Parsed:
    events: list[Event] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)  # frames the session must send back
    errors: list[str] = field(default_factory=list)  # reasons of items skipped in this frame
    control: bool = False  # subscribe ack, pong, heartbeat: not market data
    gaps: int = 0  # messages missing before this one, where the venue numbers them (counted)
    # items deliberately not emitted because the venue re-sent what it had pushed before (a
    # ``DUPLICATE_REASONS`` reason each, counted as duplicates): Bitget's liquidation snapshots
    replayed: list[str] = field(default_factory=list)


class VenueAdapter(Protocol):
    exchange: str

    def connections(self, cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
        """The sockets to open and what to subscribe on each."""
        ...

    def parse(self, frame: bytes | str, received_ns: int) -> Parsed:
        """Normalize one frame. Raises ParseError (with a bounded reason) if the whole frame is bad;
        bad items inside an otherwise good frame are skipped and listed in ``Parsed.errors``."""
        ...

    def heartbeat(self) -> str | None:
        """A client ping frame to send every ``ping_interval_s``, or None when the server pings."""
        ...


@runtime_checkable
class InstrumentSource(Protocol):
    """An adapter whose quantities need the venue's instrument metadata (contract multipliers).

    Sans-I/O like the parser: the service fetches each URL (at start-up, then every refresh
    interval) and hands the body back; the adapter installs what it parsed into its strict
    SymbolTable. Until then, events of unknown instruments are skipped as ``unknown_instrument``."""

    def instrument_urls(self, rest_base: str) -> list[str]:
        """The REST URLs to GET, built on the configured (or the venue's real) REST base."""
        ...

    def load_instruments(self, url: str, body: bytes) -> int:
        """Parse one response and install its instruments; return how many. ParseError if the
        body is not the venue's instrument list (the previous instruments stay in place).

        A paged listing also defines ``next_instrument_url(url) -> str | None``: called after
        ``load_instruments(url, ...)``, the next page to GET, or None after the last one."""
        ...


@dataclass(frozen=True, slots=True)
class Venue:
    """One venue as ``producers.registry`` discovers it, declared in its own folder
    (``producers/<venue>/__init__.py``, ``VENUE``): the configuration defaults and the adapter."""

    defaults: VenueDefaults
    adapter: Callable[[ExchangeConfig], VenueAdapter]
