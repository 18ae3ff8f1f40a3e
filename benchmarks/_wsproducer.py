"""One real producer (``ProducerService``: websocket session, adapter, publisher, aiokafka) fed over
loopback by a frame source that costs next to nothing, so the producer's own core is what limits.

The source (a subprocess) speaks just enough of the venue's protocol (Bybit: the subscribe acks
and pongs; Binance: streams in the URL) through the ``websockets`` server for the handshake, then,
once the benchmark says go, writes every frame at once, pre-framed as unmasked RFC 6455 text
frames, with one ``sendall``: no per-frame work on its side, and TCP flow control paces it to the
producer's reading. Compression is off, and the producer's pings are pushed out beyond the run
(nothing else may write on the socket meanwhile).

CPU pinning (``os.sched_setaffinity``): the producer on ``cpu``, the source and the broker on the
other CPUs, so "one core" means one core.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from websockets.sync.server import serve

from benchmarks._broker import free_port
from benchmarks._sampler import Sampler
from monitor.core.config import Config
from producers.service import ProducerService

QUIET_S = 3600.0  # the producer's ping and stale intervals during a run


def ws_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame (server to client), RFC 6455 section 5.2."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


def other_cpus(cpu: int | None) -> set[int] | None:
    """The CPUs left for the source and the broker (None: no pinning)."""
    if cpu is None or not hasattr(os, "sched_getaffinity"):
        return None
    rest = os.sched_getaffinity(0) - {cpu}
    return rest or None


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Run the block (and processes it starts) on ``cpus``; restore afterwards."""
    if cpus is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _source(port: int, path: str, ready: Any, go: Any) -> None:  # subprocess
    wire = Path(path).read_bytes()

    sent: set[Any] = set()

    def blast(ws: Any) -> None:  # once per connection (Bybit subscribes in several frames)
        if ws not in sent:
            sent.add(ws)
            go.wait(120)
            ws.socket.sendall(wire)

    def handler(ws: Any) -> None:
        if "aggTrade" in ws.request.path:  # Binance: the streams are in the URL
            blast(ws)
        for msg in ws:
            req = orjson.loads(msg)
            if req.get("op") == "subscribe":
                ws.send(orjson.dumps({"success": True, "ret_msg": "", "conn_id": "bench",
                                      "req_id": req.get("req_id", ""), "op": "subscribe"}).decode())  # fmt: skip
                if any(str(a).startswith("publicTrade.") for a in req.get("args", ())):
                    blast(ws)
            elif req.get("op") == "ping":
                ws.send(orjson.dumps({"success": True, "ret_msg": "pong", "op": "ping"}).decode())

    with serve(handler, "127.0.0.1", port, compression=None) as server:
        ready.set()
        server.serve_forever()


@dataclass
class WsRun:
    seconds: float  # from the go to the last acknowledgement
    events: int  # acknowledged by Kafka
    cpu_s: float  # the producer process's CPU time meanwhile
    sampler: Sampler | None


async def websocket_producer(
    cfg: Config, venue: str, frames: list[bytes], events: int, *, cpu: int | None,
    sample: bool = False,
) -> WsRun:  # fmt: skip
    """Run a ``ProducerService`` for ``venue`` against the source sending ``frames`` (``events``
    trades in all); time from the go (every planned connection open and subscribed) to the
    acknowledgement of the last event."""
    port = free_port()
    with tempfile.NamedTemporaryFile(suffix=".ws", delete=False) as f:
        f.write(b"".join(ws_frame(fr) for fr in frames))
    ctx = mp.get_context("spawn")
    ready, go = ctx.Event(), ctx.Event()
    with pinned(other_cpus(cpu)):
        proc = ctx.Process(target=_source, args=(port, f.name, ready, go), daemon=True)
        proc.start()
    try:
        ready.wait(30)
        cfg = cfg.with_overrides(exchanges={venue: {
            "ws_url": f"ws://127.0.0.1:{port}" + ("/v5/public/linear" if venue == "bybit" else ""),
            "ping_interval_s": QUIET_S, "stale_after_s": QUIET_S,
        }})  # fmt: skip
        service = ProducerService(cfg, venue, CollectorRegistry())
        with pinned(None if cpu is None else {cpu}):
            await service.start()
            await service.wait_connected(30)
            await asyncio.sleep(0.5)  # subscriptions sent (spaced) and acknowledged
            sampler = Sampler() if sample else None
            with sampler if sampler is not None else contextlib.nullcontext():
                c0, t0 = time.process_time(), time.perf_counter()
                go.set()
                await service.wait_published(events, timeout_s=600)
                dt, cpu_s = time.perf_counter() - t0, time.process_time() - c0
            await service.stop()
        return WsRun(dt, service.published_events, cpu_s, sampler)
    finally:
        proc.terminate()
        proc.join(10)
        os.unlink(f.name)
