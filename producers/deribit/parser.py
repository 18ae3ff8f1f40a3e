"""Deribit frames -> normalized events. Sans-I/O: bytes in, ``Parsed`` out.

Frames handled (docs/venues.md §5), dispatched on exact keys:

* ``{"method": "subscription", "params": {"channel": "trades.<NAME>.<interval>", "data": [...]}}``
  and ``{"method": "subscription", "params": {"channel": "ticker.<NAME>.<interval>", "data": {...}}}``;
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

Market context: ``ticker.<NAME>.100ms`` carries ONE ticker object (``data`` is a dict), every
field each time; it gives one ``MarketContext`` (``ts`` its ``timestamp``, ms; an integral float
is accepted). ``mark_price`` and ``index_price``; ``current_funding`` as ``funding_rate``: the
perpetual's current funding rate, a signed fraction per 8 hours (Deribit's quoting period; funding
accrues continuously, so there is no settlement time: ``next_funding_ms`` None). ``funding_8h``
(the rate realised over the trailing 8 hours) is not kept. ``open_interest`` is in the
instrument's amount unit: USD for perpetuals and inverse futures (``open_interest_usd``; the base
amount is derived as USD / ``mark_price`` of the same ticker), base coin for linear ``_USDC``
instruments (``open_interest_base``; the consumer values it at the mark). A field absent or null
(``current_funding`` on dated futures) is None; a ticker carrying none of them gives no event. The
ticker's ``instrument_name`` must be the channel's. A bad ticker is skipped with its reason in
``Parsed.errors`` (the frame itself was a well-formed notification).
"""

from __future__ import annotations

import itertools
from typing import Any, Final, TypeVar

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import Coverage, OrderSide, PriceKind, QtyUnit, Side
from monitor.core.symbols import Instrument
from producers.base import ConnectionPlan, Parsed
from producers.columns import ColumnStore, ContextRow
from producers.deribit.endpoints import EXCHANGE, FIRST_TEST_REPLY_ID, INTERVALS, TICKER, TRADES
from producers.deribit.instruments import instrument_for
from producers.deribit.subscriptions import CLIENT_PING_FRAME, plan_connections, test_frame
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
    timestamp_integral,
)
from producers.framestore import Store

_T = TypeVar("_T")

_BUY: Final = OrderSide.BUY.value
_SELL: Final = OrderSide.SELL.value
_DIRECTIONS: Final = {"buy": _BUY, "sell": _SELL}
_OPPOSITE: Final = {_BUY: _SELL, _SELL: _BUY}
# Order side of the liquidated party -> the position that was liquidated.
_LIQUIDATED: Final = {_SELL: Side.LONG.value, _BUY: Side.SHORT.value}
_FLAGS: Final = frozenset({"T", "M", "MT"})
_KINDS: Final = frozenset({TRADES, TICKER})
_TRADE: Final = PriceKind.TRADE.value
_TRADE_FLAG: Final = Coverage.TRADE_FLAG.value
_CHANNEL_CACHE_MAX: Final = 8192


