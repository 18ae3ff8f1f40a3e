"""The sans-I/O contract between a venue adapter and the websocket session that drives it.

An adapter is pure: it plans connections (URL + subscribe frames), turns one received frame into
normalized events plus any frames to send back (pongs), and builds its client heartbeat. It never
touches a socket, so it is tested from recorded frames with no network. ``producers.session`` owns
the I/O: connecting, backoff, heartbeats, the stale-feed watchdog, rotation, counting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from monitor.config import ExchangeConfig
from monitor.schema import Event


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    name: str  # short, bounded label: "liquidations", "trades"
    url: str
    subscribe: tuple[str, ...] = ()  # text frames sent right after the socket opens


@dataclass(slots=True)
class Parsed:
    events: list[Event] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)  # frames the session must send back
    errors: list[str] = field(default_factory=list)  # reasons of items skipped in this frame
    control: bool = False  # subscribe ack, pong, heartbeat: not market data


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
