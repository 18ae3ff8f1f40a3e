"""Binance USD-M frames -> normalized events. Sans-I/O: bytes in, ``Parsed`` out.

Frames handled (docs/venues.md §1), dispatched on exact keys:

* raw ``{"e": "forceOrder", "E": ..., "o": {...}}``, ``{"e": "aggTrade", ...}`` and
  ``{"e": "markPriceUpdate", ...}``;
* combined ``{"stream": "<name>", "data": <raw>}``;
* a JSON array of raw events (tolerated: the ``@arr`` stream name suggests one);
* replies to JSON requests ``{"result": ..., "id": ...}`` (control) and ``{"error": ...}``.

Liquidations: ``o.S`` is the side of the forced order, so SELL means a long was liquidated. Quantity
and price are the *fill* (``o.z`` cumulative filled qty x ``o.ap`` average fill price), not the order
(``q`` x ``p``); a forced order that has not filled is skipped (reason ``no_fill``). The all-market
stream pushes only the latest liquidation per symbol per second: coverage ``sampled_latest_per_
symbol_1s``. Trades: ``aggTrade`` with ``m`` (buyer is maker) true means the taker sold.

Market context: ``markPriceUpdate`` (``<symbol>@markPrice@1s``) carries ``p`` mark price, ``i``
index price, ``r`` funding rate (a fraction, may be negative; ``""`` for delivery contracts, then
None), ``T`` next funding time in ms (``0`` for delivery contracts, then None) and ``E`` the event
time; ``P`` (estimated settle price) is ignored and open interest is not on this stream (None).
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import Coverage, Event, OrderSide, PriceKind, QtyUnit, Side
from monitor.core.symbols import SymbolTable
from producers.base import ConnectionPlan, Parsed
from producers.binance.endpoints import EXCHANGE
from producers.binance.open_interest import open_interest_urls, parse_open_interest
from producers.binance.subscriptions import plan_connections
from producers.columns import ColumnStore
from producers.events import (
    ITEM_ERRORS,
    item_error,
    non_negative,
    positive,
    qty_price,
    signed,
    timestamp_ms,
)
from producers.framestore import Store

_loads = orjson.loads
_INF: Final = float("inf")
_JSONDecodeError = orjson.JSONDecodeError

# Forced-order side -> (liquidated position, order side); the position is also the id's side text.
_LIQ_SIDES: Final = {
    "SELL": (Side.LONG.value, OrderSide.SELL.value),
    "BUY": (Side.SHORT.value, OrderSide.BUY.value),
}
_SELL: Final = OrderSide.SELL.value
_BUY: Final = OrderSide.BUY.value
_BASE: Final = QtyUnit.BASE.value
_AVG_FILL: Final = PriceKind.AVG_FILL.value
_SAMPLED: Final = Coverage.SAMPLED_LATEST_1S.value


class BinanceAdapter:
    """Venue adapter for Binance USD-M futures (see ``producers.base.VenueAdapter``)."""

    exchange = EXCHANGE

    def __init__(self, cfg: ExchangeConfig, symbols: SymbolTable | None = None) -> None:
        self._symbols = symbols if symbols is not None else SymbolTable(cfg.max_symbols)
        self._instruments: dict[str, tuple[str, float]] = {}  # venue -> (canonical, multiplier)
        self._poll_symbols = cfg.symbols
        self._handlers: dict[str, Any] = {
            "aggTrade": self._agg_trade,
            "forceOrder": self._force_order,
            "markPriceUpdate": self._mark_price,
        }

    # ---- plan --------------------------------------------------------------------------------

    def connections(self, cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
        return plan_connections(cfg, base_url)

    def heartbeat(self) -> str | None:
        return None  # the server pings; the websocket library answers with pongs

    # ---- REST polls (producers.poller.PollSource): open interest -------------------------------

    def poll_urls(self, rest_base: str) -> list[str]:
        return open_interest_urls(rest_base, self._poll_symbols)

    def parse_poll(self, url: str, body: bytes, received_ns: int) -> list[Event]:
        return list(parse_open_interest(EXCHANGE, body, received_ns, self._symbols))

    # ---- parse -------------------------------------------------------------------------------

    def parse(
        self, frame: bytes | str, received_ns: int, into: ColumnStore | None = None
    ) -> Parsed:
        try:
            doc = _loads(frame)
        except _JSONDecodeError:
            raise ParseError("bad_json") from None
        try:
            if type(doc) is dict:
                if "stream" in doc:  # combined-stream wrapper
                    doc = doc["data"]
                    if type(doc) is list:
                        return self._many(doc, received_ns, into)
                    if type(doc) is not dict:
                        raise ParseError("bad_shape", "data")
                e = doc.get("e")
                handler = self._handlers.get(e) if type(e) is str else None
                if handler is None:
                    return self._other(doc)
                out, rows = Parsed.start(EXCHANGE, into)
                handler(doc, received_ns, rows)
                return out
            if type(doc) is list:
                return self._many(doc, received_ns, into)
            raise ParseError("bad_shape", type(doc).__name__)
        except KeyError as exc:
            raise ParseError("missing_field", str(exc)) from None
        except (TypeError, AttributeError, ValueError) as exc:
            raise ParseError("bad_shape", type(exc).__name__) from None

    def _many(self, items: list[Any], received_ns: int, into: ColumnStore | None) -> Parsed:
        out, rows = Parsed.start(EXCHANGE, into)
        handlers = self._handlers
        for item in items:
            try:
                if type(item) is not dict:
                    raise ParseError("bad_shape", "item")
                e = item.get("e")
                # ``!markPrice@arr`` (all-market) arrays carry markPriceUpdate items
                handler = handlers.get(e) if type(e) is str else None
                if handler is None:
                    raise ParseError("unknown_event")
                handler(item, received_ns, rows)
            except ITEM_ERRORS as exc:
                out.errors.append(item_error(exc))
        return out

    @staticmethod
    def _other(doc: dict[str, Any]) -> Parsed:
        if "e" in doc:
            raise ParseError("unknown_event", str(doc["e"])[:40])
        if (
            "error" in doc
        ):  # reply to a JSON request: {"error": {"code": ..., "msg": ...}, "id": ..}
            raise ParseError("request_failed", str(doc["error"])[:200])
        if "result" in doc and "id" in doc:  # {"result": null, "id": 1}
            return Parsed(control=True)
        raise ParseError("unknown_event")

    def _instrument(self, venue_symbol: object) -> tuple[str, float]:
        """Resolve once (unknown symbol or symbol cap: ParseError), then serve from the cache."""
        if type(venue_symbol) is not str:
            raise ParseError("bad_type", "symbol")
        inst = self._symbols.resolve(venue_symbol)
        entry = (inst.symbol, inst.contract_multiplier)
        self._instruments[venue_symbol] = entry
        return entry

    def _force_order(self, doc: dict[str, Any], received_ns: int, rows: Store) -> None:
        o = doc["o"]
        venue_symbol = o["s"]
        side = _LIQ_SIDES.get(o["S"])
        if side is None:
            raise ParseError("bad_side", str(o["S"])[:20])
        z = o["z"]
        ap = o["ap"]
        if type(z) is str and type(ap) is str:  # decimal strings: the checks inlined
            try:
                qty_raw = float(z)
            except ValueError:
                raise ParseError("bad_number", repr(z)[:40]) from None
            if not 0.0 <= qty_raw < _INF:
                raise ParseError("bad_number", repr(z)[:40])
            if qty_raw == 0.0:
                raise ParseError("no_fill")
            try:
                price = float(ap)
            except ValueError:
                raise ParseError("bad_number", repr(ap)[:40]) from None
            if not 0.0 < price < _INF:
                raise ParseError("bad_number", repr(ap)[:40])
        else:
            qty_raw = non_negative(z)
            if qty_raw == 0.0:
                raise ParseError("no_fill")
            price = positive(ap)
        ts = o["T"]
        if type(ts) is not int or ts <= 0:  # timestamp_ms inlined
            raise ParseError("bad_ts", repr(ts)[:40])
        symbol, mult = self._instruments.get(venue_symbol) or self._instrument(venue_symbol)
        qty_base = qty_raw * mult
        rows.liquidation(
            symbol, venue_symbol, side[0], side[1], price, _AVG_FILL, qty_raw, _BASE, mult,
            qty_base, qty_base * price, _SAMPLED, ts, received_ns,
            (venue_symbol, ts, side[0], qty_raw, price), False,
        )  # fmt: skip

    def _agg_trade(self, doc: dict[str, Any], received_ns: int, rows: Store) -> None:
        # The hot path: checks inlined (same rules as producers.events.positive/timestamp_ms).
        venue_symbol = doc["s"]
        q = doc["q"]
        p = doc["p"]
        ts = doc["T"]
        agg_id = doc["a"]
        maker = doc["m"]
        inst = self._instruments.get(venue_symbol) or self._instrument(venue_symbol)
        if type(q) is str and type(p) is str:  # decimal strings: qty_price inlined
            try:
                qty_raw = float(q)
                price = float(p)
            except ValueError:
                raise ParseError("bad_number", "q/p") from None
            if not (0.0 < qty_raw < _INF and 0.0 < price < _INF):  # NaN fails too
                raise ParseError("bad_number", "q/p")
        else:
            qty_raw, price = qty_price(q, p, "q/p")
        if type(ts) is not int or ts <= 0:
            raise ParseError("bad_ts", "T")
        if type(agg_id) is not int or agg_id < 0:
            raise ParseError("bad_type", "a")
        if maker is True:
            taker = _SELL  # buyer is maker: the taker sold
        elif maker is False:
            taker = _BUY
        else:
            raise ParseError("bad_type", "m")
        mult = inst[1]
        qty_base = qty_raw * mult
        rows.trade(
            inst[0], venue_symbol, str(agg_id), taker, price, qty_raw, _BASE, mult, qty_base,
            qty_base * price, None, ts, received_ns,
        )  # fmt: skip

    def _mark_price(self, doc: dict[str, Any], received_ns: int, rows: Store) -> None:
        venue_symbol = doc["s"]
        mark = positive(doc["p"])
        index = positive(doc["i"])
        r = doc["r"]
        funding = None if r == "" else signed(r, "r")
        t = doc["T"]
        next_funding = None if t == 0 and type(t) is int else timestamp_ms(t)
        ts = timestamp_ms(doc["E"])
        symbol = (self._instruments.get(venue_symbol) or self._instrument(venue_symbol))[0]
        # open interest is not on this stream: polled over REST
        rows.context(symbol, venue_symbol, mark, index, funding, next_funding, None, None, ts,
                     received_ns)  # fmt: skip
