"""Where parsers put what they normalize: per-symbol record columns, not event objects. Pure module.

A parser appends each item it accepts as one row, field by field, into the column lists of its
symbol's next Kafka record (``monitor.core.codec.Columns``): ``trade``, ``liquidation`` and
``context``. Each number is converted once, by the parser; nothing else is built per event on
this path. Two kinds of store take the rows:

* ``ColumnStore`` (the producer): one per exchange, shared by its sessions and owned by the
  publisher, which seals a symbol's oldest record, encodes and sends it. With ``venue_view``
  (``kafka.venue_view``), every liquidation accepted is also appended to the records of the
  venue-wide symbol ``*`` (``monitor.core.symbols.VENUE_SYMBOL``, same id), which one consumer
  of the group then holds whole. A record holds one venue
  symbol's rows (its header names it), at most ``max_batch`` of them. The store is the producer's
  duplicate filter: a row whose key was seen recently (a trade's ``(venue_symbol, trade_id)``, a
  liquidation's id parts, see ``monitor.core.codec``: tuples, hashed by the interpreter, no digest)
  is counted and not appended. Rows beyond ``max_buffered`` are refused and counted.
* ``producers.framestore.FrameStore`` (a standalone ``adapter.parse(frame, received_ns)``): the
  rows of one frame, in item order, for tests and tools, as event objects on demand.

Per frame (``begin``) the store counts the rows offered by kind, the duplicates and
the refused rows, and ranks identical liquidations of venues without ids (``ranked=True``): the
k-th item of a frame whose id parts repeat an earlier one's gets the rank ``k``
(``monitor.core.schema.liquidation_id``), so it stays distinct while a replayed frame gets the
same ids again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any, Final

from monitor.core.codec import CTX, LIQ, TRD, Columns
from monitor.core.schema import Event, Liquidation, MarketContext
from monitor.core.symbols import VENUE_SYMBOL

# A context row without its receive time: symbol, venue symbol, mark, index, funding rate, next
# funding ms, open interest base and USD, event ms (``ColumnStore.context``'s arguments).
ContextRow = tuple[
    str, str, float | None, float | None, float | None, int | None, float | None, float | None, int
]
DEDUP_CAPACITY: Final = 50_000  # keys remembered per exchange
_CLOSED: Final = 2**62  # room taken away by ``close``: no acknowledgement gives it back


class Deduplicator:
    """Bounded LRU set of event keys, for events handled as objects (a session whose sink takes
    event lists, ``producers.offline``, tests): a liquidation's ``event_id``; a trade's
    ``venue_symbol#trade_id`` (Binance aggregate ids are per symbol). ``seen(key)``: True for a
    repeat (refreshed), else the key is remembered, the oldest forgotten past ``capacity``. (The
    producer's column path filters in ``ColumnStore``.)"""

    def __init__(self, capacity: int = DEDUP_CAPACITY) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be > 0")
        self.capacity = capacity
        self._seen: OrderedDict[Any, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, key: Any) -> bool:
        seen = self._seen
        if key in seen:
            seen.move_to_end(key)
            return True
        seen[key] = None
        if len(seen) > self.capacity:
            seen.popitem(last=False)
        return False

    def fresh(self, events: Sequence[Event]) -> tuple[list[Event], int, int]:
        """(new events, duplicate liquidations, duplicate trades)."""
        out: list[Event] = []
        dup_liq = dup_trd = 0
        seen = self.seen
        for e in events:
            if type(e) is Liquidation:
                if seen(e.event_id):
                    dup_liq += 1
                    continue
            elif type(e) is not MarketContext and seen(f"{e.venue_symbol}#{e.trade_id}"):  # type: ignore[union-attr]
                dup_trd += 1  # (a market context is a state, not an occurrence: never a repeat)
                continue
            out.append(e)
        return out, dup_liq, dup_trd


class ColumnStore:
    """One exchange's unsent rows, per canonical symbol, in records of at most ``max_batch`` rows.

    ``records[symbol]`` holds the symbol's records in order; a venue symbol's rows go to its open
    record until that is full or ``seal``ed (the publisher seals a record before sending it, so a
    record in flight never changes). ``on_record(symbol)`` is called when a symbol gets a new
    record (the publisher wakes its sender). ``room`` is how many more rows the store takes
    (``max_buffered`` minus rows held); ``done`` gives room back once a record is acknowledged.

    The duplicate filter: a dict of the keys of recent rows (insertion ordered; a repeat moves
    to the newest end), holding at least the last ``capacity`` keys: past twice as many, the
    older ones are forgotten in one pass when the publisher seals a record (amortised O(1) a key;
    the rows a sender has not yet taken are still remembered).
    ``result`` is the ``Parsed`` the adapters reuse for this store's frames."""

    def __init__(
        self,
        exchange: str,
        *,
        max_batch: int = 500,
        max_buffered: int = 1_000_000,
        capacity: int = DEDUP_CAPACITY,
        on_record: Callable[[str], object] | None = None,
        venue_view: bool = False,
    ) -> None:
        if max_batch <= 0 or max_buffered < 0 or capacity <= 0:
            raise ValueError("max_batch and capacity must be > 0, max_buffered >= 0")
        self.exchange = exchange
        self.venue_view = venue_view
        self.max_batch = max_batch
        self.max_buffered = max_buffered
        self.room = max_buffered
        self.closed = False
        self.capacity = capacity
        self.seen: dict[Any, None] = {}  # the duplicate filter's keys, oldest first
        self.records: dict[str, list[Columns]] = {}
        self._open: dict[str, Columns] = {}  # venue symbol -> the record taking its rows
        self._on_record = on_record
        self._tvs: str | None = None  # the venue symbol of the cached trade record
        self._trec: Columns | None = None
        self._ranks: dict[tuple[Any, ...], int] = {}
        self.result: Any = None  # the Parsed reused for this store's frames (producers.base)
        self.frame = 0  # frames begun
        self.liquidations = self.trades = self.contexts = 0  # rows offered in this frame
        self.duplicates = self.refused = 0  # of them, dropped in this frame

    # ---- per frame ---------------------------------------------------------------------------

    def begin(self) -> None:
        """Start a frame: its counts and its ranking of identical liquidations start afresh."""
        self.frame += 1
        self.liquidations = self.trades = self.contexts = self.duplicates = self.refused = 0
        if self._ranks:
            self._ranks = {}

    def finish(self) -> None:
        """Nothing left to do at a frame's end: rows are filtered and counted as they come."""

    def counts(self) -> tuple[int, int, int, int, int]:
        """This frame's (liquidations, trades, contexts, duplicates, refused)."""
        return self.liquidations, self.trades, self.contexts, self.duplicates, self.refused

    # ---- rows (the parsers' hot path) --------------------------------------------------------

    def trade(
        self, symbol: str, venue_symbol: str, trade_id: str, taker: str, price: float,
        qty_raw: float, unit: str, mult: float, qty_base: float, usd: float,
        is_liq: bool | None, ts_ms: int, received_ns: int,
    ) -> None:  # fmt: skip
        """One trade; side and unit as their schema values ("buy", "base", ...)."""
        self.trades += 1
        key = (venue_symbol, trade_id)
        seen = self.seen
        if key in seen:
            self._repeat(key)
            return
        seen[key] = None
        room = self.room
        if room <= 0:
            self.refused += 1
            return
        self.room = room - 1
        cols = self._trec if venue_symbol == self._tvs else None
        if cols is None or cols.n >= self.max_batch:
            cols = self._trec = self._record(symbol, venue_symbol)
            self._tvs = venue_symbol
        cols.n += 1
        c = cols.trd
        if c is None:
            c = cols.group(TRD)
        c[0].append(trade_id)
        c[1].append(taker)
        c[2].append(price)
        c[3].append(qty_raw)
        c[4].append(unit)
        c[5].append(mult)
        c[6].append(qty_base)
        c[7].append(usd)
        c[8].append(is_liq)
        c[9].append(ts_ms)
        c[10].append(received_ns)

    def liquidation(
        self, symbol: str, venue_symbol: str, side: str, order_side: str | None, price: float,
        price_kind: str, qty_raw: float, unit: str, mult: float, qty_base: float, usd: float,
        coverage: str, ts_ms: int, received_ns: int, key: tuple[Any, ...], ranked: bool,
    ) -> None:  # fmt: skip
        """One liquidation; ``key`` its id parts ``(venue_symbol, ts_ms, side text, qty,
        price)`` (``monitor.core.schema.liquidation_id``); ``ranked``: the venue gives no id, so
        identical items of one frame are told apart by rank."""
        self.liquidations += 1
        if ranked:
            ranks = self._ranks
            k = ranks.get(key, 0)
            ranks[key] = k + 1
            if k:
                key = (*key, k)
        seen = self.seen
        if key in seen:
            self._repeat(key)
            return
        seen[key] = None
        room = self.room
        if room <= 0:
            self.refused += 1
            return
        self.room = room - 1
        cols = self._open.get(venue_symbol)
        if cols is None or cols.n >= self.max_batch:
            cols = self._record(symbol, venue_symbol)
        cols.n += 1
        c = cols.liq
        if c is None:
            c = cols.group(LIQ)
        c[0].append(key)
        c[1].append(side)
        c[2].append(order_side)
        c[3].append(price)
        c[4].append(price_kind)
        c[5].append(qty_raw)
        c[6].append(unit)
        c[7].append(mult)
        c[8].append(qty_base)
        c[9].append(usd)
        c[10].append(coverage)
        c[11].append(ts_ms)
        c[12].append(received_ns)
        if self.venue_view:
            self._row(VENUE_SYMBOL, VENUE_SYMBOL, LIQ,
                      (key, side, order_side, price, price_kind, qty_raw, unit, mult, qty_base,
                       usd, coverage, ts_ms, received_ns))  # fmt: skip

    def context(
        self, symbol: str, venue_symbol: str, mark: float | None, index: float | None,
        funding: float | None, next_funding_ms: int | None, oi_base: float | None,
        oi_usd: float | None, ts_ms: int, received_ns: int,
    ) -> None:  # fmt: skip
        """One market-context update (a state: never a duplicate)."""
        self.contexts += 1
        self._row(symbol, venue_symbol, CTX,
                  (mark, index, funding, next_funding_ms, oi_base, oi_usd, ts_ms, received_ns))  # fmt: skip

    def _repeat(self, key: Any) -> None:
        """A key seen before: counted, and moved to the newest end of the filter."""
        self.duplicates += 1
        del self.seen[key]
        self.seen[key] = None

    def _row(self, symbol: str, venue_symbol: str, kind: int, row: tuple[Any, ...]) -> None:
        if self.room <= 0:
            self.refused += 1
            return
        self.room -= 1
        cols = self._open.get(venue_symbol)
        if cols is None or cols.n >= self.max_batch:
            cols = self._record(symbol, venue_symbol)
        cols.n += 1
        for col, value in zip(cols.group(kind), row, strict=True):
            col.append(value)

    def _record(self, symbol: str, venue_symbol: str) -> Columns:
        """The venue symbol's open record with room for a row (a new one when full or none)."""
        cols = self._open.get(venue_symbol)
        if cols is not None and cols.n < self.max_batch:
            return cols
        cols = self._open[venue_symbol] = Columns(self.exchange, symbol, venue_symbol)
        queue = self.records.get(symbol)
        if queue is None:
            self.records[symbol] = [cols]
        else:
            queue.append(cols)
        if self._on_record is not None:
            self._on_record(symbol)
        return cols

    # ---- objects (REST polls, tools, tests) --------------------------------------------------

    def add_events(self, events: Iterable[Event]) -> tuple[int, int]:
        """Append event objects as rows, without the duplicate filter (the caller filtered);
        (accepted, refused)."""
        accepted = refused = 0
        for e in events:
            if self.room <= 0:
                refused += 1
                continue
            self.room -= 1
            cols = self._record(e.symbol, e.venue_symbol)
            cols.append_event(e)
            accepted += 1
        return accepted, refused

    # ---- the publisher's side ----------------------------------------------------------------

    def seal(self, symbol: str) -> Columns | None:
        """The symbol's oldest record, closed to new rows (they start the next one); None if the
        symbol holds no rows."""
        seen = self.seen  # the filter is trimmed here, off the parsers' path
        if len(seen) > 2 * self.capacity:
            self.seen = dict(islice(seen.items(), len(seen) - self.capacity, None))
        queue = self.records.get(symbol)
        if not queue:
            return None
        head = queue[0]
        if self._open.get(head.venue_symbol) is head:
            del self._open[head.venue_symbol]
        if self._trec is head:
            self._tvs = self._trec = None
        return head

    def done(self, symbol: str) -> Columns | None:
        """Drop the symbol's oldest record (acknowledged); return the next one, if any."""
        queue = self.records[symbol]
        head = queue.pop(0)
        self.room += head.n
        if not queue:
            del self.records[symbol]
            return None
        return queue[0]

    def resize_head(self, symbol: str, n: int) -> None:
        """Split the symbol's sealed oldest record so that it holds about ``n`` rows."""
        queue = self.records[symbol]
        first, rest = queue[0].split(n)
        queue[0:1] = [r for r in (first, rest) if r.n]

    @property
    def held(self) -> int:
        """Rows in the store (sealed and open): accepted, not yet acknowledged."""
        return self.max_buffered - self.room - (_CLOSED if self.closed else 0)

    def close(self) -> None:
        """Refuse every row from now on (the publisher stopped); held rows stay until done."""
        if not self.closed:
            self.closed = True
            self.room -= _CLOSED
