"""The risk engine's figures side by side, one core (issue 4's targets in brackets).

Run:  .venv/bin/python benchmarks/bench_models.py [--events 1000000] [--pairs 200]

* full per-event update, kernels only: every per-event kernel a record's rows go through
  (liquidation and trade flow, price/volatility, Hawkes buffer, flow extras, Kyle, VPIN, bipower,
  drawdown, the liquidation map) over large batches, events/s [>= 5,000,000];
* the same update run as plain Python: the identical kernel code with numba's JIT disabled
  (``NUMBA_DISABLE_JIT=1``, in a subprocess, on fewer events), and the ratio [>= 100x]. The
  interpreted code indexes NumPy arrays, slower than a list-based rewrite would be; the older
  list-based references of the flow and price kernels are in bench_kernels.py;
* ``RiskState.apply_arrays`` on 50-event records (45 trades, 5 liquidations): what a consumer
  pays per record, Python overhead included;
* the periodic work (``maintain``: both Hawkes refits of every pair, the exact continuous-time
  MLE and the sampling-aware fit of 1 s bins, and the rank histories), its first (cold) tick and
  the next one 5 s later (warm starts: the steady state), and per pair the warm refit of each fit
  alone, the sampling-aware one reading the liquidations as counts (a complete feed) and as
  present/absent seconds (a sampled feed), then a read-out of every pair;
* state bytes per pair, and start-up (import + compile-or-load every kernel) with the numba
  cache warm [<= 2 s], measured in a fresh interpreter.

The end-to-end consumer figure from Kafka [>= 200,000 events/s] is bench_pipeline.py's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consumers.columns import COVERAGES, BatchArrays
from consumers.models.sampled_hawkes import OBS_BINARY, OBS_COUNTS
from consumers.state import RiskState

LIQ_SHARE = 0.1
REF_EVENTS = 20_000
SAMPLED = COVERAGES.index("sampled_latest_per_symbol_1s")  # the records' liquidations: Binance's


def stream(n: int, n_pairs: int, seed: int) -> dict[str, np.ndarray]:
    """~1 h of events: 10 % liquidations, 1 % up to 2 s late, random-walk prices per pair."""
    rng = np.random.default_rng(seed)
    t = 1.7e9 + np.sort(rng.uniform(0.0, 3600.0, n))
    late = rng.random(n) < 0.01
    t[late] -= rng.uniform(0.0, 2.0, int(late.sum()))
    pair = rng.integers(0, n_pairs, n).astype(np.int32)
    is_liq = rng.random(n) < LIQ_SHARE
    side = rng.integers(0, 2, n).astype(np.int8)
    q = rng.lognormal(8.0, 1.5, n)
    steps = rng.normal(0.0, 2e-4, n)
    px = np.empty(n)
    level = np.full(n_pairs, 100.0)
    for i in range(n):  # per-pair random walk (setup, not timed)
        level[pair[i]] *= math.exp(steps[i])
        px[i] = level[pair[i]]
    return {"t": t, "pair": pair, "is_liq": is_liq, "side": side, "q": q, "px": px}


def kernels_only(ev: dict[str, np.ndarray], n_pairs: int) -> float:
    """Seconds for every per-event kernel over the whole stream (one big batch per kind)."""
    st = RiskState(n_pairs)
    for p in range(n_pairs):
        st._register(("bench", f"P{p}"), 0)
    liq, trd = ev["is_liq"], ~ev["is_liq"]
    a = BatchArrays("bench", "P0", ev["t"][liq], ev["side"][liq], ev["q"][liq], ev["t"][trd],
                    ev["side"][trd], ev["q"][trd], ev["px"][trd], np.empty(0, np.int64))  # fmt: skip
    lp, tp = ev["pair"][liq], ev["pair"][trd]
    t0 = time.perf_counter()
    with st._lock:
        st._run_kernels(lp, tp, a)
    return time.perf_counter() - t0


def records(ev: dict[str, np.ndarray], per_record: int) -> list[tuple[int, BatchArrays]]:
    """Consecutive events of one pair, ``per_record`` at a time (as a producer batches them)."""
    out = []
    order = np.argsort(ev["pair"], kind="stable")
    for start in range(0, order.size, per_record):
        idx = order[start : start + per_record]
        idx = idx[ev["pair"][idx] == ev["pair"][idx[0]]]
        liq = idx[ev["is_liq"][idx]]
        trd = idx[~ev["is_liq"][idx]]
        out.append((int(ev["pair"][idx[0]]), BatchArrays(
            "bench", f"P{int(ev['pair'][idx[0]])}", ev["t"][liq], ev["side"][liq], ev["q"][liq],
            ev["t"][trd], ev["side"][trd], ev["q"][trd], ev["px"][trd],
            np.zeros(idx.size, np.int64), np.full(liq.size, SAMPLED, np.int8),
        )))  # fmt: skip
    return out


def interpreted(n_events: int, n_pairs: int) -> float:
    """Seconds per event of the same update with the JIT disabled (fresh interpreter)."""
    root = str(Path(__file__).resolve().parents[1])
    code = (
        f"import sys, json; sys.path.insert(0, {root!r})\n"
        "import benchmarks.bench_models as b\n"
        f"ev = b.stream({n_events}, {n_pairs}, 3)\n"
        f"print(json.dumps(b.kernels_only(ev, {n_pairs}) / {n_events}))\n"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       check=True)  # fmt: skip
    return float(json.loads(r.stdout.strip().splitlines()[-1]))


def startup_s() -> float:
    """Fresh interpreter: import the consumer state and load every kernel (numba cache warm)."""
    root = str(Path(__file__).resolve().parents[1])
    code = (
        "import time; t0 = time.perf_counter()\n"
        f"import sys; sys.path.insert(0, {root!r})\n"
        "from consumers.state import RiskState\n"
        "RiskState(4096).warm_up()\n"
        "print(time.perf_counter() - t0)\n"
    )
    times = []
    for _ in range(3):  # the first run may compile and fill the cache
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)  # fmt: skip
        times.append(float(r.stdout.strip().splitlines()[-1]))
    return min(times[1:])


def refit_costs(st: RiskState, now: float) -> list[tuple[str, float]]:
    """Microseconds per pair of each fit alone, warm (each timed on its second tick at a later
    ``now``), the sampling-aware one read as counts and as present/absent seconds."""
    m, hk = st.models, st.models.hawkes
    pairs = np.flatnonzero(hk.buf_len[: st.n_pairs] > 0).astype(np.int32)
    t_first = np.maximum(hk.t_obs_start[pairs], hk.t_evicted[pairs])
    out = []
    for name, fit in (
        ("exact MLE refit", lambda t: hk.refit(pairs, t)),
        *((f"sampling-aware refit, {label}",
           lambda t, mode=mode: m.sampled.refit(pairs, t - 1.0, hk.buf_t, hk.buf_start,
                                                hk.buf_len, t_first,
                                                np.full(pairs.size, mode, np.int8)))
          for label, mode in (("counts", OBS_COUNTS), ("sampled feed", OBS_BINARY))),
    ):  # fmt: skip
        fit(now + 5.0)  # after a mode change the first fit is cold
        t0 = time.perf_counter()
        fit(now + 10.0)
        out.append((name, (time.perf_counter() - t0) / max(pairs.size, 1) * 1e6))
        now += 10.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--pairs", type=int, default=200)
    args = ap.parse_args()
    n, pairs = args.events, args.pairs
    print(f"{n:,} events over {pairs} pairs, 10% liquidations, 1% up to 2 s late; one core\n")

    ev = stream(n, pairs, 3)
    kernels_only(stream(10_000, pairs, 4), pairs)  # compile or load from the cache
    k_s = min(kernels_only(ev, pairs) for _ in range(3))
    k_rate = n / k_s
    py_s = interpreted(REF_EVENTS, pairs)
    ratio = py_s * k_rate

    recs = records(ev, 50)
    st = RiskState(4096)
    st.warm_up()
    t0 = time.perf_counter()
    for _, a in recs:
        st.apply_arrays(a)
    rec_s = time.perf_counter() - t0
    now = float(ev["t"].max())
    t0 = time.perf_counter()
    refitted = st.maintain(now)
    maint_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    st.maintain(now + 5.0)
    warm_s = time.perf_counter() - t0
    per_fit = refit_costs(st, now + 5.0)
    t0 = time.perf_counter()
    r = st.read(now + 25.0)
    read_s = time.perf_counter() - t0
    defined = int(np.isfinite(r.models.branching_ratio).sum())
    start = startup_s()

    rows = [
        ("full per-event update, kernels (large batches)", f"{k_rate:,.0f} ev/s",
         ">= 5,000,000", k_rate >= 5e6),
        ("same code interpreted (NUMBA_DISABLE_JIT=1)", f"{1 / py_s:,.0f} ev/s", "", None),
        ("ratio numba / interpreted", f"{ratio:,.0f}x", ">= 100x", ratio >= 100),
        ("RiskState.apply_arrays, 50-event records", f"{n / rec_s:,.0f} ev/s", "", None),
        (f"maintain(), first tick: {refitted} pairs, both fits (cold)", f"{maint_s * 1e3:,.1f} ms",
         "", None),
        ("maintain() 5 s later (warm starts)", f"{warm_s * 1e3:,.1f} ms", "", None),
        *((f"  {name}, per pair (warm)", f"{us:,.0f} us", "", None) for name, us in per_fit),
        ("  sampling-aware n defined (>= 20 non-empty s)", f"{defined} of {st.n_pairs}", "", None),
        (f"read-out of {st.n_pairs} pairs (every model)", f"{read_s * 1e3:,.2f} ms", "", None),
        ("state per pair (models included)", f"{st.bytes_per_pair:,} bytes", "", None),
        ("start-up, numba cache warm (fresh process)", f"{start:.2f} s", "<= 2 s", start <= 2.0),
    ]  # fmt: skip
    w = max(len(r[0]) for r in rows)
    print(f"{'measure':<{w}}  {'figure':>18}  {'target':>13}  met")
    for name, fig, target, met in rows:
        flag = "" if met is None else ("yes" if met else "NO")
        print(f"{name:<{w}}  {fig:>18}  {target:>13}  {flag}")


if __name__ == "__main__":
    main()
