"""Kafka record codec: one record carries a batch of one symbol's events, column by column.

A record value is an orjson object::

    {"v": 1, "exchange": "binance", "symbol": "BTC-USDT-PERP", "venue_symbol": "BTCUSDT",
     "liq": {"id": [...], "side": [...], ..., "recv_ns": [...]},
     "trd": {"id": [...], "taker": [...], ..., "recv_ns": [...]}}

Columns keep the per-record cost low on both ends. A producer's parsers append each event's fields
straight into the column lists of a ``Columns`` (one symbol's next record) and ``Columns.encode``
writes them as they are; a consumer turns each column into a NumPy array in one call instead of
walking per-event dicts. The record key is the canonical symbol, so a symbol's records stay in
order on one partition. ``Batch.events()`` and ``Columns.event`` rebuild the dataclasses (one
function per kind, ``liquidation_row`` / ``trade_row`` / ``context_row``) for code that wants
objects. ``encode_batch(events)`` fills a ``Columns`` from objects. Pure module.

Liquidation ids: a producer's ``Columns`` may hold, in the ``id`` column, the parts an id is made
of instead of the id (a tuple ``(venue_symbol, ts_ms, side text, qty, price)``, plus the rank for
the k-th identical item of a frame: ``monitor.core.schema.liquidation_id``); ``encode`` turns them
into the id there, so each id is hashed once, when its record is written, and the producer's
duplicate filter keys on the tuple without hashing. The wire format is unchanged (v1: ids are
strings).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from monitor.core.errors import CodecError
from monitor.core.schema import (
    SCHEMA_VERSION,
    Coverage,
    Event,
    Liquidation,
    MarketContext,
    OrderSide,
    PriceKind,
    QtyUnit,
    Side,
    Trade,
    liquidation_id,
    ranked_id,
)

LIQ_COLUMNS: Final = (
    "id", "side", "order_side", "price", "price_kind", "qty_raw", "qty_unit", "mult",
    "qty_base", "notional_usd", "coverage", "ts_ms", "recv_ns",
)  # fmt: skip
CONTEXT_COLUMNS: Final = (
    "mark", "index", "funding", "next_funding_ms", "oi_base", "oi_usd", "ts_ms", "recv_ns",
)  # fmt: skip
TRADE_COLUMNS: Final = (
    "id", "taker", "price", "qty_raw", "qty_unit", "mult", "qty_base", "notional_usd",
    "is_liq", "ts_ms", "recv_ns",
)  # fmt: skip
LIQ, TRD, CTX = 0, 1, 2  # the kinds of rows, in record order
_dumps = orjson.dumps


# ---- one row of columns -> one event (the only place the dataclasses are rebuilt) -------------

_SIDE: Final = {m.value: m for m in Side}
_ORDER_SIDE: Final[dict[Any, OrderSide | None]] = {m.value: m for m in OrderSide} | {None: None}
_PRICE_KIND: Final = {m.value: m for m in PriceKind}
_QTY_UNIT: Final = {m.value: m for m in QtyUnit}
_COVERAGE: Final = {m.value: m for m in Coverage}


def _enum(table: dict[Any, Any], value: Any, kind: type) -> Any:
    member = table.get(value, table)
    return kind(value) if member is table else member  # kind(value): the usual ValueError


def liquidation_row(
    x: str, s: str, vs: str, c: Sequence[list[Any]], i: int, make: Any = Liquidation
) -> Liquidation:
    """Row ``i`` of liquidation columns ``c`` (``LIQ_COLUMNS`` order) as a ``Liquidation``, built
    by ``make`` (the dataclass, or a constructor taking the same fields in order)."""
    return make(  # type: ignore[no-any-return]
        x, s, vs, _enum(_SIDE, c[1][i], Side), _enum(_ORDER_SIDE, c[2][i], OrderSide), c[3][i],
        _enum(_PRICE_KIND, c[4][i], PriceKind), c[5][i], _enum(_QTY_UNIT, c[6][i], QtyUnit),
        c[7][i], c[8][i], c[9][i], _enum(_COVERAGE, c[10][i], Coverage), c[11][i], c[12][i],
        event_id(x, c[0][i]),
    )  # fmt: skip


def trade_row(x: str, s: str, vs: str, c: Sequence[list[Any]], i: int, make: Any = Trade) -> Trade:
    """Row ``i`` of trade columns ``c`` (``TRADE_COLUMNS`` order) as a ``Trade``."""
    return make(  # type: ignore[no-any-return]
        x, s, vs, _enum(_ORDER_SIDE, c[1][i], OrderSide), c[2][i], c[3][i],
        _enum(_QTY_UNIT, c[4][i], QtyUnit), c[5][i], c[6][i], c[7][i], c[8][i], c[9][i],
        c[10][i], c[0][i],
    )  # fmt: skip


def context_row(
    x: str, s: str, vs: str, c: Sequence[list[Any]], i: int, make: Any = MarketContext
) -> MarketContext:
    """Row ``i`` of market-context columns ``c`` (``CONTEXT_COLUMNS`` order)."""
    return make(  # type: ignore[no-any-return]
        x, s, vs, c[0][i], c[1][i], c[2][i], c[3][i], c[4][i], c[5][i], c[6][i], c[7][i]
    )


ROWS: Final = (liquidation_row, trade_row, context_row)


def event_id(exchange: str, key: Any) -> Any:
    """A liquidation id column entry as the id: an id is kept, id parts (a tuple, see the module
    docstring) are hashed with ``liquidation_id`` (and ``ranked_id`` for a rank)."""
    if type(key) is not tuple:
        return key
    base = liquidation_id(exchange, key[0], key[1], key[2], key[3], key[4])
    return ranked_id(base, key[5]) if len(key) > 5 else base


# ---- building a record: one symbol's columns -------------------------------------------------


class Columns:
    """One symbol's next record, as column lists that producers append to.

    ``liq``, ``trd`` and ``ctx`` are tuples of lists in ``LIQ_COLUMNS`` / ``TRADE_COLUMNS`` /
    ``CONTEXT_COLUMNS`` order, created with the first row of their kind (``group``); every list of
    a kind has the same length. ``n`` counts the rows of all kinds (the producer keeps it: a record
    holds at most ``kafka.max_batch_events``)."""

    __slots__ = ("ctx", "exchange", "liq", "n", "symbol", "trd", "venue_symbol")

    def __init__(self, exchange: str, symbol: str, venue_symbol: str) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.venue_symbol = venue_symbol
        self.liq: tuple[list[Any], ...] | None = None
        self.trd: tuple[list[Any], ...] | None = None
        self.ctx: tuple[list[Any], ...] | None = None
        self.n = 0

    def group(self, kind: int) -> tuple[list[Any], ...]:
        """The column lists of ``kind`` (``LIQ``, ``TRD``, ``CTX``), created when missing."""
        if kind == TRD:
            if self.trd is None:
                self.trd = tuple([] for _ in TRADE_COLUMNS)
            return self.trd
        if kind == LIQ:
            if self.liq is None:
                self.liq = tuple([] for _ in LIQ_COLUMNS)
            return self.liq
        if self.ctx is None:
            self.ctx = tuple([] for _ in CONTEXT_COLUMNS)
        return self.ctx

    def counts(self) -> tuple[int, int, int]:
        """(liquidations, trades, contexts)."""
        return (
            0 if self.liq is None else len(self.liq[0]),
            0 if self.trd is None else len(self.trd[0]),
            0 if self.ctx is None else len(self.ctx[0]),
        )

    def append_event(self, e: Event) -> None:
        """Add one event object as a row (the slow path: REST polls, tools, tests)."""
        if e.exchange != self.exchange or e.symbol != self.symbol:
            raise CodecError(
                f"batch mixes {self.exchange}/{self.symbol} with {e.exchange}/{e.symbol}"
            )
        if type(e) is Liquidation:
            osd = e.order_side
            row: tuple[Any, ...] = (
                e.event_id, e.liquidated_side.value, None if osd is None else osd.value, e.price,
                e.price_kind.value, e.qty_raw, e.qty_unit.value, e.contract_multiplier,
                e.qty_base, e.notional_usd, e.coverage.value, e.ts_ms, e.received_ns,
            )  # fmt: skip
            kind = LIQ
        elif type(e) is Trade:
            row = (
                e.trade_id, e.taker_side.value, e.price, e.qty_raw, e.qty_unit.value,
                e.contract_multiplier, e.qty_base, e.notional_usd, e.is_liquidation, e.ts_ms,
                e.received_ns,
            )  # fmt: skip
            kind = TRD
        elif type(e) is MarketContext:
            row = (
                e.mark_price, e.index_price, e.funding_rate, e.next_funding_ms,
                e.open_interest_base, e.open_interest_usd, e.ts_ms, e.received_ns,
            )  # fmt: skip
            kind = CTX
        else:
            raise CodecError(f"not an event: {type(e).__name__}")
        for col, value in zip(self.group(kind), row, strict=True):
            col.append(value)
        self.n += 1

    def event(self, kind: int, i: int, make: Any = None) -> Event:
        """Row ``i`` of ``kind`` as an event object (the same functions as ``Batch.events``;
        ``make``: another constructor of the kind's dataclass, taking its fields in order)."""
        cols = (self.liq, self.trd, self.ctx)[kind]
        assert cols is not None
        row = ROWS[kind]
        x, s, vs = self.exchange, self.symbol, self.venue_symbol
        return row(x, s, vs, cols, i) if make is None else row(x, s, vs, cols, i, make)

    def split(self, n: int) -> tuple[Columns, Columns]:
        """Two records holding the rows of this one, about ``n`` in the first: each kind is cut
        in the same proportion (a record found too large is sent as smaller ones)."""
        first = Columns(self.exchange, self.symbol, self.venue_symbol)
        rest = Columns(self.exchange, self.symbol, self.venue_symbol)
        share = n / self.n if self.n else 0.0
        for kind, cols in enumerate((self.liq, self.trd, self.ctx)):
            if cols is None:
                continue
            rows = len(cols[0])
            cut = min(rows, round(rows * share))
            for target, part in ((first, slice(0, cut)), (rest, slice(cut, rows))):
                if part.stop > part.start:
                    for col, src in zip(target.group(kind), cols, strict=True):
                        col.extend(src[part])
                    target.n += part.stop - part.start
        return first, rest

    def encode(self) -> bytes:
        """The record value (``CodecError`` if empty). Id parts become ids here."""
        if not self.n:
            raise CodecError("empty batch")
        doc: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "exchange": self.exchange,
            "symbol": self.symbol,
            "venue_symbol": self.venue_symbol,
        }
        if self.liq is not None and self.liq[0]:
            x = self.exchange
            ids = [k if type(k) is str else event_id(x, k) for k in self.liq[0]]
            doc["liq"] = dict(zip(LIQ_COLUMNS, (ids, *self.liq[1:]), strict=True))
        if self.trd is not None and self.trd[0]:
            doc["trd"] = dict(zip(TRADE_COLUMNS, self.trd, strict=True))
        if self.ctx is not None and self.ctx[0]:
            doc["ctx"] = dict(zip(CONTEXT_COLUMNS, self.ctx, strict=True))
        return _dumps(doc)


