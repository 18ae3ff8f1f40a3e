"""consumers/models/volatility.py against the interval-by-interval walk of consumer_refs.py
(hypothesis + hand-computed cases).

Tolerances: the variance rel 1e-9 against the interval-by-interval walk (lam**k vs k
multiplications), and exact (==) on the hand-computed cases.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.models.jit import F64, I64, NO_INTERVAL
from consumers.models.volatility import price_update, variance_at
from tests.consumers.consumer_refs import VolRef

Vol = tuple[F64, F64, I64, F64, I64]

ONE = np.arange(1)  # the rows of a one-pair read-out


def _new_vol(n: int) -> Vol:
    return (np.zeros(n), np.zeros(n), np.full(n, NO_INTERVAL, dtype=np.int64), np.zeros(n),
            np.zeros(n, dtype=np.int64))  # fmt: skip


def _trades(pairs: list[int], ts: list[float], px: list[float], dt: float, lam: float,
            vol: Vol) -> None:  # fmt: skip
    price_update(np.asarray(pairs, dtype=np.int32), np.asarray(ts, dtype=np.float64),
                   np.asarray(px, dtype=np.float64), dt, lam, *vol)  # fmt: skip


def test_volatility_hand_computed() -> None:
    lam, dt = 0.5, 1.0
    vol = last, ref, interval, s2, n = _new_vol(1)
    out = np.empty(1)
    _trades([0], [10.2], [100.0], dt, lam, vol)  # first trade: initialises, no return
    assert (last[0], ref[0], interval[0], s2[0], n[0]) == (100.0, 100.0, 10, 0.0, 0)
    variance_at(10.9, dt, lam, *vol, ONE, out)
    assert math.isnan(out[0])  # nothing closed yet
    _trades([0], [10.7], [110.0], dt, lam, vol)  # same interval: only the price moves
    assert (last[0], ref[0], s2[0]) == (110.0, 100.0, 0.0)
    variance_at(11.0, dt, lam, *vol, ONE, out)  # read-out closes interval 10 as a trade would
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
    variance_at(14.5, dt, lam, *vol, ONE, out)
    assert out[0] == v2
    variance_at(17.0, dt, lam, *vol, ONE, out)  # closes 14 (ln(100/121)), then 15 and 16 empty
    r3 = math.log(100.0 / 121.0)
    assert out[0] == (0.5 * v2 + 0.5 * r3 * r3) * 0.5**2
    variance_at(1e12, dt, lam, *vol, ONE, out)  # a huge gap decays to 0, no overflow
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
            assert interval[p] == NO_INTERVAL
            continue
        assert (interval[p], last[p], n[p]) == (st_.interval, st_.last, st_.n)
        assert math.isclose(s2[p], st_.s2, rel_tol=1e-9, abs_tol=1e-300)
    for now in (t_max, t_max + extra_s):
        variance_at(now, dt, lam, *vol, np.arange(n_pairs), out)
        for p in range(n_pairs):
            want = ref.variance_at(p, now)
            if math.isnan(want):
                assert math.isnan(out[p])
            else:
                assert math.isclose(out[p], want, rel_tol=1e-9, abs_tol=1e-300)
