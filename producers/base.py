"""The sans-I/O contract between a venue adapter and the websocket session that drives it.

An adapter is pure: it plans connections (URL + subscribe frames), turns one received frame into
normalized rows plus any frames to send back (pongs), and builds its client heartbeat. It never
touches a socket, so it is tested from recorded frames with no network. ``producers.session`` owns
the I/O: connecting, backoff, heartbeats, the stale-feed watchdog, rotation, counting.

``parse(frame, received_ns, into)`` appends the frame's events as rows to ``into``, the
producer's ``ColumnStore`` (columns of the next Kafka record per symbol, ``producers.columns``);
without ``into`` it parses into a ``FrameStore`` of its own, and ``Parsed.events`` gives the frame's
events as objects, in order: the same parser code either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from monitor.core.config import ExchangeConfig
from monitor.core.schema import Event
from monitor.core.venues import VenueDefaults
from producers.columns import ColumnStore
from producers.framestore import FrameStore, Store


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    name: str  # short, bounded label: "liquidations", "trades"
    url: str
    subscribe: tuple[str, ...] = ()  # text frames sent right after the socket opens
    headers: tuple[tuple[str, str], ...] = ()  # extra handshake headers (Gate: X-Gate-Size-Decimal)


class Parsed:
    """What one frame gave: its rows went to ``rows`` (a store); besides them, the frames to send
    back, the reasons of items skipped, and the frame's nature.

    ``liquidations``, ``trades``, ``contexts`` count the rows the frame offered, ``duplicates``
    those the producer's duplicate filter dropped and ``refused`` those a full buffer refused:
    read right after ``parse`` (the store counts per frame; its next frame's ``begin`` ends them;
    ``counts()`` gives the five at once).
    ``events`` are the frame's events as objects, for a frame parsed without ``into`` (or given
    as objects by an adapter that builds them, ``Parsed(events=[...])``)."""

    __slots__ = ("_events", "_frame", "control", "errors", "gaps", "replayed", "replies", "rows")

    def __init__(
        self,
        events: list[Event] | None = None,
        replies: list[str] | None = None,
        errors: list[str] | None = None,
        control: bool = False,
        gaps: int = 0,
        replayed: list[str] | None = None,
        *,
        rows: Store | None = None,
    ) -> None:
        self._events = events
        self.replies: list[str] = [] if replies is None else replies  # frames to send back
        self.errors: list[str] = [] if errors is None else errors  # reasons of items skipped
        self.control = control  # subscribe ack, pong, heartbeat: not market data
        self.gaps = gaps  # messages missing before this one, where the venue numbers them
        # items deliberately not emitted because the venue re-sent what it had pushed before (a
        # ``DUPLICATE_REASONS`` reason each, counted as duplicates): Bitget's liquidation snapshots
        self.replayed: list[str] = [] if replayed is None else replayed
        self.rows = rows
        self._frame = 0 if rows is None else rows.frame

    @classmethod
    def start(cls, exchange: str, into: ColumnStore | None) -> tuple[Parsed, Store]:
        """A frame's result and the store its rows go to: a new ``FrameStore`` when ``into`` is
        None; else ``into``, its frame begun, and the result it keeps for its frames (reset: it
        is the caller's until ``into``'s next frame, as the counts are)."""
        if into is None:
            frame = FrameStore(exchange)
            return cls(rows=frame), frame
        into.begin()
        out = into.result
        if out is None:
            out = into.result = cls(rows=into)
        else:
            if out.errors:
                out.errors = []
            if out.replies:
                out.replies = []
            if out.replayed:
                out.replayed = []
            out.control = False
            out.gaps = 0
            out._frame = into.frame
        return out, into

    def counts(self) -> tuple[int, int, int, int, int]:
        """The frame's rows: (liquidations, trades, contexts offered, duplicates, refused)."""
        rows = self.rows
        if rows is None:
            return 0, 0, 0, 0, 0
        if rows.frame != self._frame:
            raise RuntimeError("the store has begun another frame: counts are per frame")
        return rows.counts()

    @property
    def liquidations(self) -> int:
        return self.counts()[0]

    @property
    def trades(self) -> int:
        return self.counts()[1]

    @property
    def contexts(self) -> int:
        return self.counts()[2]

    @property
    def duplicates(self) -> int:
        return self.counts()[3]

    @property
    def refused(self) -> int:
        return self.counts()[4]

    @property
    def events(self) -> list[Event]:
        """The frame's events in parser order (objects: tests and tools, not the hot path)."""
        if self._events is not None:
            return self._events
        if self.rows is None:
            return []
        if isinstance(self.rows, FrameStore):
            return self.rows.events()
        raise RuntimeError("rows parsed into a ColumnStore are not kept per frame as objects")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Parsed):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def _fields(self) -> tuple[Any, ...]:
        return (self.events, self.replies, self.errors, self.control, self.gaps, self.replayed)

    def __repr__(self) -> str:
        kept = self._events is not None or not isinstance(self.rows, ColumnStore)
        body = f"events={self.events!r}" if kept else f"rows={self.rows!r}"
        return (f"Parsed({body}, replies={self.replies!r}, errors={self.errors!r},"
                f" control={self.control!r}, gaps={self.gaps!r}, replayed={self.replayed!r})")  # fmt: skip


class VenueAdapter(Protocol):
    exchange: str

    def connections(self, cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
        """The sockets to open and what to subscribe on each."""
        ...

    def parse(
        self, frame: bytes | str, received_ns: int, into: ColumnStore | None = None
    ) -> Parsed:
        """Normalize one frame: its events become rows of ``into`` (or of a ``FrameStore`` of the
        result's own when None). Raises ParseError (with a bounded reason) if the whole frame is
        bad, before adding any row; bad items inside an otherwise good frame are skipped and
        listed in ``Parsed.errors``."""
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
