"""Hyperliquid frames -> normalized events. Sans-I/O: bytes in, ``Parsed`` out.

Hyperliquid publishes NO liquidations on public feeds (liquidations appear only in per-user fills,
exchange-feeds.md s9): this adapter emits TRADES ONLY, with ``is_liquidation`` None (the trades
feed does not say). Liquidation metrics for Hyperliquid stay empty by design.

Frames handled, dispatched on the exact ``channel``:

* ``{"channel": "trades", "data": [WsTrade, ...]}``; ``side`` is the aggressor (``B`` buy, ``A``
  sell), ``sz`` base coin, ``px`` price, ``time`` ms, ``tid`` a 50-bit hash unique only together
  with coin and time, so ``trade_id`` is ``"<time>-<tid>"``;
* ``{"channel": "pong"}``, ``{"channel": "subscriptionResponse", ...}``: control;
  ``{"channel": "error", "data": ...}``: ParseError ``request_failed``.

Symbols: perpetual coin ``BTC`` -> ``BTC-USD-PERP``. Hyperliquid perps are quoted and settled in
USDC; the canonical quote is USD (USDC taken at par, as ``monitor.symbols`` does). Spot pairs
(``@107``, ``PURR/USDC``) and builder-deployed perps (``xyz:HOOD``) are refused
(``unknown_instrument``).
"""

from __future__ import annotations

import re
from typing import Any, Final

from monitor.config import ExchangeConfig
from monitor.errors import ParseError
from monitor.schema import Event, OrderSide, QtyUnit
from producers.base import ConnectionPlan, Parsed
from producers.events import ITEM_ERRORS, item_error, json_object, new_trade, qty_price
from producers.hyperliquid.endpoints import EXCHANGE, PING_FRAME, TRADES
from producers.hyperliquid.subscriptions import plan_connections

_SIDES: Final = {"B": OrderSide.BUY, "A": OrderSide.SELL}
_COIN_RE: Final = re.compile(r"^[A-Za-z0-9]{1,20}$")
_CONTROL: Final = frozenset({"pong", "subscriptionResponse"})
_BASE: Final = QtyUnit.BASE


class HyperliquidAdapter:
    """Venue adapter for Hyperliquid perpetuals (see ``producers.base.VenueAdapter``)."""

    exchange = EXCHANGE

    def __init__(self, cfg: ExchangeConfig) -> None:
        self._max_symbols = cfg.max_symbols
        self._symbols: dict[str, str] = {}  # coin -> canonical

    def connections(self, cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
        return plan_connections(cfg, base_url)

    def heartbeat(self) -> str | None:
        return PING_FRAME

    def parse(self, frame: bytes | str, received_ns: int) -> Parsed:
        doc = json_object(frame)
        try:
            channel = doc.get("channel")
            if channel == TRADES:
                data = doc["data"]
                if type(data) is not list:
                    raise ParseError("bad_shape", "data")
                return self._trades(data, received_ns)
            if channel in _CONTROL:
                return Parsed(control=True)
            if channel == "error":
                raise ParseError("request_failed", str(doc.get("data"))[:200])
            if channel is None:
                raise ParseError("unknown_event")
            raise ParseError("unknown_channel", str(channel)[:40])
        except KeyError as exc:
            raise ParseError("missing_field", str(exc)) from None
        except (TypeError, AttributeError, ValueError) as exc:
            raise ParseError("bad_shape", type(exc).__name__) from None

    def _symbol(self, coin: object) -> str:
        if type(coin) is not str:
            raise ParseError("bad_type", "coin")
        if _COIN_RE.match(coin) is None:
            raise ParseError("unknown_instrument", coin[:40])
        if len(self._symbols) >= self._max_symbols:
            raise ParseError("symbol_cap", coin)
        symbol = f"{coin.upper()}-USD-PERP"
        self._symbols[coin] = symbol
        return symbol

    def _trades(self, data: list[Any], received_ns: int) -> Parsed:
        out = Parsed()
        for item in data:
            try:
                out.events.append(self._trade(item, received_ns))
            except ITEM_ERRORS as exc:
                out.errors.append(item_error(exc))
        return out

    def _trade(self, item: dict[str, Any], received_ns: int) -> Event:
        coin = item["coin"]
        taker = _SIDES.get(item["side"])
        ts = item["time"]
        tid = item["tid"]
        symbol = self._symbols.get(coin) or self._symbol(coin)
        if taker is None:
            raise ParseError("bad_side", str(item["side"])[:20])
        qty, price = qty_price(item["sz"], item["px"], "sz/px")
        if type(ts) is not int or ts <= 0:
            raise ParseError("bad_ts", "time")
        if type(tid) is not int or tid < 0:
            raise ParseError("bad_type", "tid")
        return new_trade(
            EXCHANGE, symbol, coin, taker, price, qty, _BASE, 1.0, qty, qty * price, None, ts,
            received_ns, f"{ts}-{tid}",
        )  # fmt: skip
