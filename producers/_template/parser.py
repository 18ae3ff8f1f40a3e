"""The venue's frames -> normalized events. Sans-I/O: bytes in, ``Parsed`` out.

Frames (name the documentation page of each), dispatched on the exact ``channel``:

* ``{"channel": "liquidations", "data": [{"symbol", "side", "price", "qty", "ts"}]}``: ``side`` is
  the forced ORDER's side (sell = a long was liquidated), ``qty`` base coin, ``price`` the average
  fill, ``ts`` ms; the venue documents every liquidation: coverage ``complete``;
* ``{"channel": "trades", "data": [{"symbol", "side", "price", "qty", "ts", "id"}]}``: ``side`` is
  the taker's side;
* ``{"op": "subscribed"}``: control.

A bad item is skipped with its reason in ``Parsed.errors``; a bad frame raises ParseError.
"""

from __future__ import annotations

from typing import Any, Final

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import Coverage, Event, OrderSide, PriceKind, QtyUnit, Side, liquidation_id
from monitor.core.symbols import SymbolTable
from producers._template.endpoints import EXCHANGE, LIQUIDATIONS, TRADES
from producers._template.subscriptions import plan_connections
from producers.base import ConnectionPlan, Parsed
from producers.events import (
    ITEM_ERRORS,
    distinct_ids,
    item_error,
    json_object,
    new_liquidation,
    new_trade,
    qty_price,
    timestamp_ms,
)

# forced order side -> (liquidated position, order side)
_LIQUIDATED: Final = {"sell": (Side.LONG, OrderSide.SELL), "buy": (Side.SHORT, OrderSide.BUY)}
_TAKER: Final = {"buy": OrderSide.BUY, "sell": OrderSide.SELL}


class TemplateAdapter:
    """``producers.base.VenueAdapter`` for the template's venue."""

    exchange = EXCHANGE

    def __init__(self, cfg: ExchangeConfig, symbols: SymbolTable | None = None) -> None:
        self._symbols = symbols if symbols is not None else SymbolTable(cfg.max_symbols)
        self._channels = {LIQUIDATIONS: self._liquidation, TRADES: self._trade}

    def connections(self, cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
        return plan_connections(cfg, base_url)

    def heartbeat(self) -> str | None:
        return None  # the server pings (websocket protocol pings)

    def parse(self, frame: bytes | str, received_ns: int) -> Parsed:
        doc = json_object(frame)
        channel = doc.get("channel")
        if channel is None:
            if doc.get("op") == "subscribed":
                return Parsed(control=True)
            raise ParseError("unknown_event")
        handler = self._channels.get(channel) if type(channel) is str else None
        if handler is None:
            raise ParseError("unknown_channel", str(channel)[:40])
        data = doc.get("data")
        if type(data) is not list:
            raise ParseError("bad_shape", "data")
        out = Parsed()
        for item in data:
            try:
                out.events.append(handler(item, received_ns))
            except ITEM_ERRORS as exc:
                out.errors.append(item_error(exc))
        if channel == LIQUIDATIONS:
            distinct_ids(out.events)  # items carry no id of their own
        return out

    def _liquidation(self, item: dict[str, Any], received_ns: int) -> Event:
        sides = _LIQUIDATED.get(item["side"])
        if sides is None:
            raise ParseError("bad_side", str(item["side"])[:20])
        qty, price = qty_price(item["qty"], item["price"], "qty/price")
        ts = timestamp_ms(item["ts"])
        inst = self._symbols.resolve(item["symbol"])
        qty_base, usd = inst.convert(qty, price)
        return new_liquidation(
            EXCHANGE, inst.symbol, inst.venue_symbol, sides[0], sides[1], price,
            PriceKind.AVG_FILL, qty, QtyUnit.BASE, inst.contract_multiplier, qty_base, usd,
            Coverage.COMPLETE, ts, received_ns,
            liquidation_id(EXCHANGE, inst.venue_symbol, ts, sides[0].value, qty, price),
        )  # fmt: skip

    def _trade(self, item: dict[str, Any], received_ns: int) -> Event:
        taker = _TAKER.get(item["side"])
        if taker is None:
            raise ParseError("bad_side", str(item["side"])[:20])
        qty, price = qty_price(item["qty"], item["price"], "qty/price")
        ts = timestamp_ms(item["ts"])
        trade_id = item["id"]
        if type(trade_id) is not str or not trade_id:
            raise ParseError("bad_type", "id")
        inst = self._symbols.resolve(item["symbol"])
        qty_base, usd = inst.convert(qty, price)
        return new_trade(
            EXCHANGE, inst.symbol, inst.venue_symbol, taker, price, qty, QtyUnit.BASE,
            inst.contract_multiplier, qty_base, usd, None, ts, received_ns, trade_id,
        )  # fmt: skip
