"""Kraken Futures frames -> normalized events. Sans-I/O: bytes in, ``Parsed`` out.

Frames handled (docs/venues.md §10), dispatched on exact keys:

* ``{"feed": "trade", "product_id": ..., "uid": ..., "side": ..., "type": ..., "seq": ..., "time":
  ..., "qty": ..., "price": ...}``: one trade per frame;
* ``{"feed": "trade_snapshot", "product_id": ..., "trades": [...]}``: the recent trades sent
  first after subscribing. They happened before we subscribed, some were probably already
  emitted before a reconnect, and their ``uid`` cannot be matched without unbounded state, so
  NOTHING is emitted from a snapshot: it only sets the product's sequence baseline (control);
* ``{"feed": "ticker", "product_id": ..., "time": ..., "markPrice": ..., ...}``: market context,
  one product per message (below);
* ``{"feed": "heartbeat", ...}``, ``{"event": "info" | "subscribed" | "unsubscribed", ...}``:
  control; ``{"event": "error" | "subscribed_failed", ...}``: ParseError ``subscribe_failed``.

Trades: ``side`` is the taker side; ``qty`` ("the quantity of the traded product") is base coin
for ``PF_`` products and contracts of 1 USD for ``PI_`` (inverse). ``type`` ``liquidation`` means a user was liquidated by this trade: the Trade has
``is_liquidation`` true and a Liquidation is emitted with side ``unknown`` and no order side (the
feed does not say which party was liquidated), price kind ``trade``, coverage ``trade_flag``.
Other types (``fill``, ``block``, ``termination``) are trades with ``is_liquidation`` false.

Sequence gaps: ``seq`` is assumed to number the trade messages of one product (UNVERIFIED: the
docs call it the subscription's message sequence number); a jump of more than one counts the
messages in between (``Parsed.gaps``); a lower number is a replay, not a gap. The snapshot's
highest ``seq`` is the baseline, so nothing missed between snapshot and stream goes uncounted.

Market context: every ``ticker`` message carries all its fields ("even if the value of only a
single field has changed") and gives one ``MarketContext``; ``time`` (ms, an integer or integral
float) is its ``ts``. ``markPrice`` and ``index``; ``relative_funding_rate`` as ``funding_rate``:
the fraction of the price paid per funding interval (one hour: Kraken perpetuals settle funding
hourly; older documentation examples of ``PI_`` show 4-hour intervals). ``funding_rate`` in the
message is NOT a fraction but an absolute amount per contract (``PF_``: USD per base unit, about
``relative_funding_rate`` x the index; ``PI_``: base coin per 1-USD contract, about
``relative_funding_rate`` / the index) and is not kept, nor are the ``*_prediction`` estimates. Kraken leaves a funding field out when it is zero, so a perpetual's
ticker without ``relative_funding_rate`` means 0.0; for a dated future it is None.
``next_funding_rate_time`` is documented as "the time until next funding rate in milliseconds"
but the venue sends the absolute epoch ms of the next settlement: a value of at least
``_ABSOLUTE_MS`` (1e11, March 1973) is taken as epoch ms, a smaller one as a duration added to
``time``, 0 or absent as None; non-integral values are rounded to the ms. ``openInterest`` is in
contracts: base units for ``PF_``/``FF_`` (x the multiplier: ``open_interest_base``; the consumer
values it at the mark), USD for ``PI_``/``FI_`` (``open_interest_usd``; the base amount derived as
USD / ``markPrice`` of the same message). Bid/ask, volume, ``premium``, ``change`` are ignored. A
bad ticker is skipped with its reason in ``Parsed.errors``.
"""

from __future__ import annotations

