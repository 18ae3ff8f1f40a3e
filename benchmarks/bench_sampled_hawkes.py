"""Validation of consumers/models/sampled_hawkes.py (issue 13): n of sampled and complete feeds.

Run:  .venv/bin/python benchmarks/bench_sampled_hawkes.py [--seeds 20] [--only SECTION]

``grid``: for each true n in {0.3, 0.5, 0.8}, mean rate mu/(1 - n) in {0.1, 0.25, 0.5, 1, 2}/s
and kernel decay beta in {0.2, 1, 2}/s, ``--seeds`` Hawkes simulations (Ogata thinning, 300 s
burn-in, then a 900 s window), each seen as four feeds:

* ``complete``: every event, 1 s counts (``OBS_COUNTS``); its notes give the exact continuous-time
  MLE of consumers.models.hawkes on the same events (constant baseline)
  and the share of windows where ours agrees with it within 0.05, with the default stationary
  start and (``same start``) with the series starting empty as the exact MLE does;
* ``binance``: per 1 s wall-clock window only the latest event (``OBS_BINARY``, the phase
  estimated from the kept times as in production); notes: saturation (share of non-empty
  seconds) and the exact MLE on the kept events (the bias this module removes);
* ``okx``: at most one per second, the latest kept, windows at a phase drawn per seed; phase
  estimated; ``okx@0``: the same stream binned on whole seconds, without the estimate;
* ``random``: one event per second drawn at random (Bitget keeps the largest per side, whose
  time is unrelated to its size); phase estimated.

Columns: mean and sd of n_hat, share of windows with |n_hat - n| <= 0.1, share whose 90 %
interval holds n, median interval width, share undefined, share with a baseline step kept, CPU ms
of a cold fit (median / p95). ``poisson``: n = 0 at 0.1-3/s; ``step``: a Poisson rate step
refit every 10 s over 900 s windows; ``thin``: few events (why ``min_bins`` is 20); ``limit``: one
40,000 s series per case without prior (the filter's pseudo-true n); ``time``: cold and warm fits
by saturation, and one refit tick of 200 pairs through ``SampledHawkesState``.

Measured (20 seeds, one core shared with other work; summary in
consumers/models/sampled_hawkes.py):
sampled feeds mean |bias| 0.03 (max 0.12), |n_hat - n| <= 0.1 in 69 % of windows (n = 0.8: 82 %),
90 % interval coverage 0.90 (0.65-1.00 by case), none undefined at >= 0.1/s; the phase matters
(okx@0: |bias| 0.14, within 0.1 in 38 %); complete feeds agree with the exact MLE within 0.05 in
94 % of windows; pseudo-true n within 0.03 of the truth; warm refit 0.2-1 ms.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consumers.models.hawkes import HawkesParams, HawkesState
from consumers.models.sampled_hawkes import (
    OBS_BINARY,
    OBS_COUNTS,
    SampledFit,
    SampledParams,
    fit_sampled,
)
from consumers.models.sampled_series import SampledHawkesState, bin_ring, sampling_phase

WINDOW_S = 900
BURN_S = 300.0
T_END = BURN_S + WINDOW_S


@numba.njit(cache=True)
def simulate(mu: float, alpha: float, beta: float, t_end: float, seed: int) -> np.ndarray:
    """Ogata (1981) thinning of an exponential Hawkes process on [0, t_end]."""
    np.random.seed(seed)
    out = np.empty(1024)
    k = 0
    t = 0.0
    exc = 0.0
    while True:
        bound = mu + exc
        w = np.random.exponential(1.0 / bound)
        t += w
        if t > t_end:
            return out[:k]
        exc *= math.exp(-beta * w)
        if np.random.random() * bound <= mu + exc:
            if k == out.shape[0]:
                grown = np.empty(2 * k)
                grown[:k] = out
                out = grown
            out[k] = t
            k += 1
            exc += alpha


def keep_latest(t: np.ndarray, phase: float) -> np.ndarray:
    """A sampler: per window [phase + j, phase + j + 1) only the latest event."""
    j = np.floor(t - phase).astype(np.int64)
    last = np.ones(t.size, bool)
    last[:-1] = j[1:] != j[:-1]
    return t[last]


def keep_one(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A sampler: per whole second one event drawn at random (as Bitget's largest-notional pick
    per side: which one it keeps has nothing to do with its time)."""
    j = np.floor(t).astype(np.int64)
    key = j + rng.uniform(0.0, 0.5, t.size)  # a random order inside each second
    order = np.lexsort((key, j))
    first = np.ones(t.size, bool)
    first[1:] = j[order][1:] != j[order][:-1]
    return np.sort(t[order][first])


