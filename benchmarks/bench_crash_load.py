"""Crash load: a reflexive crash at k x speed, simulator -> websocket -> producer -> Kafka acks.

    .venv/bin/python benchmarks/bench_crash_load.py [--family flash_crash] [--seed 1]
        [--ks 2,5,10,20,50,100,200,400] [--repeat 3] [--cpu K]

1. The scenario: ``FAMILIES[family](seed)`` of the reflexive crash simulator
   (``monitor/simulator/reflexive``, every venue). Each venue's burst rate is measured on it: the
   most scenario events (trades and liquidations) the venue has in one second, printed per venue;
   the busiest venue is the one the run plays.
2. The window: the busiest venue's events from 15 s before the scenario's peak liquidation minute
   to 15 s after it, re-timed to start at 0 (a ``Scenario`` of its own, with the same price paths).
3. For each k: the exchange simulator's server (``ExchangeSimulator``: real websockets, the
   venue's protocol and REST metadata, its sampling and batching windows on the wall clock) plays
   the window at speed k in a subprocess; a ``ProducerService`` for the venue (its websocket
   sessions, adapter, publisher, aiokafka with idempotent ``acks=all``) runs here, pinned to one
   CPU (``--cpu``, default the last); the embedded broker and the simulator run on the other CPUs.
   A frame's latency runs from the moment the simulator dispatches it (the server stamps every
   frame as its venue emits it) to the Kafka acknowledgement of the last record holding its rows
   (``Publisher.on_acked``); the producer sees frames through ``ProducerService(tap=...)`` and
   frames are matched across the processes by checksums. Frames without rows (acks, pongs,
   duplicates) do not count. Events/s: events acknowledged over the time from the first dispatch
   to the last acknowledgement; peak: the most acknowledged in a 250 ms window, per second.
   ``producer p99``: the producer's own part, from the frame's receipt to its acknowledgement;
   ``wire p99``: from the dispatch to the receipt (the simulator's writer, loopback TCP, the
   websocket client's buffers). Each k runs ``--repeat`` times; the row is the median run by p99
   (the p99 of every run is listed). The scenario and the benchmark's tables are kept out of the
   garbage collector's scans (``gc.freeze``) in both processes: they are not the producer's.
4. The table against the target (issue 16): frame-to-ack p99 < 50 ms at 5x the busiest venue's
   crash burst rate (k = 5), and the first k whose p99 exceeds 50 ms. ``sim lag``: how much
   longer the simulator took to dispatch the window than the window lasts at speed k (when it
   falls behind, the offered rate is lower than k x the burst and the row says so).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import multiprocessing as mp
import os
import pickle
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import CollectorRegistry

from benchmarks._broker import embedded_broker
from benchmarks._wsproducer import other_cpus, pinned
from monitor.core.codec import Columns
from monitor.core.config import Config, load
from monitor.simulator.events import Scenario
from monitor.simulator.reflexive.families import FAMILIES
from monitor.simulator.server import ExchangeSimulator
from producers.service import ProducerService

TARGET_K: Final = 5.0
TARGET_P99_MS: Final = 50.0
MARGIN_S: Final = 15.0  # around the peak minute


def frame_key(data: bytes | str) -> tuple[int, int, int]:
    """A frame's identity across processes: two checksums and the length."""
    b = data.encode() if isinstance(data, str) else data
    return zlib.crc32(b), zlib.adler32(b), len(b)


# ---- the scenario --------------------------------------------------------------------------


def burst_rates(scenario: Scenario) -> dict[str, tuple[int, float]]:
    """Venue -> (most events in one second, at which second)."""
    per: Counter[tuple[str, int]] = Counter((e.venue, int(e.t)) for e in scenario.events)
    out: dict[str, tuple[int, float]] = {}
    for (venue, sec), n in per.items():
        if n > out.get(venue, (0, 0.0))[0]:
            out[venue] = (n, float(sec))
    return out


def window(scenario: Any, venue: str) -> Scenario:
    """The venue's events around the peak minute, re-timed to start at 0."""
    peak = scenario.truth.peak_minute_s
    if peak is None:
        raise SystemExit("the scenario has no peak minute: choose a crash family")
    t0, t1 = max(0.0, peak - MARGIN_S), peak + 60.0 + MARGIN_S
    events = [type(e)(**{**{f: getattr(e, f) for f in e.__slots__}, "t": e.t - t0})
              for e in scenario.events if e.venue == venue and t0 <= e.t < t1]  # fmt: skip
    times = [t for t in scenario.path_times if t0 <= t <= t1]
    i0 = scenario.path_times.index(times[0])
    paths = {s: tuple(p[i0 : i0 + len(times)]) for s, p in scenario.paths.items()}
    return Scenario(events=events, duration_s=t1 - t0, seed=scenario.seed, venues=(venue,),
                    symbols=scenario.symbols, crash_start_s=0.0,
                    path_times=tuple(t - t0 for t in times), paths=paths)  # fmt: skip


# ---- the simulator (a subprocess) ----------------------------------------------------------


