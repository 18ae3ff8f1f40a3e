"""Bybit v5 linear frames -> normalized events. Sans-I/O: bytes in, ``Parsed`` out.

Frames handled (exchange-feeds.md s2), dispatched on exact keys:

* ``{"topic": "<channel>.<SYMBOL>", "data": [...]}``; the channel (text before the first dot) is
  matched exactly against ``allLiquidation`` and ``publicTrade`` and the answer cached per topic;
* ``{"op": "subscribe", "success": true|false, "ret_msg": ...}``: an ack is a control frame, a
  refusal raises ParseError ``subscribe_failed`` (the session counts and logs it);
* ``{"op": "ping"|"pong", ...}``: heartbeat replies, control frames.

Liquidations: ``S`` is the side of the liquidated POSITION ("When you receive a Buy update, this
means that a long position has been liquidated"), the reverse of Binance's order side; the order
side is not given (``order_side=None``). ``p`` is the bankruptcy price; the feed carries every
liquidation, batched every 500 ms: coverage ``aggregated``. Trades: ``S`` is the taker side and
``i`` the trade id. Items of one frame are independent: a bad item is skipped, its reason listed in
``Parsed.errors``.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from monitor.config import ExchangeConfig
from monitor.errors import ParseError
from monitor.schema import Coverage, Event, OrderSide, PriceKind, QtyUnit, Side, liquidation_id
from monitor.symbols import SymbolTable
from producers.base import ConnectionPlan, Parsed
from producers.bybit.endpoints import ALL_LIQUIDATION, EXCHANGE, PING_FRAME, PUBLIC_TRADE
from producers.bybit.subscriptions import plan_connections
from producers.events import new_liquidation, new_trade, positive, qty_price, timestamp_ms

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError

# Position side -> (liquidated side, id text). "Buy" = a LONG was liquidated.
_POSITION_SIDES: Final = {
    "Buy": (Side.LONG, Side.LONG.value),
    "Sell": (Side.SHORT, Side.SHORT.value),
}
_TAKER_SIDES: Final = {"Buy": OrderSide.BUY, "Sell": OrderSide.SELL}
_BASE: Final = QtyUnit.BASE
_BANKRUPTCY: Final = PriceKind.BANKRUPTCY
_AGGREGATED: Final = Coverage.AGGREGATED
_CONTROL_OPS: Final = frozenset({"ping", "pong"})
_SUBSCRIBE_OPS: Final = frozenset({"subscribe", "unsubscribe"})
_TOPIC_CACHE_MAX: Final = 8192


class BybitAdapter:
    """Venue adapter for Bybit v5 public linear (see ``producers.base.VenueAdapter``)."""

    exchange = EXCHANGE

    def __init__(self, cfg: ExchangeConfig, symbols: SymbolTable | None = None) -> None:
        self._symbols = symbols if symbols is not None else SymbolTable(cfg.max_symbols)
        self._instruments: dict[str, tuple[str, float]] = {}  # venue -> (canonical, multiplier)
        self._channels: dict[str, Any] = {
            ALL_LIQUIDATION: self._liquidation,
            PUBLIC_TRADE: self._trade,
        }
        self._topics: dict[str, Any] = {}  # full topic -> item handler

    # ---- plan --------------------------------------------------------------------------------

    def connections(self, cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
        return plan_connections(cfg, base_url)

    def heartbeat(self) -> str | None:
        return PING_FRAME

    # ---- parse -------------------------------------------------------------------------------

    def parse(self, frame: bytes | str, received_ns: int) -> Parsed:
        try:
            doc = _loads(frame)
        except _JSONDecodeError:
            raise ParseError("bad_json") from None
        if type(doc) is not dict:
            raise ParseError("bad_shape", type(doc).__name__)
        try:
            topic = doc.get("topic")
            if topic is not None:
                handler = self._topics.get(topic)
                if handler is None:
                    handler = self._topic_handler(topic)
                data = doc["data"]
                if type(data) is not list:
                    raise ParseError("bad_shape", "data")
                return self._items(handler, data, received_ns)
            if "op" in doc:
                return self._op(doc)
            raise ParseError("unknown_event")
        except KeyError as exc:
            raise ParseError("missing_field", str(exc)) from None
        except (TypeError, AttributeError, ValueError) as exc:
            raise ParseError("bad_shape", type(exc).__name__) from None

    def _topic_handler(self, topic: object) -> Any:
        if type(topic) is not str:
            raise ParseError("bad_type", "topic")
        channel, _, symbol = topic.partition(".")
        handler = self._channels.get(channel)
        if handler is None or not symbol:
            raise ParseError("unknown_topic", topic[:60])
        if len(self._topics) < _TOPIC_CACHE_MAX:
            self._topics[topic] = handler
        return handler

    @staticmethod
    def _items(handler: Any, data: list[Any], received_ns: int) -> Parsed:
        out = Parsed()
        events = out.events
        for item in data:
            try:
                events.append(handler(item, received_ns))
            except ParseError as exc:
                out.errors.append(exc.reason)
            except KeyError:
                out.errors.append("missing_field")
            except (TypeError, AttributeError, ValueError):
                out.errors.append("bad_shape")
        return out

    @staticmethod
    def _op(doc: dict[str, Any]) -> Parsed:
        op = doc["op"]
        if op in _SUBSCRIBE_OPS:
            if doc.get("success") is True:
                return Parsed(control=True)
            raise ParseError("subscribe_failed", str(doc.get("ret_msg"))[:200])
        if op in _CONTROL_OPS:  # {"success":true,"ret_msg":"pong","op":"ping"} or op "pong"
            return Parsed(control=True)
        raise ParseError("unknown_op", str(op)[:40])

    def _instrument(self, venue_symbol: object) -> tuple[str, float]:
        """Resolve once (unknown symbol or symbol cap: ParseError), then serve from the cache."""
        if type(venue_symbol) is not str or not venue_symbol:
            raise ParseError("bad_type", "symbol")
        inst = self._symbols.resolve(venue_symbol)
        entry = (inst.symbol, inst.contract_multiplier)
        self._instruments[venue_symbol] = entry
        return entry

    def _liquidation(self, item: dict[str, Any], received_ns: int) -> Event:
        venue_symbol = item["s"]
        side = _POSITION_SIDES.get(item["S"])
        if side is None:
            raise ParseError("bad_side", str(item["S"])[:20])
        qty_raw = positive(item["v"])
        price = positive(item["p"])
        ts = timestamp_ms(item["T"])
        symbol, mult = self._instruments.get(venue_symbol) or self._instrument(venue_symbol)
        qty_base = qty_raw * mult
        return new_liquidation(
            EXCHANGE, symbol, venue_symbol, side[0], None, price, _BANKRUPTCY, qty_raw,
            _BASE, mult, qty_base, qty_base * price, _AGGREGATED, ts, received_ns,
            liquidation_id(EXCHANGE, venue_symbol, ts, side[1], qty_raw, price),
        )  # fmt: skip

    def _trade(self, item: dict[str, Any], received_ns: int) -> Event:
        # The hot path: checks inlined (same rules as producers.events.positive/timestamp_ms).
        venue_symbol = item["s"]
        v = item["v"]
        p = item["p"]
        ts = item["T"]
        trade_id = item["i"]
        taker = _TAKER_SIDES.get(item["S"])
        inst = self._instruments.get(venue_symbol) or self._instrument(venue_symbol)
        if taker is None:
            raise ParseError("bad_side", str(item["S"])[:20])
        qty_raw, price = qty_price(v, p, "v/p")
        if type(ts) is not int or ts <= 0:
            raise ParseError("bad_ts", "T")
        if type(trade_id) is not str or not trade_id:
            raise ParseError("bad_type", "i")
        mult = inst[1]
        qty_base = qty_raw * mult
        return new_trade(
            EXCHANGE, inst[0], venue_symbol, taker, price, qty_raw, _BASE, mult, qty_base,
            qty_base * price, None, ts, received_ns, trade_id,
        )  # fmt: skip
