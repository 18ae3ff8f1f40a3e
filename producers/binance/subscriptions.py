"""Which Binance sockets to open: one for all-market liquidations, trades sharded by stream count.

Binance subscribes through the URL, so the plans carry no subscribe frames (and no message counts
against the 10 incoming messages/s limit).
"""

from __future__ import annotations

from monitor.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.binance.endpoints import (
    AGG_TRADE_SUFFIX,
    ALL_LIQUIDATIONS_STREAM,
    MAX_STREAMS_PER_CONNECTION,
    combined_stream_url,
    raw_stream_url,
)


def trade_streams(symbols: tuple[str, ...]) -> list[str]:
    """``BTCUSDT`` -> ``btcusdt@aggTrade``, in configured order, duplicates dropped."""
    return [f"{s.lower()}{AGG_TRADE_SUFFIX}" for s in dict.fromkeys(s.upper() for s in symbols)]


def plan_connections(
    cfg: ExchangeConfig, base_url: str, per_connection: int = MAX_STREAMS_PER_CONNECTION
) -> list[ConnectionPlan]:
    """``liquidations`` (``{base}/ws/!forceOrder@arr``), then ``trades``, ``trades-2``, ... with at
    most ``per_connection`` aggTrade streams each."""
    plans = [ConnectionPlan("liquidations", raw_stream_url(base_url, ALL_LIQUIDATIONS_STREAM))]
    streams = trade_streams(cfg.symbols)
    for i in range(0, len(streams), per_connection):
        shard = i // per_connection
        name = "trades" if shard == 0 else f"trades-{shard + 1}"
        plans.append(
            ConnectionPlan(name, combined_stream_url(base_url, streams[i : i + per_connection]))
        )
    return plans