class StampedSimulator(ExchangeSimulator):
    """The simulator, stamping each frame when its venue emits it (dispatch to the connections)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stamps: list[tuple[tuple[int, int, int], int]] = []

    def _dispatch(self, venue: Any, outs: list[Any]) -> None:
        now = time.time_ns()
        for out in outs:
            for client in venue.clients:
                for frame in client.session.frames_for(out):
                    self.stamps.append((frame_key(frame), now))
        super()._dispatch(venue, outs)


def _simulate(path: str, venue: str, speed: float, conn: Any) -> None:  # subprocess
    scenario = pickle.loads(Path(path).read_bytes())
    gc.freeze()  # the scenario's objects: out of the collector's scans (a load generator's data)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        async with StampedSimulator(scenario, speed=speed) as sim:
            conn.send((sim.url(venue), sim.rest_url(venue)))
            await sim.wait_liquidations_subscribed(timeout_s=60)
            conn.send("subscribed")
            await loop.run_in_executor(None, conn.recv)  # play
            t0 = time.perf_counter()
            sim.play()
            await sim.wait_finished()
            conn.send((sim.stamps, time.perf_counter() - t0))
            await loop.run_in_executor(None, conn.recv)  # stop

    asyncio.run(run())


# ---- one run at speed k --------------------------------------------------------------------


@dataclass
class Run:
    k: float
    frames: int = 0
    events: int = 0
    seconds: float = 0.0
    play_s: float = 0.0
    latency_ms: list[float] = field(default_factory=list)
    producer_ms: list[float] = field(default_factory=list)
    wire_ms: list[float] = field(default_factory=list)  # dispatch -> the producer's receipt
    acks: list[tuple[int, int]] = field(default_factory=list)  # (ack ns, events)
    p99s: list[float] = field(default_factory=list)  # of every run at this k

    def peak_rate(self, bucket_s: float = 0.25) -> float:
        """Most events acknowledged in one ``bucket_s`` window, per second."""
        per: Counter[int] = Counter()
        for ns, n in self.acks:
            per[int(ns / 1e9 / bucket_s)] += n
        return max(per.values(), default=0) / bucket_s

    def pct(self, q: float, values: list[float] | None = None) -> float:
        v = sorted(self.latency_ms if values is None else values)
        return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


async def run_at(bootstrap: str, path: Path, scene: Scenario, venue: str, k: float,
                 cpu: int | None) -> Run:  # fmt: skip
    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    with pinned(other_cpus(cpu)):
        proc = ctx.Process(target=_simulate, args=(str(path), venue, k, there), daemon=True)
        proc.start()
    loop = asyncio.get_running_loop()
    received: dict[int, tuple[int, int, int]] = {}  # receive ns -> frame key
    acked: dict[int, int] = {}  # receive ns -> last ack ns
    acks: list[tuple[int, int]] = []

    def tap(name: str, frame: str | bytes, received_ns: int) -> None:
        received[received_ns] = frame_key(frame)

    def on_acked(record: Columns, ack_ns: int) -> None:
        acks.append((ack_ns, record.n))
        for cols in (record.liq, record.trd, record.ctx):
            if cols:
                for r in set(cols[-1]):  # the recv_ns column
                    acked[r] = max(acked.get(r, 0), ack_ns)

    try:
        ws_url, rest_url = await loop.run_in_executor(None, here.recv)
        cfg = config(
            bootstrap, venue, ws_url, rest_url, sorted({e.venue_symbol for e in scene.events})
        )
        service = ProducerService(cfg, venue, CollectorRegistry(), tap=tap)
        service.publisher.on_acked = on_acked
        with pinned(None if cpu is None else {cpu}):
            await service.start()
            await service.wait_connected(60)
            assert await loop.run_in_executor(None, here.recv) == "subscribed"
            await asyncio.sleep(0.5)  # subscribe frames sent after the connect (spaced)
            here.send("play")
            stamps, play_s = await loop.run_in_executor(None, here.recv)
            await service.publisher.flush(timeout_s=120)
            await service.stop()
        here.send("stop")
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
    dispatched = dict(stamps)
    run = Run(k, play_s=play_s, acks=acks)
    first = min((ns for _, ns in stamps), default=0)
    for recv_ns, ack_ns in acked.items():
        sent = dispatched.get(received.get(recv_ns, (0, 0, 0)))
        if sent is None:
            continue
        run.frames += 1
        run.latency_ms.append((ack_ns - sent) / 1e6)
        run.producer_ms.append((ack_ns - recv_ns) / 1e6)
        run.wire_ms.append((recv_ns - sent) / 1e6)
    run.events = sum(n for _, n in acks)
    run.seconds = (max(acked.values(), default=first) - first) / 1e9
    return run


def config(bootstrap: str, venue: str, ws_url: str, rest_url: str, symbols: list[str]) -> Config:
    unique = uuid.uuid4().hex[:8]
    return load(environ={}).with_overrides(
        kafka={"bootstrap_servers": bootstrap, "topic_prefix": f"crash{unique}", "partitions": 4},
        exchanges={venue: {"enabled": True, "ws_url": ws_url, "rest_url": rest_url,
                           "symbols": symbols, "poll_interval_s": 3600.0}},
    )  # fmt: skip


# ---- report --------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    scenario = FAMILIES[args.family](args.seed)
    rates = burst_rates(scenario)
    venue = max(rates, key=lambda v: rates[v][0])
    burst = rates[venue][0]
    print(f"scenario {args.family} seed {args.seed}: {len(scenario.events):,} events over "
          f"{scenario.duration_s / 60:.0f} min, built in {time.perf_counter() - t0:.1f} s; "
          f"peak liquidation minute at {scenario.truth.peak_minute_s:.0f} s")  # fmt: skip
    print("burst rate per venue (most scenario events in one second: trades + liquidations):")
    for v, (n, sec) in sorted(rates.items(), key=lambda kv: -kv[1][0]):
        print(f"  {v:12} {n:5d} events/s at second {sec:.0f}")
    scene = window(scenario, venue)
    del scenario
    gc.collect()
    gc.freeze()  # the benchmark's own objects: out of the collector's scans in the producer
    print(f"busiest venue: {venue}, {burst} events/s; played: its {len(scene.events):,} events of "
          f"the peak minute +-{MARGIN_S:.0f} s ({scene.duration_s:.0f} s at 1x)\n", flush=True)  # fmt: skip
    ks = [float(k) for k in args.ks.split(",")]
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scene.pickle"
        path.write_bytes(pickle.dumps(scene))
        broker = embedded_broker()
        with pinned(other_cpus(args.cpu)):
            bootstrap = await broker.__aenter__()
        try:
            for k in ks:
                tries = []
                for _ in range(args.repeat):
                    tries.append(await run_at(bootstrap, path, scene, venue, k, args.cpu))
                    print(f"  k={k:g}: {tries[-1].frames} frames, {tries[-1].events} events, "
                          f"p99 {tries[-1].pct(0.99):.1f} ms", flush=True)  # fmt: skip
                tries.sort(key=lambda r: r.pct(0.99))
                run = tries[len(tries) // 2]  # the median run by p99
                run.p99s = [r.pct(0.99) for r in tries]
                runs.append(run)
                if run.pct(0.99) > TARGET_P99_MS and k >= TARGET_K:
                    break
        finally:
            await broker.__aexit__(None, None, None)
    report(runs, burst, scene, args.cpu)


def report(runs: list[Run], burst: int, scene: Scenario, cpu: int | None) -> None:
    print(f"\nthe producer pinned to CPU {cpu}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs\n")  # fmt: skip
    head = (f"{'k':>5} {'offered peak ev/s':>17} {'frames':>7} {'events':>7} {'events/s':>9} "
            f"{'peak ev/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'producer p99':>12} "
            f"{'wire p99':>8} {'sim lag':>8}  p99 of each run")  # fmt: skip
    print(head)
    print("-" * len(head))
    for r in runs:
        lag = r.play_s - scene.duration_s / r.k
        print(f"{r.k:5g} {burst * r.k:17,.0f} {r.frames:7d} {r.events:7d} "
              f"{r.events / r.seconds if r.seconds else 0:9,.0f} {r.peak_rate():9,.0f} {r.pct(0.5):7.1f} "
              f"{r.pct(0.99):7.1f} {r.pct(1.0):7.1f} {r.pct(0.99, r.producer_ms):12.1f} "
              f"{r.pct(0.99, r.wire_ms):8.1f} {lag:7.2f}s  "
              + " ".join(f"{p:.0f}" for p in r.p99s))  # fmt: skip
    at = next((r for r in runs if r.k == TARGET_K), None)
    if at is None:
        print(f"\ntarget p99 < {TARGET_P99_MS:g} ms at k = {TARGET_K:g}: not run")
    else:
        ok = at.pct(0.99) < TARGET_P99_MS
        print(f"\ntarget: frame-to-ack p99 < {TARGET_P99_MS:g} ms at {TARGET_K:g}x the busiest "
              f"venue's burst ({burst * TARGET_K:,.0f} events/s): p99 {at.pct(0.99):.1f} ms, "
              f"{'MET' if ok else 'NOT MET'}")  # fmt: skip
    over = next((r for r in runs if r.pct(0.99) > TARGET_P99_MS), None)
    print("p99 first exceeds 50 ms at " + (
        f"k = {over.k:g} ({burst * over.k:,.0f} events/s offered at the peak)" if over
        else f"no k tried (up to {runs[-1].k:g})"))  # fmt: skip


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="flash_crash", choices=sorted(FAMILIES))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ks", default="2,5,10,20,50,100,200,400", help="speeds, comma-separated")
    ap.add_argument("--repeat", type=int, default=3, help="runs per speed (the median is shown)")
    ap.add_argument("--cpu", type=int, default=None, help="the producer's CPU (default: the last)")
    a = ap.parse_args()
    if a.cpu is None and hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) > 1:
        a.cpu = max(os.sched_getaffinity(0))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(a))
