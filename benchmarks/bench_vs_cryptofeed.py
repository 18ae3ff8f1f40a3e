"""Our sans-I/O parsers against cryptofeed's normalization of the same frames, one core, one run.

    .venv/bin/python benchmarks/bench_vs_cryptofeed.py [--quick] [--repeat N] [--cpu K]

Frames come from the exchange simulator's pure Feed classes (``monitor/simulator``) driven by
back-to-back ``crash_scenario`` runs, so prices, sizes, ids, tick directions and batching look like
the venues'. The same bytes go to both sides:

* ours: ``producers.registry.ADAPTERS[venue](ExchangeConfig()).parse(frame, received_ns)``;
* cryptofeed: ``<Exchange>.message_handler(frame, conn, timestamp)``, as its connection handler
  calls it: its own JSON decode (``yapic.json.loads(..., parse_float=Decimal)``), dispatch, the
  ``_trade``/``_liquidation(s)`` normalizer and one awaited callback per event (counting only).
  Symbol tables are preloaded (no REST). cryptofeed is not a project dependency: it runs in its
  own venv, ``benchmarks/.cfvenv`` (created and pip-installed on first use, pinned below), as a
  subprocess reading the frames from a temporary file.

Each side: one warm-up pass (counts events, resolves symbols), then the best of ``--repeat`` timed
passes, ``gc.collect()`` before each, both pinned to the same CPU (``os.sched_setaffinity``) and run
one after the other. The printed target is the project's: >= 5x cryptofeed per core.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.core.config import ExchangeConfig
from monitor.core.schema import Liquidation, Trade, liquidation_id
from monitor.simulator.scenario import SimEvent, SimLiquidation, SimTrade, crash_scenario
from monitor.simulator.venues import SPECS
from monitor.simulator.venues import okx as okx_sim
from monitor.simulator.venues.binance import BinanceFeed, BinanceSession, Route
from monitor.simulator.venues.bybit import BybitFeed
from producers.base import InstrumentSource, VenueAdapter
from producers.events import LIQUIDATION_FIELDS, TRADE_FIELDS, new_liquidation, new_trade
from producers.registry import ADAPTERS

CRYPTOFEED_VERSION: Final = "2.4.1"  # latest on PyPI; installs on CPython 3.11
CFVENV: Final = Path(__file__).resolve().parent / ".cfvenv"
TARGET_RATIO: Final = 5.0
SYMBOLS: Final = ("BTCUSDT", "ETHUSDT", "SOLUSDT")  # the simulator's instruments
T0_MS: Final = 1_737_936_000_000  # 2025-01-27 00:00 UTC, the day the scenario echoes
CHUNK_S: Final = 600.0  # one crash scenario; longer runs chain scenarios with the next seeds
RECEIVED_NS: Final = 1_737_936_000_000_000_000


# ---- frames ----------------------------------------------------------------------------------


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


# ---- cases -----------------------------------------------------------------------------------


@dataclass
class Case:
    key: str
    label: str
    venue: str  # our adapter, and cryptofeed's exchange
    frames: list[bytes]
    cf_frames: list[bytes] | None  # None: no cryptofeed counterpart
    note: str = ""
    ours: dict[str, float] = field(default_factory=dict)
    cf: dict[str, float] = field(default_factory=dict)


def build_cases(n_trades: int, n_liqs: int, seed: int) -> list[Case]:
    agg = binance_agg_trades(n_trades, seed)
    bybit_trades = batched_trades("bybit", BybitFeed(), n_trades // 10, seed, 5, 15)
    okx_trades = batched_trades("okx", okx_sim.OkxFeed(), n_trades // 2, seed, 1, 3)
    force = binance_force_orders(n_liqs, seed)
    bybit_all, bybit_old = bybit_liquidations(n_liqs, seed)
    return [
        Case("binance_agg", "binance aggTrade (combined)", "binance", agg, agg),
        Case("bybit_trades", "bybit publicTrade (5-15/frame)", "bybit", bybit_trades, bybit_trades),
        Case("okx_trades", "okx trades (1-3/frame)", "okx", okx_trades, okx_trades),
        Case("binance_force", "binance forceOrder (combined)", "binance", force, force),
        Case(
            "bybit_liq",
            "bybit allLiquidation / liquidation",
            "bybit",
            bybit_all,
            bybit_old,
            note="ours parse allLiquidation.<SYM> frames; cryptofeed only knows the deprecated "
            "liquidation.<SYM> topic, so it gets frames of that shape carrying the same events "
            "(one liquidation per frame on both sides)",
        ),
        Case(
            "okx_liq",
            "okx liquidation-orders",
            "okx",
            okx_liquidations(n_liqs, seed),
            None,
            note="cryptofeed polls OKX liquidations over REST (/api/v5/public/liquidation-orders, "
            "every 60 s), it has no websocket handler for them: no comparison",
        ),
    ]


# ---- our side --------------------------------------------------------------------------------


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


def time_ours(case: Case, repeat: int) -> None:
    parse = new_adapter(case.venue).parse
    frames = case.frames
    events = errors = 0
    for f in frames:  # warm-up: resolves symbols, checks that every item parses
        p = parse(f, RECEIVED_NS)
        events += len(p.events)
        errors += len(p.errors)
    if errors:
        raise SystemExit(f"{case.key}: our parser skipped {errors} items of generated frames")

    def one_pass() -> None:
        for f in frames:
            parse(f, RECEIVED_NS)

    case.ours = {"events": events, "best_s": _best(one_pass, repeat)}


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def breakdown(case: Case, repeat: int) -> dict[str, float]:
    """Per-frame cost of the pieces of our parse (us/frame), each timed alone with timeit."""
    frames = case.frames
    adapter = new_adapter(case.venue)
    events = [
        e
        for f in frames
        for e in adapter.parse(f, RECEIVED_NS).events
        if type(e) is Trade or type(e) is Liquidation
    ]
    numbers = [(str(e.qty_raw), str(e.price)) for e in events]
    trades = [tuple(getattr(e, k) for k in TRADE_FIELDS) for e in events if type(e) is Trade]
    liqs = [tuple(getattr(e, k) for k in LIQUIDATION_FIELDS) for e in events if type(e) is Liquidation]  # fmt: skip
    ids = [
        (e.exchange, e.venue_symbol, e.ts_ms, e.liquidated_side.value, e.qty_raw, e.price)
        for e in events
        if type(e) is Liquidation
    ]
    loads = orjson.loads

    def decode() -> None:
        for f in frames:
            loads(f)

    def floats() -> None:
        for q, p in numbers:
            float(q)
            float(p)

    def construct() -> None:
        for a in trades:
            new_trade(*a)
        for b in liqs:
            new_liquidation(*b)

    def make_ids() -> None:
        for c in ids:
            liquidation_id(*c)

    per_frame = 1e6 / len(frames)
    out = {
        name: min(timeit.repeat(fn, number=1, repeat=repeat)) * per_frame
        for name, fn in (("decode", decode), ("floats", floats), ("ids", make_ids),
                         ("construct", construct))
    }  # fmt: skip
    out["total"] = case.ours["best_s"] * per_frame
    out["rest"] = out["total"] - out["decode"] - out["floats"] - out["ids"] - out["construct"]
    return out


# ---- cryptofeed side -------------------------------------------------------------------------

CF_CHILD: Final = r"""
import asyncio, gc, json, os, sys, time, types
from decimal import Decimal
from importlib.metadata import version

