"""consumers/models/flow.py: the decayed flow rates against the slow references in consumer_refs.py
and microstructure_ref.py (hypothesis + hand-computed cases), and the imbalance and liquidation
share read from them.

Tolerances: decayed rates rel 1e-9 (abs 1e-290 for values in the subnormal range, where the
recursion and the closed form round differently); cumulative sums and counts exact (same order);
imbalance and share rel 1e-15 against the formula.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.models import microstructure as m
from consumers.models.flow import flow_rates_at, flow_update, imbalance_at, liq_share_at
from consumers.models.jit import F64, I8, I32, I64
from tests.consumers.consumer_refs import FlowRef
from tests.consumers.models.micro_cases import (
    ATOL,
    BASE_MS,
    HS,
    RTOL,
    Event,
    close,
    event_lists,
    read_times,
    readout,
    trades_in_two_calls,
)
from tests.consumers.models.microstructure_ref import imbalance, liq_share

TAUS = (10.0, 60.0, 300.0)

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


Flow = tuple[F64, F64, F64, I64]


def _flow_arrays(
    evs: list[tuple[int, int, int, float]],
) -> tuple[I32, I8, F64, F64]:
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
        flow_update(*_flow_arrays(chunk), tau, rate, t_last, cum, count)
    for p, s, ts, q in evs:
        ref.add(p, s, ts / 1000.0, q)

    t_max = max((e[2] for e in evs), default=BASE_MS) / 1000.0
    for now in (t_max, t_max + extra_ms / 1000.0, t_max - 5.0):
        out = np.full_like(rate, np.nan)
        flow_rates_at(now, tau, rate, t_last, np.arange(n_pairs), out)
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
    flow_update(pid, side, np.array([100.0]), np.array([50.0]), tau, rate, t_last, cum, count)
    assert rate[0, 0, 0] == 5.0 and t_last[0, 0] == 100.0
    flow_update(pid, side, np.array([110.0]), np.array([20.0]), tau, rate, t_last, cum, count)
    assert rate[0, 0, 0] == 5.0 * math.exp(-10.0 / 10.0) + 2.0
    # out of order: added already decayed, t_last unchanged
    flow_update(pid, side, np.array([105.0]), np.array([10.0]), tau, rate, t_last, cum, count)
    assert rate[0, 0, 0] == 5.0 * math.exp(-1.0) + 2.0 + 1.0 * math.exp(-5.0 / 10.0)
    assert t_last[0, 0] == 110.0 and cum[0, 0] == 80.0 and count[0, 0] == 3
    assert rate[0, 1, 0] == 0.0 and count[0, 1] == 0  # the other side untouched
    out = np.empty_like(rate)
    flow_rates_at(130.0, tau, rate, t_last, np.arange(1), out)
    assert out[0, 0, 0] == rate[0, 0, 0] * math.exp(-20.0 / 10.0)
    flow_rates_at(50.0, tau, rate, t_last, np.arange(1), out)  # before t_last: not grown back
    assert out[0, 0, 0] == rate[0, 0, 0]


@pytest.mark.parametrize("n_pairs", [1, 1000])
def test_kernels_accept_empty_input(n_pairs: int) -> None:
    tau = np.asarray(TAUS)
    rate, t_last, cum, count = _new_flow(n_pairs, 3)
    e = np.empty(0)
    flow_update(np.empty(0, np.int32), np.empty(0, np.int8), e, e, tau, rate, t_last, cum, count)
    out = np.full_like(rate, np.nan)
    flow_rates_at(0.0, tau, rate, t_last, np.arange(n_pairs), out)
    assert not out.any() and not count.any()


@HS
@given(data=event_lists(), split=st.integers(0, 120), extra_s=st.floats(0.0, 1e5))
def test_notional_rates_match_closed_form(
    data: tuple[int, list[Event]], split: int, extra_s: float
) -> None:
    n_pairs, evs = data
    s = m.MicroState.allocate(n_pairs, m.MicroParams())
    trades_in_two_calls(s, evs, split)
    ref = FlowRef(s.params.horizons_s)
    for p, t_ms, _, q, _ in evs:
        ref.add(p, 0, t_ms / 1000.0, q)
    for now in read_times(evs, extra_s):
        r = readout(s, now, n_pairs)
        for p in range(n_pairs):
            assert s.trd_t[p] == ref.t_last(p, 0)
            for h in range(3):
                assert close(s.trd_rate[p, h], ref.rate(p, 0, h, ref.t_last(p, 0)))
                assert close(r.trd_rate[p, h], ref.rate(p, 0, h, now))


def test_imbalance_and_share_hand_computed() -> None:
    liq = np.zeros((3, 3, 2))
    liq[0, :, 0] = (30.0, 10.0, 5.0)  # long, short, unknown
    liq[1, :, 0] = (0.0, 7.0, 0.0)
    liq[0, :, 1] = (1.0, 1.0, 0.0)
    trd = np.array([[90.0, 4.0], [7.0, 0.0], [0.0, 0.0]])
    imb, share = np.empty((3, 2)), np.empty((3, 2))
    imbalance_at(liq, np.arange(3), imb)
    liq_share_at(liq, trd, np.arange(3), share)
    assert imb[0].tolist() == [0.5, 0.0] and imb[1, 0] == -1.0
    assert np.isnan(imb[1, 1]) and np.isnan(imb[2]).all()  # no liquidations: undefined
    assert share[0].tolist() == [0.5, 0.5] and share[1, 0] == 1.0
    assert np.isnan(share[1, 1]) and np.isnan(share[2]).all()  # no trade flow: undefined


rate_values = st.one_of(st.just(0.0), st.floats(0.0, 1e12), st.sampled_from([1e-300, 5e-324]))


@settings(deadline=None, max_examples=150)
@given(vals=st.lists(st.tuples(rate_values, rate_values, rate_values, rate_values), max_size=20))
def test_imbalance_and_share_match_formula(vals: list[tuple[float, float, float, float]]) -> None:
    n = len(vals)
    liq = np.zeros((n, 3, 1))
    trd = np.zeros((n, 1))
    for i, (lo, sh, un, tr) in enumerate(vals):
        liq[i, :, 0] = (lo, sh, un)
        trd[i, 0] = tr
    imb, share = np.empty((n, 1)), np.empty((n, 1))
    imbalance_at(liq, np.arange(n), imb)
    liq_share_at(liq, trd, np.arange(n), share)
    for i, (lo, sh, un, tr) in enumerate(vals):
        assert close(imb[i, 0], imbalance(lo, sh), rel=1e-15, abs_=0.0)
        assert close(share[i, 0], liq_share([lo, sh, un], tr), rel=1e-15, abs_=0.0)
        assert math.isnan(imb[i, 0]) or -1.0 <= imb[i, 0] <= 1.0
