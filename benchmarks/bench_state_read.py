"""Cost of reading and maintaining some pairs of the risk state (``rows``) against all of them, one
core.

Run:  .venv/bin/python benchmarks/bench_state_read.py [--pairs 1000,5000] [--seed 5]

For each number of registered pairs, every pair gets one hour of seeded random activity (trades on a
random-walk price, liquidations concentrated in the last 15 minutes so every pair has a Hawkes fit,
open interest for the map) and three full maintenance ticks, with the default model parameters.
Then, side by side, microseconds per call of ``RiskState.read(now, rows)`` for 1 pair, 10 pairs
and every pair (``rows=None``), and of ``RiskState.maintain(now, rows)`` for 1 pair and for every
pair. The event-time engine reads and maintains one or a few pairs at their own tick closes, so the
read of one pair must cost a small fraction of the full read [1 of 5,000: < 5 %].

Each figure is the fastest of several rounds (the machine is shared; the minimum is the least
disturbed), each round averaging many calls on random pair ids (seeded).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consumers.columns import BatchArrays
from consumers.state import RiskState
from monitor.core.codec import decode_batch, encode_batch
from monitor.core.schema import MarketContext

T0 = 1_700_000_000.0
SPAN_S = 3600.0
N_TRADES = 200  # per pair
N_LIQ = 150  # per pair, in the last 900 s: above the Hawkes fit's 100-event minimum
TARGET = 0.05  # read of 1 pair / read of all, at 5,000 pairs


def build(n_pairs: int, seed: int) -> tuple[RiskState, float]:
    """A state with ``n_pairs`` active pairs, maintained three times; returns it and ``now``."""
    rng = np.random.default_rng(seed)
    st = RiskState(n_pairs, wall_clock=lambda: 0.0)
    for p in range(n_pairs):
        sym = f"P{p:05d}-USDT-PERP"
        tt = T0 + np.sort(rng.uniform(0.0, SPAN_S, N_TRADES))
        tl = T0 + SPAN_S - 900.0 + np.sort(rng.uniform(0.0, 900.0, N_LIQ))
        px = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, N_TRADES)))
        st.apply_arrays(BatchArrays(
            "bench", sym, tl, rng.integers(0, 2, N_LIQ).astype(np.int8),
            rng.lognormal(8.0, 1.5, N_LIQ), tt, rng.integers(0, 2, N_TRADES).astype(np.int8),
            rng.lognormal(9.0, 1.5, N_TRADES), px, np.zeros(N_LIQ + N_TRADES, np.int64),
        ))  # fmt: skip
        oi = float(rng.uniform(1e6, 1e8))
        st.apply_context(decode_batch(encode_batch([
            MarketContext("bench", sym, sym, float(px[-1]), None, 1e-4, None, None, x,
                          int((T0 + SPAN_S - k) * 1000), 0)
            for k, x in ((600, oi), (60, oi * 1.05))
        ])))  # fmt: skip
    now = T0 + SPAN_S
    for k in (2, 1, 0):
        st.maintain(now - 300.0 * k)
    return st, now


def per_call_s(fn: Callable[[int], object], calls: int, rounds: int = 5) -> float:
    """Fastest round's mean seconds per call; ``fn(k)`` is the k-th call of a round."""
    best = math.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        for k in range(calls):
            fn(k)
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def measure(n: int, seed: int) -> tuple[float, float, float, float, float, int]:
    """Seconds per call: read of 1, 10 and every pair; maintain of 1 and of every pair (and the
    pairs that full maintenance refitted), on a state of ``n`` pairs."""
    st, now = build(n, seed)
    rng = np.random.default_rng(seed)
    ones = [rng.integers(0, n, 1) for _ in range(64)]
    tens = [rng.choice(n, 10, replace=False).astype(np.int64) for _ in range(64)]
    st.read(now, ones[0])  # compile or load from the numba cache
    r1 = per_call_s(lambda k: st.read(now, ones[k % 64]), 400)
    r10 = per_call_s(lambda k: st.read(now, tens[k % 64]), 300)
    r_all = per_call_s(lambda k: st.read(now), max(3, 20_000 // n))
    # maintenance moves on in time (a rank history folds one sample per distinct time)
    m1 = per_call_s(lambda k: st.maintain(now + 1.0 + 1e-3 * k, ones[k % 64]), 50, rounds=3)
    t0 = time.perf_counter()
    refits = st.maintain(now + 2.0)
    return r1, r10, r_all, m1, time.perf_counter() - t0, refits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default="1000,5000", help="comma-separated numbers of pairs")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    sizes = [int(x) for x in args.pairs.split(",")]
    print(f"{N_TRADES} trades and {N_LIQ} liquidations per pair over {SPAN_S:.0f} s, default "
          "model parameters; one core; µs per call (fastest of 5 rounds)\n")  # fmt: skip
    print(f"{'pairs':>6}  {'read 1':>10}  {'read 10':>10}  {'read all':>11}  {'1 / all':>8}  "
          f"{'maintain 1':>11}  {'maintain all':>13}  {'refits':>6}")  # fmt: skip
    verdicts = []
    for n in sizes:
        r1, r10, r_all, m1, m_all, refits = measure(n, args.seed)
        share = r1 / r_all
        print(f"{n:>6,}  {r1 * 1e6:>10,.0f}  {r10 * 1e6:>10,.0f}  {r_all * 1e6:>11,.0f}  "
              f"{share:>8.1%}  {m1 * 1e6:>11,.0f}  {m_all * 1e6:>13,.0f}  {refits:>6,}")  # fmt: skip
        if n == 5000:
            verdicts.append(f"read of 1 pair out of 5,000: {share:.1%} of the full read "
                            f"[< {TARGET:.0%}]: {'met' if share < TARGET else 'NOT met'}")  # fmt: skip
    for v in verdicts:
        print("\n" + v)


if __name__ == "__main__":
    main()
