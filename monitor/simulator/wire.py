"""The sans-I/O contract between a venue's module and the rest of the simulator. Pure module.

A venue provides two pure objects:

* a ``Feed`` turns scenario events into outgoing payloads, applying the venue's own sampling and
  batching on the wall clock it is given (``on_event``, then ``flush`` at ``next_deadline_ms``);
* a ``Session`` per client connection answers client messages and decides which frames of an
  ``Outgoing`` that connection receives (its subscriptions and framing);

and describes itself in its ``VenueSpec``: how the server hosts it, and what the scenario builders
and the recordings need to know about it (its activity, its names for the scenario's symbols, its
client's connection plan, ...). The server (``monitor.simulator.server``) owns sockets, timers and
the ledger; no module outside ``venues`` lists venues or branches on one.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from monitor.simulator.clientplan import ClientPlan
from monitor.simulator.events import Scenario, SimEvent
from monitor.simulator.ledger import SentItem


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One market payload and the streams (Binance) or topics (Bybit) that carry it."""

    streams: tuple[str, ...]
    payload: bytes  # compact JSON, as the venue sends it on a raw stream
    keys: tuple[int, ...]  # venue-unique ids of the market items in the payload
    items: tuple[SentItem, ...]


@dataclass(frozen=True, slots=True)
class SnapshotOutgoing(Outgoing):
    """A push on one topic whose first delivery on a connection is ``snapshot`` (the full state
    at the same moment) and every later one ``payload`` (the delta): Bybit tickers, BitMEX
    ``instrument`` partial/update."""

    snapshot: bytes = b""


def snapshot_or_delta(
    out: SnapshotOutgoing, subscribed: Collection[str], primed: set[str]
) -> list[bytes]:
    """The frame a connection gets: nothing unsubscribed; the snapshot on the topic's first push
    (the topic is then ``primed``, until the session discards it on a new subscription)."""
    (topic,) = out.streams
    if topic not in subscribed:
        return []
    if topic in primed:
        return [out.payload]
    primed.add(topic)
    return [out.snapshot]


@dataclass(frozen=True, slots=True)
class Reply:
    """What a session does with one client message."""

    frames: tuple[bytes, ...] = ()
    close: tuple[int, str] | None = None  # close the connection with (code, reason)
    subscriptions_changed: bool = False


class Feed(Protocol):
    def on_event(self, event: SimEvent, now_ms: int) -> list[Outgoing]:
        """Frames to send now for an event that happens at wall time ``now_ms``."""
        ...

    def next_deadline_ms(self) -> int | None:
        """Wall time at which ``flush`` has something to send, or None."""
        ...

    def flush(self, now_ms: int) -> list[Outgoing]:
        """Frames of every interval that ended at or before ``now_ms``."""
        ...


class Session(Protocol):
    conn_id: str

    @property
    def subscriptions(self) -> Collection[str]:
        """Streams this connection will receive (empty for a silent connection)."""
        ...

    def handle(self, message: str | bytes, now_s: float) -> Reply: ...

    def frames_for(self, out: Outgoing) -> list[bytes]: ...


class TickingSession(Session, Protocol):
    def tick(self, now_s: float) -> Reply:
        """Called every ``VenueSpec.tick_s`` (loop time, seconds): server-initiated JSON
        heartbeats (HTX pings, Deribit heartbeat/test_request), idle rules (close)."""
        ...


def _always(session: Session) -> bool:
    """Pings go to every connection of the venue."""
    return True


@dataclass(frozen=True)
class Pings:
    """Websocket protocol pings the server sends on a venue's connections (below the Session,
    which sees only messages): every ``interval_s`` on each connection ``applies_to`` accepts; a
    connection whose oldest ping has gone unanswered for ``timeout_s`` is aborted."""

    interval_s: float
    timeout_s: float
    applies_to: Callable[[Session], bool] = _always


@dataclass(frozen=True)
class VenueSpec:
    """One simulated venue, described by its own module (``venues/<name>.py``).

    Hosting (the server, one websocket server and port per venue): ``route`` checks a handshake
    path (``/path?query``): ``None`` accepts it, else the HTTP ``(status, text)`` refusing it.
    ``new_session(path, conn_id)`` makes the per-connection session. Frames go out as text, or as
    binary messages when ``binary`` (HTX's gzip). With ``tick_s`` set, the session must be a
    TickingSession. ``rest(path_and_query)`` answers plain HTTP GETs on the same port (instrument
    metadata): ``(status, JSON body)``, or None when the path is not a REST path of the venue.
    ``pings`` and ``idle_timeout_s`` are the transport's liveness rules: protocol pings (Binance),
    and a close (1001) of a connection that sent nothing for that long (Bybit).

    Scenarios and recordings (the fields without defaults: every venue states them):

    * ``activity``: the venue's relative trade and liquidation intensity; scenarios size its flow
      by it (``scenario``) or give it that share of positions and flow (``reflexive``);
    * ``scenario_order``: the venue's place in ``reflexive.families.ALL_VENUES``, 0 first. A
      reflexive scenario assigns flow to venues by their index in its venue tuple, so the order is
      part of what a seed means: existing venues keep theirs, a new venue takes the next number;
    * ``in_default_scenario``: the venue plays in ``crash_scenario``'s default market (the demo);
    * ``venue_symbol(symbol)``: the venue's name for a scenario symbol (``BTCUSDT``), None when the
      venue does not list it (it then gets none of that symbol's flow);
    * ``liquidations_as_trades``: the feed itself prints a scenario liquidation as a trade
      (flagged, or plain where the venue has no liquidation feed); elsewhere a reflexive
      scenario adds the forced order's fill as a trade of its own, as the public trade feed shows;
    * ``client_plan``: the connections and subscribe requests of a client (``clientplan``), the
      same the project's producer sends;
    * ``rest_paths``: the REST paths (with query) of the instrument metadata the venue's adapter
      loads, served by ``rest``; ``rest_next_page(first, body)``, when set, gives the path of the
      page after ``body`` of the listing that starts at ``first`` (None after the last page).
    """

    name: str
    base_path: str  # url(venue) = ws://host:port + base_path
    route: Callable[[str], tuple[int, str] | None]
    new_session: Callable[[str, str], Session]
    new_feed: Callable[[], Feed]
    activity: float
    scenario_order: int
    in_default_scenario: bool
    venue_symbol: Callable[[str], str | None]
    liquidations_as_trades: bool
    client_plan: ClientPlan
    rest_paths: tuple[str, ...]
    # when set, used instead of new_feed: a feed that needs the scenario (its price paths)
    new_feed_for: Callable[[Scenario], Feed] | None = None
    binary: bool = False
    tick_s: float | None = None
    rest: Callable[[str], tuple[int, bytes] | None] | None = None
    rest_next_page: Callable[[str, bytes], str | None] | None = None
    pings: Pings | None = None
    idle_timeout_s: float | None = None


def stable_uuid(*parts: str) -> str:
    """A UUID (version 4 layout) derived from ``parts``: deterministic trade ids."""
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))
