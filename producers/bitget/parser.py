"""Bitget UTA (v3) public frames -> normalized events. Sans-I/O: bytes in, ``Parsed`` out.

Frames handled (docs/venues.md §7), dispatched on exact keys:

* pushes ``{"arg": {"instType": ..., "topic": ...}, "action": ..., "data": [...], "ts": ...}``;
  ``arg.topic`` is matched exactly against ``liquidation``, ``publicTrade`` and ``ticker``;
* ``{"event": "subscribe"|"unsubscribe", "arg": ...}`` acks: control frames; ``{"event": "error",
  "code": ..., "msg": ...}`` raises ParseError ``subscribe_failed`` when it names an ``arg`` or
  ``op`` subscribe/unsubscribe, else ``venue_error``;
* the text ``pong`` answering our text ``ping``: a control frame.

Liquidations ``{"symbol", "side", "price", "amount", "ts"}`` are SAMPLED by the venue: each second,
per pair, only the largest long and the largest short liquidation: coverage
``largest_per_side_1s``. As the Liquidation Channel page documents them: ``side`` is the side of
the liquidated POSITION ("buy" = a long was liquidated, "sell" = a short; the order side is not
given, as on Bybit), ``amount`` is in quote coin (USDT: the notional; base = amount / price).
Which price ``price`` is (bankruptcy, fill) is not documented: ``price_kind`` unknown. A push with
``action: "snapshot"`` is the channel's full data again, not new liquidations: its items are not
emitted, each counted in ``Parsed.replayed`` as ``venue_snapshot``.

Trades (v3 ``publicTrade``, shape of the current v3 payload as used by several open-source v3
clients, 2026): items ``{"i": id, "p": price, "v": size in base coin, "S": taker side buy/sell,
"T": ms string, "L", "isRPI"}``; the symbol is the push's ``arg.symbol``. The push sent right after
subscribing is a ``snapshot`` of recent trades; the session's duplicate filter drops repeats.

Market context: ``ticker`` (UTA Tickers Channel, futures push, every 300-400 ms on change; the
symbol is ``arg.symbol``, which an item's own ``symbol``, when present, must match). Each item gives
one ``MarketContext`` with the fields it carries, the others None (absent, null or "": not
applicable): ``markPrice``, ``indexPrice``, ``fundingRate`` (a fraction per funding interval, any
sign), ``nextFundingTime`` (ms, a decimal string or an integer; "0" for delivery contracts: None)
and ``openInterest``, read as BASE coin (as Bitget sizes USDT futures, and as v2's
``holdingAmount``; the v3 page says only "open interest": UNVERIFIED unit) times the multiplier
(1); its USD value is left to the consumer (base x mark). ``ts`` is the item's ``ts`` when it has
one, else the push's ``ts`` (ms, a JSON integer or a decimal string). An item carrying none of these
fields (bid/ask or last-price only) gives no event. Only ``usdt-futures`` tickers are read (another
``arg.instType`` fails the frame: its units differ).
"""

from __future__ import annotations