class DeribitAdapter:
    """Venue adapter for Deribit (see ``producers.base.VenueAdapter``)."""

    exchange = EXCHANGE

    def __init__(self, cfg: ExchangeConfig) -> None:
        self._max_instruments = cfg.max_symbols
        self._instruments: dict[str, tuple[Instrument, str]] = {}  # name -> (instrument, unit)
        # validated subscription channel -> (is a ticker channel, instrument name)
        self._channels: dict[str, tuple[bool, str]] = {}
        self._last_seq: dict[str, int] = {}  # instrument -> highest trade_seq seen
        self._test_ids = itertools.count(FIRST_TEST_REPLY_ID)

    # ---- plan --------------------------------------------------------------------------------

    def connections(self, cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
        return plan_connections(cfg, base_url)

    def heartbeat(self) -> str | None:
        return CLIENT_PING_FRAME

    # ---- parse -------------------------------------------------------------------------------

    def parse(
        self, frame: bytes | str, received_ns: int, into: ColumnStore | None = None
    ) -> Parsed:
        doc = json_object(frame)
        try:
            method = doc.get("method")
            if method == "subscription":
                params = doc["params"]
                channel = params["channel"]
                entry = self._channels.get(channel) if type(channel) is str else None
                if entry is None:
                    entry = self._check_channel(channel)
                data = params["data"]
                if entry[0]:
                    if type(data) is not dict:
                        raise ParseError("bad_shape", "data")
                    return self._ticker(entry[1], data, received_ns, into)
                if type(data) is not list:
                    raise ParseError("bad_shape", "data")
                return self._trades(data, received_ns, into)
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

    def _check_channel(self, channel: object) -> tuple[bool, str]:
        if type(channel) is not str:
            raise ParseError("bad_type", "channel")
        parts = channel.split(".")
        if len(parts) != 3 or parts[0] not in _KINDS or parts[2] not in INTERVALS or not parts[1]:
            raise ParseError("unknown_channel", channel[:60])
        entry = (parts[0] == TICKER, parts[1])
        if len(self._channels) < _CHANNEL_CACHE_MAX:
            self._channels[channel] = entry
        return entry

    def _instrument(self, name: object) -> tuple[Instrument, str]:
        if type(name) is not str:
            raise ParseError("bad_type", "instrument_name")
        inst = instrument_for(name)
        if inst is None:
            raise ParseError("unknown_instrument", name[:60])
        if len(self._instruments) >= self._max_instruments:
            raise ParseError("symbol_cap", name[:60])
        entry = (inst, (QtyUnit.USD if inst.inverse else QtyUnit.BASE).value)
        self._instruments[name] = entry
        return entry

    def _trades(self, data: list[Any], received_ns: int, into: ColumnStore | None) -> Parsed:
        out, rows = Parsed.start(EXCHANGE, into)
        for item in data:
            try:
                self._trade(item, received_ns, out, rows)
            except ITEM_ERRORS as exc:
                out.errors.append(item_error(exc))
        return out

    def _trade(self, item: dict[str, Any], received_ns: int, out: Parsed, rows: Store) -> None:
        """Validate the whole item first, then add its rows and count its gap."""
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
        mult = inst.contract_multiplier
        rows.trade(inst.symbol, name, trade_id, taker, price, qty_raw, unit, mult, qty_base,
                   notional, flag is not None, ts, received_ns)  # fmt: skip
        if flag is not None:
            sides = []
            if "T" in flag:  # the taker was liquidated: its order side is the direction
                sides.append(taker)
            if "M" in flag:  # the maker was: it traded the opposite way
                sides.append(_OPPOSITE[taker])
            for order_side in sides:
                side = _LIQUIDATED[order_side]
                # the id hashes the trade id with the side: an MT trade's two events differ
                vs = inst.venue_symbol
                rows.liquidation(
                    inst.symbol, vs, side, order_side, price, _TRADE, qty_raw, unit, mult,
                    qty_base, notional, _TRADE_FLAG, ts, received_ns,
                    (vs, ts, f"{side}|{trade_id}", qty_raw, price), False,
                )  # fmt: skip
        last = self._last_seq.get(name)
        if last is None or seq > last:
            if last is not None and seq > last + 1:
                out.gaps += seq - last - 1
            self._last_seq[name] = seq

    # ---- market context: ticker.<NAME>.<interval> ----------------------------------------------

    def _ticker(
        self, channel_name: str, data: dict[str, Any], received_ns: int, into: ColumnStore | None
    ) -> Parsed:
        try:
            row = self._context(channel_name, data)
        except ITEM_ERRORS as exc:
            return Parsed(errors=[item_error(exc)])
        if row is None:
            return Parsed()
        out, rows = Parsed.start(EXCHANGE, into)
        rows.context(*row, received_ns)
        return out

    def _context(self, channel_name: str, data: dict[str, Any]) -> ContextRow | None:
        """The ticker's context row without its receive time, or None when it says nothing."""
        name = data["instrument_name"]
        if name != channel_name:
            raise ParseError("bad_shape", "instrument_name")
        ts = timestamp_integral(data["timestamp"])
        get = data.get
        mark = optional(get("mark_price"), positive)
        index = optional(get("index_price"), positive)
        funding = optional(get("current_funding"), signed)
        oi = optional(get("open_interest"), non_negative)
        if mark is None and index is None and funding is None and oi is None:
            return None
        inst, _ = self._instruments.get(name) or self._instrument(name)
        oi_base, oi_usd = (
            (None, None)
            if oi is None
            else contract_open_interest(
                oi,
                inst.contract_multiplier,
                inst.inverse,
                mark,  # inverse: USD; linear: base coin
            )
        )
        # continuous funding: no settlement time in the ticker (next_funding_ms None)
        return (inst.symbol, name, mark, index, funding, None, oi_base, oi_usd, ts)