# ---- decoded records -------------------------------------------------------------------------


@dataclass(slots=True)
class Batch:
    """A decoded record: header plus column lists (``liq`` / ``trd``, possibly empty)."""

    exchange: str
    symbol: str
    venue_symbol: str
    liq: dict[str, list[Any]] = field(default_factory=dict)
    trd: dict[str, list[Any]] = field(default_factory=dict)
    ctx: dict[str, list[Any]] = field(default_factory=dict)  # market context (optional group)

    @property
    def n_liquidations(self) -> int:
        return len(self.liq["id"]) if self.liq else 0

    @property
    def n_trades(self) -> int:
        return len(self.trd["id"]) if self.trd else 0

    @property
    def n_contexts(self) -> int:
        return len(self.ctx["ts_ms"]) if self.ctx else 0

    def events(self) -> list[Event]:
        """Liquidations, then trades, then market contexts, each in record order."""
        out: list[Event] = []
        x, s, vs = self.exchange, self.symbol, self.venue_symbol
        for make, cols, names, n in (
            (liquidation_row, self.liq, LIQ_COLUMNS, self.n_liquidations),
            (trade_row, self.trd, TRADE_COLUMNS, self.n_trades),
            (context_row, self.ctx, CONTEXT_COLUMNS, self.n_contexts),
        ):
            if n:
                c = tuple(cols[k] for k in names)
                out.extend(make(x, s, vs, c, i) for i in range(n))
        return out


