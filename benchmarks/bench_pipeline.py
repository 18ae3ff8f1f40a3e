"""Throughput of one producer and one consumer against the embedded broker (noida-db), one run.

    .venv/bin/python benchmarks/bench_pipeline.py [--events N] [--cpu K]

Prints, side by side, against the targets:
  producer, in process   frames -> adapter.parse into the publisher's columns (duplicate filter)
                         -> records -> Kafka acks (no socket)
  producer, websocket    a full ProducerService (websocket session, adapter, publisher, aiokafka)
                         reading a local source that sends pre-framed Bybit publicTrade frames
                         (10 trades each) or Binance aggTrade frames as fast as TCP takes them
                         (``benchmarks/_wsproducer.py``); timed from the go to the last Kafka ack.
                         Target (issue 16): >= 250,000 trade events/s on one core
  consumer               a ConsumerService draining a pre-filled topic (50-event records, 5x the
                         producer's event count so the first fetch is a small part of it); timed
                         from its first applied record to its last (group join excluded)
The producers are pinned to one CPU (``--cpu``, default the last), the broker and the frame source
to the others (the consumer runs unpinned, as before). Then where the websocket producer's time goes: a sampling profile of a
second run (``benchmarks/_sampler.py``), by part of the path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._broker import embedded_broker
from benchmarks._wsproducer import other_cpus, pinned, websocket_producer
from consumers.service import ConsumerService
from monitor.core.codec import encode_batch
from monitor.core.config import Config, load
from monitor.core.metrics import ProducerMetrics
from monitor.core.schema import Event
from monitor.core.topics import ensure_exchange_topics
from producers.publisher import Publisher
from producers.registry import ADAPTERS

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "BNBUSDT")
TRADES_PER_FRAME = 10
WS_TARGET = 250_000  # trade events/s, websocket -> Kafka acked, one core (issue 16)
CONSUMER_TARGET = 200_000  # events/s (issue 2)


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
    pub = Publisher(cfg, exchange, metrics)
    await pub.start()
    store = pub.columns  # as a session does: the frame's rows go straight into the publisher's
    n = 0
    t0 = time.perf_counter()
    for i, frame in enumerate(frames):
        _, trades, _, _, refused = adapter.parse(frame, time.time_ns(), store).counts()
        n += trades - refused
        if i % 200 == 199:
            await asyncio.sleep(0)  # let the sender run, as the websocket reader would
    await pub.flush()
    dt = time.perf_counter() - t0
    await pub.stop()
    return dt, n


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


async def main(n_events: int, cpu: int | None) -> None:
    broker = embedded_broker()
    with pinned(other_cpus(cpu)):  # the broker on the other CPUs
        bootstrap = await broker.__aenter__()
    try:
        rows = await _runs(bootstrap, n_events, cpu)
    finally:
        await broker.__aexit__(None, None, None)
    print(f"\nthe measured process pinned to CPU {cpu}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs; events/CPU-s: events per second of the producer process's "
          f"own CPU time (what the core gives when no other process takes it)\n")  # fmt: skip
    head = (f"{'path':<52} {'events':>8} {'seconds':>7} {'events/s':>9} {'ev/CPU-s':>9}  "
            f"{'target':>9}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for name, n, dt, cpu_s, target in rows:
        if not n or dt <= 0:
            print(f"{name:<52} nothing timed (every event was applied before the timer started)")
            continue
        verdict = "" if target is None else (
            f"{target:>9,}  {'MET' if n / dt >= target else 'NOT MET'}")  # fmt: skip
        per_cpu = f"{n / cpu_s:>9,.0f}" if cpu_s else f"{'':>9}"
        print(f"{name:<52} {n:>8} {dt:>7.2f} {n / dt:>9,.0f} {per_cpu}  {verdict}")


async def _runs(bootstrap: str, n_events: int, cpu: int | None) -> list[Any]:
    n_frames = n_events // TRADES_PER_FRAME
    rows: list[Any] = []
    with pinned(None if cpu is None else {cpu}):
        c0 = time.process_time()
        dt, n = await producer_in_process(
            config(bootstrap, uuid.uuid4().hex[:8]), "bybit", bybit_trade_frames(n_frames)
        )
        rows.append(("producer in process, Bybit publicTrade x10", n, dt,
                     time.process_time() - c0, None))  # fmt: skip
        c0 = time.process_time()
        dt, n = await producer_in_process(
            config(bootstrap, uuid.uuid4().hex[:8]),
            "binance",
            binance_aggtrade_frames(n_events // 4),
        )
        rows.append(
            ("producer in process, Binance aggTrade", n, dt, time.process_time() - c0, None)
        )
    runs = (("bybit", bybit_trade_frames(n_frames), n_frames * TRADES_PER_FRAME, "Bybit publicTrade x10"),
            ("binance", binance_aggtrade_frames(n_events // 4), n_events // 4, "Binance aggTrade x1"))  # fmt: skip
    for venue, frames, events, label in runs:
        run = await websocket_producer(config(bootstrap, uuid.uuid4().hex[:8]), venue, frames,
                                       events, cpu=cpu)  # fmt: skip
        rows.append((f"producer websocket -> Kafka acked, {label}", run.events, run.seconds,
                     run.cpu_s, WS_TARGET))  # fmt: skip
    dt, n = await consumer(config(bootstrap, uuid.uuid4().hex[:8]), 5 * n_events // 50)
    rows.append(("consumer Kafka -> state, 50-event records", n, dt, 0.0, CONSUMER_TARGET))
    frames = bybit_trade_frames(n_frames, start=10**8)
    run = await websocket_producer(config(bootstrap, uuid.uuid4().hex[:8]), "bybit", frames,
                                   n_frames * TRADES_PER_FRAME, cpu=cpu, sample=True)  # fmt: skip
    assert run.sampler is not None
    print(f"\nwhere the websocket producer's CPU goes (Bybit publicTrade x10, a second run under a "
          f"sampling profiler: {run.events / run.seconds:,.0f} events/s, "
          f"{run.events / run.cpu_s:,.0f} events/CPU-s, {run.sampler.samples} samples of 1 ms of "
          f"CPU; us/event = share x CPU time / events):")  # fmt: skip
    for label, share in run.sampler.shares():
        print(f"  {share:6.1%} {share * run.cpu_s / run.events * 1e6:6.2f} us/event  {label}")
    return rows


def default_cpu() -> int | None:
    """The last CPU this process may use, when there are at least two."""
    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2:
        return None
    return max(os.sched_getaffinity(0))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--cpu", type=int, default=None, help="CPU of the measured process")
    args = ap.parse_args()
    asyncio.run(main(args.events, args.cpu if args.cpu is not None else default_cpu()))
