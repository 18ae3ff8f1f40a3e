"""A steady load on one exchange topic for the scaling tests (its own process):

    python -m tests.scaling.loadgen --bootstrap HOST:PORT --topic T --partitions 12 --out F.json

Every ``WINDOW_MS`` of wall time, one record per pair (pair ``i`` on partition ``i % partitions``,
keyed by its symbol) with that window's trades and liquidations, written column by column as the
producers' ``monitor.core.codec.Columns`` do (cheaper than event objects: this process shares the
machine with the broker and the consumers). What a window holds is drawn from ``--seed`` in window
order, so a run's records are the same whatever the machine's speed, but for the event times
(window ``w`` is stamped ``start + w * WINDOW_MS``, spread over the window) and the receive times.
If the process falls behind, it sends the late windows at once (event time stays on schedule).
Notionals are whole dollars, so sums are exact in any order.

It runs until SIGTERM or SIGINT, then finishes the window in hand, waits for every
acknowledgement (a failed send is an error, not a retry: the test would not know what Kafka holds)
and writes ``--out``: events and records published, the rate, and per pair the liquidation
notional and count by side and the trade count and notional. It prints ``ready`` once its
producer is connected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import signal
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from monitor.core.codec import LIQ, TRD, Columns

EXCHANGE = "binance"
WINDOW_MS = 250


def symbol(i: int) -> str:
    return f"P{i:03d}-USDT-PERP"


class Pair:
    """One pair's price walk and what was published of it."""

    def __init__(self, i: int, rng: random.Random) -> None:
        self.symbol = symbol(i)
        self.venue = self.symbol.replace("-PERP", "").replace("-", "")
        self.price = float(rng.randrange(100, 100_000))
        self.liq_usd = {"long": 0.0, "short": 0.0}
        self.liq_n = {"long": 0, "short": 0}
        self.trd_n = 0
        self.trd_usd = 0.0

    def window(self, rng: random.Random, w: int, t0_ms: int, trades: int) -> Columns:
        """The record of window ``w``: about ``trades`` trades and a few liquidations."""
        c = Columns(EXCHANGE, self.symbol, self.venue)
        recv = time.time_ns()
        n_trd = rng.randint(trades - 4, trades + 4)
        n_liq = rng.choice((0, 0, 0, 1, 1, 2))
        base = t0_ms + w * WINDOW_MS
        if n_liq:
            sides = [rng.choice(("long", "short")) for _ in range(n_liq)]
            usd = [float(rng.randrange(100, 200_000)) for _ in range(n_liq)]
            px = round(self.price, 2)
            ts = sorted(base + rng.randrange(WINDOW_MS) for _ in range(n_liq))
            cols: tuple[list[Any], ...] = (
                [f"l{w}.{j}" for j in range(n_liq)], sides,
                ["sell" if s == "long" else "buy" for s in sides], [px] * n_liq,
                ["avg_fill"] * n_liq, [q / px for q in usd], ["base"] * n_liq, [1.0] * n_liq,
                [q / px for q in usd], usd, ["complete"] * n_liq, ts, [recv] * n_liq,
            )  # fmt: skip
            for col, values in zip(c.group(LIQ), cols, strict=True):
                col.extend(values)
            for s, q in zip(sides, usd, strict=True):
                self.liq_usd[s] += q
                self.liq_n[s] += 1
        prices = []
        for _ in range(n_trd):
            self.price *= math.exp(rng.gauss(0.0, 2e-4))
            prices.append(round(self.price, 2))
        usd = [float(rng.randrange(10, 50_000)) for _ in range(n_trd)]
        cols = (
            [f"t{w}.{j}" for j in range(n_trd)],
            [rng.choice(("buy", "sell")) for _ in range(n_trd)], prices, usd,
            ["usd"] * n_trd, [1.0] * n_trd, [q / p for q, p in zip(usd, prices, strict=True)],
            usd, [False] * n_trd, [base + j * WINDOW_MS // n_trd for j in range(n_trd)],
            [recv] * n_trd,
        )  # fmt: skip
        for col, values in zip(c.group(TRD), cols, strict=True):
            col.extend(values)
        self.trd_n += n_trd
        self.trd_usd += sum(usd)
        c.n = n_liq + n_trd
        return c


async def run(args: argparse.Namespace) -> dict[str, Any]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    rng = random.Random(args.seed)
    pairs = [Pair(i, rng) for i in range(args.pairs)]
    trades = round(args.rate * WINDOW_MS / 1000 / args.pairs)  # per pair and window, on average
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    print("ready", flush=True)
    acks: list[Awaitable[Any]] = []
    events = 0
    t0 = time.time()
    t0_ms = int(t0 * 1000)
    w = 0
    try:
        while not stop.is_set():
            for i, pair in enumerate(pairs):
                cols = pair.window(rng, w, t0_ms, trades)
                events += cols.n
                key = pair.symbol.encode()
                acks.append(
                    await producer.send(
                        args.topic, cols.encode(), key=key, partition=i % args.partitions
                    )
                )
            w += 1
            ahead = t0 + w * WINDOW_MS / 1000 - time.time()
            if ahead > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), ahead)
        await producer.flush()
        await asyncio.gather(*acks)  # any failed send raises here
    finally:
        await producer.stop()
    elapsed = time.time() - t0
    return {
        "events": events,
        "records": len(acks),
        "windows": w,
        "seconds": elapsed,
        "events_per_s": events / elapsed,
        "pairs": {
            p.symbol: {"liq_usd": p.liq_usd, "liq_n": p.liq_n, "trd_n": p.trd_n,
                       "trd_usd": p.trd_usd}
            for p in pairs
        },
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--pairs", type=int, default=96)
    ap.add_argument("--rate", type=float, default=22_000.0, help="trade events/s, about")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    summary = asyncio.run(run(args))
    Path(args.out).write_bytes(orjson.dumps(summary))


if __name__ == "__main__":
    main()
