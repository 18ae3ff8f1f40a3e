"""HTX USDT-margined swap frames -> normalized events. Sans-I/O: gzip bytes in, ``Parsed`` out.

Every server frame is GZIP-compressed binary; ``parse`` inflates it (bounded, ``MAX_JSON_BYTES``)
and decodes once with orjson. A text frame, or bytes that are not one complete gzip stream, raise
ParseError ``bad_gzip``. Frames handled (docs/venues.md §6), dispatched on exact keys:

* market data and ws_index: ``{"ch": "market.<CODE>.trade.detail", "tick": {"data": [...]}}``,
  ``{"ch": "market.<CODE>.mark_price.1min", "tick": {...}}`` and ``{"ch":
  "market.<CODE>.index.1min", "tick": {...}}``; ``{"ping": n}`` -> reply ``{"pong": n}``; sub acks
  ``{"id", "status": "ok", "subbed"}`` (control), ``"status": "error"`` -> ParseError
  ``subscribe_failed``;
* notification: ``{"op": "notify", "topic": "public.<CODE>.liquidation_orders" |
  "public.<CODE>.funding_rate", "data": [...]}``; ``{"op": "ping", "ts": "..."}`` -> reply
  ``{"op": "pong", "ts": "..."}``; sub acks ``{"op": "sub", "err-code": 0}`` (control), a non-zero
  ``err-code`` -> ``subscribe_failed``; ``{"op": "error"}`` / ``{"op": "close"}`` ->
  ``venue_error``.

Liquidations: ``direction`` is the liquidation ORDER's side and ``offset`` must be ``close``: sell
closes a long (long liquidated), buy closes a short. ``amount`` is base coin, ``volume`` contracts,
``trade_turnover`` quote (USDT, taken at par): qty_base = ``amount`` (qty_raw, unit base, factor
1), notional = ``trade_turnover``, price = ``price`` (bankruptcy). Decision: ``volume`` x the
instrument's ``contract_size`` must equal ``amount`` (relative 1e-6); otherwise the item is skipped
as ``qty_mismatch`` (counted): three venue numbers that disagree mean stale metadata or a changed
field meaning, and the monitor does not guess which. Coverage ``partial_unspecified``: HTX documents
no sampling, but does not promise completeness either (a 2026 probe saw ~0.23 events/min on the
wildcard, low for the venue), so downstream must not treat it as a total.

Trades: here ``amount`` = CONTRACTS and ``quantity`` = coin (swapped names vs. the liquidation
topic). qty_raw = ``amount`` (unit contracts) x ``contract_size`` = qty_base (cross-checked against
``quantity`` the same way), notional = qty_base x price; ``direction`` is the taker side, ``id`` the
trade id. Every topic needs the instrument list (strict table): before it is loaded, items are
skipped as ``unknown_instrument``.

Market context (one ``MarketContext`` per item, fields the topic does not carry are None):

* ``market.<CODE>.mark_price.1min`` (ws_index; any documented period is parsed the same way):
  the kline's ``close`` (a decimal string) is the latest mark price; the frame's ``ts`` (ms, a
  JSON integer) is the event time (the kline ``id`` is its start in seconds, not the time of the
  price). The tick is the item: a bad tick is skipped with its reason, the frame is not refused.
* ``market.<CODE>.index.1min`` (ws_index): likewise ``close`` = the index price.
* ``public.<CODE>.funding_rate`` (notification): per item ``funding_rate`` (decimal string, a
  signed fraction per 8-hour period: the current period's rate, settled at its end) and
  ``settlement_time`` (ms as a decimal string, or an integer) = ``next_funding_ms``; the frame's
  ``ts`` is the event time (``funding_time``, "current funding time", and the deprecated
  ``estimated_rate`` are not kept). ``contract_code`` must be the topic's contract
  (``symbol_mismatch``).
* open interest: REST polls (``PollSource``, ``producers.htx.open_interest``): base = ``amount``,
  USD = ``value``.
"""

from __future__ import annotations

import zlib
from typing import Any, Final

import orjson

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import Coverage, Event, OrderSide, PriceKind, QtyUnit, Side
from monitor.core.symbols import SymbolTable
from producers.base import ConnectionPlan, Parsed
from producers.columns import ColumnStore
from producers.events import (
    ITEM_ERRORS,
    item_error,
    json_object,
    positive,
    qty_price,
    signed,
    timestamp_ms,
)
from producers.framestore import Store
from producers.htx import instruments
from producers.htx.endpoints import (
    EXCHANGE,
    FUNDING_RATE,
    INDEX,
    KLINE_PERIODS,
    MARK_PRICE,
    MAX_JSON_BYTES,
)
from producers.htx.open_interest import open_interest_urls, parse_open_interest
from producers.htx.subscriptions import contract_codes, plan_connections

