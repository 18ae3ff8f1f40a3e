"""The rows of one frame, for a standalone ``adapter.parse(frame, received_ns)`` (tests, tools).

The same row methods as ``producers.columns.ColumnStore`` (the same parser code writes into
either), without the duplicate filter and without limits: the parse result is the venue's items
as they came. ``events()`` gives the frame's events as objects in the order the parser produced
them, built by the codec's row functions (``monitor.core.codec``) with the fast constructors of
``producers.events``. Pure module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monitor.core.codec import CTX, LIQ, TRD, Columns
from monitor.core.schema import Event
from producers.columns import ColumnStore
from producers.events import new_liquidation, new_trade


class FrameStore:
    """The rows of one frame, in item order, for a standalone ``parse`` (tests, tools).

    Same row methods as ``ColumnStore`` (the same parser code writes into either), no duplicate
    filter and no limits; ``events()`` is the frame's events in the order the parser produced
    them, built by the codec's row functions."""

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self._cols: dict[str, Columns] = {}
        self._order: list[tuple[Columns, int, int]] = []  # (record, kind, row) per row
        self._ranks: dict[tuple[Any, ...], int] = {}
        self.frame = 1
        self.liquidations = self.trades = self.contexts = 0
        self.duplicates = self.refused = 0

    def counts(self) -> tuple[int, int, int, int, int]:
        return self.liquidations, self.trades, self.contexts, self.duplicates, self.refused

    def begin(self) -> None:
        """A frame store holds one frame: nothing to reset."""

    def finish(self) -> None:
        """Nothing to filter: the frame's items as the venue sent them."""

    def _append(self, symbol: str, venue_symbol: str, kind: int, row: Sequence[Any]) -> None:
        cols = self._cols.get(symbol)
        if cols is None:
            cols = self._cols[symbol] = Columns(self.exchange, symbol, venue_symbol)
        group = cols.group(kind)
        self._order.append((cols, kind, len(group[0])))
        for col, value in zip(group, row, strict=True):
            col.append(value)
        cols.n += 1

    def trade(
        self, symbol: str, venue_symbol: str, trade_id: str, taker: str, price: float,
        qty_raw: float, unit: str, mult: float, qty_base: float, usd: float,
        is_liq: bool | None, ts_ms: int, received_ns: int,
    ) -> None:  # fmt: skip
        self.trades += 1
        self._append(symbol, venue_symbol, TRD, (trade_id, taker, price, qty_raw, unit, mult,
                     qty_base, usd, is_liq, ts_ms, received_ns))  # fmt: skip

    def liquidation(
        self, symbol: str, venue_symbol: str, side: str, order_side: str | None, price: float,
        price_kind: str, qty_raw: float, unit: str, mult: float, qty_base: float, usd: float,
        coverage: str, ts_ms: int, received_ns: int, key: tuple[Any, ...], ranked: bool,
    ) -> None:  # fmt: skip
        self.liquidations += 1
        if ranked:
            k = self._ranks.get(key, 0)
            self._ranks[key] = k + 1
            if k:
                key = (*key, k)
        self._append(symbol, venue_symbol, LIQ, (key, side, order_side, price, price_kind,
                     qty_raw, unit, mult, qty_base, usd, coverage, ts_ms, received_ns))  # fmt: skip

    def context(
        self, symbol: str, venue_symbol: str, mark: float | None, index: float | None,
        funding: float | None, next_funding_ms: int | None, oi_base: float | None,
        oi_usd: float | None, ts_ms: int, received_ns: int,
    ) -> None:  # fmt: skip
        self.contexts += 1
        self._append(symbol, venue_symbol, CTX,
                     (mark, index, funding, next_funding_ms, oi_base, oi_usd, ts_ms, received_ns))  # fmt: skip

    def events(self) -> list[Event]:
        make = (new_liquidation, new_trade, None)  # the fast constructors (producers.events)
        return [cols.event(kind, i, make[kind]) for cols, kind, i in self._order]

    def records(self) -> list[Columns]:
        """The frame's rows as records, one per symbol (first appearance order)."""
        return list(self._cols.values())


Store = ColumnStore | FrameStore
