"""``cascade-monitor record``: a venue's raw frames, as received, for replay and fixtures.

The session used is the producers' own (heartbeats, re-subscription, reconnects), so a recording
is exactly what a producer would have parsed; instrument metadata responses are kept too. The
format is ``monitor.core.recording``; ``monitor.simulator.replay`` serves a recording back.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor.core.config import Config
from monitor.core.metrics import ProducerMetrics, for_registry
from monitor.core.recording import RecordingWriter
from producers.base import InstrumentSource
from producers.metadata import load_all
from producers.registry import ADAPTERS
from producers.session import Session

log = logging.getLogger(__name__)


async def record(cfg: Config, exchange: str, path: Path, stop: asyncio.Event) -> int:
    """Record ``exchange``'s feeds (as configured) until ``stop`` is set; frames written."""
    ex_cfg = cfg.exchanges[exchange]
    adapter = ADAPTERS[exchange](ex_cfg)
    base_url = cfg.ws_url(exchange)
    bodies: list[tuple[str, bytes]] = []
    if isinstance(adapter, InstrumentSource):  # first: the listing can add connections (Bybit)
        await load_all(adapter, cfg.rest_url(exchange), ex_cfg.instruments_timeout_s,
                       lambda url, body: bodies.append((url, body)))  # fmt: skip
    plans = adapter.connections(ex_cfg, base_url)
    writer = RecordingWriter(path)
    writer.open({
        "exchange": exchange,
        "base_url": base_url,
        "connections": [{"name": p.name, "url": p.url, "subscribe": list(p.subscribe)}
                        for p in plans],
    })  # fmt: skip
    try:
        for url, body in bodies:
            writer.rest(url, body)
        metrics = for_registry(ProducerMetrics, CollectorRegistry())
        sessions = [
            Session(exchange, p, adapter, ex_cfg, lambda _: None, metrics, tap=writer.frame)
            for p in plans
        ]
        for s in sessions:
            await s.start()
        try:
            await stop.wait()
        finally:
            for s in sessions:
                await s.stop()
    finally:
        writer.close()
    log.info("%s: %d frames recorded to %s", exchange, writer.frames, path)
    return writer.frames
