"""Kernels against the slow references in consumer_refs.py (hypothesis + hand-computed cases).

Tolerances: decayed rates rel 1e-9 (abs 1e-290 for values in the subnormal range, where the
recursion and the closed form round differently); cumulative sums and counts exact (same order);
the variance rel 1e-9 against the interval-by-interval walk (lam**k vs k multiplications), and
exact (==) on the hand-computed cases.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers import kernels as k
from tests.consumers.consumer_refs import FlowRef, VolRef

TAUS = (10.0, 60.0, 300.0)
BASE_MS = 1_700_000_000_000
RTOL, ATOL = 1e-9, 1e-290

# ---- strategies --------------------------------------------------------------------------------

offsets_ms = st.one_of(
    st.integers(0, 5_000),  # dense
    st.integers(0, 2_000_000_000),  # huge gaps (up to 23 days)
    st.sampled_from([0, 1_000, 1_000, 60_000]),  # identical timestamps
)
notionals = st.one_of(
    st.just(0.0),
    st.floats(0.0, 1e9, allow_nan=False, allow_infinity=False),
    st.sampled_from([1.0, 1e-6, 5e8]),
)


@st.composite
def flow_events(draw: st.DrawFn) -> tuple[int, int, list[tuple[int, int, int, float]]]:
    n_pairs = draw(st.integers(1, 40))
    n_sides = draw(st.sampled_from([2, 3]))
    n = draw(st.integers(0, 300))
    ts = draw(st.lists(offsets_ms, min_size=n, max_size=n))
    order = draw(st.sampled_from(["random", "sorted", "jitter"]))
    if order == "sorted":
        ts.sort()
    elif order == "jitter":  # mostly in order, a few ms late
        ts.sort()
        ts = [max(0, t - draw(st.integers(0, 3))) if i % 3 == 0 else t for i, t in enumerate(ts)]
    evs = [
        (draw(st.integers(0, n_pairs - 1)), draw(st.integers(0, n_sides - 1)), BASE_MS + t,
         draw(notionals))
        for t in ts
    ]  # fmt: skip
    return n_pairs, n_sides, evs


Vol = tuple[k.F64, k.F64, k.I64, k.F64, k.I64]
Flow = tuple[k.F64, k.F64, k.F64, k.I64]


def _flow_arrays(
    evs: list[tuple[int, int, int, float]],
) -> tuple[k.I32, k.I8, k.F64, k.F64]:
    pid = np.array([e[0] for e in evs], dtype=np.int32)
    side = np.array([e[1] for e in evs], dtype=np.int8)
    t = np.array([e[2] for e in evs], dtype=np.int64) / 1000.0
    q = np.array([e[3] for e in evs], dtype=np.float64)
    return pid, side, t, q


def _new_flow(n_pairs: int, n_sides: int) -> Flow:
    return (
        np.zeros((n_pairs, n_sides, len(TAUS))),
        np.full((n_pairs, n_sides), -np.inf),
        np.zeros((n_pairs, n_sides)),
        np.zeros((n_pairs, n_sides), dtype=np.int64),
    )


# ---- flow --------------------------------------------------------------------------------------


@settings(deadline=None, max_examples=300)
@given(data=flow_events(), split=st.integers(0, 300), extra_ms=offsets_ms)
def test_flow_update_matches_closed_form(
    data: tuple[int, int, list[tuple[int, int, int, float]]], split: int, extra_ms: int
) -> None:
    n_pairs, n_sides, evs = data
    tau = np.asarray(TAUS)
    rate, t_last, cum, count = _new_flow(n_pairs, n_sides)
    ref = FlowRef(TAUS)
    # two kernel calls: state carries over between batches
    for chunk in (evs[:split], evs[split:]):
        k.flow_update(*_flow_arrays(chunk), tau, rate, t_last, cum, count)
    for p, s, ts, q in evs:
        ref.add(p, s, ts / 1000.0, q)

    t_max = max((e[2] for e in evs), default=BASE_MS) / 1000.0
    for now in (t_max, t_max + extra_ms / 1000.0, t_max - 5.0):
        out = np.full_like(rate, np.nan)
        k.flow_rates_at(now, tau, rate, t_last, n_pairs, out)
        for p in range(n_pairs):
            for s in range(n_sides):
                assert t_last[p, s] == ref.t_last(p, s)
                assert cum[p, s] == ref.cum.get((p, s), 0.0)  # exact: same order
                assert count[p, s] == ref.count.get((p, s), 0)
                for h in range(len(TAUS)):
                    want = ref.rate(p, s, h, ref.t_last(p, s))
                    assert math.isclose(rate[p, s, h], want, rel_tol=RTOL, abs_tol=ATOL)
                    want = ref.rate(p, s, h, now)
                    assert math.isclose(out[p, s, h], want, rel_tol=RTOL, abs_tol=ATOL)


def test_flow_update_hand_computed() -> None:
    tau = np.asarray([10.0])
    rate, t_last, cum, count = _new_flow(1, 2)
    pid, side = np.zeros(1, np.int32), np.zeros(1, np.int8)
    k.flow_update(pid, side, np.array([100.0]), np.array([50.0]), tau, rate, t_last, cum, count)
    assert rate[0, 0, 0] == 5.0 and t_last[0, 0] == 100.0
    k.flow_update(pid, side, np.array([110.0]), np.array([20.0]), tau, rate, t_last, cum, count)
    assert rate[0, 0, 0] == 5.0 * math.exp(-10.0 / 10.0) + 2.0
    # out of order: added already decayed, t_last unchanged
    k.flow_update(pid, side, np.array([105.0]), np.array([10.0]), tau, rate, t_last, cum, count)
    assert rate[0, 0, 0] == 5.0 * math.exp(-1.0) + 2.0 + 1.0 * math.exp(-5.0 / 10.0)
    assert t_last[0, 0] == 110.0 and cum[0, 0] == 80.0 and count[0, 0] == 3
    assert rate[0, 1, 0] == 0.0 and count[0, 1] == 0  # the other side untouched
    out = np.empty_like(rate)
    k.flow_rates_at(130.0, tau, rate, t_last, 1, out)
    assert out[0, 0, 0] == rate[0, 0, 0] * math.exp(-20.0 / 10.0)
    k.flow_rates_at(50.0, tau, rate, t_last, 1, out)  # before t_last: not grown back
    assert out[0, 0, 0] == rate[0, 0, 0]


# ---- price and volatility ----------------------------------------------------------------------


def _new_vol(n: int) -> Vol:
    return (np.zeros(n), np.zeros(n), np.full(n, k.NO_INTERVAL, dtype=np.int64), np.zeros(n),
            np.zeros(n, dtype=np.int64))  # fmt: skip


def _trades(pairs: list[int], ts: list[float], px: list[float], dt: float, lam: float,
            vol: Vol) -> None:  # fmt: skip
    k.price_update(np.asarray(pairs, dtype=np.int32), np.asarray(ts, dtype=np.float64),
                   np.asarray(px, dtype=np.float64), dt, lam, *vol)  # fmt: skip


def test_volatility_hand_computed() -> None:
    lam, dt = 0.5, 1.0
    vol = last, ref, interval, s2, n = _new_vol(1)
    out = np.empty(1)
    _trades([0], [10.2], [100.0], dt, lam, vol)  # first trade: initialises, no return
    assert (last[0], ref[0], interval[0], s2[0], n[0]) == (100.0, 100.0, 10, 0.0, 0)
    k.variance_at(10.9, dt, lam, *vol, 1, out)
    assert math.isnan(out[0])  # nothing closed yet
    _trades([0], [10.7], [110.0], dt, lam, vol)  # same interval: only the price moves
    assert (last[0], ref[0], s2[0]) == (110.0, 100.0, 0.0)
    k.variance_at(11.0, dt, lam, *vol, 1, out)  # read-out closes interval 10 as a trade would
    r1 = math.log(110.0 / 100.0)
    v1 = 0.5 * 0.0 + 0.5 * r1 * r1
    assert out[0] == v1
    _trades([0], [11.5], [121.0], dt, lam, vol)  # interval 11 closes interval 10
    assert (s2[0], ref[0], last[0], interval[0], n[0]) == (v1, 110.0, 121.0, 11, 1)
    _trades([0], [14.0], [100.0], dt, lam, vol)  # closes 11 (r = ln(121/110)), 12 and 13 empty
    r2 = math.log(121.0 / 110.0)
    v2 = (0.5 * v1 + 0.5 * r2 * r2) * 0.5**2
    assert (s2[0], ref[0], last[0], interval[0], n[0]) == (v2, 121.0, 100.0, 14, 4)
    _trades([0], [12.5], [1.0], dt, lam, vol)  # an older interval: no effect
    assert (s2[0], ref[0], last[0], interval[0]) == (v2, 121.0, 100.0, 14)
    k.variance_at(14.5, dt, lam, *vol, 1, out)
    assert out[0] == v2
    k.variance_at(17.0, dt, lam, *vol, 1, out)  # closes 14 (ln(100/121)), then 15 and 16 empty
    r3 = math.log(100.0 / 121.0)
    assert out[0] == (0.5 * v2 + 0.5 * r3 * r3) * 0.5**2
    k.variance_at(1e12, dt, lam, *vol, 1, out)  # a huge gap decays to 0, no overflow
    assert out[0] == 0.0


def test_volatility_riskmetrics_lambda_and_subsecond_interval() -> None:
    lam, dt = 0.94, 0.25
    vol = _new_vol(2)
    _trades([0, 1, 0, 0], [1.0, 1.0, 1.1, 1.3], [50.0, 7.0, 51.0, 49.0], dt, lam, vol)
    s2 = vol[3]
    r = math.log(51.0 / 50.0)
    assert s2[0] == 0.94 * 0.0 + (1.0 - 0.94) * r * r
    assert s2[1] == 0.0 and vol[0][1] == 7.0


prices = st.one_of(st.floats(1e-3, 1e6, allow_nan=False), st.sampled_from([100.0, 100.5]))


@st.composite
def trade_events(draw: st.DrawFn) -> tuple[float, float, int, list[tuple[int, float, float]]]:
    dt = draw(st.sampled_from([0.25, 1.0, 5.0]))
    lam = draw(st.sampled_from([0.5, 0.94, 0.999]))
    n_pairs = draw(st.integers(1, 10))
    n = draw(st.integers(0, 200))
    ts = draw(st.lists(st.one_of(st.integers(0, 3_000), st.integers(0, 1_000_000)),
                       min_size=n, max_size=n))  # fmt: skip
    if draw(st.booleans()):
        ts.sort()
    evs = [(draw(st.integers(0, n_pairs - 1)), t / 1000.0, draw(prices)) for t in ts]
    return dt, lam, n_pairs, evs


@settings(deadline=None, max_examples=300)
@given(data=trade_events(), extra_s=st.floats(0.0, 100.0))
def test_price_update_matches_interval_walk(
    data: tuple[float, float, int, list[tuple[int, float, float]]], extra_s: float
) -> None:
    dt, lam, n_pairs, evs = data
    vol = last, _ref, interval, s2, n = _new_vol(n_pairs)
    ref = VolRef(dt, lam)
    half = len(evs) // 2
    for chunk in (evs[:half], evs[half:]):
        _trades([e[0] for e in chunk], [e[1] for e in chunk], [e[2] for e in chunk], dt, lam, vol)
    for p, t, px in evs:
        ref.trade(p, t, px)
    t_max = max((e[1] for e in evs), default=0.0)
    out = np.empty(n_pairs)
    for p in range(n_pairs):
        st_ = ref.pairs.get(p)
        if st_ is None:
            assert interval[p] == k.NO_INTERVAL
            continue
        assert (interval[p], last[p], n[p]) == (st_.interval, st_.last, st_.n)
        assert math.isclose(s2[p], st_.s2, rel_tol=1e-9, abs_tol=1e-300)
    for now in (t_max, t_max + extra_s):
        k.variance_at(now, dt, lam, *vol, n_pairs, out)
        for p in range(n_pairs):
            want = ref.variance_at(p, now)
            if math.isnan(want):
                assert math.isnan(out[p])
            else:
                assert math.isclose(out[p], want, rel_tol=1e-9, abs_tol=1e-300)


@pytest.mark.parametrize("n_pairs", [1, 1000])
def test_kernels_accept_empty_input(n_pairs: int) -> None:
    tau = np.asarray(TAUS)
    rate, t_last, cum, count = _new_flow(n_pairs, 3)
    e = np.empty(0)
    k.flow_update(np.empty(0, np.int32), np.empty(0, np.int8), e, e, tau, rate, t_last, cum, count)
    out = np.full_like(rate, np.nan)
    k.flow_rates_at(0.0, tau, rate, t_last, n_pairs, out)
    assert not out.any() and not count.any()


@settings(deadline=None, max_examples=200)
@given(
    rows=st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-128, 127),
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(allow_nan=True, allow_infinity=True),
        ),
        max_size=50,
    ),
    with_price=st.booleans(),
)
def test_screen_rows_matches_the_rule(
    rows: list[tuple[float, int, float, float]], with_price: bool
) -> None:
    t = np.array([r[0] for r in rows], dtype=np.float64)
    side = np.array([r[1] for r in rows], dtype=np.int8)
    q = np.array([r[2] for r in rows], dtype=np.float64)
    px = np.array([r[3] for r in rows], dtype=np.float64) if with_price else np.empty(0)
    ok = np.empty(len(rows), dtype=np.bool_)
    n_bad, t_max = k.screen_rows(t, side, q, px, 3, ok)
    want = [
        math.isfinite(ti) and 0 <= si < 3 and math.isfinite(qi) and qi >= 0
        and (not with_price or (math.isfinite(pi) and pi > 0))
        for ti, si, qi, pi in rows
    ]  # fmt: skip
    assert ok.tolist() == want and n_bad == want.count(False)
    assert t_max == max((r[0] for r, w in zip(rows, want, strict=True) if w), default=-math.inf)
