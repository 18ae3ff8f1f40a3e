"""Parser throughput on one core: frames/s and events/s of each venue adapter.

Builds N realistic frames per message type (many symbols, varied prices and sizes, ids and
timestamps that move like a live feed), then times ``adapter.parse`` over them in a tight loop
(best of ``--repeat`` runs, after a warm-up pass): on the producer's path (rows appended to a
``ColumnStore``, the figures of the main columns) and, for reference, building the frame's event
objects (tests and tools). No network, no Kafka, no pytest.

    .venv/bin/python benchmarks/bench_parsers.py [-n 50000] [--repeat 5]

With ``--cryptofeed`` and cryptofeed importable, the same frames also go through cryptofeed's
``message_handler`` (no-op callbacks, symbol tables preloaded) for a like-for-like comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import time
import types
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from monitor.core.config import ExchangeConfig
from producers.binance import BinanceAdapter
from producers.bybit import BybitAdapter
from producers.columns import ColumnStore

SYMBOLS = (
    ("BTCUSDT", 65000.0), ("ETHUSDT", 3400.0), ("SOLUSDT", 150.0), ("XRPUSDT", 0.52),
    ("DOGEUSDT", 0.15), ("BNBUSDT", 580.0), ("ADAUSDT", 0.45), ("1000PEPEUSDT", 0.011),
    ("AVAXUSDT", 35.0), ("LINKUSDT", 14.5), ("WIFUSDT", 2.4), ("ARBUSDT", 0.9),
)  # fmt: skip
TS0 = 1_760_000_000_000


def _px(rng: random.Random, mid: float) -> str:
    return f"{mid * (1 + rng.uniform(-0.01, 0.01)):.6g}"


def _qty(rng: random.Random) -> str:
    return f"{rng.lognormvariate(0, 1.5):.3f}".rstrip("0").rstrip(".") or "0.001"


def binance_agg_trades(n: int, rng: random.Random) -> list[bytes]:
    out = []
    for i in range(n):
        sym, mid = rng.choice(SYMBOLS)
        d = {"e": "aggTrade", "E": TS0 + i, "s": sym, "a": 5_000_000_000 + i, "p": _px(rng, mid),
             "q": _qty(rng), "f": 9_000_000 + 3 * i, "l": 9_000_002 + 3 * i, "T": TS0 + i - 2,
             "m": rng.random() < 0.5}  # fmt: skip
        out.append(orjson.dumps({"stream": f"{sym.lower()}@aggTrade", "data": d}))
    return out


def binance_force_orders(n: int, rng: random.Random) -> list[bytes]:
    out = []
    for i in range(n):
        sym, mid = rng.choice(SYMBOLS)
        q = _qty(rng)
        px = _px(rng, mid)
        o = {"s": sym, "S": rng.choice(("SELL", "BUY")), "o": "LIMIT", "f": "IOC", "q": q,
             "p": _px(rng, mid), "ap": px, "X": "FILLED", "l": q, "z": q, "T": TS0 + 1000 * i}  # fmt: skip
        out.append(orjson.dumps({"e": "forceOrder", "E": TS0 + 1000 * i + 3, "o": o}))
    return out


def bybit_public_trades(n: int, rng: random.Random, per_frame: int = 10) -> list[bytes]:
    out = []
    for i in range(n):
        sym, mid = rng.choice(SYMBOLS)
        data = [
            {"T": TS0 + i * 50 + k, "s": sym, "S": rng.choice(("Buy", "Sell")), "v": _qty(rng),
             "p": _px(rng, mid), "L": "PlusTick", "i": str(uuid.UUID(int=rng.getrandbits(128))),
             "BT": False, "RPI": False, "seq": 1_000_000 + i}
            for k in range(per_frame)
        ]  # fmt: skip
        out.append(orjson.dumps({"topic": f"publicTrade.{sym}", "type": "snapshot",
                                 "ts": TS0 + i * 50 + per_frame, "data": data}))  # fmt: skip
    return out


def bybit_all_liquidations(n: int, rng: random.Random) -> list[bytes]:
    out = []
    for i in range(n):
        sym, mid = rng.choice(SYMBOLS)
        data = [
            {"T": TS0 + 500 * i + k, "s": sym, "S": rng.choice(("Buy", "Sell")), "v": _qty(rng),
             "p": _px(rng, mid)}
            for k in range(rng.choice((1, 1, 1, 2, 3)))
        ]  # fmt: skip
        out.append(orjson.dumps({"topic": f"allLiquidation.{sym}", "type": "snapshot",
                                 "ts": TS0 + 500 * i + 400, "data": data}))  # fmt: skip
    return out


def bench(
    parse: Callable[..., Any], frames: list[bytes], repeat: int, exchange: str
) -> tuple[float, float, int]:
    """Best wall times of ``repeat`` passes over ``frames``, on the producer's column path (rows
    into a fresh ``ColumnStore`` per pass, its duplicate filter included) and on the objects path
    (``Parsed.events`` of a standalone parse: tests, tools), and the events of one pass."""
    events = sum(len(parse(f, 0).events) for f in frames)  # warm-up, resolves symbols
    best_cols = best_objs = float("inf")
    for _ in range(repeat):
        store = ColumnStore(exchange)
        gc.collect()
        t0 = time.perf_counter()
        for f in frames:
            parse(f, 1, store)
        best_cols = min(best_cols, time.perf_counter() - t0)
        gc.collect()
        t0 = time.perf_counter()
        for f in frames:
            parse(f, 1).events  # noqa: B018
        best_objs = min(best_objs, time.perf_counter() - t0)
    return best_cols, best_objs, events


def cryptofeed_runner(kind: str) -> Callable[[list[bytes], int], float] | None:
    """Time cryptofeed's handler on the same frames, if cryptofeed is importable."""
    try:
        from cryptofeed.defines import (  # type: ignore[import-not-found,unused-ignore]
            LIQUIDATIONS,
            TRADES,
        )
        from cryptofeed.exchanges import (  # type: ignore[import-not-found,unused-ignore]
            BinanceFutures,
            Bybit,
        )
        from cryptofeed.symbols import Symbols  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    std = {f"{s[: -len('USDT')]}-USDT-PERP": s for s, _ in SYMBOLS}
    info = {"tick_size": {}, "instrument_type": {k: "perpetual" for k in std}}
    for cls in (BinanceFutures, Bybit):
        Symbols.set(cls.id, std, info)

    async def noop(*_a: Any, **_k: Any) -> None:
        return None

    cbs = {TRADES: noop, LIQUIDATIONS: noop}
    feed: Any
    if kind.startswith("binance"):
        feed = BinanceFutures(symbols=list(std), channels=[TRADES, LIQUIDATIONS], callbacks=cbs)
        conn = None
    else:
        feed = Bybit(symbols=list(std), channels=[TRADES], callbacks=cbs)
        conn = types.SimpleNamespace(address="wss://stream.bybit.com/v5/public/linear", uuid="b")

    def run(frames: list[bytes], repeat: int) -> float:
        if kind == "binance forceOrder":  # cryptofeed reads liquidations from combined streams
            frames = [
                b'{"stream":"'
                + orjson.loads(f)["o"]["s"].lower().encode()
                + b'@forceOrder","data":'
                + f
                + b"}"
                for f in frames
            ]
        texts = [f.decode() for f in frames]

        async def once() -> float:
            t0 = time.perf_counter()
            for m in texts:
                await feed.message_handler(m, conn, 1.0)
            return time.perf_counter() - t0

        return min(asyncio.run(once()) for _ in range(repeat))

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=50_000, help="frames per message type")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cryptofeed", action="store_true", help="also time cryptofeed, if installed")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    cfg = ExchangeConfig()
    binance, bybit = BinanceAdapter(cfg), BybitAdapter(cfg)
    cases = [
        ("binance aggTrade (combined)", binance.parse, binance_agg_trades(args.n, rng)),
        ("binance forceOrder", binance.parse, binance_force_orders(args.n, rng)),
        ("bybit publicTrade x10", bybit.parse, bybit_public_trades(args.n // 5, rng)),
        ("bybit allLiquidation", bybit.parse, bybit_all_liquidations(args.n, rng)),
    ]
    print(f"{'frames of':32} {'frames':>8} {'frames/s':>12} {'events/s':>12} {'us/event':>9}"
          f"  {'objects path us/event':>21}")  # fmt: skip
    for name, parse, frames in cases:
        dt, dt_objects, events = bench(parse, frames, args.repeat, name.split()[0])
        print(
            f"{name:32} {len(frames):8d} {len(frames) / dt:12,.0f} {events / dt:12,.0f}"
            f" {dt / events * 1e6:9.3f}  {dt_objects / events * 1e6:21.3f}"
        )
        if args.cryptofeed:
            run = cryptofeed_runner(name)
            if run is None:
                print("  cryptofeed not importable; skipped")
            elif "allLiquidation" in name:
                print("  cryptofeed: no allLiquidation support (uses deprecated liquidation.*)")
            else:
                cdt = run(frames, args.repeat)
                print(
                    f"  {'cryptofeed':30} {'':8} {len(frames) / cdt:12,.0f}"
                    f" {events / cdt:12,.0f} {cdt / events * 1e6:9.3f}   ours x{cdt / dt:.2f}"
                )


if __name__ == "__main__":
    main()
