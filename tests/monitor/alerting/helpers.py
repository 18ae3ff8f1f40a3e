"""Shared by the alerting tests: a real local HTTP receiver (aiohttp.web on 127.0.0.1) whose
answers each test scripts, a sample alert, and a courier for one sink built from a settings table.
The receiver's waits are event-driven (no polling sleeps)."""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.alerting.courier import SinkCourier
from monitor.alerting.sinks import resolve_sink
from monitor.core.alertrecord import AlertEvent, fingerprint
from monitor.core.metrics import DispatcherMetrics
from monitor.core.sink_settings import sink_from_dict

T0 = 1_700_000_100.0  # 2023-11-14T22:15:00Z
T0_ISO = "2023-11-14T22:15:00.000Z"
KEY = "s3cr3t-signing-key-0123456789"
ROUTING = "R0UT1NGKEY0123456789abcdef012345"
TOKEN_PATH = "/services/T000/B000/XXXXtokenXXXXXXXXXXXXXX"


# ---- a real local receiver -------------------------------------------------------------------


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    t: float  # monotonic arrival
    status: int | None = None  # what the receiver answered (None: never answered)

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


Responder = Callable[["Receiver", Hit], Awaitable[web.StreamResponse]]


async def ok(_: Receiver, __: Hit) -> web.StreamResponse:
    return web.Response(status=200, text="ok")


@dataclass
class Receiver:
    """An HTTP receiver on 127.0.0.1; ``respond`` decides each answer. Waits are event-driven."""

    respond: Responder = ok
    port: int = 0
    hits: list[Hit] = field(default_factory=list)
    active: int = 0  # requests being handled now
    max_active: int = 0
    _runner: web.AppRunner | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        await site.start()
        self.port = runner.addresses[0][1]
        self._runner = runner
        self.closing = asyncio.Event()
        return self

    async def stop(self) -> None:
        self.closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def touch(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, pred: Callable[[], bool], timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not pred():
                await self._changed.wait()

    def answered(self, path: str | None = None, status: int = 200) -> list[Hit]:
        return [h for h in self.hits if h.status == status and (path is None or h.path == path)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        hit = Hit(request.path, dict(request.headers), await request.read(), time.monotonic())
        self.hits.append(hit)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.touch()
        try:
            resp = await self.respond(self, hit)
            hit.status = resp.status
            return resp
        finally:
            self.active -= 1
            self.touch()


async def hold_until(ev: asyncio.Event, receiver: Receiver) -> None:
    """Block a request until ``ev`` or the receiver closing."""
    closing = asyncio.ensure_future(receiver.closing.wait())
    released = asyncio.ensure_future(ev.wait())
    await asyncio.wait([closing, released], return_when=asyncio.FIRST_COMPLETED)
    closing.cancel()
    released.cancel()


# ---- alerts and couriers ---------------------------------------------------------------------


def mk(
    symbol: str = "BTC-USDT-PERP", status: str = "firing", severity: str = "critical",
    t: float = T0, started_t: float = T0, rule: str = "cascade-risk", exchange: str = "bybit",
    value: float = 0.8734, received_ts: float = math.nan,
) -> AlertEvent:  # fmt: skip
    return AlertEvent(
        fingerprint=fingerprint(rule, exchange, symbol), rule=rule, status=status,
        severity=severity, exchange=exchange, symbol=symbol, metric="score", value=value, t=t,
        started_t=started_t, summary=f"{severity}: cascade risk {value:.2f} on {exchange} {symbol}",
        labels={"team": "risk"}, drivers=(("branching", 0.42), ("vpin", 0.3)),
        received_ts=received_ts,
    )  # fmt: skip


def sink_cfg(kind: str, url: str | None, name: str | None = None, **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name or kind, "kind": kind, **kw}
    if url is not None:
        d["url"] = url
    if kind in ("json", "pagerduty") and "secret_file" not in kw:
        d.setdefault("secret_env", "CASCADE_TEST_KEY")
    return d


ENV = {"CASCADE_TEST_KEY": KEY}


def courier(
    session: aiohttp.ClientSession, d: dict[str, Any], env: dict[str, str] | None = None,
    registry: CollectorRegistry | None = None,
) -> SinkCourier:  # fmt: skip
    sink = resolve_sink(sink_from_dict(d, "alerts.sinks[0]"), env or ENV)
    metrics = DispatcherMetrics(registry or CollectorRegistry())
    return SinkCourier(sink, session, metrics, uniform=lambda: 0.0)


def event_id_ref(a: AlertEvent) -> str:
    """The event id from its definition: blake2b-128 of fingerprint, status, severity, start."""
    raw = f"{a.fingerprint}\0{a.status}\0{a.severity}\0{a.started_t!r}".encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()
