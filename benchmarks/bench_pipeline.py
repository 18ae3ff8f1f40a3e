"""Throughput of one producer and one consumer against the embedded broker (noida-db), one run.

    .venv/bin/python benchmarks/bench_pipeline.py [--events N]

Prints, side by side:
  producer, in process   frames -> adapter.parse -> dedup -> Publisher -> Kafka acks (no socket)
  producer, websocket    a full ProducerService reading a local websocket server (in another
                         process) that sends Bybit publicTrade frames as fast as it can
  consumer               a ConsumerService draining a pre-filled topic (50-event records, 5x the
                         producer's event count so the first fetch is a small part of it); timed
                         from its first applied record to its last (group join excluded)
Everything runs on this machine's 2 cores: the broker, the load generator and the measured process
share them, so the figures are what one process achieves here, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from websockets.sync.server import serve

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._broker import embedded_broker, free_port
from consumers.service import ConsumerService
from monitor.core.codec import encode_batch
from monitor.core.config import Config, load
from monitor.core.metrics import ProducerMetrics
from monitor.core.schema import Event
from monitor.core.topics import ensure_exchange_topics
from producers.publisher import Publisher
from producers.registry import ADAPTERS
from producers.service import ProducerService
from producers.session import Deduplicator

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "BNBUSDT")
TRADES_PER_FRAME = 10


def bybit_trade_frames(n_frames: int, start: int = 0) -> list[bytes]:
    frames = []
    ts = int(time.time() * 1000)
    k = start
    for i in range(n_frames):
        sym = SYMBOLS[i % len(SYMBOLS)]
        data = []
        for _ in range(TRADES_PER_FRAME):
            k += 1
            data.append({"T": ts, "s": sym, "S": "Buy" if k % 3 else "Sell", "v": "0.012",
                         "p": f"{90000 + k % 500}.5", "L": "MinusTick", "i": f"t-{k}", "BT": False})  # fmt: skip
        frames.append(orjson.dumps({"topic": f"publicTrade.{sym}", "type": "snapshot", "ts": ts,
                                    "data": data}))  # fmt: skip
    return frames


def binance_aggtrade_frames(n_frames: int) -> list[bytes]:
    ts = int(time.time() * 1000)
    return [
        orjson.dumps(
            {
                "stream": f"{(sym := SYMBOLS[i % len(SYMBOLS)]).lower()}@aggTrade",
                "data": {
                    "e": "aggTrade",
                    "E": ts,
                    "s": sym,
                    "a": i,
                    "p": "90000.10",
                    "q": "0.015",
                    "f": i,
                    "l": i,
                    "T": ts,
                    "m": bool(i % 2),
                },
            }
        )
        for i in range(n_frames)
    ]


def config(bootstrap: str, run: str) -> Config:
    return load(environ={}).with_overrides(
        kafka={"bootstrap_servers": bootstrap, "topic_prefix": f"bench{run}", "partitions": 6},
        consumer={"group_prefix": f"bench{run}"},
        exchanges={
            "bybit": {"symbols": list(SYMBOLS), "all_liquidations": False},
            "binance": {"symbols": list(SYMBOLS)},
        },  # no REST listing: trades only
    )


async def producer_in_process(cfg: Config, exchange: str, frames: list[bytes]) -> tuple[float, int]:
    await ensure_exchange_topics(cfg, [exchange])
    metrics = ProducerMetrics(CollectorRegistry())
    adapter = ADAPTERS[exchange](cfg.exchanges[exchange])
    dedup = Deduplicator()
    pub = Publisher(cfg, exchange, metrics)
    await pub.start()
    n = 0
    t0 = time.perf_counter()
    for i, frame in enumerate(frames):
        events, _, _ = dedup.fresh(adapter.parse(frame, time.time_ns()).events)
        n += pub.add(events)
        if i % 200 == 199:
            await asyncio.sleep(0)  # let the sender run, as the websocket reader would
    await pub.flush()
    dt = time.perf_counter() - t0
    await pub.stop()
    return dt, n


def _blaster(port: int, frames_path: str, ready: mp.synchronize.Event) -> None:  # subprocess

    frames = orjson.loads(Path(frames_path).read_bytes())

    def handler(ws):  # type: ignore[no-untyped-def]
        for msg in ws:
            req = orjson.loads(msg)
            if req.get("op") == "subscribe":
                ws.send(orjson.dumps({"success": True, "ret_msg": "", "conn_id": "bench",
                                      "req_id": req.get("req_id", ""), "op": "subscribe"}).decode())  # fmt: skip
                if req["args"][0].startswith("publicTrade."):  # after the first subscribe
                    for f in frames:
                        ws.send(f)
            elif req.get("op") == "ping":
                ws.send(orjson.dumps({"success": True, "ret_msg": "pong", "op": "ping"}).decode())

    with serve(handler, "127.0.0.1", port) as server:
        ready.set()
        server.serve_forever()


async def producer_websocket(cfg: Config, frames: list[bytes]) -> tuple[float, int]:
    port = free_port()
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        f.write(orjson.dumps([fr.decode() for fr in frames]))
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_blaster, args=(port, f.name, ready), daemon=True)
    proc.start()
    try:
        ready.wait(30)
        cfg = cfg.with_overrides(
            exchanges={"bybit": {"ws_url": f"ws://127.0.0.1:{port}/v5/public/linear"}}
        )
        expected = len(frames) * TRADES_PER_FRAME
        service = ProducerService(cfg, "bybit", CollectorRegistry())
        t0 = time.perf_counter()
        await service.start()
        await service.wait_published(expected, timeout_s=600)
        dt = time.perf_counter() - t0
        await service.stop()
        return dt, service.published_events
    finally:
        proc.terminate()
        proc.join(10)
        os.unlink(f.name)


async def consumer(cfg: Config, n_records: int) -> tuple[float, int]:

    exchange = "bybit"
    await ensure_exchange_topics(cfg, [exchange])
    adapter = ADAPTERS[exchange](cfg.exchanges[exchange])
    per_symbol: dict[str, list[Event]] = {}
    # 50-event records: 45 trades and 5 liquidations of one symbol
    for frame in bybit_trade_frames(len(SYMBOLS) * 5, start=10**9):
        for e in adapter.parse(frame, time.time_ns()).events:
            per_symbol.setdefault(e.symbol, []).append(e)
    liq_frames = [orjson.dumps({"topic": f"allLiquidation.{s}", "type": "snapshot", "ts": 1,
                                "data": [{"T": int(time.time() * 1000) + j, "s": s, "S": "Buy",
                                          "v": "0.5", "p": "88000.5"} for j in range(5)]})
                  for s in SYMBOLS]  # fmt: skip
    records = []
    for lf in liq_frames:
        liqs = adapter.parse(lf, time.time_ns()).events
        sym = liqs[0].symbol
        records.append((sym, encode_batch(per_symbol[sym][:45] + liqs)))
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap_servers, linger_ms=5)
    await producer.start()
    total = 0
    for i in range(n_records):
        sym, value = records[i % len(records)]
        await producer.send(cfg.topic(exchange), value, key=sym.encode())
        total += 50
    await producer.flush()
    await producer.stop()
    service = ConsumerService(cfg, exchange, CollectorRegistry())
    await service.start()
    await service.wait_processed(1, timeout_s=60)
    t0 = time.perf_counter()
    start_n = service.processed_events
    await service.wait_processed(total, timeout_s=600)
    dt = time.perf_counter() - t0
    await service.stop()
    return dt, total - start_n


async def main(n_events: int) -> None:
    async with embedded_broker() as bootstrap:
        n_frames = n_events // TRADES_PER_FRAME
        rows = []
        dt, n = await producer_in_process(
            config(bootstrap, uuid.uuid4().hex[:8]), "bybit", bybit_trade_frames(n_frames)
        )
        rows.append(("producer in-process, Bybit publicTrade x10", n, dt, n_frames / dt))
        dt, n = await producer_in_process(
            config(bootstrap, uuid.uuid4().hex[:8]),
            "binance",
            binance_aggtrade_frames(n_events // 4),
        )
        rows.append(("producer in-process, Binance aggTrade", n, dt, n / dt))
        dt, n = await producer_websocket(
            config(bootstrap, uuid.uuid4().hex[:8]), bybit_trade_frames(n_frames)
        )
        rows.append(("producer websocket->Kafka, Bybit x10", n, dt, n_frames / dt))
        dt, n = await consumer(config(bootstrap, uuid.uuid4().hex[:8]), 5 * n_events // 50)
        rows.append(("consumer Kafka->state, 50-event records", n, dt, n / 50 / dt))
    print(f"\n{'path':<44} {'events':>9} {'seconds':>8} {'events/s':>10} {'frames|records/s':>17}")
    for name, n, dt, per_s in rows:
        print(f"{name:<44} {n:>9} {dt:>8.2f} {n / dt:>10,.0f} {per_s:>17,.0f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=200_000)
    asyncio.run(main(ap.parse_args().events))
