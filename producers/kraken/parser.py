"""Kraken Futures frames -> normalized events. Sans-I/O: bytes in, ``Parsed`` out.

Frames handled (exchange-feeds.md s10), dispatched on exact keys:

* ``{"feed": "trade", "product_id": ..., "uid": ..., "side": ..., "type": ..., "seq": ..., "time":
  ..., "qty": ..., "price": ...}``: one trade per frame;
* ``{"feed": "trade_snapshot", "product_id": ..., "trades": [...]}``: the recent trades sent
  first after subscribing. They happened before we subscribed, some were probably already
  emitted before a reconnect, and their ``uid`` cannot be matched without unbounded state, so
  NOTHING is emitted from a snapshot: it only sets the product's sequence baseline (control);
* ``{"feed": "heartbeat", ...}``, ``{"event": "info" | "subscribed" | "unsubscribed", ...}``:
  control; ``{"event": "error" | "subscribed_failed", ...}``: ParseError ``subscribe_failed``.

Trades: ``side`` is the taker side; ``qty`` is base coin for ``PF_`` products and USD for ``PI_``
(inverse). ``type`` ``liquidation`` means a user was liquidated by this trade: the Trade has
``is_liquidation`` true and a Liquidation is emitted with side ``unknown`` and no order side (the
feed does not say which party was liquidated), price kind ``trade``, coverage ``trade_flag``.
Other types (``fill``, ``block``, ``termination``) are trades with ``is_liquidation`` false.

Sequence gaps: ``seq`` is assumed to number the trade messages of one product (UNVERIFIED: the
docs call it the subscription's message sequence number); a jump of more than one counts the
messages in between (``Parsed.gaps``); a lower number is a replay, not a gap. The snapshot's
highest ``seq`` is the baseline, so nothing missed between snapshot and stream goes uncounted.
"""

from __future__ import annotations

from typing import Any, Final

from monitor.config import ExchangeConfig
from monitor.errors import ParseError
from monitor.schema import Coverage, Event, OrderSide, PriceKind, QtyUnit, Side, liquidation_id
from monitor.symbols import Instrument
from producers.base import ConnectionPlan, Parsed
from producers.events import json_object, new_liquidation, new_trade, qty_price
from producers.kraken.endpoints import EXCHANGE, HEARTBEAT, TRADE, TRADE_SNAPSHOT
from producers.kraken.instruments import instrument_for
from producers.kraken.subscriptions import plan_connections

_SIDES: Final = {"buy": OrderSide.BUY, "sell": OrderSide.SELL}
_TYPES: Final = frozenset({"fill", "liquidation", "termination", "block"})
_CONTROL_EVENTS: Final = frozenset({"info", "subscribed", "unsubscribed", "alert"})
_FAILED_EVENTS: Final = frozenset({"error", "subscribed_failed", "unsubscribed_failed"})


class KrakenAdapter:
    """Venue adapter for Kraken Futures (see ``producers.base.VenueAdapter``)."""

    exchange = EXCHANGE

    def __init__(self, cfg: ExchangeConfig) -> None:
        self._max_instruments = cfg.max_symbols
        self._instruments: dict[str, tuple[Instrument, QtyUnit]] = {}
        self._last_seq: dict[str, int] = {}

    def connections(self, cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
        return plan_connections(cfg, base_url)

    def heartbeat(self) -> str | None:
        return None  # protocol pings from the session; see producers.kraken.endpoints

    def parse(self, frame: bytes | str, received_ns: int) -> Parsed:
        doc = json_object(frame)
        try:
            feed = doc.get("feed")
            event = doc.get("event")
            if event is None:
                if feed == TRADE:
                    return self._trade(doc, received_ns)
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

    def _instrument(self, product_id: object) -> tuple[Instrument, QtyUnit]:
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
        entry = (inst, QtyUnit.USD if inst.inverse else QtyUnit.BASE)
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

    def _trade(self, doc: dict[str, Any], received_ns: int) -> Parsed:
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
        events: list[Event] = [
            new_trade(EXCHANGE, inst.symbol, pid, taker, price, qty_raw, unit,
                      inst.contract_multiplier, qty_base, notional, is_liq, ts, received_ns, uid)
        ]  # fmt: skip
        if is_liq:
            events.append(new_liquidation(
                EXCHANGE, inst.symbol, pid, Side.UNKNOWN, None, price, PriceKind.TRADE, qty_raw,
                unit, inst.contract_multiplier, qty_base, notional, Coverage.TRADE_FLAG, ts,
                received_ns, liquidation_id(EXCHANGE, pid, ts, f"unknown|{uid}", qty_raw, price),
            ))  # fmt: skip
        out = Parsed(events)
        last = self._last_seq.get(pid)
        if last is None or seq > last:
            if last is not None:
                out.gaps = seq - last - 1
            self._last_seq[pid] = seq
        return out
