"""The connections a producer opens and the frames it subscribes with: liquidations of every
symbol first, then the configured symbols' trades, on one socket."""

from __future__ import annotations

import orjson

from monitor.core.config import ExchangeConfig
from producers._template.endpoints import LIQUIDATIONS, TRADES
from producers.base import ConnectionPlan


def plan_connections(cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
    symbols = list(dict.fromkeys(s.upper() for s in cfg.symbols))
    frames = [orjson.dumps({"op": "subscribe", "channel": LIQUIDATIONS}).decode()]
    if symbols:
        trade = {"op": "subscribe", "channel": TRADES, "symbols": symbols}
        frames.append(orjson.dumps(trade).decode())
    return [ConnectionPlan("public", base_url, tuple(frames))]
