"""Kafka record codec: one record carries a batch of one symbol's events, column by column.

A record value is an orjson object::

    {"v": 1, "exchange": "binance", "symbol": "BTC-USDT-PERP", "venue_symbol": "BTCUSDT",
     "liq": {"id": [...], "side": [...], ..., "recv_ns": [...]},
     "trd": {"id": [...], "taker": [...], ..., "recv_ns": [...]}}

Columns keep the per-record cost low on both ends: a producer packs every event of a symbol that
arrived within its linger window into one record (the record key is the canonical symbol, so a
symbol's records stay in order on one partition), and a consumer turns each column into a NumPy
array in one call instead of walking per-event dicts. ``Batch.events()`` rebuilds the dataclasses for
code that wants objects. Pure module.
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
        out: list[Event] = []
        x, s, vs = self.exchange, self.symbol, self.venue_symbol
        c = self.liq
        for i in range(self.n_liquidations):
            osd = c["order_side"][i]
            out.append(
                Liquidation(
                    exchange=x, symbol=s, venue_symbol=vs,
                    liquidated_side=Side(c["side"][i]),
                    order_side=OrderSide(osd) if osd is not None else None,
                    price=c["price"][i], price_kind=PriceKind(c["price_kind"][i]),
                    qty_raw=c["qty_raw"][i], qty_unit=QtyUnit(c["qty_unit"][i]),
                    contract_multiplier=c["mult"][i], qty_base=c["qty_base"][i],
                    notional_usd=c["notional_usd"][i], coverage=Coverage(c["coverage"][i]),
                    ts_ms=c["ts_ms"][i], received_ns=c["recv_ns"][i], event_id=c["id"][i],
                )
            )  # fmt: skip
        c = self.trd
        for i in range(self.n_trades):
            out.append(
                Trade(
                    exchange=x, symbol=s, venue_symbol=vs,
                    taker_side=OrderSide(c["taker"][i]), price=c["price"][i],
                    qty_raw=c["qty_raw"][i], qty_unit=QtyUnit(c["qty_unit"][i]),
                    contract_multiplier=c["mult"][i], qty_base=c["qty_base"][i],
                    notional_usd=c["notional_usd"][i], is_liquidation=c["is_liq"][i],
                    ts_ms=c["ts_ms"][i], received_ns=c["recv_ns"][i], trade_id=c["id"][i],
                )
            )  # fmt: skip
        c = self.ctx
        for i in range(self.n_contexts):
            out.append(
                MarketContext(
                    exchange=x, symbol=s, venue_symbol=vs, mark_price=c["mark"][i],
                    index_price=c["index"][i], funding_rate=c["funding"][i],
                    next_funding_ms=c["next_funding_ms"][i], open_interest_base=c["oi_base"][i],
                    open_interest_usd=c["oi_usd"][i], ts_ms=c["ts_ms"][i],
                    received_ns=c["recv_ns"][i],
                )
            )  # fmt: skip
        return out


def encode_batch(events: Sequence[Event]) -> bytes:
    """Encode events of one (exchange, symbol) as one record value."""
    if not events:
        raise CodecError("empty batch")
    first = events[0]
    liq: dict[str, list[Any]] = {k: [] for k in LIQ_COLUMNS}
    trd: dict[str, list[Any]] = {k: [] for k in TRADE_COLUMNS}
    ctx: dict[str, list[Any]] = {k: [] for k in CONTEXT_COLUMNS}
    for e in events:
        if e.exchange != first.exchange or e.symbol != first.symbol:
            raise CodecError(
                f"batch mixes {first.exchange}/{first.symbol} with {e.exchange}/{e.symbol}"
            )
        if isinstance(e, Liquidation):
            liq["id"].append(e.event_id)
            liq["side"].append(e.liquidated_side.value)
            liq["order_side"].append(e.order_side.value if e.order_side is not None else None)
            liq["price"].append(e.price)
            liq["price_kind"].append(e.price_kind.value)
            liq["qty_raw"].append(e.qty_raw)
            liq["qty_unit"].append(e.qty_unit.value)
            liq["mult"].append(e.contract_multiplier)
            liq["qty_base"].append(e.qty_base)
            liq["notional_usd"].append(e.notional_usd)
            liq["coverage"].append(e.coverage.value)
            liq["ts_ms"].append(e.ts_ms)
            liq["recv_ns"].append(e.received_ns)
        elif isinstance(e, MarketContext):
            ctx["mark"].append(e.mark_price)
            ctx["index"].append(e.index_price)
            ctx["funding"].append(e.funding_rate)
            ctx["next_funding_ms"].append(e.next_funding_ms)
            ctx["oi_base"].append(e.open_interest_base)
            ctx["oi_usd"].append(e.open_interest_usd)
            ctx["ts_ms"].append(e.ts_ms)
            ctx["recv_ns"].append(e.received_ns)
        else:
            trd["id"].append(e.trade_id)
            trd["taker"].append(e.taker_side.value)
            trd["price"].append(e.price)
            trd["qty_raw"].append(e.qty_raw)
            trd["qty_unit"].append(e.qty_unit.value)
            trd["mult"].append(e.contract_multiplier)
            trd["qty_base"].append(e.qty_base)
            trd["notional_usd"].append(e.notional_usd)
            trd["is_liq"].append(e.is_liquidation)
            trd["ts_ms"].append(e.ts_ms)
            trd["recv_ns"].append(e.received_ns)
    doc: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "exchange": first.exchange,
        "symbol": first.symbol,
        "venue_symbol": first.venue_symbol,
    }
    if liq["id"]:
        doc["liq"] = liq
    if trd["id"]:
        doc["trd"] = trd
    if ctx["ts_ms"]:
        doc["ctx"] = ctx
    return orjson.dumps(doc)


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