def encode_batch(events: Sequence[Event]) -> bytes:
    """Encode events of one (exchange, symbol) as one record value."""
    if not events:
        raise CodecError("empty batch")
    first = events[0]
    cols = Columns(first.exchange, first.symbol, first.venue_symbol)
    for e in events:
        cols.append_event(e)
    return cols.encode()


def _columns(doc: dict[str, Any], key: str, names: Iterable[str]) -> dict[str, list[Any]]:
    cols = doc.get(key)
    if cols is None:
        return {}
    if not isinstance(cols, dict):
        raise CodecError(f"{key!r} is not an object")
    n = -1
    for name in names:
        col = cols.get(name)
        if not isinstance(col, list):
            raise CodecError(f"column {key}.{name} missing or not a list")
        if n < 0:
            n = len(col)
        elif len(col) != n:
            raise CodecError(f"column {key}.{name} has {len(col)} rows, expected {n}")
    return cols


def decode_batch(value: bytes) -> Batch:
    """Decode one record value; raises CodecError on anything that is not a valid v1 batch."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CodecError("record is not a JSON object")
    if doc.get("v") != SCHEMA_VERSION:
        raise CodecError(f"unsupported schema version {doc.get('v')!r}")
    try:
        exchange, symbol, venue_symbol = doc["exchange"], doc["symbol"], doc["venue_symbol"]
    except KeyError as exc:
        raise CodecError(f"missing header field {exc}") from None
    if not (
        isinstance(exchange, str) and isinstance(symbol, str) and isinstance(venue_symbol, str)
    ):
        raise CodecError("header fields must be strings")
    return Batch(
        exchange=exchange,
        symbol=symbol,
        venue_symbol=venue_symbol,
        liq=_columns(doc, "liq", LIQ_COLUMNS),
        trd=_columns(doc, "trd", TRADE_COLUMNS),
        ctx=_columns(doc, "ctx", CONTEXT_COLUMNS),
    )
