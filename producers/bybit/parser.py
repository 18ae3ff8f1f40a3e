"""Bybit v5 linear frames -> normalized events. Sans-I/O: bytes in, ``Parsed`` out.

Frames handled (docs/venues.md §2), dispatched on exact keys:

* ``{"topic": "<channel>.<SYMBOL>", "data": [...]}``; the channel (text before the first dot) is
  matched exactly against ``allLiquidation``, ``publicTrade`` and ``tickers`` and the answer cached
  per topic;
* ``{"op": "subscribe", "success": true|false, "ret_msg": ...}``: an ack is a control frame, a
  refusal raises ParseError ``subscribe_failed`` (the session counts and logs it);
* ``{"op": "ping"|"pong", ...}``: heartbeat replies, control frames.

Liquidations: ``S`` is the side of the liquidated POSITION ("When you receive a Buy update, this
means that a long position has been liquidated"), the reverse of Binance's order side; the order
side is not given (``order_side=None``). ``p`` is the bankruptcy price; the feed carries every
liquidation, batched every 500 ms: coverage ``aggregated``. Trades: ``S`` is the taker side and
``i`` the trade id. Items of one frame are independent: a bad item is skipped, its reason listed in
``Parsed.errors``.

Market context: ``tickers.<SYM>`` carries ONE object (``data`` is a dict, not a list): first a
``type: "snapshot"`` with every field, then ``type: "delta"`` messages with only the fields that
changed ("If a response param is not found in the message, then its value has not changed"). Each
message gives one ``MarketContext`` with exactly the fields it carries, the others None (the
consumer keeps the previous value): ``markPrice``, ``indexPrice``, ``fundingRate`` (a fraction per
interval, any sign), ``nextFundingTime`` (ms, as a string), ``openInterest`` (base units on linear,
times the multiplier) and ``openInterestValue`` (USDT, taken as USD). ``ts`` is the message's ``ts``.
An empty string (or ``nextFundingTime`` "0", as dated futures print it) means "not applicable":
None. A message carrying none of these fields (bid/ask or last-price only) gives no event. A bad
field, a ``data.symbol`` other than the topic's, or a ``type`` other than snapshot/delta fails the
whole frame (ParseError), since the frame is the item.
"""

from __future__ import annotations

from typing import Any, Final, TypeVar

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import Coverage, OrderSide, PriceKind, QtyUnit, Side
from monitor.core.symbols import SymbolTable
from producers.base import ConnectionPlan, Parsed
from producers.bybit.endpoints import ALL_LIQUIDATION, EXCHANGE, PING_FRAME, PUBLIC_TRADE, TICKERS
from producers.bybit.instruments import (
    CATEGORIES,
    INVERSE,
    category_of,
    page_url,
    parse_instruments,
)
from producers.bybit.instruments import PATH as INSTRUMENTS_PATH
from producers.bybit.instruments import query as instruments_query
from producers.bybit.subscriptions import plan_connections
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
    timestamp_ms,
)
from producers.framestore import Store

_T = TypeVar("_T")
_INF: Final = float("inf")

# Position side -> liquidated side (also the id's side text). "Buy" = a LONG was liquidated.
_POSITION_SIDES: Final = {"Buy": Side.LONG.value, "Sell": Side.SHORT.value}
_TAKER_SIDES: Final = {"Buy": OrderSide.BUY.value, "Sell": OrderSide.SELL.value}
_BASE: Final = QtyUnit.BASE.value
_CONTRACTS: Final = QtyUnit.CONTRACTS.value
_BANKRUPTCY: Final = PriceKind.BANKRUPTCY.value
_AGGREGATED: Final = Coverage.AGGREGATED.value
_CONTROL_OPS: Final = frozenset({"ping", "pong"})
_SUBSCRIBE_OPS: Final = frozenset({"subscribe", "unsubscribe"})
_TOPIC_CACHE_MAX: Final = 8192
_TICKER_TYPES: Final = frozenset({"snapshot", "delta"})
_TICKER_PREFIX_LEN: Final = len(TICKERS) + 1