from yapic import json as yjson
from cryptofeed.defines import BINANCE_FUTURES, BYBIT, LIQUIDATIONS, OKX, PERPETUAL, TRADES
from cryptofeed.exchanges import OKX as OkxFeed, BinanceFutures, Bybit
from cryptofeed.symbols import Symbols

FEEDS = {
    "binance": (BinanceFutures, BINANCE_FUTURES, [TRADES, LIQUIDATIONS], "wss://fstream.binance.com/stream"),
    "bybit": (Bybit, BYBIT, [TRADES, LIQUIDATIONS], "wss://stream.bybit.com/v5/public/linear"),
    "okx": (OkxFeed, OKX, [TRADES], "wss://ws.okx.com:8443/ws/v5/public"),
}


def main():
    spec = json.load(open(sys.argv[1]))
    if spec["cpu"] is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {spec["cpu"]})
    repeat = spec["repeat"]
    count = [0]

    async def on_event(obj, receipt_timestamp):
        count[0] += 1

    results = {"version": version("cryptofeed"), "python": sys.version.split()[0], "cases": {}}
    for case in spec["cases"]:
        cls, exchange_id, channels, address = FEEDS[case["venue"]]
        symbols = case["symbols"]  # normalized -> venue spelling, as cryptofeed's REST load builds
        Symbols.set(exchange_id, symbols, {"tick_size": {}, "instrument_type": {s: PERPETUAL for s in symbols}})
        feed = cls(symbols=list(symbols), channels=channels,
                   callbacks={TRADES: on_event, LIQUIDATIONS: on_event})
        conn = types.SimpleNamespace(address=address, uuid=exchange_id)
        handler = feed.message_handler
        with open(case["file"], "rb") as fh:
            frames = fh.read().split(b"\n")

        async def one_pass():
            t0 = time.perf_counter()
            for m in frames:
                await handler(m, conn, 1.0)
            return time.perf_counter() - t0

        async def run():
            count[0] = 0
            await one_pass()
            events = count[0]
            best = float("inf")
            for _ in range(repeat):
                gc.collect()
                best = min(best, await one_pass())
            return events, best

        events, best = asyncio.run(run())
        loads = yjson.loads

        def json_pass():
            gc.collect()
            t0 = time.perf_counter()
            for m in frames:
                loads(m, parse_float=Decimal)
            return time.perf_counter() - t0

        json_best = min(json_pass() for _ in range(repeat))
        results["cases"][case["key"]] = {"events": events, "best_s": best, "json_s": json_best}
    json.dump(results, sys.stdout)


