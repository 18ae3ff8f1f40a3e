"""Which Binance sockets to open: one for all-market liquidations, per-symbol streams sharded by count.

Each configured symbol has two streams, ``<sym>@aggTrade`` (trades) and ``<sym>@markPrice@1s``
(mark price, index price, funding rate, next funding time: market context), listed side by side so
that a symbol's two streams share a connection. Binance subscribes through the URL, so the plans
carry no subscribe frames (and no message counts against the 10 incoming messages/s limit).
"""

from __future__ import annotations

from typing import Final

from monitor.core.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.binance.endpoints import (
    AGG_TRADE_SUFFIX,
    ALL_LIQUIDATIONS_STREAM,
    MARK_PRICE_SUFFIX,
    MAX_STREAMS_PER_CONNECTION,
    combined_stream_url,
    raw_stream_url,
)

STREAMS_PER_SYMBOL: Final = (AGG_TRADE_SUFFIX, MARK_PRICE_SUFFIX)


def symbol_streams(symbols: tuple[str, ...]) -> list[str]:
    """``BTCUSDT`` -> ``btcusdt@aggTrade``, ``btcusdt@markPrice@1s``; symbols in configured order,
    duplicates dropped."""
    unique = dict.fromkeys(s.upper() for s in symbols)
    return [f"{s.lower()}{suffix}" for s in unique for suffix in STREAMS_PER_SYMBOL]


def plan_connections(
    cfg: ExchangeConfig, base_url: str, per_connection: int = MAX_STREAMS_PER_CONNECTION
) -> list[ConnectionPlan]:
    """``liquidations`` (``{base}/ws/!forceOrder@arr``), then ``trades``, ``trades-2``, ... with at
    most ``per_connection`` streams each (512 symbols per connection at the 1024 limit)."""
    if per_connection < len(STREAMS_PER_SYMBOL):
        raise ValueError(f"per_connection {per_connection}: a symbol needs two streams")
    plans = [ConnectionPlan("liquidations", raw_stream_url(base_url, ALL_LIQUIDATIONS_STREAM))]
    streams = symbol_streams(cfg.symbols)
    step = per_connection - per_connection % len(STREAMS_PER_SYMBOL)  # never split a symbol
    for i in range(0, len(streams), step):
        shard = i // step
        name = "trades" if shard == 0 else f"trades-{shard + 1}"
        plans.append(ConnectionPlan(name, combined_stream_url(base_url, streams[i : i + step])))
    return plans
