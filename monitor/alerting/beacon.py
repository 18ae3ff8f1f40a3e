"""Heartbeats to the sinks that ask for them: the dispatcher's dead man's switch.

A sink with ``heartbeat_s > 0`` (json and alertmanager; off by default) gets a heartbeat every
``heartbeat_s`` for as long as the dispatcher runs: the body of
``monitor.alerting.payloads.heartbeat_payload`` (json: signed like an alert, ``"type":
"heartbeat"``, a sequence number and what the health watch hears; alertmanager: a firing
``Watchdog``). The receiver pages when heartbeats stop: then the dispatcher, the machine or the
network between is down, and neither risk nor health alerts can reach it. Each heartbeat is one
attempt (the next one follows anyway), counted in
``cascade_alert_sink_heartbeats_total{sink,outcome}`` (ok, failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson

from monitor.alerting.heartbeat import instance_id
from monitor.alerting.http_policy import Request
from monitor.alerting.payloads import heartbeat_id, heartbeat_payload
from monitor.alerting.secrets import scrub
from monitor.alerting.sinks import Sink
from monitor.core.lifecycle import AsyncService
from monitor.core.metrics import DispatcherMetrics

log = logging.getLogger(__name__)


class SinkBeacon(AsyncService):
    """One task per sink with a ``heartbeat_s``; ``status()`` fills the heartbeats' ``health``."""

    def __init__(
        self, sinks: list[Sink], session: aiohttp.ClientSession, metrics: DispatcherMetrics,
        status: Callable[[], Mapping[str, Any]] = dict,
    ) -> None:  # fmt: skip
        self.sinks = [s for s in sinks if s.config.heartbeat_s > 0]
        self._session = session
        self._metrics = metrics
        self._status = status
        self.instance = instance_id()
        self.started_t = time.time()
        self.sent: dict[str, int] = {s.name: 0 for s in self.sinks}  # taken (2xx), per sink
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._beat(s), name=f"beacon-{s.name}")
                       for s in self.sinks]  # fmt: skip

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def _beat(self, sink: Sink) -> None:
        c = sink.config
        ok, failed = (self._metrics.sink_heartbeats.labels(sink.name, o) for o in ("ok", "failed"))
        seq = 0
        loop = asyncio.get_running_loop()
        due = loop.time()
        timeout = aiohttp.ClientTimeout(total=min(c.timeout_s, c.heartbeat_s))
        while True:
            seq += 1
            now = time.time()
            body = orjson.dumps(heartbeat_payload(sink, seq, now, c.heartbeat_s, self.instance,
                                                  self.started_t, self._status()))  # fmt: skip
            req = Request(body, heartbeat_id(self.instance, seq),
                          sink.key if sink.kind == "json" else None)  # fmt: skip
            try:
                async with self._session.post(
                    sink.url.reveal(), data=req.body, headers=req.headers(now), timeout=timeout,
                    allow_redirects=False,
                ) as resp:  # fmt: skip
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                failed.inc()
                log.warning("sink %s: heartbeat %d not delivered: %s", sink.name, seq,
                            scrub(f"{type(exc).__name__}: {exc}", sink.secrets()))  # fmt: skip
            else:
                if 200 <= status < 300:
                    ok.inc()
                    self.sent[sink.name] += 1
                else:
                    failed.inc()
                    log.warning("sink %s: heartbeat %d answered HTTP %d", sink.name, seq, status)
            due += c.heartbeat_s
            await asyncio.sleep(max(0.0, due - loop.time()))