main()
"""


def cf_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def installed_cryptofeed(py: Path) -> str | None:
    if not py.exists():
        return None
    r = subprocess.run(
        [str(py), "-c", "import importlib.metadata as m, cryptofeed; print(m.version('cryptofeed'))"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return r.stdout.strip() if r.returncode == 0 else None


def ensure_cfvenv(venv: Path) -> Path:
    """The venv's interpreter, with cryptofeed==CRYPTOFEED_VERSION (created/installed if needed)."""
    py = cf_python(venv)
    if installed_cryptofeed(py) == CRYPTOFEED_VERSION:
        return py
    print(f"setting up {venv} with cryptofeed=={CRYPTOFEED_VERSION} from PyPI ...", flush=True)
    if not py.exists():
        r = subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False
        )
        if r.returncode != 0:
            raise SystemExit(f"error: could not create the venv {venv}:\n{r.stderr.strip()}")
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "--disable-pip-version-check", "--timeout", "30",
         "--retries", "2", f"cryptofeed=={CRYPTOFEED_VERSION}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-8:])
        raise SystemExit(
            f"error: pip could not install cryptofeed=={CRYPTOFEED_VERSION} into {venv}: is PyPI "
            f"reachable (proxy, PIP_INDEX_URL)? Nothing was benchmarked.\n--- pip said:\n{tail}"
        )
    if installed_cryptofeed(py) != CRYPTOFEED_VERSION:
        raise SystemExit(f"error: cryptofeed=={CRYPTOFEED_VERSION} still not importable in {venv}")
    return py


def cf_symbols(venue: str) -> dict[str, str]:
    if venue == "okx":
        return {f"{inst.split('-')[0]}-USDT-PERP": inst for inst, _ in okx_sim.CONTRACTS.values()}
    return {f"{s.removesuffix('USDT')}-USDT-PERP": s for s in SYMBOLS}