def series(t: np.ndarray, t_end: float, phase: float, n_bins: int = WINDOW_S) -> np.ndarray:
    obs = np.empty(n_bins, np.int32)
    used = bin_ring(t, 0, t.size, -np.inf, t_end, 1.0, phase, obs)
    return obs[n_bins - used :]


def at_phase(t: np.ndarray, t_end: float) -> np.ndarray:
    return series(t, t_end, sampling_phase(t, 0, t.size, 1.0)[0])


def exact_mle(t: np.ndarray, t0: float, t1: float, step: bool = False) -> float:
    """n of consumers.models.hawkes's exact MLE on [t0, t1] (constant baseline unless ``step``)."""
    if t.size < 10:
        return math.nan
    p = HawkesParams(window_s=t1 - t0, capacity=max(4096, 2 * t.size), min_events=10,
                     baseline_step=step)  # fmt: skip
    st = HawkesState.allocate(1, p)
    st.t_obs_start[0] = t0
    st.update(np.zeros(t.size, np.int32), t.astype(np.float64), np.zeros(t.size))
    st.refit(np.zeros(1, np.int32), t1)
    return float(st.read(t1).branching_ratio[0])


def timed(
    obs: np.ndarray, kind: int, params: SampledParams | None = None
) -> tuple[SampledFit, float]:
    c0 = time.process_time()
    r = fit_sampled(obs, 1.0, kind, params)
    return r, time.process_time() - c0


def stats(n: float, fits: list[SampledFit], times: list[float]) -> str:
    est = np.array([f.n for f in fits])
    ok = np.isfinite(est)
    e, lo = est[ok], np.array([f.n_lower for f in fits])[ok]
    hi = np.array([f.n_upper for f in fits])[ok]
    steps = np.mean([math.isfinite(f.step_bin) for f in fits])
    ms = np.array(times) * 1e3
    if not e.size:
        return f"- | - | - | - | - | {1 - ok.mean():.2f} | - | -"
    return (f"{e.mean():.3f} | {e.std():.3f} | {np.mean(np.abs(e - n) <= 0.1):.2f} | "
            f"{np.mean((lo <= n) & (n <= hi)):.2f} | {np.median(hi - lo):.2f} | "
            f"{1 - ok.mean():.2f} | {steps:.2f} | {np.median(ms):.2f} / {np.percentile(ms, 95):.2f}")  # fmt: skip


