"""Hyperliquid frames -> normalized events. Sans-I/O: bytes in, ``Parsed`` out.

Hyperliquid publishes NO liquidations on public feeds (liquidations appear only in per-user fills,
docs/venues.md §9): this adapter emits trades, with ``is_liquidation`` None (the trades feed
does not say), and market context. Liquidation metrics for Hyperliquid stay empty by design.

Frames handled, dispatched on the exact ``channel``:

* ``{"channel": "trades", "data": [WsTrade, ...]}``; ``side`` is the aggressor (``B`` buy, ``A``
  sell), ``sz`` base coin, ``px`` price, ``time`` ms, ``tid`` the trade id ("ID unique across all
  assets", the WsTrade type of the subscriptions page) as ``trade_id``;
* ``{"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": PerpsAssetCtx}}``: one
  ``MarketContext`` per message (``data`` is one object, the item);
* ``{"channel": "pong"}``, ``{"channel": "subscriptionResponse", ...}``: control;
  ``{"channel": "error", "data": ...}``: ParseError ``request_failed``.

Market context (``activeAssetCtx``, perpetuals; the spot variant ``activeSpotAssetCtx`` is not
subscribed and is an ``unknown_channel``). Every message carries the whole context, as decimal
strings (the docs type them as numbers: both are accepted): ``markPx`` -> ``mark_price``;
``oraclePx`` (the oracle, Hyperliquid's index of spot prices) -> ``index_price``; ``funding`` ->
``funding_rate``, the current (predicted) rate of the running hour as a signed fraction: funding
is settled **hourly**, so this is the rate per 1-hour interval, not per 8 hours; ``openInterest``
(coin units, one coin per unit: multiplier 1) -> ``open_interest_base``, and
``open_interest_usd`` = ``openInterest`` x ``markPx`` (USDC taken at par). These four fields are
in every documented context: absent is ``missing_field``, null ``bad_type``. ``midPx``,
``premium``, ``impactPxs``, ``dayNtlVlm``, ``prevDayPx``, ``dayBaseVlm`` are not kept. The
message has no settlement time (funding is paid on every hour, not stated in the message):
``next_funding_ms`` None. It has no timestamp either: ``ts_ms`` is the receive time
(``received_ns`` in ms; not > 0: ``bad_ts``). A bad context is skipped with its reason in
``Parsed.errors``, like a bad trade.

Symbols: perpetual coin ``BTC`` -> ``BTC-USD-PERP``. Hyperliquid perps are quoted and settled in
USDC; the canonical quote is USD (USDC taken at par, as ``monitor.core.symbols`` does). Spot pairs
(``@107``, ``PURR/USDC``) and builder-deployed perps (``xyz:HOOD``) are refused
(``unknown_instrument``).
"""

from __future__ import annotations

import re
from typing import Any, Final

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import OrderSide, QtyUnit
from producers.base import ConnectionPlan, Parsed
from producers.columns import ColumnStore, ContextRow
from producers.events import (
    ITEM_ERRORS,
    item_error,
    json_object,
    non_negative,
    positive,
    qty_price,
    signed,
)
from producers.framestore import Store
from producers.hyperliquid.endpoints import ACTIVE_ASSET_CTX, EXCHANGE, PING_FRAME, TRADES
from producers.hyperliquid.subscriptions import plan_connections

_INF: Final = float("inf")
_SIDES: Final = {"B": OrderSide.BUY.value, "A": OrderSide.SELL.value}
_COIN_RE: Final = re.compile(r"^[A-Za-z0-9]{1,20}$")
_CONTROL: Final = frozenset({"pong", "subscriptionResponse"})
_BASE: Final = QtyUnit.BASE.value
_NS_PER_MS: Final = 1_000_000


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

    def parse(
        self, frame: bytes | str, received_ns: int, into: ColumnStore | None = None
    ) -> Parsed:
        doc = json_object(frame)
        try:
            channel = doc.get("channel")
            if channel == TRADES:
                data = doc["data"]
                if type(data) is not list:
                    raise ParseError("bad_shape", "data")
                return self._trades(data, received_ns, into)
            if channel == ACTIVE_ASSET_CTX:
                data = doc["data"]
                if type(data) is not dict:
                    raise ParseError("bad_shape", "data")
                return self._asset_ctx(data, received_ns, into)
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

    def _trades(self, data: list[Any], received_ns: int, into: ColumnStore | None) -> Parsed:
        out, rows = Parsed.start(EXCHANGE, into)
        for item in data:
            try:
                self._trade(item, received_ns, rows)
            except ITEM_ERRORS as exc:
                out.errors.append(item_error(exc))
        return out

    def _trade(self, item: dict[str, Any], received_ns: int, rows: Store) -> None:
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
        rows.trade(symbol, coin, str(tid), taker, price, qty, _BASE, 1.0, qty, qty * price, None, ts,
                   received_ns)  # fmt: skip

    # ---- market context: activeAssetCtx ------------------------------------------------------

    def _asset_ctx(
        self, data: dict[str, Any], received_ns: int, into: ColumnStore | None
    ) -> Parsed:
        """One ``activeAssetCtx`` message -> one context row, or its reason in ``errors``."""
        try:
            row = self._context(data, received_ns)
        except ITEM_ERRORS as exc:
            return Parsed(errors=[item_error(exc)])
        out, rows = Parsed.start(EXCHANGE, into)
        rows.context(*row, received_ns)
        return out

    def _context(self, data: dict[str, Any], received_ns: int) -> ContextRow:
        """The context row without its receive time."""
        coin = data["coin"]
        ctx = data["ctx"]
        if type(ctx) is not dict:
            raise ParseError("bad_shape", "ctx")
        symbol = self._symbols.get(coin) or self._symbol(coin)
        mark = positive(ctx["markPx"])
        oracle = positive(ctx["oraclePx"])
        funding = signed(ctx["funding"], "funding")
        oi = non_negative(ctx["openInterest"])
        oi_usd = oi * mark
        if not oi_usd < _INF:
            raise ParseError("bad_number", "conversion")
        ts = received_ns // _NS_PER_MS
        if ts <= 0:
            raise ParseError("bad_ts", "received_ns")
        # next funding: hourly on the hour; the message does not carry it
        return (symbol, coin, mark, oracle, funding, None, oi, oi_usd, ts)
