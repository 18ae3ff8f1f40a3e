"""A producer without sockets: recorded frames through the venue's adapter into the producer's
record columns, as the live sessions parse them, for ``cascade-monitor backtest``. Pure module.

``OfflineProducer(cfg, exchange)`` holds what ``ProducerService`` holds for one exchange: the
adapter (built from the exchange's configuration) and the publisher's column store
(``producers.columns.ColumnStore``: per-symbol Kafka record columns, the producer's duplicate
filter), plus the counts the sessions export as metrics (frames, events by kind, parse errors by
reason, duplicates by reason). ``rest(path, body)`` installs recorded instrument metadata (contract
sizes) as the producer's loader would at start-up; ``frame(data, received_ns)`` parses one frame
into the store, as a session does; ``records()`` seals and encodes every record the store holds,
as the publisher does (``Columns.encode``), and returns the record values in order. A frame the
adapter refuses is counted by reason and skipped, never fatal. REST polls (open interest) are not
recorded, so they are not replayed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from monitor.core.config import Config
from monitor.core.errors import ParseError
from producers.base import InstrumentSource
from producers.columns import ColumnStore
from producers.registry import ADAPTERS


@dataclass
class OfflineCounts:
    frames: int = 0
    events: Counter[str] = field(default_factory=Counter)  # liquidation, trade, context
    parse_errors: Counter[str] = field(default_factory=Counter)  # by reason
    duplicates: Counter[str] = field(default_factory=Counter)  # by reason
    instruments: int = 0  # installed from recorded metadata


class OfflineProducer:
    """One exchange's parsing and record building as a producer does it, fed recorded frames."""

    def __init__(self, cfg: Config, exchange: str) -> None:
        if exchange not in ADAPTERS:
            raise ValueError(f"no producer for exchange {exchange!r} (known: {sorted(ADAPTERS)})")
        self.exchange = exchange
        self.adapter = ADAPTERS[exchange](cfg.exchanges[exchange])
        self.rest_base = cfg.rest_url(exchange)
        self.store = ColumnStore(exchange, max_batch=cfg.kafka.max_batch_events,
                                 venue_view=cfg.kafka.venue_view)  # fmt: skip
        self.counts = OfflineCounts()

    def rest(self, path: str, body: bytes) -> None:
        """Install one recorded instrument-metadata answer (a refused one is a parse error)."""
        if not isinstance(self.adapter, InstrumentSource):
            return
        try:
            self.counts.instruments += self.adapter.load_instruments(self.rest_base + path, body)
        except ParseError as exc:
            self.counts.parse_errors[f"instruments_{exc.reason}"] += 1

    def frame(self, data: str | bytes, received_ns: int) -> int:
        """Parse one frame into the store; returns the rows it added."""
        c = self.counts
        c.frames += 1
        store = self.store
        store.begin()
        try:
            parsed = self.adapter.parse(data, received_ns, store)
        except ParseError as exc:
            c.parse_errors[exc.reason] += 1
            return 0
        for reason in parsed.errors:
            c.parse_errors[reason] += 1
        for reason in parsed.replayed:
            c.duplicates[reason] += 1
        liq, trd, ctx, dup, refused = store.counts()
        if liq:
            c.events["liquidation"] += liq
        if trd:
            c.events["trade"] += trd
        if ctx:
            c.events["context"] += ctx
        if dup:
            c.duplicates["producer_memory"] += dup
        if refused:  # the store has no bound offline (records are taken after every frame)
            c.parse_errors["buffer_full"] += refused
        return liq + trd + ctx - dup - refused

    def records(self) -> list[bytes]:
        """Every record the store holds, sealed and encoded in order, the store emptied."""
        out: list[bytes] = []
        store = self.store
        for symbol in list(store.records):
            head = store.seal(symbol)
            while head is not None:
                out.append(head.encode())
                head = store.done(symbol)
                if head is not None:
                    head = store.seal(symbol)
        return out
