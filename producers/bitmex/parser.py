"""BitMEX realtime frames -> normalized events. Sans-I/O: bytes in, ``Parsed`` out.

Frames handled (docs/venues.md §4), dispatched on exact keys:

* the text frame ``pong`` (answer to the client's ``ping``): control;
* ``{"table": "trade" | "liquidation" | "instrument", "action": ..., "data": [...]}``;
* ``{"success": true, "subscribe": ...}`` (control), ``{"error": ..., "status": ...}`` (ParseError
  ``request_failed``), the welcome ``{"info": ...}`` (control).

Liquidations: the ``liquidation`` table is the lifecycle of forced ORDERS, not fills: ``insert``
(a forced order enters the book), ``update`` (its ``leavesQty`` shrinks as it is worked, or its
price changes), ``delete`` (it is gone: filled, or taken over by the insurance fund / ADL). The
feed never says how much was filled by the market, so the least misleading representation is
ONE Liquidation per forced order, emitted at ``insert`` with the order's full quantity
(``leavesQty`` then), at its limit price (price kind ``order_limit``), coverage
``order_lifecycle``: the notional put up for forced sale, an upper bound of what hit the market.
``update``/``delete`` only maintain the set of open forced orders (no event, so nothing is
counted twice); a ``partial`` ("the initial full snapshot of the table" on subscribing: the forced
orders already in the book) replaces that set and emits nothing: those orders were inserted before
the subscription (counted then, when connected: a reconnect or restart must not count them again);
each is counted in ``Parsed.replayed`` as ``venue_snapshot``. The set is capped at
``MAX_OPEN_ORDERS`` (oldest dropped first). ``side`` is the order side: Buy closes a short.
Rows carry no timestamp: ``ts_ms`` is the receipt time. The event id hashes only the venue, the
symbol and the ``orderID``, so the same order re-emitted after a reconnect or restart has the
same id. Quantity: ``leavesQty`` contracts, sized by the instrument metadata (XBTUSD: 1 USD per
contract, inverse; XBTUSDT: 0.000001 XBT per contract, linear).

Trades: ``side`` is the taker side; ``homeNotional`` (base) and ``foreignNotional`` (quote, taken
at par with USD) are used as given, so no multiplier math; ``size`` (contracts) is ``qty_raw``.
Partials of the trade table (recent history) are skipped. Every event needs the instrument
metadata (``InstrumentSource``); until it is loaded, items are skipped as ``unknown_instrument``.

Market context: the ``instrument:<SYMBOL>`` table, a ``partial`` (the whole row) then ``update``
deltas carrying ``symbol``, ``timestamp`` and only the fields that changed (``insert`` is read like
a partial, ``delete`` is control). Each row gives one ``MarketContext`` with the fields it carries,
the others None (absent: unchanged; null: not applicable, e.g. funding of a dated future):
``markPrice``; ``indicativeSettlePrice`` as the index price (the reference index, ``.BXBT`` for
XBTUSD); ``fundingRate`` (the rate of the coming settlement, a fraction per interval, any sign;
``indicativeFundingRate``, the one after, is not kept) and ``fundingTimestamp`` (ISO, that
settlement) as ``next_funding_ms``; ``openInterest`` in contracts, sized by the instrument: inverse
(XBTUSD, 1 USD per contract) -> ``open_interest_usd`` (base None: no price needed), linear
(ETHUSDT) -> ``open_interest_base`` (USD derived by the consumer from the mark). ``openValue``
(in satoshis or micro-USDT of the settlement currency) is not used. ``ts`` is the row's
``timestamp`` (ISO), else the receipt time. A row carrying none of these fields (last price, volume
only) gives no event.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import Coverage, OrderSide, PriceKind, QtyUnit, Side
from monitor.core.symbols import Instrument, SymbolTable
from producers.base import ConnectionPlan, Parsed
from producers.bitmex.endpoints import (
    DEFAULT_REST_URL,
    EXCHANGE,
    INSTRUMENT,
    INSTRUMENTS_PATH,
    LIQUIDATION,
    PING_FRAME,
    PONG_FRAME,
    TRADE,
)
from producers.bitmex.instruments import parse_instruments
from producers.bitmex.subscriptions import plan_connections
from producers.columns import ColumnStore
from producers.events import (
    ITEM_ERRORS,
    contract_open_interest,
    item_error,
    json_object,
    non_negative,
    optional,
    positive,
    qty_price,
    signed,
)
from producers.framestore import Store

_T = TypeVar("_T")
MAX_OPEN_ORDERS: Final = 10_000
_ORDER_SIDES: Final = {  # forced-order side -> (liquidated position, order side)
    "Sell": (Side.LONG.value, OrderSide.SELL.value),
    "Buy": (Side.SHORT.value, OrderSide.BUY.value),
}
_TAKER: Final = {"Buy": OrderSide.BUY.value, "Sell": OrderSide.SELL.value}
_PONGS: Final = frozenset({PONG_FRAME, PONG_FRAME.encode()})
_CONTRACTS: Final = QtyUnit.CONTRACTS.value
_ORDER_LIMIT: Final = PriceKind.ORDER_LIMIT.value
_LIFECYCLE: Final = Coverage.ORDER_LIFECYCLE.value
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_ROW_ACTIONS: Final = ("partial", "update", "insert")


def iso_ms(value: object) -> int:
    """``"2018-05-19T12:25:26.632Z"`` -> ms since the epoch; ParseError ``bad_ts`` otherwise."""
    if type(value) is not str:
        raise ParseError("bad_ts", "timestamp")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ParseError("bad_ts", value[:40]) from None
    if dt.tzinfo is None:
        raise ParseError("bad_ts", value[:40])
    ms = (dt - _EPOCH) // _MS
    if ms <= 0:
        raise ParseError("bad_ts", value[:40])
    return ms


class BitmexAdapter:
    """Venue adapter and instrument source for BitMEX (see ``producers.base``)."""

    exchange = EXCHANGE

    def __init__(self, cfg: ExchangeConfig, symbols: SymbolTable | None = None) -> None:
        self._symbols = (
            symbols if symbols is not None else SymbolTable(cfg.max_symbols, strict=True)
        )
        self._open: OrderedDict[str, float] = OrderedDict()  # orderID -> leavesQty

    # ---- plan --------------------------------------------------------------------------------

    def connections(self, cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
        return plan_connections(cfg, base_url)

    def heartbeat(self) -> str | None:
        return PING_FRAME

    def instrument_urls(self, rest_base: str) -> list[str]:
        return [f"{(rest_base or DEFAULT_REST_URL).rstrip('/')}{INSTRUMENTS_PATH}"]

    def load_instruments(self, url: str, body: bytes) -> int:
        instruments = parse_instruments(body)
        if not instruments:
            raise ParseError("no_instruments", url[:100])
        self._symbols.replace(instruments)
        return len(instruments)

    @property
    def open_orders(self) -> dict[str, float]:
        """Open forced orders (orderID -> leavesQty), oldest first: lifecycle state."""
        return dict(self._open)

    # ---- parse -------------------------------------------------------------------------------

    def parse(
        self, frame: bytes | str, received_ns: int, into: ColumnStore | None = None
    ) -> Parsed:
        if frame in _PONGS:
            return Parsed(control=True)
        doc = json_object(frame)
        try:
            table = doc.get("table")
            if table is not None:
                action = doc["action"]
                data = doc["data"]
                if type(data) is not list:
                    raise ParseError("bad_shape", "data")
                if table == TRADE:
                    if action == "insert":
                        return self._items(self._trade, data, received_ns, into)
                    if action == "partial":
                        return Parsed(control=True)  # recent history, not new trades
                    raise ParseError("unknown_action", str(action)[:20])
                if table == LIQUIDATION:
                    return self._liquidations(action, data, received_ns, into)
                if table == INSTRUMENT:
                    if action == "delete":  # an instrument removed: no market data
                        return Parsed(control=True)
                    if action not in _ROW_ACTIONS:
                        raise ParseError("unknown_action", str(action)[:20])
                    return self._contexts(data, received_ns, into)
                raise ParseError("unknown_table", str(table)[:40])
            if "subscribe" in doc and "success" in doc:
                if doc["success"] is True:
                    return Parsed(control=True)
                raise ParseError("subscribe_failed", str(doc["subscribe"])[:200])
            if "error" in doc:
                raise ParseError("request_failed", str(doc["error"])[:200])
            if "info" in doc:
                return Parsed(control=True)
            raise ParseError("unknown_event")
        except KeyError as exc:
            raise ParseError("missing_field", str(exc)) from None
        except (TypeError, AttributeError, ValueError) as exc:
            raise ParseError("bad_shape", type(exc).__name__) from None

    @staticmethod
    def _items(handler: Any, data: list[Any], received_ns: int, into: ColumnStore | None) -> Parsed:
        out, rows = Parsed.start(EXCHANGE, into)
        for item in data:
            try:
                handler(item, received_ns, rows)
            except ITEM_ERRORS as exc:
                out.errors.append(item_error(exc))
        return out

    def _trade(self, item: dict[str, Any], received_ns: int, rows: Store) -> None:
        venue_symbol = item["symbol"]
        taker = _TAKER.get(item["side"])
        if taker is None:
            raise ParseError("bad_side", str(item["side"])[:20])
        qty_raw, price = qty_price(item["size"], item["price"], "size/price")
        qty_base = positive(item["homeNotional"])
        notional = positive(item["foreignNotional"])
        ts = iso_ms(item["timestamp"])
        trade_id = item["trdMatchID"]
        if type(trade_id) is not str or not trade_id:
            raise ParseError("bad_type", "trdMatchID")
        inst = self._resolve(venue_symbol)
        rows.trade(
            inst.symbol, venue_symbol, trade_id, taker, price, qty_raw, _CONTRACTS,
            inst.contract_multiplier, qty_base, notional, None, ts, received_ns,
        )  # fmt: skip

    def _resolve(self, venue_symbol: object) -> Instrument:
        if type(venue_symbol) is not str:
            raise ParseError("bad_type", "symbol")
        return self._symbols.resolve(venue_symbol)

    # ---- market context: the instrument table ----------------------------------------------------

    def _contexts(self, data: list[Any], received_ns: int, into: ColumnStore | None) -> Parsed:
        out, rows = Parsed.start(EXCHANGE, into)
        for row in data:
            try:
                self._context(row, received_ns, rows)
            except ITEM_ERRORS as exc:
                out.errors.append(item_error(exc))
        return out

    def _context(self, row: Any, received_ns: int, rows: Store) -> None:
        venue_symbol = row["symbol"]
        get = row.get
        mark = optional(get("markPrice"), positive)
        index = optional(get("indicativeSettlePrice"), positive)
        funding = optional(get("fundingRate"), signed)
        next_funding = optional(get("fundingTimestamp"), iso_ms)
        contracts = optional(get("openInterest"), non_negative)
        if (mark is None and index is None and funding is None and next_funding is None
                and contracts is None):  # fmt: skip
            return
        stamp = get("timestamp")
        ts = received_ns // 1_000_000 if stamp is None else iso_ms(stamp)
        if ts <= 0:
            raise ParseError("bad_ts", "received")
        inst = self._resolve(venue_symbol)
        # inverse: USD, base None (documented above); linear: base
        oi_base, oi_usd = (
            (None, None)
            if contracts is None
            else contract_open_interest(contracts, inst.contract_multiplier, inst.inverse, None)
        )
        rows.context(inst.symbol, venue_symbol, mark, index, funding, next_funding, oi_base, oi_usd,
                     ts, received_ns)  # fmt: skip

    # ---- the liquidation lifecycle -------------------------------------------------------------

    def _liquidations(
        self, action: object, data: list[Any], received_ns: int, into: ColumnStore | None
    ) -> Parsed:
        if action == "insert":
            return self._items(self._insert, data, received_ns, into)
        if action == "partial":  # the table's image on subscribing: the book, not new orders
            self._open = OrderedDict()
            out = Parsed(control=True)
            for item in data:
                oid = item.get("orderID") if type(item) is dict else None
                if type(oid) is not str or not oid:
                    out.errors.append("bad_type")
                    continue
                self._remember(oid, _qty(item.get("leavesQty"), 0.0))
                out.replayed.append("venue_snapshot")
            return out
        if action not in ("update", "delete"):
            raise ParseError("unknown_action", str(action)[:20])
        out = Parsed()
        for item in data:
            oid = item.get("orderID") if type(item) is dict else None
            if type(oid) is not str:
                out.errors.append("bad_type")
            elif action == "delete":
                self._open.pop(oid, None)
            elif oid in self._open:
                self._open[oid] = _qty(item.get("leavesQty"), self._open[oid])
        return out

    def _insert(self, item: dict[str, Any], received_ns: int, rows: Store) -> None:
        oid = item["orderID"]
        venue_symbol = item["symbol"]
        side = _ORDER_SIDES.get(item["side"])
        if type(oid) is not str or not oid:
            raise ParseError("bad_type", "orderID")
        if side is None:
            raise ParseError("bad_side", str(item["side"])[:20])
        if oid in self._open:  # a re-sent insert: the order is already counted
            raise ParseError("duplicate_order", oid[:40])
        price = positive(item["price"])
        qty_raw = non_negative(item["leavesQty"])
        if qty_raw == 0.0:
            raise ParseError("no_qty")
        ts = received_ns // 1_000_000
        if ts <= 0:
            raise ParseError("bad_ts", "received")
        inst = self._resolve(venue_symbol)
        qty_base, notional = inst.convert(qty_raw, price)
        self._remember(oid, qty_raw)
        # the id: venue, symbol and orderID only (the same order re-emitted keeps its id)
        rows.liquidation(
            inst.symbol, venue_symbol, side[0], side[1], price, _ORDER_LIMIT, qty_raw, _CONTRACTS,
            inst.contract_multiplier, qty_base, notional, _LIFECYCLE, ts, received_ns,
            (venue_symbol, 0, f"order|{oid}", 0.0, 0.0), False,
        )  # fmt: skip

    def _remember(self, oid: str, qty: float) -> None:
        self._open[oid] = qty
        self._open.move_to_end(oid)
        while len(self._open) > MAX_OPEN_ORDERS:
            self._open.popitem(last=False)


def _qty(value: object, default: float) -> float:
    """A lifecycle ``leavesQty`` (a bad one keeps the previous value: state only, never counted)."""
    try:
        return non_negative(value)
    except ParseError:
        return default
