"""Gate.io USDT-settled futures endpoint and connection rules (docs/venues.md §8).

The configured URL is the full socket URL (``wss://fx-ws.gateio.ws/v4/ws/usdt``). The handshake
sends ``X-Gate-Size-Decimal: 1`` so sizes arrive as decimal strings (without it: integers, with
fractional contracts rounded). Requests are ``{"time": <unix s>, "channel", "event", "payload"}``;
the client pings with ``{"time": s, "channel": "futures.ping"}`` (answered on ``futures.pong``).

``time`` is the request time in seconds. It enters the signature of private channels; for public
channels Gate's own documented examples send a constant (``"time": 123456``), so a stale value is
harmless there. The producer still sends the clock at plan time (subscriptions.py: ``restamp``
sets it to the send time once the session can ask for it).

Market context: ``futures.tickers`` (payload: contracts), one item per contract with
``mark_price``, ``index_price``, ``funding_rate`` (the rate of the current period, applied at its
settlement), ``funding_rate_indicative`` (next period, not kept) and ``total_size`` (open interest
in contracts); no funding time and no USD open interest. Per-request cap as for trades.
"""

from __future__ import annotations

from typing import Final

EXCHANGE: Final = "gate"
DEFAULT_WS_URL: Final = "wss://fx-ws.gateio.ws/v4/ws/usdt"
DEFAULT_REST_URL: Final = "https://api.gateio.ws"
DEFAULT_SYMBOLS: Final = (
    "BTC_USDT",
    "ETH_USDT",
    "SOL_USDT",
)  # trades and market context; liquidations: all

CONTRACTS_PATH: Final = "/api/v4/futures/usdt/contracts"
HEADERS: Final = (("X-Gate-Size-Decimal", "1"),)

LIQUIDATES: Final = "futures.public_liquidates"
TRADES: Final = "futures.trades"
TICKERS: Final = "futures.tickers"
PING: Final = "futures.ping"
PONG: Final = "futures.pong"
ALL_CONTRACTS: Final = "!all"
MAX_CONTRACTS_PER_REQUEST: Final = 100  # our own cap on one subscribe payload
SETTLE: Final = "USDT"

# A NEGATIVE liquidation ``size`` is a sell order, i.e. a LONG position was liquidated: the
# channel's ``size`` is the liquidation order's size, and Gate signs order sizes (negative: an ask;
# the REST liq_orders example pairs position size 600 with order_size -600). Decided only here.
NEGATIVE_SIZE_IS_LONG_LIQUIDATED: Final = True

# Item times below this are seconds (older payloads), at or above it milliseconds.
SECONDS_BELOW: Final = 100_000_000_000


def contract_name(symbol: str) -> str:
    """``btc_usdt`` / ``BTC-USDT`` / ``BTCUSDT`` -> ``BTC_USDT``."""
    sym = symbol.upper().replace("-", "_")
    if "_" not in sym and sym.endswith(SETTLE) and len(sym) > len(SETTLE):
        sym = f"{sym[: -len(SETTLE)]}_{SETTLE}"
    return sym
