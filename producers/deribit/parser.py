"""Deribit frames -> normalized events. Sans-I/O: bytes in, ``Parsed`` out.

Frames handled (exchange-feeds.md s5), dispatched on exact keys:

* ``{"method": "subscription", "params": {"channel": "trades.<NAME>.<interval>", "data": [...]}}``;
  the channel is split on dots and matched exactly (cached per channel);
* ``{"method": "heartbeat", "params": {"type": "test_request"}}``: a control frame whose
  ``Parsed.replies`` carries the ``public/test`` request Deribit requires (unanswered, the server
  closes the connection); ``"type": "heartbeat"`` is a plain control frame;
* JSON-RPC replies ``{"id": .., "result": ..}`` (control) and ``{"id": .., "error": ..}``
  (ParseError ``request_failed``: a refused subscription or heartbeat setup).

Trades: ``direction`` is the taker side; ``amount`` is USD for perpetual and inverse futures
(``qty_unit`` usd, base = amount / price) and base coin for linear ``_USDC`` instruments. Every
trade is emitted with ``is_liquidation`` true or false: the feed says it for every trade.

Liquidations: there is no liquidation channel; a trade carries ``liquidation`` when a party to it
was under liquidation. ``T``: the taker, whose order side is ``direction`` (sell => a long was
liquidated); ``M``: the maker, whose order side is the opposite of ``direction``; ``MT``: both,
so TWO Liquidation events (one long, one short), each the trade's full size. Price kind
``trade``, coverage ``trade_flag``. The event id hashes the trade id with the side, so the two
events of an MT trade differ and a re-sent trade gives the same ids.

Sequence gaps: ``trade_seq`` numbers the trades of one instrument. The 100 ms channel batches
trades but drops none, so a jump of more than one within the same instrument counts the trades
in between as missed (``Parsed.gaps``); a lower or repeated number (a replay after a reconnect)
is not a gap. The first trade of an instrument only sets the baseline. The state is one int per
instrument, bounded by the instrument cap.
"""

from __future__ import annotations

import itertools
from typing import Any, Final

from monitor.config import ExchangeConfig
from monitor.errors import ParseError
from monitor.schema import (
    Coverage,
    Event,
    Liquidation,
    OrderSide,
    PriceKind,
    QtyUnit,
    Side,
    liquidation_id,
)
from monitor.symbols import Instrument
from producers.base import ConnectionPlan, Parsed
from producers.deribit.endpoints import EXCHANGE, FIRST_TEST_REPLY_ID, INTERVALS, TRADES
from producers.deribit.instruments import instrument_for
from producers.deribit.subscriptions import CLIENT_PING_FRAME, plan_connections, test_frame
from producers.events import (
    ITEM_ERRORS,
    item_error,
    json_object,
    new_liquidation,
    new_trade,
    qty_price,
)

_DIRECTIONS: Final = {"buy": OrderSide.BUY, "sell": OrderSide.SELL}
_OPPOSITE: Final = {OrderSide.BUY: OrderSide.SELL, OrderSide.SELL: OrderSide.BUY}
# Order side of the liquidated party -> the position that was liquidated.
_LIQUIDATED: Final = {OrderSide.SELL: Side.LONG, OrderSide.BUY: Side.SHORT}
_FLAGS: Final = frozenset({"T", "M", "MT"})
_TRADE: Final = PriceKind.TRADE
_TRADE_FLAG: Final = Coverage.TRADE_FLAG
_CHANNEL_CACHE_MAX: Final = 8192