import math
from typing import Any, Final, TypeVar

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import Coverage, OrderSide, PriceKind, QtyUnit, Side
from monitor.core.symbols import Instrument
from producers.base import ConnectionPlan, Parsed
from producers.columns import ColumnStore, ContextRow
from producers.events import (
    ITEM_ERRORS,
    MAX_MS,
    contract_open_interest,
    item_error,
    json_object,
    non_negative,
    optional,
    positive,
    qty_price,
    signed,
    timestamp_integral,
)
from producers.kraken.endpoints import EXCHANGE, HEARTBEAT, TICKER, TRADE, TRADE_SNAPSHOT
from producers.kraken.instruments import instrument_for
from producers.kraken.subscriptions import plan_connections

_SIDES: Final = {"buy": OrderSide.BUY.value, "sell": OrderSide.SELL.value}
_UNKNOWN: Final = Side.UNKNOWN.value
_TRADE_PRICE: Final = PriceKind.TRADE.value
_TRADE_FLAG: Final = Coverage.TRADE_FLAG.value
_TYPES: Final = frozenset({"fill", "liquidation", "termination", "block"})
_CONTROL_EVENTS: Final = frozenset({"info", "subscribed", "unsubscribed", "alert"})
_FAILED_EVENTS: Final = frozenset({"error", "subscribed_failed", "unsubscribed_failed"})
_ABSOLUTE_MS: Final = 10**11  # next_funding_rate_time at or above this: epoch ms, else a duration

_T = TypeVar("_T")