def grid(seeds: int) -> None:
    print("| n, rate/s, beta/s, feed | mean n_hat | sd | within 0.1 | 90% covers | width | "
          "undefined | step kept | ms cold | notes |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(2024)
    same_start = SampledParams(stationary_start=False)
    for n in (0.3, 0.5, 0.8):
        for rate in (0.1, 0.25, 0.5, 1.0, 2.0):
            for beta in (0.2, 1.0, 2.0):
                feeds = ("complete", "binance", "okx", "okx@0", "random")
                res: dict[str, tuple[list[SampledFit], list[float]]] = {k: ([], []) for k in feeds}
                ex, ex_thin, agree, agree_same, sat = [], [], [], [], []
                for s in range(seeds):
                    seed = (
                        1_000_003 * s + 7919 * int(1000 * n) + 31 * int(100 * rate) + int(10 * beta)
                    )
                    t = simulate(rate * (1 - n), n * beta, beta, T_END, seed)
                    t = t[t >= BURN_S]
                    tb, to = keep_latest(t, 0.0), keep_latest(t, float(rng.uniform()))
                    full = series(t, T_END, 0.0)
                    cases = {"complete": (full, OBS_COUNTS), "binance": (at_phase(tb, T_END), OBS_BINARY),
                             "okx": (at_phase(to, T_END), OBS_BINARY),
                             "okx@0": (series(to, T_END, 0.0), OBS_BINARY),
                             "random": (at_phase(keep_one(t, rng), T_END), OBS_BINARY)}  # fmt: skip
                    for k, (obs, kind) in cases.items():
                        r, cpu = timed(obs, kind)
                        res[k][0].append(r)
                        res[k][1].append(cpu)
                    sat.append(float(np.mean(cases["binance"][0] > 0)))
                    ex.append(exact_mle(t, BURN_S, T_END))
                    ex_thin.append(exact_mle(tb, BURN_S, T_END))
                    agree.append(abs(res["complete"][0][-1].n - ex[-1]) <= 0.05)
                    same = fit_sampled(full, 1.0, OBS_COUNTS, same_start).n
                    agree_same.append(abs(same - ex[-1]) <= 0.05)
                e = np.array(ex)
                notes = {
                    "complete": f"exact MLE {np.nanmean(e):.3f} sd {np.nanstd(e):.3f} within 0.1 "
                    f"{np.mean(np.abs(e - n) <= 0.1):.2f}; agree <= 0.05: {np.mean(agree):.2f}, "
                    f"same start {np.mean(agree_same):.2f}",
                    "binance": f"saturation {np.mean(sat):.2f}; exact MLE on it {np.nanmean(ex_thin):.3f}",
                    "okx": "",
                    "okx@0": "",
                    "random": "",
                }
                for k, (fits, times) in res.items():
                    print(f"| {n}, {rate}, {beta}, {k} | {stats(n, fits, times)} | {notes[k]} |",
                          flush=True)  # fmt: skip


def poisson(seeds: int) -> None:
    print("\n| Poisson (n = 0), rate/s, feed | mean n_hat | p90 | max | lower < 0.05 | step kept |")
    print("|---|---|---|---|---|---|")
    for rate in (0.1, 0.25, 0.5, 1.0, 2.0, 3.0):
        fits: dict[str, list[SampledFit]] = {"complete": [], "binance": []}
        for s in range(seeds):
            rng = np.random.default_rng(10_000 + s)
            t = np.sort(rng.uniform(0.0, WINDOW_S, rng.poisson(rate * WINDOW_S)))
            fits["complete"].append(fit_sampled(series(t, WINDOW_S, 0.0), 1.0, OBS_COUNTS))
            fits["binance"].append(fit_sampled(at_phase(keep_latest(t, 0.0), WINDOW_S)))
        for k, rr in fits.items():
            e = np.array([r.n for r in rr])
            lo = np.array([r.n_lower for r in rr])
            st = np.mean([math.isfinite(r.step_bin) for r in rr])
            print(f"| {rate}, {k} | {np.nanmean(e):.3f} | {np.nanpercentile(e, 90):.3f} | "
                  f"{np.nanmax(e):.3f} | {np.mean(lo < 0.05):.2f} | {st:.2f} |")  # fmt: skip


def step(seeds: int) -> None:
    print("\n| Poisson rate step, feed | max n (any window) | max n, step inside | n, step centred "
          "| constant baseline, centred | exact MLE (step model) max |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    const = SampledParams(baseline_step=False)
    for r1, r2 in ((0.5, 3.0), (3.0, 0.5), (0.1, 1.0)):
        rows: dict[str, list[tuple[float, float, float, float]]] = {"complete": [], "binance": []}
        ex_max = []
        for s in range(seeds):
            rng = np.random.default_rng(20_000 + s)
            t = np.sort(np.concatenate([rng.uniform(0, 1800, rng.poisson(1800 * r1)),
                                        rng.uniform(1800, 3600, rng.poisson(1800 * r2))]))  # fmt: skip
            feeds = {"complete": (t, OBS_COUNTS), "binance": (keep_latest(t, 0.0), OBS_BINARY)}
            for k, (ev, kind) in feeds.items():
                ns, inside = [], []
                for end in np.arange(900.0, 3600.0 + 1e-9, 10.0):
                    w = ev[(ev >= end - WINDOW_S) & (ev < end)]
                    obs = series(w, end, 0.0) if kind == OBS_COUNTS else at_phase(w, end)
                    r = fit_sampled(obs, 1.0, kind)
                    ns.append(r.n)
                    if end - WINDOW_S < 1800 < end:
                        inside.append(r.n)
                mid = 1800 + WINDOW_S / 2
                w = ev[(ev >= mid - WINDOW_S) & (ev < mid)]
                obs = series(w, mid, 0.0) if kind == OBS_COUNTS else at_phase(w, mid)
                c = fit_sampled(obs, 1.0, kind, const).n
                rows[k].append((np.nanmax(ns), np.nanmax(inside), fit_sampled(obs, 1.0, kind).n, c))
            ex_max.append(max(exact_mle(t[(t >= e - WINDOW_S) & (t < e)], e - WINDOW_S, e, True)
                              for e in np.arange(900.0, 3600.0 + 1e-9, 60.0)))  # fmt: skip
        for k, v in rows.items():
            a = np.array(v)
            print(f"| {r1} -> {r2}/s, {k} | {a[:, 0].max():.3f} | {a[:, 1].max():.3f} | "
                  f"{a[:, 2].min():.3f}-{a[:, 2].max():.3f} | {a[:, 3].min():.3f}-{a[:, 3].max():.3f} | "
                  f"{max(ex_max):.3f} |")  # fmt: skip


def thin(seeds: int) -> None:
    print("\n| few events: rate/s, n | non-empty bins (median) | mean n_hat | sd | width | "
          "90% covers | within 0.1 | exact MLE on complete: mean, within 0.1 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    p = SampledParams(min_bins=1)
    for rate in (0.01, 0.02, 0.03, 0.05, 0.1):
        for n in (0.0, 0.3, 0.5, 0.8):
            rows = []
            for s in range(seeds):
                t = simulate(rate * (1 - n), n * 1.0, 1.0, T_END, 30_000 + s)
                t = t[t >= BURN_S]
                r = fit_sampled(at_phase(keep_latest(t, 0.0), T_END), 1.0, OBS_BINARY, p)
                rows.append(
                    (r.nonempty_bins, r.n, r.n_lower, r.n_upper, exact_mle(t, BURN_S, T_END))
                )
            a = np.array(rows)
            cov = np.mean((a[:, 2] <= n) & (n <= a[:, 3])) if n > 0 else np.mean(a[:, 2] < 0.05)
            print(f"| {rate}, {n} | {np.median(a[:, 0]):.0f} | {np.nanmean(a[:, 1]):.3f} | "
                  f"{np.nanstd(a[:, 1]):.3f} | {np.nanmedian(a[:, 3] - a[:, 2]):.2f} | {cov:.2f} | "
                  f"{np.mean(np.abs(a[:, 1] - n) <= 0.1):.2f} | {np.nanmean(a[:, 4]):.3f}, "
                  f"{np.mean(np.abs(a[:, 4] - n) <= 0.1):.2f} |")  # fmt: skip


def limit() -> None:
    """The filter's limit: one 40,000 s series per case, no prior (the pseudo-true n)."""
    print("\n| long series (40,000 s), n, rate/s, beta/s | binary (latest per second) | counts |")
    print("|---|---|---|")
    p = SampledParams(prior_a=0.0, prior_b=0.0, baseline_step=False)
    for n, rate, beta in ((0.3, 2.0, 1.0), (0.3, 1.0, 2.0), (0.5, 2.0, 1.0), (0.8, 1.0, 1.0),
                          (0.8, 2.0, 2.0), (0.8, 2.0, 0.2), (0.3, 0.25, 1.0)):  # fmt: skip
        t = simulate(rate * (1 - n), n * beta, beta, 40_300.0, 12345)
        t = t[t >= BURN_S]
        nb = 40_000
        tb = keep_latest(t, 0.0)
        obs = series(tb, 40_300.0, sampling_phase(tb, 0, tb.size, 1.0)[0], nb)
        rb = fit_sampled(obs, 1.0, OBS_BINARY, p)
        rc = fit_sampled(series(t, 40_300.0, 0.0, nb), 1.0, OBS_COUNTS, p)
        print(f"| {n}, {rate}, {beta} | {rb.n:.3f} | {rc.n:.3f} |")


def timing() -> None:
    print("\n| timing (CPU, one core), binary window of 900 bins | saturation | cold ms (median / max) "
          "| warm refit every 5 s: iterations (median), ms (median / p95) |")  # fmt: skip
    print("|---|---|---|---|")
    for n, rate, beta in ((0.8, 0.25, 1.0), (0.5, 1.0, 1.0), (0.3, 2.0, 1.0), (0.0, 3.0, 1.0)):
        t = simulate(rate * (1 - n), n * beta, beta, 3000.0, 99)
        tb = keep_latest(t, 0.0)
        cold, warm_ms, its = [], [], []
        prev: SampledFit | None = None
        for end in np.arange(900.0, 3000.0, 5.0):
            obs = at_phase(tb[(tb >= end - WINDOW_S) & (tb < end)], end)
            c0 = time.process_time()
            r = fit_sampled(obs, 1.0, OBS_BINARY, None, prev)
            warm_ms.append((time.process_time() - c0) * 1e3)
            its.append(r.iterations)
            prev = r
            if end % 100 == 0:
                cold.append(timed(obs, OBS_BINARY)[1] * 1e3)
        print(f"| n {n}, {rate}/s, beta {beta} | {np.mean(obs > 0):.2f} | {np.median(cold):.2f} / "
              f"{np.max(cold):.2f} | {np.median(its):.0f}, {np.median(warm_ms):.2f} / "
              f"{np.percentile(warm_ms, 95):.2f} |")  # fmt: skip
    pairs, cap = 200, 4096
    rng = np.random.default_rng(3)
    buf = np.zeros((pairs, cap))
    length = np.zeros(pairs, np.int64)
    for p in range(pairs):
        n, rate = float(rng.choice([0.3, 0.5, 0.8])), float(rng.choice([0.1, 0.25, 0.5, 1.0, 2.0]))
        tb = keep_latest(simulate(rate * (1 - n), n, 1.0, 1200.0, 500 + p), 0.0)[-cap:]
        buf[p, : tb.size] = tb
        length[p] = tb.size
    state = SampledHawkesState.allocate(pairs)
    ids = np.arange(pairs, dtype=np.int32)
    args = (buf, np.zeros(pairs, np.int64), length, np.zeros(pairs), np.ones(pairs, np.int8))
    ticks = []
    for end in (1190.0, 1195.0, 1200.0):
        c0 = time.process_time()
        state.refit(ids, end, *args)
        ticks.append((time.process_time() - c0) * 1e3)
    print(f"\n200 pairs (mixed n and rates), SampledHawkesState.refit: first tick (cold) {ticks[0]:.0f} ms, "
          f"warm ticks {ticks[1]:.0f} / {ticks[2]:.0f} ms")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--only", choices=("grid", "poisson", "step", "thin", "limit", "time"))
    a = ap.parse_args()
    fit_sampled(np.zeros(10, np.int32))  # compile or load every kernel
    sections = {"grid": grid, "poisson": poisson, "step": step, "thin": thin}
    for name, fn in sections.items():
        if a.only in (None, name):
            fn(a.seeds if name != "step" else max(3, a.seeds // 4))
    if a.only in (None, "limit"):
        limit()
    if a.only in (None, "time"):
        timing()


if __name__ == "__main__":
    main()