class BybitAdapter:
    """Venue adapter for Bybit v5 public linear (see ``producers.base.VenueAdapter``)."""

    exchange = EXCHANGE

    def __init__(self, cfg: ExchangeConfig, symbols: SymbolTable | None = None) -> None:
        self._symbols = symbols if symbols is not None else SymbolTable(cfg.max_symbols)
        # venue symbol -> (canonical, multiplier, inverse)
        self._instruments: dict[str, tuple[str, float, bool]] = {}
        # channel -> (handler, per item): a per-item handler gets each element of the ``data``
        # list, a whole-message one (tickers: ``data`` is one object) gets the message.
        self._channels: dict[str, tuple[Any, bool]] = {
            ALL_LIQUIDATION: (self._liquidation, True),
            PUBLIC_TRADE: (self._trade, True),
            TICKERS: (self._ticker, False),
        }
        self._topics: dict[str, tuple[Any, bool]] = {}  # full topic -> channel entry
        self._all_liquidations = cfg.all_liquidations
        self.listed: tuple[str, ...] = ()  # every listed linear perpetual, once loaded
        self.listed_inverse: tuple[str, ...] = ()  # every listed inverse perpetual
        self._pages: dict[str, tuple[str, ...]] = {}  # category -> symbols of its pages so far
        self._next_page: str | None = None

    # ---- plan --------------------------------------------------------------------------------

    def connections(self, cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
        if not cfg.all_liquidations:
            return plan_connections(cfg, base_url)
        return plan_connections(cfg, base_url, self.listed, self.listed_inverse)

    # ---- instrument listing (producers.base.InstrumentSource) ---------------------------------

    def instrument_urls(self, rest_base: str) -> list[str]:
        """The linear and inverse listings, needed only to subscribe every listed symbol's
        liquidations (and to know an inverse contract's size)."""
        if not self._all_liquidations:
            return []
        return [f"{rest_base}{INSTRUMENTS_PATH}?{instruments_query(c)}" for c in CATEGORIES]

    def load_instruments(self, url: str, body: bytes) -> int:
        """One page of a category's listing; its first page (no cursor) starts a new listing."""
        category = category_of(url)
        listing = parse_instruments(body, category)
        for inst in listing.instruments:
            self._symbols.add(inst)
            self._instruments.pop(inst.venue_symbol, None)  # resolved again from the table
        pages = () if "&cursor=" not in url else self._pages.get(category, ())
        self._pages[category] = (*pages, *(i.venue_symbol for i in listing.instruments))
        self._next_page = page_url(url, listing.cursor) if listing.cursor else None
        if self._next_page is None:
            symbols = tuple(dict.fromkeys(self._pages[category]))
            if category == INVERSE:
                self.listed_inverse = symbols
            else:
                self.listed = symbols
        return len(listing.instruments)

    def next_instrument_url(self, url: str) -> str | None:
        """The next page of the listing after loading ``url``, or None when it was the last."""
        return self._next_page

    def heartbeat(self) -> str | None:
        return PING_FRAME

    # ---- parse -------------------------------------------------------------------------------

    def parse(
        self, frame: bytes | str, received_ns: int, into: ColumnStore | None = None
    ) -> Parsed:
        doc = json_object(frame)
        try:
            topic = doc.get("topic")
            if topic is not None:
                entry = self._topics.get(topic)
                if entry is None:
                    entry = self._topic_handler(topic)
                handler, per_item = entry
                data = doc["data"]
                if not per_item:
                    return handler(doc, data, received_ns, into)  # type: ignore[no-any-return]
                if type(data) is not list:
                    raise ParseError("bad_shape", "data")
                out, rows = Parsed.start(EXCHANGE, into)
                errors = out.errors
                for item in data:  # items are independent: a bad one is skipped and counted
                    try:
                        handler(item, received_ns, rows)
                    except ITEM_ERRORS as exc:
                        errors.append(item_error(exc))
                return out
            if "op" in doc:
                return self._op(doc)
            raise ParseError("unknown_event")
        except KeyError as exc:
            raise ParseError("missing_field", str(exc)) from None
        except (TypeError, AttributeError, ValueError) as exc:
            raise ParseError("bad_shape", type(exc).__name__) from None

    def _topic_handler(self, topic: object) -> tuple[Any, bool]:
        if type(topic) is not str:
            raise ParseError("bad_type", "topic")
        channel, _, symbol = topic.partition(".")
        entry = self._channels.get(channel)
        if entry is None or not symbol:
            raise ParseError("unknown_topic", topic[:60])
        if len(self._topics) < _TOPIC_CACHE_MAX:
            self._topics[topic] = entry
        return entry

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

    def _instrument(self, venue_symbol: object) -> tuple[str, float, bool]:
        """Resolve once (unknown symbol or symbol cap: ParseError), then serve from the cache."""
        if type(venue_symbol) is not str or not venue_symbol:
            raise ParseError("bad_type", "symbol")
        inst = self._symbols.resolve(venue_symbol)
        entry = (inst.symbol, inst.contract_multiplier, inst.inverse)
        self._instruments[venue_symbol] = entry
        return entry

    def _liquidation(self, item: dict[str, Any], received_ns: int, rows: Store) -> None:
        venue_symbol = item["s"]
        side = _POSITION_SIDES.get(item["S"])
        if side is None:
            raise ParseError("bad_side", str(item["S"])[:20])
        v = item["v"]
        p = item["p"]
        if type(v) is str and type(p) is str:  # decimal strings: positive() inlined
            try:
                qty_raw = float(v)
                price = float(p)
            except ValueError:
                raise ParseError("bad_number", "v/p") from None
            if not (0.0 < qty_raw < _INF and 0.0 < price < _INF):  # NaN fails too
                raise ParseError("bad_number", "v/p")
        else:
            qty_raw = positive(v)
            price = positive(p)
        ts = item["T"]
        if type(ts) is not int or ts <= 0:  # timestamp_ms inlined
            raise ParseError("bad_ts", repr(ts)[:40])
        symbol, mult, inverse = self._instruments.get(venue_symbol) or self._instrument(
            venue_symbol
        )
        if inverse:  # ``v`` is contracts of ``mult`` USD (inverse perpetuals, their own socket)
            usd = qty_raw * mult
            qty_base, unit = usd / price, _CONTRACTS
        else:
            qty_base, unit = qty_raw * mult, _BASE
            usd = qty_base * price
        # allLiquidation items carry no id: identical items of one push are ranked
        rows.liquidation(
            symbol, venue_symbol, side, None, price, _BANKRUPTCY, qty_raw, unit, mult, qty_base,
            usd, _AGGREGATED, ts, received_ns, (venue_symbol, ts, side, qty_raw, price), True,
        )  # fmt: skip

    def _trade(self, item: dict[str, Any], received_ns: int, rows: Store) -> None:
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
        if type(v) is str and type(p) is str:  # decimal strings: qty_price inlined
            try:
                qty_raw = float(v)
                price = float(p)
            except ValueError:
                raise ParseError("bad_number", "v/p") from None
            if not (0.0 < qty_raw < _INF and 0.0 < price < _INF):  # NaN fails too
                raise ParseError("bad_number", "v/p")
        else:
            qty_raw, price = qty_price(v, p, "v/p")
        if type(ts) is not int or ts <= 0:
            raise ParseError("bad_ts", "T")
        if type(trade_id) is not str or not trade_id:
            raise ParseError("bad_type", "i")
        mult = inst[1]  # linear only: configured symbols (trades, tickers) are linear
        qty_base = qty_raw * mult
        rows.trade(
            inst[0], venue_symbol, trade_id, taker, price, qty_raw, _BASE, mult, qty_base,
            qty_base * price, None, ts, received_ns,
        )  # fmt: skip

    def _ticker(
        self, doc: dict[str, Any], data: object, received_ns: int, into: ColumnStore | None
    ) -> Parsed:
        """One ``tickers.<SYM>`` message (snapshot or delta) -> at most one context row."""
        if type(data) is not dict:
            raise ParseError("bad_shape", "data")
        if doc["type"] not in _TICKER_TYPES:
            raise ParseError("bad_type", "type")
        ts = timestamp_ms(doc["ts"])
        venue_symbol = data["symbol"]
        if type(venue_symbol) is not str or venue_symbol != doc["topic"][_TICKER_PREFIX_LEN:]:
            raise ParseError("bad_shape", "symbol")
        get = data.get
        mark = optional(get("markPrice"), positive, blank=True)
        index = optional(get("indexPrice"), positive, blank=True)
        funding = optional(get("fundingRate"), signed, blank=True)
        next_funding = optional(get("nextFundingTime"), _funding_time, blank=True)
        oi = optional(get("openInterest"), non_negative, blank=True)
        oi_value = optional(get("openInterestValue"), non_negative, blank=True)
        if (mark is None and index is None and funding is None and next_funding is None
                and oi is None and oi_value is None):  # fmt: skip
            return Parsed()
        symbol, mult, _ = self._instruments.get(venue_symbol) or self._instrument(venue_symbol)
        out, rows = Parsed.start(EXCHANGE, into)
        rows.context(symbol, venue_symbol, mark, index, funding, next_funding,
                     None if oi is None else oi * mult, oi_value, ts, received_ns)  # fmt: skip
        return out


def _funding_time(value: object) -> int | None:
    """``nextFundingTime``: ms since the epoch as a decimal string (or integer); "0": none."""
    if type(value) is str and value.isdecimal() and value.isascii():
        ms = int(value)
    elif type(value) is int:
        ms = value
    else:
        raise ParseError("bad_ts", repr(value)[:40])
    if not 0 <= ms < MAX_MS:
        raise ParseError("bad_ts", repr(value)[:40])
    return ms or None
