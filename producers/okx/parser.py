"""OKX v5 public frames -> normalized events. Sans-I/O: bytes in, ``Parsed`` out.

Frames handled (docs/venues.md §3), dispatched on exact keys:

* pushes ``{"arg": {"channel": ...}, "data": [...]}``; ``arg.channel`` is matched exactly against
  ``liquidation-orders``, ``trades``, ``mark-price``, ``funding-rate`` and ``open-interest``;
* ``{"event": ...}``: ``subscribe``/``unsubscribe`` acks and ``channel-conn-count`` are control
  frames. ``error`` raises ParseError ``subscribe_failed`` when it refers to a subscription (our
  request id ``subN`` echoed, an ``arg``, or code 60013 invalid args / 60018 no such channel or
  instId), else ``venue_error``. ``notice`` code 64008 (service upgrade, disconnect in about 60 s)
  raises ParseError ``upgrade_notice``: base.py has no reconnect request, so **the session should
  map that reason to a proactive reconnect**; other notices raise ``notice``;
* the text ``pong`` answering our text ``ping``: a control frame.

Liquidations: every item of ``data`` and every entry of its ``details`` is one event (ccxt keeps
only ``details[0]``). ``posSide`` long/short is the liquidated position; for ``net`` (one-way mode)
it is inferred from the order ``side`` (sell => a long was liquidated). ``sz`` is in contracts,
converted through the instrument (linear: ctVal x ctMult base per contract; inverse: USD per
contract). ``bkPx`` is the bankruptcy price. OKX documents the channel as sampled: at most one
liquidation order per contract per second ("not the total number of liquidations"): coverage
``sampled_per_contract_1s``. Its first push after a subscribe can carry orders from before the
subscription (a push whose ``ts`` precedes the subscribe, seen in a ccxt pull request's log;
tardis-node skips that first push). Items carry no id, but the id built from them is deterministic,
so an order already counted is dropped by the producer's duplicate filter (same process) or the
consumer's applied-id window (after a restart; rebuilt from Kafka history); an order never seen
(it happened while disconnected) is counted once. No rule compares the venue's ``ts`` with the
local clock: clock skew, or a replayed recording, would drop genuine orders. Trades: ``side`` is the taker side, ``tradeId`` the
id, ``sz`` contracts. Quantities need the instrument list (``InstrumentSource``): until it is loaded,
or for an instId it does not list, items are skipped as ``unknown_instrument``.

Market context (one ``MarketContext`` per data item, fields the channel does not carry are None;
``ts`` is the item's ``ts``): ``mark-price`` ``markPx``; ``funding-rate`` ``fundingRate`` (the
current period's rate, a signed fraction) and ``fundingTime`` (the settlement it is paid at) as
``next_funding_ms`` (``nextFundingTime`` is the settlement after that one, not kept);
``open-interest`` ``oiCcy`` (base coin) and ``oiUsd``. Without ``oiCcy`` (or "") the base amount
is ``oi`` contracts x ctVal x ctMult for a linear swap (None for an inverse one, whose contracts
are USD); without ``oiUsd`` the USD amount is ``oi`` x ctVal x ctMult for an inverse swap (None
for a linear one: the item has no price).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import Coverage, OrderSide, PriceKind, QtyUnit, Side
from monitor.core.symbols import Instrument, SymbolTable
from producers.base import ConnectionPlan, Parsed
from producers.columns import ColumnStore
from producers.events import (
    ITEM_ERRORS,
    finite,
    item_error,
    json_object,
    non_negative,
    positive,
    qty_price,
    signed,
)
from producers.framestore import Store
from producers.okx import instruments
from producers.okx.endpoints import (
    EXCHANGE,
    FUNDING_RATE,
    LIQUIDATION_ORDERS,
    MARK_PRICE,
    OPEN_INTEREST,
    PING_FRAME,
    PONG_FRAME,
    SUBSCRIBE_ID_PREFIX,
    TRADES,
    UPGRADE_NOTICE_CODE,
)
from producers.okx.subscriptions import plan_connections

_INF: Final = float("inf")
_PONG_BYTES: Final = PONG_FRAME.encode()

_ORDER_SIDES: Final = {"buy": OrderSide.BUY.value, "sell": OrderSide.SELL.value}
_POSITION_SIDES: Final = {"long": Side.LONG.value, "short": Side.SHORT.value}
_NET: Final = "net"
# One-way (net) positions: the forced order closes the position, so a SELL closes a LONG.
_NET_LIQUIDATED: Final = {
    OrderSide.SELL.value: Side.LONG.value,
    OrderSide.BUY.value: Side.SHORT.value,
}
_CONTRACTS: Final = QtyUnit.CONTRACTS.value
_BANKRUPTCY: Final = PriceKind.BANKRUPTCY.value
_SAMPLED: Final = Coverage.SAMPLED_PER_CONTRACT_1S.value
_CONTROL_EVENTS: Final = ("subscribe", "unsubscribe", "channel-conn-count")
_SUBSCRIPTION_ERROR_CODES: Final = ("60013", "60018")  # invalid args; no such channel/instId
_MAX_TS_DIGITS: Final = 16


def timestamp_text(value: object) -> int:
    """An OKX timestamp: a decimal string of ms since the epoch, > 0 (OKX never sends numbers)."""
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


def _checked(qty_base: float, usd: float) -> tuple[float, float]:
    if not (0.0 < qty_base < _INF and 0.0 < usd < _INF):  # overflow/underflow of a conversion
        raise ParseError("bad_number", "conversion")
    return qty_base, usd


class OkxAdapter:
    """Venue adapter for OKX v5 public (``VenueAdapter`` and ``InstrumentSource``)."""

    exchange = EXCHANGE

    def __init__(self, cfg: ExchangeConfig, symbols: SymbolTable | None = None) -> None:
        self._symbols = (
            symbols if symbols is not None else SymbolTable(cfg.max_symbols, strict=True)
        )
        self._channels: dict[str, Any] = {
            LIQUIDATION_ORDERS: self._liquidation_frame,
            TRADES: self._trade_frame,
            MARK_PRICE: self._mark_price_frame,
            FUNDING_RATE: self._funding_rate_frame,
            OPEN_INTEREST: self._open_interest_frame,
        }

    # ---- plan and metadata -------------------------------------------------------------------

    def connections(self, cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
        return plan_connections(cfg, base_url)

    def heartbeat(self) -> str | None:
        return PING_FRAME

    def instrument_urls(self, rest_base: str) -> list[str]:
        return instruments.instrument_urls(rest_base)

    def load_instruments(self, url: str, body: bytes) -> int:
        fresh = instruments.parse_instruments(body)
        self._symbols.replace(fresh)
        return len(fresh)

    # ---- parse -------------------------------------------------------------------------------

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
                channel = arg["channel"]
                handler = self._channels.get(channel) if type(channel) is str else None
                if handler is None:
                    raise ParseError("unknown_channel", str(channel)[:40])
                if type(data) is not list:
                    raise ParseError("bad_shape", "data")
                out, rows = Parsed.start(EXCHANGE, into)
                handler(data, received_ns, rows, out.errors)
                return out
            event = doc.get("event")
            if event is not None:
                return self._event(doc, event)
            raise ParseError("unknown_event")
        except KeyError as exc:
            raise ParseError("missing_field", str(exc)) from None
        except (TypeError, AttributeError, ValueError) as exc:
            raise ParseError("bad_shape", type(exc).__name__) from None

    @staticmethod
    def _event(doc: dict[str, Any], event: object) -> Parsed:
        if event in _CONTROL_EVENTS:
            return Parsed(control=True)
        code = str(doc.get("code", ""))[:12]
        detail = f"{code} {str(doc.get('msg', ''))[:200]}"
        if event == "error":
            rid = doc.get("id")
            if (
                "arg" in doc
                or (type(rid) is str and rid.startswith(SUBSCRIBE_ID_PREFIX))
                or code in _SUBSCRIPTION_ERROR_CODES
            ):
                raise ParseError("subscribe_failed", detail)
            raise ParseError("venue_error", detail)
        if event == "notice":
            if code == UPGRADE_NOTICE_CODE:
                raise ParseError("upgrade_notice", detail)
            raise ParseError("notice", detail)
        if event == "channel-conn-count-error":
            raise ParseError("venue_error", detail)
        raise ParseError("unknown_event", str(event)[:40])

    def _instrument(self, inst_id: object) -> Instrument:
        if type(inst_id) is not str or not inst_id:
            raise ParseError("bad_type", "instId")
        inst = self._symbols.get(inst_id)
        if inst is None:
            raise ParseError("unknown_instrument", inst_id[:40])
        return inst

    # ---- liquidation-orders ------------------------------------------------------------------

    def _liquidation_frame(
        self, data: list[Any], received_ns: int, rows: Store, errors: list[str]
    ) -> None:
        for item in data:
            details: Any = None
            try:
                details = item["details"]
                if type(details) is not list:
                    raise ParseError("bad_shape", "details")
                inst_id = item["instId"]
                inst = self._instrument(inst_id)
            except ITEM_ERRORS as exc:
                # The whole item is lost: one reason per liquidation it carried.
                n = len(details) if type(details) is list and details else 1
                errors.extend([item_error(exc)] * n)
                continue
            for d in details:
                try:
                    self._liquidation(inst_id, inst, d, received_ns, rows)
                except ITEM_ERRORS as exc:
                    errors.append(item_error(exc))

    @staticmethod
    def _liquidation(inst_id: str, inst: Instrument, d: Any, received_ns: int, rows: Store) -> None:
        order_side = _ORDER_SIDES.get(d["side"])
        if order_side is None:
            raise ParseError("bad_side", str(d["side"])[:20])
        pos = d["posSide"]
        liquidated = _NET_LIQUIDATED[order_side] if pos == _NET else _POSITION_SIDES.get(pos)
        if liquidated is None:
            raise ParseError("bad_side", str(pos)[:20])
        qty_raw = positive(d["sz"])
        price = positive(d["bkPx"])
        ts = timestamp_text(d["ts"])
        qty_base, usd = _checked(*inst.convert(qty_raw, price))
        # items carry no id: identical details of one push are ranked
        rows.liquidation(
            inst.symbol, inst_id, liquidated, order_side, price, _BANKRUPTCY, qty_raw,
            _CONTRACTS, inst.contract_multiplier, qty_base, usd, _SAMPLED, ts, received_ns,
            (inst_id, ts, liquidated, qty_raw, price), True,
        )  # fmt: skip

    # ---- trades ------------------------------------------------------------------------------

    def _trade_frame(
        self, data: list[Any], received_ns: int, rows: Store, errors: list[str]
    ) -> None:
        trade = self._trade
        for item in data:
            try:
                trade(item, received_ns, rows)
            except ITEM_ERRORS as exc:
                errors.append(item_error(exc))

    def _trade(self, item: Any, received_ns: int, rows: Store) -> None:
        inst_id = item["instId"]
        inst = self._symbols.get(inst_id) if type(inst_id) is str else None
        if inst is None:
            inst = self._instrument(inst_id)  # raises the precise reason
        taker = _ORDER_SIDES.get(item["side"])
        if taker is None:
            raise ParseError("bad_side", str(item["side"])[:20])
        sz = item["sz"]
        px = item["px"]
        if type(sz) is str and type(px) is str:  # decimal strings: qty_price inlined
            try:
                qty_raw = float(sz)
                price = float(px)
            except ValueError:
                raise ParseError("bad_number", "sz/px") from None
            if not (0.0 < qty_raw < _INF and 0.0 < price < _INF):  # NaN fails too
                raise ParseError("bad_number", "sz/px")
        else:
            qty_raw, price = qty_price(sz, px, "sz/px")
        ts_text = item["ts"]  # fast path for the usual digit string; else timestamp_text decides
        if not (
            type(ts_text) is str
            and 0 < len(ts_text) <= _MAX_TS_DIGITS
            and ts_text.isascii()
            and ts_text.isdigit()
            and (ts := int(ts_text)) > 0
        ):
            ts = timestamp_text(ts_text)
        trade_id = item["tradeId"]
        if type(trade_id) is not str or not trade_id:
            raise ParseError("bad_type", "tradeId")
        if inst.inverse:
            qty_base, usd = _checked(*inst.convert(qty_raw, price))
        else:
            qty_base = qty_raw * inst.contract_multiplier
            usd = qty_base * price
            if not (0.0 < qty_base < _INF and 0.0 < usd < _INF):
                raise ParseError("bad_number", "conversion")
        rows.trade(
            inst.symbol, inst_id, trade_id, taker, price, qty_raw, _CONTRACTS,
            inst.contract_multiplier, qty_base, usd, None, ts, received_ns,
        )  # fmt: skip

    # ---- market context: mark-price, funding-rate, open-interest ------------------------------

    def _mark_price_frame(
        self, data: list[Any], received_ns: int, rows: Store, errors: list[str]
    ) -> None:
        self._context_frame(data, received_ns, rows, errors, _mark_price)

    def _funding_rate_frame(
        self, data: list[Any], received_ns: int, rows: Store, errors: list[str]
    ) -> None:
        self._context_frame(data, received_ns, rows, errors, _funding_rate)

    def _open_interest_frame(
        self, data: list[Any], received_ns: int, rows: Store, errors: list[str]
    ) -> None:
        self._context_frame(data, received_ns, rows, errors, _open_interest)

    def _context_frame(
        self, data: list[Any], received_ns: int, rows: Store, errors: list[str],
        fields: _ContextFields,
    ) -> None:  # fmt: skip
        for item in data:
            try:
                inst_id = item["instId"]
                inst = self._instrument(inst_id)
                mark, funding, next_funding, oi_base, oi_usd = fields(item, inst)
                ts = timestamp_text(item["ts"])
            except ITEM_ERRORS as exc:
                errors.append(item_error(exc))
                continue
            # index price: on index-tickers, not subscribed
            rows.context(inst.symbol, inst_id, mark, None, funding, next_funding, oi_base,
                         oi_usd, ts, received_ns)  # fmt: skip


# (mark_price, funding_rate, next_funding_ms, open_interest_base, open_interest_usd)
_Context = tuple[float | None, float | None, int | None, float | None, float | None]
_ContextFields = Callable[[Any, Instrument], _Context]


def _mark_price(item: Any, inst: Instrument) -> _Context:
    return positive(item["markPx"]), None, None, None, None


def _funding_rate(item: Any, inst: Instrument) -> _Context:
    rate = signed(item["fundingRate"], "fundingRate")
    return None, rate, timestamp_text(item["fundingTime"]), None, None


def _open_interest(item: Any, inst: Instrument) -> _Context:
    contracts = non_negative(item["oi"])
    ccy, usd = item.get("oiCcy"), item.get("oiUsd")
    mult = inst.contract_multiplier
    if ccy is not None and ccy != "":
        base: float | None = non_negative(ccy)
    else:  # linear: contracts of ctVal x ctMult base; inverse: of USD, no price here
        base = None if inst.inverse else finite(contracts * mult)
    if usd is not None and usd != "":
        usd_amount: float | None = non_negative(usd)
    else:
        usd_amount = finite(contracts * mult) if inst.inverse else None
    return None, None, None, base, usd_amount