def time_cryptofeed(py: Path, cases: list[Case], repeat: int, cpu: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench_cf_") as tmp:
        specs = []
        for c in cases:
            if c.cf_frames is None:
                continue
            path = Path(tmp) / f"{c.key}.frames"
            path.write_bytes(b"\n".join(c.cf_frames))  # compact JSON: no newline inside a frame
            specs.append({"key": c.key, "venue": c.venue, "file": str(path),
                          "symbols": cf_symbols(c.venue)})  # fmt: skip
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps({"cases": specs, "repeat": repeat, "cpu": cpu}))
        child = Path(tmp) / "cf_child.py"
        child.write_text(CF_CHILD)
        r = subprocess.run([str(py), str(child), str(spec_path)], capture_output=True, text=True,
                           check=False)  # fmt: skip
    if r.returncode != 0:
        raise SystemExit(f"error: the cryptofeed run failed:\n{r.stderr.strip()[-3000:]}")
    if r.stderr.strip():
        print(f"cryptofeed stderr:\n{r.stderr.strip()[-2000:]}", file=sys.stderr)
    results: dict[str, Any] = json.loads(r.stdout)
    for c in cases:
        if c.key in results["cases"]:
            c.cf = results["cases"][c.key]
    return results


# ---- report ----------------------------------------------------------------------------------


def print_table(cases: list[Case]) -> None:
    head = (f"{'path':34} {'frames':>7} {'ev/fr':>5} {'ours fr/s':>11} {'ours ev/s':>11} "
            f"{'cf fr/s':>9} {'cf ev/s':>9} {'ours/cf':>8}  >=5x")  # fmt: skip
    print(head)
    print("-" * len(head))
    for c in cases:
        n, ev, dt = len(c.frames), c.ours["events"], c.ours["best_s"]
        row = f"{c.label:34} {n:7d} {ev / n:5.1f} {n / dt:11,.0f} {ev / dt:11,.0f} "
        if c.cf:
            cdt = c.cf["best_s"]
            ratio = cdt / dt  # same frames: frames/s ratio == events/s ratio
            row += (f"{n / cdt:9,.0f} {c.cf['events'] / cdt:9,.0f} {ratio:7.2f}x"
                    f"  {'yes' if ratio >= TARGET_RATIO else 'NO'}")  # fmt: skip
        else:
            row += f"{'n/a':>9} {'n/a':>9} {'n/a':>8}  -"
        print(row)