_dumps = orjson.dumps
_decompressobj = zlib.decompressobj
_zlib_error = zlib.error
_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS

# Liquidation order direction (offset "close") -> (liquidated side, order side).
_LIQ_SIDES: Final = {
    "sell": (Side.LONG.value, OrderSide.SELL.value),
    "buy": (Side.SHORT.value, OrderSide.BUY.value),
}
_TAKER_SIDES: Final = {"buy": OrderSide.BUY.value, "sell": OrderSide.SELL.value}
_BASE: Final = QtyUnit.BASE.value
_CONTRACTS: Final = QtyUnit.CONTRACTS.value
_BANKRUPTCY: Final = PriceKind.BANKRUPTCY.value
_COVERAGE: Final = Coverage.PARTIAL.value
_QTY_RTOL: Final = 1e-6  # venue amount vs. contracts x contract_size
_SUB_OPS: Final = frozenset({"sub", "unsub"})
_TOPIC_CACHE_MAX: Final = 8192
_MAX_MS_DIGITS: Final = 16


def inflate(frame: bytes | str) -> bytes:
    """One gzip frame -> its JSON bytes; ParseError ``bad_gzip`` / ``frame_too_large``."""
    if type(frame) is not bytes:
        raise ParseError("bad_gzip", "text frame")
    d = _decompressobj(_GZIP_WBITS)
    try:
        raw = d.decompress(frame, MAX_JSON_BYTES)
    except _zlib_error:
        raise ParseError("bad_gzip") from None
    if d.unconsumed_tail:
        raise ParseError("frame_too_large")
    if not d.eof:
        raise ParseError("bad_gzip", "truncated")
    return raw


