"""Consumer kernel throughput, side by side with a pure-Python version of the same per-event update.

Run:  .venv/bin/python benchmarks/bench_kernels.py [--events 2000000] [--pairs 1000]

Prints, for one core (the kernels are single-threaded): events/s of the numba per-event updates
(liquidation flow; trade flow + price/volatility) over many pairs, events/s of the same update
written in plain Python on lists, the ratio, the read-out time for every pair (what a scrape does),
bytes of state per pair, and ``RiskState.apply`` throughput on realistic decoded 50-event records
(with and without the ``decode_batch`` cost).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from consumers.exporter import RiskCollector
from consumers.models.flow import flow_update
from consumers.models.jit import NO_INTERVAL
from consumers.models.volatility import price_update
from consumers.state import RiskState
from monitor.core.codec import decode_batch, encode_batch
from monitor.core.schema import (
    Coverage,
    Event,
    Liquidation,
    OrderSide,
    PriceKind,
    QtyUnit,
    Side,
    Trade,
)

TAUS = (10.0, 60.0, 300.0)


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def events(n: int, n_pairs: int, n_sides: int, seed: int) -> tuple[np.ndarray, ...]:
    """Event time over ~1 h, 1 % of events up to 2 s late; lognormal notionals; random walk price."""
    rng = np.random.default_rng(seed)
    t = 1.7e9 + np.sort(rng.uniform(0.0, 3600.0, n))
    late = rng.random(n) < 0.01
    t[late] -= rng.uniform(0.0, 2.0, int(late.sum()))
    pair = rng.integers(0, n_pairs, n).astype(np.int32)
    side = rng.integers(0, n_sides, n).astype(np.int8)
    q = rng.lognormal(8.0, 1.5, n)
    px = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-4, n)))
    return pair, side, t, q, px


# ---- the same updates in plain Python ---------------------------------------------------------


def py_flow(pair: list[int], side: list[int], t: list[float], q: list[float], n_pairs: int,
            n_sides: int) -> None:  # fmt: skip
    rate = [[[0.0] * len(TAUS) for _ in range(n_sides)] for _ in range(n_pairs)]
    t_last = [[-math.inf] * n_sides for _ in range(n_pairs)]
    cum = [[0.0] * n_sides for _ in range(n_pairs)]
    count = [[0] * n_sides for _ in range(n_pairs)]
    for p, s, ti, qi in zip(pair, side, t, q, strict=True):
        r, tl = rate[p][s], t_last[p][s]
        if ti >= tl:
            dt = ti - tl
            for h, tau in enumerate(TAUS):
                r[h] = r[h] * math.exp(-dt / tau) + qi / tau
            t_last[p][s] = ti
        else:
            for h, tau in enumerate(TAUS):
                r[h] += (qi / tau) * math.exp(-(tl - ti) / tau)
        cum[p][s] += qi
        count[p][s] += 1


def py_price(pair: list[int], t: list[float], px: list[float], n_pairs: int, dt: float,
             lam: float) -> None:  # fmt: skip
    last, ref, s2 = [0.0] * n_pairs, [0.0] * n_pairs, [0.0] * n_pairs
    interval: list[int | None] = [None] * n_pairs
    for p, ti, x in zip(pair, t, px, strict=True):
        kk = math.floor(ti / dt)
        cur = interval[p]
        if cur is None:
            last[p] = ref[p] = x
            interval[p] = kk
        elif kk == cur:
            last[p] = x
        elif kk > cur:
            r = math.log(last[p] / ref[p])
            s2[p] = (lam * s2[p] + (1 - lam) * r * r) * lam ** (kk - cur - 1)
            ref[p], last[p], interval[p] = last[p], x, kk


# ---- RiskState.apply on decoded records -------------------------------------------------------


def records(n_records: int, n_symbols: int, per_record: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    t_ms = 1_700_000_000_000
    for i in range(n_records):
        sym = f"S{i % n_symbols}-USDT-PERP"
        vs = sym.replace("-PERP", "").replace("-", "")
        evs: list[Event] = []
        for j in range(per_record):
            t_ms += int(rng.integers(0, 3))
            q = float(rng.lognormal(8.0, 1.5))
            if j % 10 == 0:  # one liquidation per 10 events
                evs.append(Liquidation("binance", sym, vs, Side.LONG if j % 20 else Side.SHORT,
                                       OrderSide.SELL, 100.0, PriceKind.AVG_FILL, q / 100,
                                       QtyUnit.BASE, 1.0, q / 100, q, Coverage.COMPLETE, t_ms,
                                       t_ms * 1_000_000, f"l{i}.{j}"))  # fmt: skip
            else:
                px = round(100.0 + float(rng.normal(0.0, 0.5)), 2)
                evs.append(Trade("binance", sym, vs, OrderSide.BUY if j % 2 else OrderSide.SELL,
                                 px, q / px, QtyUnit.BASE, 1.0, q / px, q, False, t_ms,
                                 t_ms * 1_000_000, f"t{i}.{j}"))  # fmt: skip
        out.append(encode_batch(evs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--py-events", type=int, default=200_000)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    n, npy, pairs = a.events, a.py_events, a.pairs
    print(f"cpu: {os.cpu_count()} logical cores visible; numbers are for one core\n")
    state = RiskState(pairs)
    state.warm_up()  # compile or load the cached kernels before timing
    tau = np.asarray(TAUS)

    rows = []
    # liquidation flow: 3 liquidated sides x 3 horizons
    pair, side, t, q, px = events(n, pairs, 3, seed=1)

    def liq_kernel() -> None:
        flow_update(pair, side, t, q, tau, np.zeros((pairs, 3, 3)), np.full((pairs, 3), -np.inf),
                    np.zeros((pairs, 3)), np.zeros((pairs, 3), np.int64))  # fmt: skip

    lists = (pair[:npy].tolist(), side[:npy].tolist(), t[:npy].tolist(), q[:npy].tolist())
    rows.append(("liquidation flow_update", n / best_of(liq_kernel, a.repeat),
                 npy / best_of(lambda: py_flow(*lists, pairs, 3), 1)))  # fmt: skip

    # trades: taker-side flow (2 sides x 3 horizons) + price / EWMA volatility
    pair, side, t, q, px = events(n, pairs, 2, seed=2)

    def trade_kernel() -> None:
        flow_update(pair, side, t, q, tau, np.zeros((pairs, 2, 3)), np.full((pairs, 2), -np.inf),
                    np.zeros((pairs, 2)), np.zeros((pairs, 2), np.int64))  # fmt: skip
        price_update(pair, t, px, 1.0, 0.94, np.zeros(pairs), np.zeros(pairs),
                     np.full(pairs, NO_INTERVAL, np.int64), np.zeros(pairs),
                     np.zeros(pairs, np.int64))  # fmt: skip

    lists = (pair[:npy].tolist(), side[:npy].tolist(), t[:npy].tolist(), q[:npy].tolist())
    pxl = px[:npy].tolist()

    def trade_py() -> None:
        py_flow(*lists, pairs, 2)
        py_price(lists[0], lists[2], pxl, pairs, 1.0, 0.94)

    rows.append(("trade flow_update + price_update", n / best_of(trade_kernel, a.repeat),
                 npy / best_of(trade_py, 1)))  # fmt: skip

    print(f"{'per-event update (' + str(pairs) + ' pairs)':<36} {'numba ev/s':>14} "
          f"{'pure Python ev/s':>17} {'ratio':>7}")  # fmt: skip
    for name, fast, slow in rows:
        print(f"{name:<36} {fast:>14,.0f} {slow:>17,.0f} {fast / slow:>6.0f}x")

    # read-out of every pair (what one scrape computes)
    big = RiskState(4096)
    big.warm_up()
    for b in records(4096, 4096, 5, seed=3):
        big.apply(decode_batch(b))
    read_s = best_of(lambda: big.read(big.now_s()), a.repeat * 4)
    print(f"\nread-out of 4096 pairs (rates, variance, copies): {read_s * 1e6:,.0f} us per scrape")
    registry = CollectorRegistry()
    RiskCollector.for_registry(registry).attach("binance", big, 200)
    scrape_s = best_of(lambda: generate_latest(registry), a.repeat)
    print(f"full /metrics text, 4096 pairs, top 200 exported: {scrape_s * 1e3:,.1f} ms per scrape")
    print(f"state per pair: {state.bytes_per_pair} bytes "
          f"({state.bytes_per_pair * 4096 / 1024:,.0f} KiB for the default 4096 pairs)")  # fmt: skip

    # RiskState.apply on realistic decoded records
    print(f"\nRiskState.apply, {a.records:,} records of 50 events (45 trades + 5 liquidations), "
          "200 symbols:")  # fmt: skip
    raw = records(a.records, 200, 50, seed=4)
    decoded = [decode_batch(b) for b in raw]

    def decode_all() -> None:
        for b in raw:
            decode_batch(b)

    dec_s = best_of(decode_all, a.repeat)

    def apply_all() -> None:
        st = RiskState(256)
        for b in decoded:
            st.apply(b)

    app_s = best_of(apply_all, a.repeat)
    n_ev = 50 * a.records
    for name, secs in (("decode_batch", dec_s), ("RiskState.apply", app_s),
                       ("decode_batch + apply", dec_s + app_s)):  # fmt: skip
        per_rec = secs / a.records * 1e6
        print(f"  {name:<22} {n_ev / secs:>12,.0f} events/s  {per_rec:6.1f} us/record")


if __name__ == "__main__":
    main()
