"""The venue's frames -> normalized rows. Sans-I/O: bytes in, ``Parsed`` out.

Each accepted item becomes one row of the store ``parse`` is given (``producers.columns``): the
columns of its symbol's next Kafka record. Without a store, ``Parsed.events`` lists the frame's
events as objects (tests, tools).

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
from monitor.core.schema import Coverage, OrderSide, PriceKind, QtyUnit, Side
from monitor.core.symbols import SymbolTable
from producers._template.endpoints import EXCHANGE, LIQUIDATIONS, TRADES
from producers._template.subscriptions import plan_connections
from producers.base import ConnectionPlan, Parsed
from producers.columns import ColumnStore
from producers.events import ITEM_ERRORS, item_error, json_object, qty_price, timestamp_ms
from producers.framestore import Store

# Row values are the schema's strings ("long", "sell", "base", ...).
_BUY: Final = OrderSide.BUY.value
_SELL: Final = OrderSide.SELL.value
# forced order side -> (liquidated position, order side)
_LIQUIDATED: Final = {"sell": (Side.LONG.value, _SELL), "buy": (Side.SHORT.value, _BUY)}
_TAKER: Final = {"buy": _BUY, "sell": _SELL}
_BASE: Final = QtyUnit.BASE.value


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

    def parse(
        self, frame: bytes | str, received_ns: int, into: ColumnStore | None = None
    ) -> Parsed:
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
        out, rows = Parsed.start(EXCHANGE, into)  # each item becomes one row of ``rows``
        for item in data:
            try:
                handler(item, received_ns, rows)
            except ITEM_ERRORS as exc:
                out.errors.append(item_error(exc))
        return out

    def _liquidation(self, item: dict[str, Any], received_ns: int, rows: Store) -> None:
        sides = _LIQUIDATED.get(item["side"])
        if sides is None:
            raise ParseError("bad_side", str(item["side"])[:20])
        qty, price = qty_price(item["qty"], item["price"], "qty/price")
        ts = timestamp_ms(item["ts"])
        inst = self._symbols.resolve(item["symbol"])
        qty_base, usd = inst.convert(qty, price)
        # validate everything first, then add the row; the id parts (monitor.core.schema
        # liquidation_id) are ranked: the items carry no id of their own
        vs = inst.venue_symbol
        rows.liquidation(
            inst.symbol, vs, sides[0], sides[1], price, PriceKind.AVG_FILL.value, qty, _BASE,
            inst.contract_multiplier, qty_base, usd, Coverage.COMPLETE.value, ts, received_ns,
            (vs, ts, sides[0], qty, price), True,
        )  # fmt: skip

    def _trade(self, item: dict[str, Any], received_ns: int, rows: Store) -> None:
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
        rows.trade(
            inst.symbol, inst.venue_symbol, trade_id, taker, price, qty, _BASE,
            inst.contract_multiplier, qty_base, usd, None, ts, received_ns,
        )  # fmt: skip