class DeribitAdapter:
    """Venue adapter for Deribit (see ``producers.base.VenueAdapter``)."""

    exchange = EXCHANGE

    def __init__(self, cfg: ExchangeConfig) -> None:
        self._max_instruments = cfg.max_symbols
        self._instruments: dict[str, tuple[Instrument, QtyUnit]] = {}
        self._channels: set[str] = set()  # validated subscription channels
        self._last_seq: dict[str, int] = {}  # instrument -> highest trade_seq seen
        self._test_ids = itertools.count(FIRST_TEST_REPLY_ID)

    # ---- plan --------------------------------------------------------------------------------

    def connections(self, cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
        return plan_connections(cfg, base_url)

    def heartbeat(self) -> str | None:
        return CLIENT_PING_FRAME

    # ---- parse -------------------------------------------------------------------------------

    def parse(self, frame: bytes | str, received_ns: int) -> Parsed:
        doc = json_object(frame)
        try:
            method = doc.get("method")
            if method == "subscription":
                params = doc["params"]
                channel = params["channel"]
                if channel not in self._channels:
                    self._check_channel(channel)
                data = params["data"]
                if type(data) is not list:
                    raise ParseError("bad_shape", "data")
                return self._trades(data, received_ns)
            if method == "heartbeat":
                kind = doc["params"]["type"]
                if kind == "test_request":
                    return Parsed(control=True, replies=[test_frame(next(self._test_ids))])
                if kind == "heartbeat":
                    return Parsed(control=True)
                raise ParseError("unknown_heartbeat", str(kind)[:40])
            if method is not None:
                raise ParseError("unknown_method", str(method)[:40])
            if "error" in doc:
                raise ParseError("request_failed", str(doc["error"])[:200])
            if "result" in doc and "id" in doc:
                return Parsed(control=True)
            raise ParseError("unknown_event")
        except KeyError as exc:
            raise ParseError("missing_field", str(exc)) from None
        except (TypeError, AttributeError, ValueError) as exc:
            raise ParseError("bad_shape", type(exc).__name__) from None

    def _check_channel(self, channel: object) -> None:
        if type(channel) is not str:
            raise ParseError("bad_type", "channel")
        parts = channel.split(".")
        if len(parts) != 3 or parts[0] != TRADES or parts[2] not in INTERVALS:
            raise ParseError("unknown_channel", channel[:60])
        if len(self._channels) < _CHANNEL_CACHE_MAX:
            self._channels.add(channel)

    def _instrument(self, name: object) -> tuple[Instrument, QtyUnit]:
        if type(name) is not str:
            raise ParseError("bad_type", "instrument_name")
        inst = instrument_for(name)
        if inst is None:
            raise ParseError("unknown_instrument", name[:60])
        if len(self._instruments) >= self._max_instruments:
            raise ParseError("symbol_cap", name[:60])
        entry = (inst, QtyUnit.USD if inst.inverse else QtyUnit.BASE)
        self._instruments[name] = entry
        return entry

    def _trades(self, data: list[Any], received_ns: int) -> Parsed:
        out = Parsed()
        for item in data:
            try:
                self._trade(item, received_ns, out)
            except ITEM_ERRORS as exc:
                out.errors.append(item_error(exc))
        return out

    def _trade(self, item: dict[str, Any], received_ns: int, out: Parsed) -> None:
        """Validate the whole item first, then append its events and count its gap."""
        name = item["instrument_name"]
        taker = _DIRECTIONS.get(item["direction"])
        ts = item["timestamp"]
        seq = item["trade_seq"]
        trade_id = item["trade_id"]
        flag = item.get("liquidation")
        inst, unit = self._instruments.get(name) or self._instrument(name)
        if taker is None:
            raise ParseError("bad_side", str(item["direction"])[:20])
        qty_raw, price = qty_price(item["amount"], item["price"], "amount/price")
        if type(ts) is not int or ts <= 0:
            raise ParseError("bad_ts", "timestamp")
        if type(seq) is not int or seq < 0:
            raise ParseError("bad_type", "trade_seq")
        if type(trade_id) is not str or not trade_id:
            raise ParseError("bad_type", "trade_id")
        if flag is not None and flag not in _FLAGS:
            raise ParseError("bad_liq_flag", str(flag)[:20])
        qty_base, notional = inst.convert(qty_raw, price)
        trade = new_trade(
            EXCHANGE, inst.symbol, name, taker, price, qty_raw, unit, inst.contract_multiplier,
            qty_base, notional, flag is not None, ts, received_ns, trade_id,
        )  # fmt: skip
        events: list[Event] = [trade]
        if flag is not None:
            if "T" in flag:  # the taker was liquidated: its order side is the direction
                events.append(self._liq(inst, unit, taker, price, qty_raw, qty_base, notional,
                                        ts, received_ns, trade_id))  # fmt: skip
            if "M" in flag:  # the maker was: it traded the opposite way
                events.append(self._liq(inst, unit, _OPPOSITE[taker], price, qty_raw, qty_base,
                                        notional, ts, received_ns, trade_id))  # fmt: skip
        last = self._last_seq.get(name)
        if last is None or seq > last:
            if last is not None and seq > last + 1:
                out.gaps += seq - last - 1
            self._last_seq[name] = seq
        out.events.extend(events)

    @staticmethod
    def _liq(
        inst: Instrument, unit: QtyUnit, order_side: OrderSide, price: float, qty_raw: float,
        qty_base: float, notional: float, ts: int, received_ns: int, trade_id: str,
    ) -> Liquidation:  # fmt: skip
        side = _LIQUIDATED[order_side]
        name = inst.venue_symbol
        return new_liquidation(
            EXCHANGE, inst.symbol, name, side, order_side, price, _TRADE, qty_raw, unit,
            inst.contract_multiplier, qty_base, notional, _TRADE_FLAG, ts, received_ns,
            liquidation_id(EXCHANGE, name, ts, f"{side.value}|{trade_id}", qty_raw, price),
        )  # fmt: skip
