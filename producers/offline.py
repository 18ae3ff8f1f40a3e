"""A producer without sockets: recorded frames through the venue's adapter and the producer's
duplicate filter, as the live sessions would parse them, for ``cascade-monitor backtest``.

``OfflineProducer(cfg, exchange)`` holds what ``ProducerService`` holds for one exchange: the
adapter (built from the exchange's configuration), one ``Deduplicator`` shared by every
connection, and the counts the sessions export as metrics (frames, events by kind, parse errors
by reason, duplicates by reason). ``rest(path, body)`` installs recorded instrument metadata
(contract sizes) as the producer's loader would at start-up; ``frame(data, received_ns)`` returns
the events a live session would hand to the publisher, in order, for the frame received at
``received_ns``. A frame the adapter refuses is counted by reason and skipped, never fatal.
REST polls (open interest) are not recorded, so they are not replayed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from monitor.core.config import Config
from monitor.core.errors import ParseError
from monitor.core.schema import Event, Liquidation, MarketContext
from producers.base import InstrumentSource
from producers.registry import ADAPTERS
from producers.session import Deduplicator


@dataclass
class OfflineCounts:
    frames: int = 0
    events: Counter[str] = field(default_factory=Counter)  # liquidation, trade, context
    parse_errors: Counter[str] = field(default_factory=Counter)  # by reason
    duplicates: Counter[str] = field(default_factory=Counter)  # by reason
    instruments: int = 0  # installed from recorded metadata


class OfflineProducer:
    """One exchange's parsing as a producer does it, fed recorded frames."""

    def __init__(self, cfg: Config, exchange: str) -> None:
        if exchange not in ADAPTERS:
            raise ValueError(f"no producer for exchange {exchange!r} (known: {sorted(ADAPTERS)})")
        self.exchange = exchange
        self.adapter = ADAPTERS[exchange](cfg.exchanges[exchange])
        self.rest_base = cfg.rest_url(exchange)
        self.dedup = Deduplicator()
        self.counts = OfflineCounts()

    def rest(self, path: str, body: bytes) -> None:
        """Install one recorded instrument-metadata answer (a refused one is a parse error)."""
        if not isinstance(self.adapter, InstrumentSource):
            return
        try:
            self.counts.instruments += self.adapter.load_instruments(self.rest_base + path, body)
        except ParseError as exc:
            self.counts.parse_errors[f"instruments_{exc.reason}"] += 1

    def frame(self, data: str | bytes, received_ns: int) -> list[Event]:
        self.counts.frames += 1
        try:
            parsed = self.adapter.parse(data, received_ns)
        except ParseError as exc:
            self.counts.parse_errors[exc.reason] += 1
            return []
        c = self.counts
        for reason in parsed.errors:
            c.parse_errors[reason] += 1
        for reason in parsed.replayed:
            c.duplicates[reason] += 1
        events = parsed.events  # built once (a columnar parse builds them on each access)
        if not events:
            return []
        for e in events:
            kind = (
                "liquidation"
                if type(e) is Liquidation
                else "context"
                if type(e) is MarketContext
                else "trade"
            )
            c.events[kind] += 1
        fresh, dup_liq, dup_trd = self.dedup.fresh(events)
        if dup_liq or dup_trd:
            c.duplicates["producer_memory"] += dup_liq + dup_trd
        return fresh
