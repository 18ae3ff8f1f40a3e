"""Gate.io USDT futures frames -> normalized events. Sans-I/O: bytes in, ``Parsed`` out.

Frames handled (docs/venues.md §8), dispatched on exact keys (``channel``, then ``event``):

* ``{"channel": "futures.public_liquidates", "event": "update", "result": [...]}``: an ARRAY of
  liquidation orders, since 2026-08-20 every order of a contract within ~1 s batched into one push
  (flushed early at 20): coverage ``aggregated``;
* ``{"channel": "futures.trades", "event": "update", "result": [...]}``;
* ``{"channel": "futures.tickers", "event": "update", "time": s, "time_ms": ms, "result": [...]}``
  (market context; a ``result`` that is one object instead of an array is taken as one item);
* ``{"event": "subscribe"|"unsubscribe", "error": null, "result": {"status": "success"}}``: control;
  an ``error`` or another status raises ParseError ``subscribe_failed``;
* ``{"channel": "futures.pong", ...}``: control.

Sizes are contracts, signed: a decimal string (handshake header ``X-Gate-Size-Decimal: 1``) or an
integer (older behaviour); qty_base = |size| x ``quanto_multiplier`` from the contracts list (strict
table: ``unknown_instrument`` until loaded), notional = qty_base x price (USDT at par). Liquidations:
``size`` is the liquidation ORDER's size, signed as Gate signs order sizes (negative: an ask), so a
negative size is a SELL order, i.e. a LONG was liquidated (the REST ``liq_orders`` example shows a
long position ``size`` 600 with ``order_size`` -600; decided by ``NEGATIVE_SIZE_IS_LONG_LIQUIDATED``
alone). ``price`` is the order's price ("订单价格"): kind ``order_limit``. Item ``time`` is ms now,
seconds in older payloads: values below 1e11 are seconds; ``time_ms`` wins when an item has it.
Trades: negative size = taker sold; ``create_time_ms`` (else ``create_time`` seconds); ``id`` the
trade id; ``is_internal`` true (the insurance fund or ADL users taking over a liquidation order)
is ``is_liquidation`` True, false False, absent None.

Market context: every ``futures.tickers`` item gives one ``MarketContext`` with ``mark_price``,
``index_price``, ``funding_rate`` (a signed fraction: the current period's rate, applied at its
settlement; ``funding_rate_indicative``, the next period's estimate, is not kept) and open interest
``total_size`` (contracts, decimal string) x ``quanto_multiplier`` as base units; the USD open
interest is not in the message (None: the consumer derives it from base x mark), nor is the next
funding time (None). A field that is absent or ``""`` is None; an item carrying none of the four
gives no event. Items carry no time: ``ts`` is the frame's ``time_ms``, else its ``time`` (seconds,
or ms when at or above 1e11). ``last``, volumes and ``quanto_base_rate`` are ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import Coverage, OrderSide, PriceKind, QtyUnit, Side
from monitor.core.symbols import SymbolTable
from producers.base import ConnectionPlan, Parsed
from producers.columns import ColumnStore
from producers.events import (
    ITEM_ERRORS,
    decimal,
    item_error,
    json_object,
    non_negative,
    optional,
    positive,
    signed,
    timestamp_ms,
)
from producers.framestore import Store
from producers.gate import instruments
from producers.gate.endpoints import (
    EXCHANGE,
    LIQUIDATES,
    NEGATIVE_SIZE_IS_LONG_LIQUIDATED,
    PONG,
    SECONDS_BELOW,
    TICKERS,
    TRADES,
)
from producers.gate.subscriptions import ping, plan_connections, restamp

_T = TypeVar("_T")

_INF: Final = float("inf")

_SELL_SIDE: Final = (
    (Side.LONG if NEGATIVE_SIZE_IS_LONG_LIQUIDATED else Side.SHORT).value,
    OrderSide.SELL.value,
)
_BUY_SIDE: Final = (
    (Side.SHORT if NEGATIVE_SIZE_IS_LONG_LIQUIDATED else Side.LONG).value,
    OrderSide.BUY.value,
)
_SELL: Final = OrderSide.SELL.value
_BUY: Final = OrderSide.BUY.value
_CONTRACTS: Final = QtyUnit.CONTRACTS.value
_PRICE_KIND: Final = PriceKind.ORDER_LIMIT.value  # the liquidation order's price ("订单价格")
_AGGREGATED: Final = Coverage.AGGREGATED.value
_SUB_EVENTS: Final = frozenset({"subscribe", "unsubscribe"})


def signed_size(value: object) -> float:
    """A signed, non-zero, finite size: decimal string, JSON integer or number; else ParseError."""
    x = decimal(value)
    if not (0.0 < abs(x) < _INF):
        raise ParseError("bad_number", repr(value)[:40])
    return x


def item_ms(item: dict[str, Any], ms_key: str, key: str) -> int:
    """``ms_key`` when present, else ``key`` as ms, or as seconds when below 1e11."""
    if ms_key in item:
        return timestamp_ms(item[ms_key])
    t = timestamp_ms(item[key])
    return t * 1000 if t < SECONDS_BELOW else t


class GateAdapter:
    """Venue adapter for Gate.io USDT futures (``producers.base.VenueAdapter`` and
    ``InstrumentSource``). ``clock`` (unix seconds) stamps requests and pings."""

    exchange = EXCHANGE

    def __init__(
        self,
        cfg: ExchangeConfig,
        symbols: SymbolTable | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._symbols = (
            symbols if symbols is not None else SymbolTable(cfg.max_symbols, strict=True)
        )
        self._instruments: dict[str, tuple[str, float]] = {}  # name -> (canonical, multiplier)
        self._clock = clock

    # ---- plan --------------------------------------------------------------------------------

    def connections(self, cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
        return plan_connections(cfg, base_url, self._clock)

    def heartbeat(self) -> str | None:
        return ping(self._clock())

    def restamp(self, frame: str) -> str:
        """A planned request with ``time`` set to now (see ``subscriptions.restamp``)."""
        return restamp(frame, self._clock())

    def instrument_urls(self, rest_base: str) -> list[str]:
        return instruments.instrument_urls(rest_base)

    def load_instruments(self, url: str, body: bytes) -> int:
        fresh = instruments.parse_contracts(body)
        self._symbols.replace(fresh)
        self._instruments.clear()
        return len(fresh)

    # ---- parse -------------------------------------------------------------------------------

    def parse(
        self, frame: bytes | str, received_ns: int, into: ColumnStore | None = None
    ) -> Parsed:
        doc = json_object(frame)
        try:
            channel = doc.get("channel")
            event = doc.get("event")
            if event == "update":
                if channel == TRADES:
                    return self._items(self._trade, doc["result"], received_ns, into)
                if channel == LIQUIDATES:  # items carry no id: identical ones are ranked
                    return self._items(self._liquidation, doc["result"], received_ns, into)
                if channel == TICKERS:
                    return self._tickers(doc, received_ns, into)
                raise ParseError("unknown_channel", str(channel)[:60])
            if event in _SUB_EVENTS:
                error = doc.get("error")
                result = doc.get("result")
                if error is None and type(result) is dict and result.get("status") == "success":
                    return Parsed(control=True)
                raise ParseError("subscribe_failed", f"{channel}: {error or result}"[:200])
            if channel == PONG:
                return Parsed(control=True)
            raise ParseError("unknown_event", str(event)[:40])
        except KeyError as exc:
            raise ParseError("missing_field", str(exc)) from None
        except (TypeError, AttributeError, ValueError) as exc:
            raise ParseError("bad_shape", type(exc).__name__) from None

    @staticmethod
    def _items(handler: Any, data: Any, received_ns: int, into: ColumnStore | None) -> Parsed:
        if type(data) is not list:
            raise ParseError("bad_shape", "result")
        out, rows = Parsed.start(EXCHANGE, into)
        for item in data:
            try:
                handler(item, received_ns, rows)
            except ITEM_ERRORS as exc:
                out.errors.append(item_error(exc))
        return out

    def _instrument(self, name: object) -> tuple[str, float]:
        if type(name) is not str or not name:
            raise ParseError("bad_type", "contract")
        inst = self._symbols.resolve(name)  # strict: unknown_instrument until loaded
        entry = (inst.symbol, inst.contract_multiplier)
        self._instruments[name] = entry
        return entry

    def _liquidation(self, item: dict[str, Any], received_ns: int, rows: Store) -> None:
        name = item["contract"]
        size = signed_size(item["size"])
        price = positive(item["price"])
        ts = item_ms(item, "time_ms", "time")
        symbol, mult = self._instruments.get(name) or self._instrument(name)
        side = _SELL_SIDE if size < 0 else _BUY_SIDE
        qty_raw = abs(size)
        qty_base = qty_raw * mult
        rows.liquidation(
            symbol, name, side[0], side[1], price, _PRICE_KIND, qty_raw, _CONTRACTS, mult,
            qty_base, qty_base * price, _AGGREGATED, ts, received_ns,
            (name, ts, side[0], qty_raw, price), True,
        )  # fmt: skip

    def _trade(self, item: dict[str, Any], received_ns: int, rows: Store) -> None:
        name = item["contract"]
        size = signed_size(item["size"])
        price = positive(item["price"])
        ts = item_ms(item, "create_time_ms", "create_time")
        trade_id = item["id"]
        if type(trade_id) is not int or trade_id < 0:
            raise ParseError("bad_type", "id")
        internal = item.get("is_internal")  # the insurance fund or ADL taking a liquidation order
        if internal is not None and type(internal) is not bool:
            raise ParseError("bad_type", "is_internal")
        symbol, mult = self._instruments.get(name) or self._instrument(name)
        qty_raw = abs(size)
        qty_base = qty_raw * mult
        rows.trade(
            symbol, name, str(trade_id), _SELL if size < 0 else _BUY, price, qty_raw, _CONTRACTS,
            mult, qty_base, qty_base * price, internal, ts, received_ns,
        )  # fmt: skip

    def _tickers(self, doc: dict[str, Any], received_ns: int, into: ColumnStore | None) -> Parsed:
        result = doc["result"]
        items = [result] if type(result) is dict else result
        if type(items) is not list:
            raise ParseError("bad_shape", "result")
        ts = item_ms(doc, "time_ms", "time")  # the items carry no time of their own
        out, rows = Parsed.start(EXCHANGE, into)
        for item in items:
            try:
                self._ticker(item, ts, received_ns, rows)
            except ITEM_ERRORS as exc:
                out.errors.append(item_error(exc))
        return out

    def _ticker(self, item: dict[str, Any], ts: int, received_ns: int, rows: Store) -> None:
        name = item["contract"]
        symbol, mult = self._instruments.get(name) or self._instrument(name)
        get = item.get
        mark = optional(get("mark_price"), positive, blank=True)
        index = optional(get("index_price"), positive, blank=True)
        funding = optional(get("funding_rate"), signed, blank=True)
        size = optional(get("total_size"), non_negative, blank=True)
        if mark is None and index is None and funding is None and size is None:
            return
        oi_base = None
        if size is not None:
            oi_base = size * mult
            if not oi_base < _INF:
                raise ParseError("bad_number", "total_size")
        # the USD open interest and the next funding time are not in the message
        rows.context(symbol, name, mark, index, funding, None, oi_base, None, ts, received_ns)