class KrakenAdapter:
    """Venue adapter for Kraken Futures (see ``producers.base.VenueAdapter``)."""

    exchange = EXCHANGE

    def __init__(self, cfg: ExchangeConfig) -> None:
        self._max_instruments = cfg.max_symbols
        self._instruments: dict[str, tuple[Instrument, str]] = {}  # product -> (instrument, unit)
        self._last_seq: dict[str, int] = {}

    def connections(self, cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
        return plan_connections(cfg, base_url)

    def heartbeat(self) -> str | None:
        return None  # protocol pings from the session; see producers.kraken.endpoints

    def parse(
        self, frame: bytes | str, received_ns: int, into: ColumnStore | None = None
    ) -> Parsed:
        doc = json_object(frame)
        try:
            feed = doc.get("feed")
            event = doc.get("event")
            if event is None:
                if feed == TRADE:
                    return self._trade(doc, received_ns, into)
                if feed == TICKER:
                    return self._ticker(doc, received_ns, into)
                if feed == TRADE_SNAPSHOT:
                    return self._snapshot(doc)
                if feed == HEARTBEAT:
                    return Parsed(control=True)
                raise ParseError("unknown_feed" if feed is not None else "unknown_event")
            if event in _CONTROL_EVENTS:
                return Parsed(control=True)
            if event in _FAILED_EVENTS:
                raise ParseError("subscribe_failed", str(doc.get("message"))[:200])
            raise ParseError("unknown_event", str(event)[:40])
        except KeyError as exc:
            raise ParseError("missing_field", str(exc)) from None
        except (TypeError, AttributeError, ValueError) as exc:
            raise ParseError("bad_shape", type(exc).__name__) from None

    def _instrument(self, product_id: object) -> tuple[Instrument, str]:
        entry = self._instruments.get(product_id) if type(product_id) is str else None
        if entry is not None:
            return entry
        if type(product_id) is not str:
            raise ParseError("bad_type", "product_id")
        inst = instrument_for(product_id)
        if inst is None:
            raise ParseError("unknown_instrument", product_id[:60])
        if len(self._instruments) >= self._max_instruments:
            raise ParseError("symbol_cap", product_id[:60])
        # ``qty`` is "the quantity of the traded product": PI_ contracts of 1 USD, PF_ base units
        entry = (inst, (QtyUnit.CONTRACTS if inst.inverse else QtyUnit.BASE).value)
        self._instruments[product_id] = entry
        return entry

    def _snapshot(self, doc: dict[str, Any]) -> Parsed:
        inst, _ = self._instrument(doc["product_id"])
        trades = doc["trades"]
        if type(trades) is not list:
            raise ParseError("bad_shape", "trades")
        seqs = [t["seq"] for t in trades if type(t) is dict and type(t.get("seq")) is int]
        if seqs:
            self._last_seq[inst.venue_symbol] = max(seqs)
        return Parsed(control=True)

    def _trade(self, doc: dict[str, Any], received_ns: int, into: ColumnStore | None) -> Parsed:
        inst, unit = self._instrument(doc["product_id"])
        taker = _SIDES.get(doc["side"])
        kind = doc["type"]
        seq = doc["seq"]
        ts = doc["time"]
        uid = doc["uid"]
        if taker is None:
            raise ParseError("bad_side", str(doc["side"])[:20])
        if kind not in _TYPES:
            raise ParseError("bad_type", "type")
        qty_raw, price = qty_price(doc["qty"], doc["price"], "qty/price")
        if type(ts) is not int or ts <= 0:
            raise ParseError("bad_ts", "time")
        if type(seq) is not int or seq < 0:
            raise ParseError("bad_type", "seq")
        if type(uid) is not str or not uid:
            raise ParseError("bad_type", "uid")
        pid = inst.venue_symbol
        qty_base, notional = inst.convert(qty_raw, price)
        is_liq = kind == "liquidation"
        mult = inst.contract_multiplier
        out, rows = Parsed.start(EXCHANGE, into)
        rows.trade(inst.symbol, pid, uid, taker, price, qty_raw, unit, mult, qty_base, notional,
                   is_liq, ts, received_ns)  # fmt: skip
        if is_liq:  # the feed does not say which party: side unknown, no order side
            rows.liquidation(
                inst.symbol, pid, _UNKNOWN, None, price, _TRADE_PRICE, qty_raw, unit, mult,
                qty_base, notional, _TRADE_FLAG, ts, received_ns,
                (pid, ts, f"unknown|{uid}", qty_raw, price), False,
            )  # fmt: skip
        last = self._last_seq.get(pid)
        if last is None or seq > last:
            if last is not None:
                out.gaps = seq - last - 1
            self._last_seq[pid] = seq
        return out

    # ---- market context: ticker ----------------------------------------------------------------

    def _ticker(self, doc: dict[str, Any], received_ns: int, into: ColumnStore | None) -> Parsed:
        try:
            row = self._context(doc)
        except ITEM_ERRORS as exc:
            return Parsed(errors=[item_error(exc)])
        out, rows = Parsed.start(EXCHANGE, into)
        rows.context(*row, received_ns)
        return out

    def _context(self, doc: dict[str, Any]) -> ContextRow:
        """The ticker's context row without its receive time."""
        inst, _ = self._instrument(doc["product_id"])
        ts = timestamp_integral(doc["time"])
        get = doc.get
        mark = optional(get("markPrice"), positive)
        index = optional(get("index"), positive)
        funding = optional(get("relative_funding_rate"), signed)
        if funding is None and inst.symbol.endswith("-PERP"):
            funding = 0.0  # "If zero, field is not populated. (Perpetuals only)"
        next_funding = _next_funding(get("next_funding_rate_time"), ts)
        oi = optional(get("openInterest"), non_negative)
        oi_base, oi_usd = (
            (None, None)
            if oi is None
            else contract_open_interest(oi, inst.contract_multiplier, inst.inverse, mark)
        )
        return (inst.symbol, inst.venue_symbol, mark, index, funding, next_funding, oi_base,
                oi_usd, ts)  # fmt: skip


def _next_funding(value: object, now_ms: int) -> int | None:
    """``next_funding_rate_time``: epoch ms, or (below ``_ABSOLUTE_MS``) ms from ``now_ms``."""
    if value is None:
        return None
    if type(value) is not int and type(value) is not float:
        raise ParseError("bad_ts", repr(value)[:40])
    if not (math.isfinite(value) and 0 <= value < MAX_MS):
        raise ParseError("bad_ts", repr(value)[:40])
    ms = round(value)
    if ms == 0:
        return None
    if ms < _ABSOLUTE_MS:  # the documented form: a duration
        ms += now_ms
        if ms >= MAX_MS:
            raise ParseError("bad_ts", repr(value)[:40])
    return ms
