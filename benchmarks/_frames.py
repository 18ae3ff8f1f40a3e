"""Frames for the parser benchmarks: the exchange simulator's pure venue feeds driven by crash
scenarios, so prices, sizes, ids, tick directions and batching look like the venues'.

``venue_events`` chains ``crash_scenario`` runs (seed, seed+1, ...); each builder below turns one
venue's events into frames exactly as the simulator's server would send them. ``new_adapter``
builds our adapter with its instrument metadata from the simulator's REST handler.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, Final

import orjson

from monitor.core.config import ExchangeConfig
from monitor.simulator.scenario import SimEvent, SimLiquidation, SimTrade, crash_scenario
from monitor.simulator.venues import SPECS
from monitor.simulator.venues import okx as okx_sim
from monitor.simulator.venues.binance import BinanceFeed, BinanceSession, Route
from monitor.simulator.venues.bybit import BybitFeed
from producers.base import InstrumentSource, VenueAdapter
from producers.registry import ADAPTERS

SYMBOLS: Final = ("BTCUSDT", "ETHUSDT", "SOLUSDT")  # the simulator's instruments
T0_MS: Final = 1_737_936_000_000  # 2025-01-27 00:00 UTC, the day the scenario echoes
CHUNK_S: Final = 600.0  # one crash scenario; longer runs chain scenarios with the next seeds


def venue_events(venue: str, seed: int) -> Iterator[tuple[int, SimEvent]]:
    """Endless (wall ms, event) of one venue: crash scenarios with seeds seed, seed+1, ..."""
    k = 0
    while True:
        sc = crash_scenario(CHUNK_S, seed + k, venues=(venue,), symbols=SYMBOLS)
        base = T0_MS + int(k * CHUNK_S * 1000)
        for e in sc.events:
            yield base + int(e.t * 1000), e
        k += 1


def binance_agg_trades(n: int, seed: int) -> list[bytes]:
    """Combined-stream aggTrade frames, one per scenario trade, at scenario time."""
    feed = BinanceFeed()
    session = BinanceSession(Route(True, tuple(f"{s.lower()}@aggTrade" for s in SYMBOLS)), "b")
    frames: list[bytes] = []
    for now, e in venue_events("binance", seed):
        if isinstance(e, SimTrade):
            for out in feed.on_event(e, now):
                frames += session.frames_for(out)
            if len(frames) >= n:
                return frames[:n]
    raise AssertionError("unreachable")


def binance_force_orders(n: int, seed: int) -> list[bytes]:
    """Combined-stream ``<sym>@forceOrder`` frames, sampled like the venue (latest per 1 s)."""
    feed = BinanceFeed()
    session = BinanceSession(Route(True, tuple(f"{s.lower()}@forceOrder" for s in SYMBOLS)), "b")
    frames: list[bytes] = []
    for now, e in venue_events("binance", seed):
        if not isinstance(e, SimLiquidation):
            continue
        due = feed.next_deadline_ms()
        if due is not None and due <= now:
            for out in feed.flush(now):
                frames += session.frames_for(out)
        feed.on_event(e, now)
        if len(frames) >= n:
            return frames[:n]
    raise AssertionError("unreachable")


def batched_trades(venue: str, feed: Any, n: int, seed: int, lo: int, hi: int) -> list[bytes]:
    """Trade frames of ``lo``..``hi`` trades each (uniform, deterministic): the k-th trade of a
    symbol is placed in that symbol's next 100 ms tick once the current batch is full, so the
    feed's own per-tick batching produces busy-market frames."""
    rng = random.Random(seed)
    state = {s: [-1, 0] for s in SYMBOLS}  # symbol -> [tick, trades left in it]
    batches = 0
    for _, e in venue_events(venue, seed):
        if not isinstance(e, SimTrade):
            continue
        st = state[e.venue_symbol]
        if st[1] == 0:
            if batches >= n:
                break
            st[0], st[1] = st[0] + 1, rng.randint(lo, hi)
            batches += 1
        st[1] -= 1
        feed.on_event(e, T0_MS + st[0] * 100 + (hi - st[1]))
    return [out.payload for out in feed.flush(2**62)][:n]


def bybit_liquidations(n: int, seed: int) -> tuple[list[bytes], list[bytes]]:
    """(allLiquidation frames of one liquidation each, the same events as cryptofeed's
    deprecated ``liquidation.<SYM>`` frames: one object in ``data``, ``ts`` of the push)."""
    feed = BybitFeed()
    ours: list[bytes] = []
    theirs: list[bytes] = []
    for _, e in venue_events("bybit", seed):
        if not isinstance(e, SimLiquidation):
            continue
        now = T0_MS + 500 * len(ours)  # each in its own 500 ms push window
        feed.on_event(e, now + 1)
        for out in feed.flush(now + 500):
            ours.append(out.payload)
            doc = orjson.loads(out.payload)
            (item,) = doc["data"]
            old = {"updatedTime": item["T"], "symbol": item["s"], "side": item["S"],
                   "size": item["v"], "price": item["p"]}  # fmt: skip
            theirs.append(orjson.dumps({"topic": f"liquidation.{item['s']}", "type": "snapshot",
                                        "ts": doc["ts"], "data": old}))  # fmt: skip
        if len(ours) >= n:
            return ours[:n], theirs[:n]
    raise AssertionError("unreachable")


def okx_liquidations(n: int, seed: int) -> list[bytes]:
    """liquidation-orders pushes at scenario time (1 s windows, all instruments, all details)."""
    feed = okx_sim.OkxFeed()
    frames: list[bytes] = []
    for now, e in venue_events("okx", seed):
        if not isinstance(e, SimLiquidation):
            continue
        if (due := feed.next_deadline_ms()) is not None and due <= now:
            frames += [out.payload for out in feed.flush(now)]
        feed.on_event(e, now)
        if len(frames) >= n:
            return frames[:n]
    raise AssertionError("unreachable")


def new_adapter(venue: str) -> VenueAdapter:
    adapter = ADAPTERS[venue](ExchangeConfig())
    if isinstance(adapter, InstrumentSource):  # metadata from the simulator's REST handler
        for url in adapter.instrument_urls("http://sim"):
            rest = SPECS[venue].rest
            answer = rest(url.removeprefix("http://sim")) if rest is not None else None
            if answer is None or answer[0] != 200:
                raise SystemExit(f"{venue}: the simulator does not serve {url}")
            adapter.load_instruments(url, answer[1])
    return adapter