from typing import Any, Final, TypeVar

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import Coverage, OrderSide, PriceKind, QtyUnit, Side
from monitor.core.symbols import SymbolTable
from producers.base import ConnectionPlan, Parsed
from producers.bitget.endpoints import (
    EXCHANGE,
    INST_TYPE,
    LIQUIDATION,
    LIQUIDATION_AMOUNT_UNIT,
    PING_FRAME,
    PONG_FRAME,
    PUBLIC_TRADE,
    TICKER,
)
from producers.bitget.subscriptions import plan_connections
from producers.columns import ColumnStore
from producers.events import (
    ITEM_ERRORS,
    MAX_MS,
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
_INF: Final = float("inf")
_PONG_BYTES: Final = PONG_FRAME.encode()
_MAX_TS_DIGITS: Final = 16
_TAKER_SIDES: Final = {"buy": OrderSide.BUY.value, "sell": OrderSide.SELL.value}
_BASE: Final = QtyUnit.BASE.value
_QUOTE: Final = QtyUnit.QUOTE.value
_SAMPLED: Final = Coverage.LARGEST_PER_SIDE_1S.value
_UNKNOWN_PRICE: Final = PriceKind.UNKNOWN.value
_CONTROL_EVENTS: Final = ("subscribe", "unsubscribe")
_SUBSCRIBE_OPS: Final = ("subscribe", "unsubscribe")


# Venue ``side`` (the liquidated position) -> liquidated side (the forced order side: not given).
_LIQ_SIDES: Final = {"buy": Side.LONG.value, "sell": Side.SHORT.value}
_REPLAY_ACTION: Final = "snapshot"
_AMOUNT_IS_QUOTE: Final = LIQUIDATION_AMOUNT_UNIT is QtyUnit.QUOTE


def timestamp_text(value: object) -> int:
    """A Bitget item timestamp: a decimal string of ms since the epoch, > 0."""
    if (
        type(value) is str
        and 0 < len(value) <= _MAX_TS_DIGITS
        and value.isascii()
        and value.isdigit()
    ):
        ts = int(value)
        if ts > 0:
            return ts
    raise ParseError("bad_ts", repr(value)[:40])


def timestamp_any(value: object) -> int:
    """A push timestamp: ms since the epoch as a JSON integer or a decimal string, > 0."""
    if type(value) is int and 0 < value < MAX_MS:
        return value
    return timestamp_text(value)


class BitgetAdapter:
    """Venue adapter for Bitget UTA v3 public (see ``producers.base.VenueAdapter``)."""

    exchange = EXCHANGE

    def __init__(self, cfg: ExchangeConfig, symbols: SymbolTable | None = None) -> None:
        self._symbols = symbols if symbols is not None else SymbolTable(cfg.max_symbols)
        self._topics: dict[str, Any] = {
            LIQUIDATION: self._liquidation,
            PUBLIC_TRADE: self._trade,
            TICKER: self._tickers,  # whole push: its ``ts`` dates the items
        }

    def connections(self, cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
        return plan_connections(cfg, base_url)

    def heartbeat(self) -> str | None:
        return PING_FRAME

    def parse(
        self, frame: bytes | str, received_ns: int, into: ColumnStore | None = None
    ) -> Parsed:
        if (frame == _PONG_BYTES) if type(frame) is bytes else (frame == PONG_FRAME):
            return Parsed(control=True)
        doc = json_object(frame)
        try:
            data = doc.get("data")
            if data is not None:
                arg = doc["arg"]
                if type(arg) is not dict:
                    raise ParseError("bad_shape", "arg")
                topic = arg["topic"]
                handler = self._topics.get(topic) if type(topic) is str else None
                if handler is None:
                    raise ParseError("unknown_topic", str(topic)[:40])
                if type(data) is not list:
                    raise ParseError("bad_shape", "data")
                if topic == TICKER:
                    return handler(doc, arg, data, received_ns, into)  # type: ignore[no-any-return]
                if topic == LIQUIDATION and doc.get("action") == _REPLAY_ACTION:
                    return Parsed(replayed=["venue_snapshot"] * len(data))  # the data again
                return self._items(handler, arg, data, received_ns, into)
            event = doc.get("event")
            if event is not None:
                return self._event(doc, event)
            raise ParseError("unknown_event")
        except KeyError as exc:
            raise ParseError("missing_field", str(exc)) from None
        except (TypeError, AttributeError, ValueError) as exc:
            raise ParseError("bad_shape", type(exc).__name__) from None

    @staticmethod
    def _items(
        handler: Any, arg: dict[str, Any], data: list[Any], received_ns: int,
        into: ColumnStore | None,
    ) -> Parsed:  # fmt: skip
        out, rows = Parsed.start(EXCHANGE, into)
        for item in data:
            try:
                handler(item, arg, received_ns, rows)
            except ITEM_ERRORS as exc:
                out.errors.append(item_error(exc))
        return out

    @staticmethod
    def _event(doc: dict[str, Any], event: object) -> Parsed:
        if event in _CONTROL_EVENTS:
            return Parsed(control=True)
        detail = f"{str(doc.get('code', ''))[:12]} {str(doc.get('msg', ''))[:200]}"
        if event == "error":
            if "arg" in doc or doc.get("op") in _SUBSCRIBE_OPS:
                raise ParseError("subscribe_failed", detail)
            raise ParseError("venue_error", detail)
        raise ParseError("unknown_event", str(event)[:40])

    def _resolve(self, venue_symbol: object) -> tuple[str, float]:
        if type(venue_symbol) is not str or not venue_symbol:
            raise ParseError("bad_type", "symbol")
        inst = self._symbols.resolve(venue_symbol)
        return inst.symbol, inst.contract_multiplier

    def _liquidation(self, item: Any, arg: dict[str, Any], received_ns: int, rows: Store) -> None:
        venue_symbol = item["symbol"]
        side = _LIQ_SIDES.get(item["side"])
        if side is None:
            raise ParseError("bad_side", str(item["side"])[:20])
        price = positive(item["price"])
        amount = positive(item["amount"])
        ts = timestamp_text(item["ts"])
        symbol, mult = self._resolve(venue_symbol)
        if _AMOUNT_IS_QUOTE:
            usd, qty_base, unit = amount, amount / price, _QUOTE
        else:
            qty_base = amount * mult
            usd, unit = qty_base * price, _BASE
        if not (0.0 < qty_base < _INF and 0.0 < usd < _INF):
            raise ParseError("bad_number", "conversion")
        # items carry no id: identical items of one push are ranked
        rows.liquidation(
            symbol, venue_symbol, side, None, price, _UNKNOWN_PRICE, amount, unit, mult, qty_base,
            usd, _SAMPLED, ts, received_ns, (venue_symbol, ts, side, amount, price), True,
        )  # fmt: skip

    def _trade(self, item: Any, arg: dict[str, Any], received_ns: int, rows: Store) -> None:
        venue_symbol = arg["symbol"]
        taker = _TAKER_SIDES.get(item["S"])
        if taker is None:
            raise ParseError("bad_side", str(item["S"])[:20])
        qty_raw, price = qty_price(item["v"], item["p"], "v/p")
        ts = timestamp_text(item["T"])
        trade_id = item["i"]
        if type(trade_id) is not str or not trade_id:
            raise ParseError("bad_type", "i")
        symbol, mult = self._resolve(venue_symbol)
        qty_base = qty_raw * mult
        usd = qty_base * price
        if not usd < _INF:
            raise ParseError("bad_number", "conversion")
        rows.trade(symbol, venue_symbol, trade_id, taker, price, qty_raw, _BASE, mult, qty_base,
                   usd, None, ts, received_ns)  # fmt: skip

    # ---- market context: ticker ---------------------------------------------------------------

    def _tickers(
        self, doc: dict[str, Any], arg: dict[str, Any], data: list[Any], received_ns: int,
        into: ColumnStore | None,
    ) -> Parsed:  # fmt: skip
        if arg.get("instType") != INST_TYPE:  # coin-/usdc-futures: other units, not subscribed
            raise ParseError("unknown_inst_type", str(arg.get("instType"))[:40])
        push_ts = doc.get("ts")
        out, rows = Parsed.start(EXCHANGE, into)
        for item in data:
            try:
                self._ticker(item, arg, received_ns, push_ts, rows)
            except ITEM_ERRORS as exc:
                out.errors.append(item_error(exc))
        return out

    def _ticker(
        self, item: Any, arg: dict[str, Any], received_ns: int, push_ts: object, rows: Store
    ) -> None:
        venue_symbol = arg["symbol"]
        get = item.get
        own = get("symbol")
        if own is not None and own != venue_symbol:
            raise ParseError("bad_shape", "symbol")
        mark = optional(get("markPrice"), positive, blank=True)
        index = optional(get("indexPrice"), positive, blank=True)
        funding = optional(get("fundingRate"), signed, blank=True)
        next_funding = optional(get("nextFundingTime"), _funding_time, blank=True)
        oi = optional(get("openInterest"), non_negative, blank=True)
        if (mark is None and index is None and funding is None and next_funding is None
                and oi is None):  # fmt: skip
            return
        item_ts = get("ts")
        ts = timestamp_any(push_ts if item_ts is None else item_ts)
        symbol, mult = self._resolve(venue_symbol)
        oi_base = None if oi is None else oi * mult
        if oi_base is not None and not oi_base < _INF:
            raise ParseError("bad_number", "conversion")
        # open interest in USD: base x mark, derived by the consumer
        rows.context(symbol, venue_symbol, mark, index, funding, next_funding, oi_base, None, ts,
                     received_ns)  # fmt: skip


def _funding_time(value: object) -> int | None:
    """``nextFundingTime``: ms since the epoch, a decimal string or an integer; 0: none."""
    if type(value) is str and value.isascii() and value.isdecimal() and len(value) <= 16:
        ms = int(value)
    elif type(value) is int:
        ms = value
    else:
        raise ParseError("bad_ts", repr(value)[:40])
    if not 0 <= ms < MAX_MS:
        raise ParseError("bad_ts", repr(value)[:40])
    return ms or None
