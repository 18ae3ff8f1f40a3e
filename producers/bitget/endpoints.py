"""Bitget UTA (v3) public endpoint, connection rules, UNVERIFIED facts (docs/venues.md §7).

The configured URL is the full socket URL (``wss://ws.bitget.com/v3/ws/public``). Topics are
subscribed with JSON requests ``{"op":"subscribe","args":[{"instType":"usdt-futures",
"topic":...}]}``: ``liquidation`` once for the segment, ``publicTrade`` and ``ticker`` (market
context: mark, index, funding, open interest; pushed every 300-400 ms on change) per symbol. The
client sends the **text** ``ping`` every 30 s (the server answers ``pong``
and drops a connection that sent no ping for 2 minutes). Limits taken from the v2 public docs and
**UNVERIFIED** for v3: the args of one request at most 4096 bytes, fewer than 50 channels per
connection recommended.
"""

from __future__ import annotations

from typing import Final

from monitor.core.schema import QtyUnit

EXCHANGE: Final = "bitget"
DEFAULT_WS_URL: Final = "wss://ws.bitget.com/v3/ws/public"
DEFAULT_REST_URL: Final = "https://api.bitget.com"  # unused: USDT-futures quantities are base units
DEFAULT_SYMBOLS: Final = (
    "BTCUSDT",
    "ETHUSDT",
    "SOLUSDT",
)  # trades and market context; liquidations: all

INST_TYPE: Final = "usdt-futures"
LIQUIDATION: Final = "liquidation"  # one subscription per instType, every pair
PUBLIC_TRADE: Final = "publicTrade"
TICKER: Final = "ticker"  # per symbol: market context (UTA Tickers Channel, futures push)
PER_SYMBOL_TOPICS: Final = (PUBLIC_TRADE, TICKER)

MAX_ARGS_BYTES: Final = 4096  # UNVERIFIED for v3 (v2 docs)
MAX_CHANNELS_PER_CONNECTION: Final = 50  # UNVERIFIED for v3 (v2 recommendation)
PING_FRAME: Final = "ping"
PONG_FRAME: Final = "pong"

# The liquidation record, as the UTA Liquidation Channel page documents it (read 2026-12-07):
# ``side`` is the POSITION side ("buy: long position liquidation", "sell: short position
# liquidation"), the Bybit convention, not the forced order's side; ``amount`` is the
# "liquidation amount, unit: quote coin" (USDT on usdt-futures: the notional; real pushes give a
# round base size for amount / price); ``action`` is ``snapshot`` (full data) or ``update``
# (incremental): only updates are new liquidations. See docs/venues.md §7.
LIQUIDATION_AMOUNT_UNIT: Final = QtyUnit.QUOTE