class HtxAdapter:
    """Venue adapter for HTX USDT-margined swaps (``producers.base.VenueAdapter`` and
    ``InstrumentSource``)."""

    exchange = EXCHANGE

    def __init__(self, cfg: ExchangeConfig, symbols: SymbolTable | None = None) -> None:
        self._symbols = (
            symbols if symbols is not None else SymbolTable(cfg.max_symbols, strict=True)
        )
        self._instruments: dict[str, tuple[str, float]] = {}  # code -> (canonical, contract_size)
        # ch/topic -> (handler, code, per item): a per-item handler gets each element of the
        # frame's list (``tick.data`` / ``data``), a whole-frame one (context) gets the frame.
        self._topics: dict[str, tuple[Any, str, bool]] = {}
        self._routes: dict[tuple[str, str], tuple[Any, bool]] = {
            ("market", "trade.detail"): (self._trade, True),
            ("public", "liquidation_orders"): (self._liquidation, True),
            ("public", FUNDING_RATE): (self._funding_rate, False),
        }
        for period in KLINE_PERIODS:  # the close of the current kline of any period: the latest
            self._routes["market", f"{MARK_PRICE}.{period}"] = (self._mark_price, False)
            self._routes["market", f"{INDEX}.{period}"] = (self._index_price, False)
        self._poll_codes = contract_codes(cfg.symbols)

    # ---- plan --------------------------------------------------------------------------------

    def connections(self, cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
        return plan_connections(cfg, base_url)

    def heartbeat(self) -> str | None:
        return None  # the server pings (JSON); parse() returns the pongs as replies

    def instrument_urls(self, rest_base: str) -> list[str]:
        return instruments.instrument_urls(rest_base)

    def load_instruments(self, url: str, body: bytes) -> int:
        fresh = instruments.parse_contract_info(body)
        self._symbols.replace(fresh)
        self._instruments.clear()
        return len(fresh)

    # ---- REST polls (producers.poller.PollSource): open interest -------------------------------

    def poll_urls(self, rest_base: str) -> list[str]:
        return open_interest_urls(rest_base, self._poll_codes)

    def parse_poll(self, url: str, body: bytes, received_ns: int) -> list[Event]:
        return list(parse_open_interest(body, received_ns, self._symbols))

    # ---- parse -------------------------------------------------------------------------------

    def parse(
        self, frame: bytes | str, received_ns: int, into: ColumnStore | None = None
    ) -> Parsed:
        doc = json_object(inflate(frame))
        try:
            ch = doc.get("ch")
            if ch is not None:
                handler, code, per_item = self._topics.get(ch) or self._route(ch, "market")
                if not per_item:
                    return handler(doc, code, received_ns, into)  # type: ignore[no-any-return]
                tick = doc["tick"]
                return self._items(handler, code, tick["data"], received_ns, into)
            if "ping" in doc:
                return Parsed(
                    replies=[_dumps({"pong": _token(doc["ping"])}).decode()], control=True
                )
            op = doc.get("op")
            if op == "notify":
                topic = doc["topic"]
                handler, code, per_item = self._topics.get(topic) or self._route(topic, "public")
                if not per_item:
                    return handler(doc, code, received_ns, into)  # type: ignore[no-any-return]
                return self._items(handler, code, doc["data"], received_ns, into)
            if op is not None:
                return self._op(op, doc)
            if "status" in doc:
                return self._status(doc)
            raise ParseError("unknown_event")
        except KeyError as exc:
            raise ParseError("missing_field", str(exc)) from None
        except (TypeError, AttributeError, ValueError) as exc:
            raise ParseError("bad_shape", type(exc).__name__) from None

    def _route(self, topic: object, head: str) -> tuple[Any, str, bool]:
        """``market.<CODE>.trade.detail`` / ``.mark_price.1min`` / ``.index.1min`` (``ch``) and
        ``public.<CODE>.liquidation_orders`` / ``.funding_rate`` (``topic``) -> handler."""
        if type(topic) is not str:
            raise ParseError("bad_type", "topic")
        first, _, rest = topic.partition(".")
        code, _, last = rest.partition(".")
        route = self._routes.get((first, last)) if first == head else None
        if route is None or not code or code == "*":
            raise ParseError("unknown_topic", topic[:60])
        entry = (route[0], code, route[1])
        if len(self._topics) < _TOPIC_CACHE_MAX:
            self._topics[topic] = entry
        return entry

    @staticmethod
    def _items(
        handler: Any, code: str, data: Any, received_ns: int, into: ColumnStore | None
    ) -> Parsed:
        if type(data) is not list:
            raise ParseError("bad_shape", "data")
        out, rows = Parsed.start(EXCHANGE, into)
        for item in data:
            try:
                handler(item, code, received_ns, rows)
            except ITEM_ERRORS as exc:
                out.errors.append(item_error(exc))
        return out

    @staticmethod
    def _op(op: object, doc: dict[str, Any]) -> Parsed:
        if op == "ping":  # notification endpoint heartbeat
            reply = _dumps({"op": "pong", "ts": _token(doc["ts"])}).decode()
            return Parsed(replies=[reply], control=True)
        if op in _SUB_OPS:
            code = doc.get("err-code")
            if code == 0 and type(code) is int:
                return Parsed(control=True)
            raise ParseError("subscribe_failed", f"{code}: {doc.get('err-msg')}"[:200])
        if op in ("error", "close"):
            raise ParseError(
                "venue_error", f"{op} {doc.get('err-code')}: {doc.get('err-msg')}"[:200]
            )
        if op == "pong":
            return Parsed(control=True)
        raise ParseError("unknown_op", str(op)[:40])

    @staticmethod
    def _status(doc: dict[str, Any]) -> Parsed:
        if doc["status"] == "ok":  # {"id": .., "status": "ok", "subbed": .., "ts": ..}
            return Parsed(control=True)
        raise ParseError("subscribe_failed", f"{doc.get('err-code')}: {doc.get('err-msg')}"[:200])

    def _instrument(self, code: str) -> tuple[str, float]:
        inst = self._symbols.resolve(code)  # strict: unknown_instrument until loaded
        entry = (inst.symbol, inst.contract_multiplier)
        self._instruments[code] = entry
        return entry

    def _liquidation(self, item: dict[str, Any], code: str, received_ns: int, rows: Store) -> None:
        venue_symbol = item["contract_code"]
        if venue_symbol != code:
            raise ParseError("symbol_mismatch", str(venue_symbol)[:40])
        side = _LIQ_SIDES.get(item["direction"])
        if side is None:
            raise ParseError("bad_side", str(item["direction"])[:20])
        if item["offset"] != "close":
            raise ParseError("bad_offset", str(item["offset"])[:20])
        amount = positive(item["amount"])
        volume = positive(item["volume"])
        notional = positive(item["trade_turnover"])
        price = positive(item["price"])
        ts = timestamp_ms(item["created_at"])
        symbol, size = self._instruments.get(code) or self._instrument(code)
        if abs(volume * size - amount) > _QTY_RTOL * amount:
            raise ParseError("qty_mismatch", f"{volume} x {size} != {amount}")
        # liquidation_orders items carry no id: identical items of one push are ranked
        rows.liquidation(
            symbol, code, side[0], side[1], price, _BANKRUPTCY, amount, _BASE, 1.0, amount,
            notional, _COVERAGE, ts, received_ns, (code, ts, side[0], amount, price), True,
        )  # fmt: skip

    def _trade(self, item: dict[str, Any], code: str, received_ns: int, rows: Store) -> None:
        # The hot path: checks inlined (same rules as producers.events.positive/timestamp_ms).
        a = item["amount"]  # contracts
        p = item["price"]
        q = item["quantity"]  # coin
        ts = item["ts"]
        trade_id = item["id"]
        taker = _TAKER_SIDES.get(item["direction"])
        inst = self._instruments.get(code) or self._instrument(code)
        if taker is None:
            raise ParseError("bad_side", str(item["direction"])[:20])
        qty_raw, price = qty_price(a, p, "amount/price")
        if type(ts) is not int or ts <= 0:
            raise ParseError("bad_ts", "ts")
        if type(trade_id) is not int or trade_id < 0:
            raise ParseError("bad_type", "id")
        size = inst[1]
        qty_base = qty_raw * size
        if type(q) is bool or not abs(qty_base - q) <= _QTY_RTOL * qty_base:  # NaN/str fail
            raise ParseError("qty_mismatch", "amount x contract_size != quantity")
        rows.trade(
            inst[0], code, str(trade_id), taker, price, qty_raw, _CONTRACTS, size, qty_base,
            qty_base * price, None, ts, received_ns,
        )  # fmt: skip

    # ---- market context: mark price and index klines, funding rate ----------------------------

    def _symbol(self, code: str) -> str:
        return (self._instruments.get(code) or self._instrument(code))[0]

    def _mark_price(
        self, doc: dict[str, Any], code: str, received_ns: int, into: ColumnStore | None
    ) -> Parsed:
        """``market.<CODE>.mark_price.1min``: one tick, its ``close`` the mark price."""
        return self._kline(doc, code, received_ns, into, mark=True)

    def _index_price(
        self, doc: dict[str, Any], code: str, received_ns: int, into: ColumnStore | None
    ) -> Parsed:
        """``market.<CODE>.index.1min``: one tick, its ``close`` the index price."""
        return self._kline(doc, code, received_ns, into, mark=False)

    def _kline(
        self, doc: dict[str, Any], code: str, received_ns: int, into: ColumnStore | None, *,
        mark: bool,
    ) -> Parsed:  # fmt: skip
        try:
            close = positive(doc["tick"]["close"])
            ts = timestamp_ms(doc["ts"])
            symbol = self._symbol(code)
        except ITEM_ERRORS as exc:
            return Parsed(errors=[item_error(exc)])
        out, rows = Parsed.start(EXCHANGE, into)
        rows.context(symbol, code, close if mark else None, None if mark else close, None, None,
                     None, None, ts, received_ns)  # fmt: skip
        return out

    def _funding_rate(
        self, doc: dict[str, Any], code: str, received_ns: int, into: ColumnStore | None
    ) -> Parsed:
        """``public.<CODE>.funding_rate``: every ``data`` item, stamped with the frame's ``ts``."""
        data = doc["data"]
        if type(data) is not list:
            raise ParseError("bad_shape", "data")
        ts = timestamp_ms(doc["ts"])
        out, rows = Parsed.start(EXCHANGE, into)
        for item in data:
            try:
                if item["contract_code"] != code:
                    raise ParseError("symbol_mismatch", str(item["contract_code"])[:40])
                rate = signed(item["funding_rate"], "funding_rate")
                settlement = ms_text(item["settlement_time"])
                symbol = self._symbol(code)
            except ITEM_ERRORS as exc:
                out.errors.append(item_error(exc))
                continue
            rows.context(symbol, code, None, None, rate, settlement, None, None, ts, received_ns)
        return out


def ms_text(value: object) -> int:
    """An HTX time in ms that may come as a decimal string (``"1603785600000"``, as the funding
    topic prints it) or a JSON integer; > 0 (``bool`` refused)."""
    if type(value) is str:
        if 0 < len(value) <= _MAX_MS_DIGITS and value.isascii() and value.isdigit():
            ms = int(value)
            if ms > 0:
                return ms
        raise ParseError("bad_ts", repr(value)[:40])
    return timestamp_ms(value)


def _token(value: object) -> object:
    """A heartbeat value to echo: an int or a string, as the server sent it."""
    if type(value) is int or type(value) is str:
        return value
    raise ParseError("bad_type", "ping")