def print_breakdown(cases: list[Case], parts: dict[str, dict[str, float]]) -> None:
    print("\nper-frame cost, us/frame (ours: pieces timed alone with timeit; 'rest' = total minus")
    print("the pieces: dispatch, key lookups, type/range checks, symbol cache, Parsed and lists)")
    head = (f"{'path':34} {'total':>6} {'orjson':>7} {'float()':>7} {'evt obj':>7} {'liq id':>6} "
            f"{'rest':>6} | {'cf total':>8} {'cf json':>7}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for c in cases:
        b = parts[c.key]
        row = (f"{c.label:34} {b['total']:6.2f} {b['decode']:7.2f} {b['floats']:7.2f} "
               f"{b['construct']:7.2f} {b['ids']:6.2f} {b['rest']:6.2f} | ")  # fmt: skip
        if c.cf:
            per = 1e6 / len(c.frames)
            row += f"{c.cf['best_s'] * per:8.2f} {c.cf['json_s'] * per:7.2f}"
        else:
            row += f"{'n/a':>8} {'n/a':>7}"
        print(row)


def summary_note(cases: list[Case], parts: dict[str, dict[str, float]]) -> str:
    """One paragraph on where our time goes, from the measured figures."""
    compared = [c for c in cases if c.cf]
    tot = {k: sum(parts[c.key][k] * len(c.frames) for c in compared)
           for k in ("total", "decode", "floats", "construct", "ids", "rest")}  # fmt: skip
    share = {k: 100 * v / tot["total"] for k, v in tot.items()}
    cf_total = sum(c.cf["best_s"] for c in compared)
    cf_json = sum(c.cf["json_s"] for c in compared)
    slowest = min(compared, key=lambda c: c.cf["best_s"] / c.ours["best_s"])
    sb = parts[slowest.key]
    ev_per_frame = slowest.ours["events"] / len(slowest.frames)
    return (
        f"Where our time goes (compared paths, weighted by frames): orjson.loads is "
        f"{share['decode']:.0f}% of our parse time, float() of the two numeric strings per event "
        f"{share['floats']:.0f}%, building the frozen event objects {share['construct']:.0f}%, "
        f"blake2b liquidation ids {share['ids']:.0f}%, and the remaining {share['rest']:.0f}% is "
        f"interpreter work in the parser itself (dispatch, dict lookups, type/range checks, the "
        f"symbol cache, the Parsed result). cryptofeed spends {100 * cf_json / cf_total:.0f}% of "
        f"its time in yapic json.loads(parse_float=Decimal) and the rest in dispatch, Decimal(...) "
        f"of the numbers, Trade/Liquidation objects and one awaited callback per event. The "
        f"lowest ratio is {slowest.label} ({slowest.cf['best_s'] / slowest.ours['best_s']:.2f}x, "
        f"{ev_per_frame:.1f} events/frame): there our {sb['total']:.2f} us/frame is "
        f"{sb['decode']:.2f} decode + {sb['floats']:.2f} float() + {sb['construct']:.2f} objects "
        f"+ {sb['ids']:.2f} ids + {sb['rest']:.2f} parser logic, so the next gains are in "
        f"{_biggest(sb)}."
    )


def _biggest(b: dict[str, float]) -> str:
    names = {"decode": "JSON decoding (already orjson: only less JSON would help)",
             "floats": "number conversion", "construct": "event object construction",
             "ids": "liquidation id hashing", "rest": "the per-item parser logic"}  # fmt: skip
    return names[max(names, key=lambda k: b[k])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small run: 5,000/1,000 frames, 2 passes")
    ap.add_argument("--trade-events", type=int, default=100_000,
                    help="trade frames: binance N, bybit N/10, okx N/2 (about N events each)")  # fmt: skip
    ap.add_argument("--liquidation-frames", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5, help="timed passes per side (best is kept)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin both sides to")
    ap.add_argument("--cfvenv", type=Path, default=CFVENV, help="cryptofeed's venv")
    args = ap.parse_args()
    n_trades, n_liqs, repeat = args.trade_events, args.liquidation_frames, args.repeat
    if args.quick:
        n_trades, n_liqs, repeat = 5_000, 1_000, 2

    py = ensure_cfvenv(args.cfvenv)  # first: fail before any work if PyPI is unreachable
    cpu = args.cpu
    if hasattr(os, "sched_setaffinity"):
        cpu = max(os.sched_getaffinity(0)) if cpu is None else cpu
        os.sched_setaffinity(0, {cpu})
    t0 = time.perf_counter()
    cases = build_cases(n_trades, n_liqs, args.seed)
    print(f"frames generated in {time.perf_counter() - t0:.1f} s (simulator feeds, seed "
          f"{args.seed}); timing ours ...", flush=True)  # fmt: skip
    for c in cases:
        time_ours(c, repeat)
    parts = {c.key: breakdown(c, repeat) for c in cases}
    print("timing cryptofeed ...", flush=True)
    info = time_cryptofeed(py, cases, repeat, cpu)
    for c in cases:
        if c.cf and c.cf["events"] != c.ours["events"]:
            print(f"WARNING {c.key}: cryptofeed produced {c.cf['events']} events, "
                  f"ours {c.ours['events']}")  # fmt: skip

    print(f"\nours (CPython {sys.version.split()[0]}, orjson {orjson.__version__}) vs cryptofeed "
          f"{info['version']} (CPython {info['python']}); pinned to CPU {cpu}; best of {repeat} "
          f"passes per side; same frame bytes on both sides\n")  # fmt: skip
    print_table(cases)
    for c in cases:
        if c.note:
            print(f"  note, {c.label}: {c.note}")
    ratios = {c.label: c.cf["best_s"] / c.ours["best_s"] for c in cases if c.cf}
    missed = [k for k, r in ratios.items() if r < TARGET_RATIO]
    print(f"\nproject target: >= {TARGET_RATIO:g}x cryptofeed per core on every compared path: "
          + ("MET" if not missed else f"NOT MET on {len(missed)} of {len(ratios)} ("
             + ", ".join(f"{k} {ratios[k]:.2f}x" for k in missed) + ")"))  # fmt: skip
    print_breakdown(cases, parts)
    print()
    print(summary_note(cases, parts))


if __name__ == "__main__":
    main()
