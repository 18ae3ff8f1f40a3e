"""A local webhook receiver for the generic JSON sink: verifies the signature, rejects replays.

The demo delivers its alerts here (and prints them), the end-to-end test and the latency
benchmark measure with it. It is also the reference for writing a receiver: a request is taken
when ``X-Cascade-Signature`` is ``sha256=`` HMAC-SHA256(key, timestamp + "." + raw body) and
``X-Cascade-Timestamp`` is within ``tolerance_s`` of the receiver's clock (older: a replay, 401);
a repeated ``X-Cascade-Event-Id`` is answered 200 and not recorded again (deliveries are
at-least-once). Listens on 127.0.0.1 only.

Heartbeats (a sink's ``heartbeat_s``, ``monitor.alerting.beacon``) are signed the same way and
carry ``"type": "heartbeat"``: they are kept apart (``heartbeats``, ``last_heartbeat_ts``), and
``heartbeat_silence_s`` is what a receiver pages on, the dead man's switch: a dispatcher that
stopped, or a network between, stops them.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from monitor.alerting.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from monitor.core.lifecycle import AsyncService

PATH = "/alerts"


@dataclass(frozen=True, slots=True)
class Received:
    arrived_ts: float  # wall clock when the request arrived
    event_id: str
    alert: dict[str, Any]  # the JSON sink's body, parsed
    body: bytes  # as received
    headers: dict[str, str]


class WebhookReceiver(AsyncService):
    stop_if_start_fails = False

    def __init__(
        self,
        key: bytes,
        on_alert: Callable[[Received], None] | None = None,
        *,
        tolerance_s: float = 300.0,
    ) -> None:
        self.key = key
        self.on_alert = on_alert
        self.tolerance_s = tolerance_s
        self.received: list[Received] = []
        self.heartbeats: list[Received] = []
        self.last_heartbeat_ts = math.nan  # arrival of the last heartbeat
        self.rejected = 0  # bad signature, stale timestamp or not JSON
        self.duplicates = 0
        self._ids: set[str] = set()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._t0 = time.time()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    async def start(self) -> None:
        self._t0 = time.time()
        app = web.Application()
        app.router.add_post(PATH, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def heartbeat_silence_s(self, now: float) -> float:
        """Seconds since the last heartbeat (since ``start`` before the first one)."""
        last = self.last_heartbeat_ts if not math.isnan(self.last_heartbeat_ts) else self._t0
        return now - last

    async def wait_heartbeats(self, n: int, timeout_s: float) -> list[Received]:
        """Resolve once ``n`` heartbeats were received; TimeoutError after ``timeout_s``."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.heartbeats) >= n), timeout_s
            )
        return self.heartbeats[:n]

    async def wait_for(self, n: int, timeout_s: float) -> list[Received]:
        """Resolve once ``n`` alerts were received; TimeoutError after ``timeout_s``."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.received) >= n), timeout_s
            )
        return self.received[:n]

    async def wait_alert(self, match: Callable[[Received], bool], timeout_s: float) -> Received:
        """The first alert received (already, or from now on) that ``match`` accepts;
        TimeoutError after ``timeout_s``."""

        def found() -> Received | None:
            return next((r for r in self.received if match(r)), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), timeout_s)
        got = found()
        assert got is not None
        return got

    async def _handle(self, request: web.Request) -> web.Response:
        arrived = time.time()
        body = await request.read()
        ts = request.headers.get(TIMESTAMP_HEADER, "")
        sig = request.headers.get(SIGNATURE_HEADER, "")
        if not verify(self.key, ts, body, sig, arrived, self.tolerance_s):
            self.rejected += 1
            return web.Response(status=401, text="bad or stale signature")
        try:
            alert = orjson.loads(body)
        except orjson.JSONDecodeError:
            self.rejected += 1
            return web.Response(status=400, text="not JSON")
        event_id = request.headers.get(EVENT_ID_HEADER, "")
        if event_id in self._ids:
            self.duplicates += 1
            return web.Response(status=200, text="duplicate")
        self._ids.add(event_id)
        got = Received(arrived, event_id, alert, body, dict(request.headers))
        if isinstance(alert, dict) and alert.get("type") == "heartbeat":
            self.heartbeats.append(got)
            self.last_heartbeat_ts = arrived
        else:
            self.received.append(got)
            if self.on_alert is not None:
                self.on_alert(got)
        async with self._changed:
            self._changed.notify_all()
        return web.Response(status=200, text="ok")
