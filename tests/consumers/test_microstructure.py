"""consumers/microstructure.py against the slow references in microstructure_ref.py (hypothesis, random
and adversarial inputs, late events) plus hand-computed and statistical cases.

Tolerances, kernel vs reference: rates and EW moments rel 1e-9 (recursion or closed form vs explicit
sums; abs 1e-290 in the subnormal range); baseline variance abs 1e-9 * E[x^2] (it is a difference of
moments) and the z-score rel 1e-6 / abs 1e-5 where the variance is not below 1e-6 * E[x^2]; Kyle's
lambda abs 1e-9 * sqrt(Var r / Var S) (its natural scale; West's update vs a two-pass sum); jump
share abs 1e-9; drawdown rel 1e-9 / abs 1e-12 (log-price rounding); VPIN exact (==) on dyadic
notionals, where every sum is exact, and rel 1e-9 in auto mode. Statistical tolerances are stated
at each test with the standard error they come from; every random test uses a fixed seed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers import kernels as k
from consumers import microstructure as m
from tests.consumers.consumer_refs import FlowRef
from tests.consumers.microstructure_ref import (
    BaselineRef,
    BipowerRef,
    DrawdownRef,
    KyleRef,
    SaturationRef,
    VpinRef,
    imbalance,
    liq_share,
)

BASE_MS = 1_700_000_000_000
RTOL, ATOL = 1e-9, 1e-290
HS = settings(deadline=None, max_examples=80)

Event = tuple[int, int, int, float, float]  # (pair, t_ms, side, notional, price)


def close(a: float, b: float, rel: float = RTOL, abs_: float = ATOL) -> bool:
    if math.isnan(b):
        return math.isnan(a)
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


# ---- strategies --------------------------------------------------------------------------------

notionals = st.one_of(
    st.just(0.0),
    st.floats(0.0, 1e9, allow_nan=False, allow_infinity=False),
    st.sampled_from([1.0, 1e-6, 5e8, 1e15]),
)
prices = st.one_of(
    st.floats(1e-3, 1e6, allow_nan=False),
    st.sampled_from([100.0, 100.5, 99.5, 1e-300, 1e300]),
)


@st.composite
def event_lists(
    draw: st.DrawFn, notional: st.SearchStrategy[float] = notionals, span_ms: int = 2_000_000
) -> tuple[int, list[Event]]:
    n_pairs = draw(st.integers(1, 5))
    n = draw(st.integers(0, 120))
    offsets = st.one_of(
        st.integers(0, 5_000), st.integers(0, span_ms), st.sampled_from([0, 1_000, 1_000, 60_000])
    )
    ts = draw(st.lists(offsets, min_size=n, max_size=n))
    order = draw(st.sampled_from(["random", "sorted", "jitter"]))
    if order != "random":
        ts.sort()
    if order == "jitter":  # mostly in order, some up to 3 s late (crosses buckets and intervals)
        ts = [
            max(0, t - draw(st.integers(0, 3_000))) if i % 3 == 0 else t for i, t in enumerate(ts)
        ]
    evs = [
        (draw(st.integers(0, n_pairs - 1)), BASE_MS + t, draw(st.integers(0, 1)), draw(notional),
         draw(prices))
        for t in ts
    ]  # fmt: skip
    return n_pairs, evs


def cols(evs: list[Event]) -> tuple[k.I32, k.F64, k.I8, k.F64, k.F64]:
    return (
        np.array([e[0] for e in evs], dtype=np.int32),
        np.array([e[1] for e in evs], dtype=np.int64) / 1000.0,
        np.array([e[2] for e in evs], dtype=np.int8),
        np.array([e[3] for e in evs], dtype=np.float64),
        np.array([e[4] for e in evs], dtype=np.float64),
    )


def trades_in_two_calls(s: m.MicroState, evs: list[Event], split: int) -> None:
    for chunk in (evs[:split], evs[split:]):
        assert s.apply_trades(*cols(chunk)) == len(chunk)


def read_times(evs: list[Event], extra_s: float) -> list[float]:
    t_max = max((e[1] for e in evs), default=BASE_MS) / 1000.0
    return [t_max, t_max + extra_s, t_max - 5.0]


def readout(s: m.MicroState, now: float, n_pairs: int) -> m.MicroReadout:
    return s.read(now, n_pairs, np.zeros((n_pairs, 3, len(s.params.horizons_s))))


# ---- params and state --------------------------------------------------------------------------


def test_params_defaults() -> None:
    p = m.MicroParams()
    assert p.horizons_s == (10.0, 60.0, 300.0)
    assert (p.baseline_horizon_s, p.baseline_sample_s, p.baseline_tau_s) == (60.0, 10.0, 86_400.0)
    assert (p.saturation_slot_s, p.saturation_tau_s) == (1.0, 60.0)
    assert (p.kyle_bucket_s, p.kyle_tau_s, p.kyle_min_buckets) == (1.0, 300.0, 30)
    assert (p.vpin_n_buckets, p.vpin_bucket_usd, p.vpin_auto_span_s) == (50, 0.0, 3_600.0)
    assert (p.bv_interval_s, p.bv_tau_s, p.drawdown_tau_s) == (5.0, 900.0, 3_600.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"horizons_s": ()}, "horizons_s"),
        ({"horizons_s": (10.0, -1.0)}, "horizons_s"),
        ({"baseline_sample_s": 0.0}, "baseline_sample_s"),
        ({"kyle_bucket_s": math.nan}, "kyle_bucket_s"),
        ({"saturation_slot_s": 1e-4}, "saturation_slot_s"),
        ({"bv_tau_s": math.inf}, "bv_tau_s"),
        ({"drawdown_tau_s": -1.0}, "drawdown_tau_s"),
        ({"baseline_warmup_s": -1.0}, "baseline_warmup_s"),
        ({"baseline_tau_s": 100.0}, "baseline_tau_s"),
        ({"kyle_min_buckets": 1}, "kyle_min_buckets"),
        ({"vpin_n_buckets": 0}, "vpin_n_buckets"),
        ({"bv_min_returns": 2.5}, "bv_min_returns"),
        ({"vpin_bucket_usd": 0.5}, "vpin_bucket_usd"),
        ({"vpin_bucket_usd": math.inf}, "vpin_bucket_usd"),
    ],
)
def test_params_rejected_with_clear_message(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        m.MicroParams(**kwargs)


def test_allocate_and_grow_keep_state() -> None:
    p = m.MicroParams(vpin_bucket_usd=100.0, vpin_n_buckets=4)
    s = m.MicroState.allocate(2, p)
    assert s.capacity == 2 and s.trd_rate.shape == (2, 3) and s.vp_imb.shape == (2, 4)
    assert s.late.shape == (2, m.N_LATE) and s.bl_k.dtype == np.int64
    assert (s.bl_k == k.NO_INTERVAL).all() and (s.vp_size == 100.0).all()
    assert np.isnan(s.ky_l0).all() and (s.trd_t == -np.inf).all() and (s.vp_t0 == np.inf).all()
    evs = [(p_, BASE_MS + 1000 * i, i % 2, 30.0 + i, 100.0 + i) for i in range(40) for p_ in (0, 1)]
    s.apply_trades(*cols(evs))
    s.apply_liquidations(*(c for i, c in enumerate(cols(evs)) if i in (0, 1, 3)))
    now = BASE_MS / 1000.0 + 45.0
    before = readout(s, now, 2)
    s.grow(5)
    s.grow(3)  # never shrinks
    assert s.capacity == 5 and s.vp_imb.shape == (5, 4) and s.vp_size[4] == 100.0
    after = readout(s, now, 5)
    for name in before.__slots__:
        a, b = getattr(before, name), getattr(after, name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(b[:2], a)  # old pairs unchanged (NaN == NaN here)
            assert b.shape[0] == 5
    assert np.isnan(after.vpin[2:]).all() and np.isnan(after.drawdown[2:]).all()
    # a grown pair is usable
    s.apply_trades(*cols([(4, BASE_MS, 0, 250.0, 10.0)]))
    assert s.vp_n[4] == 2 and s.vp_cur[4] == 100.0 and s.vp_fill[4] == 50.0
    with pytest.raises(ValueError, match="n_pairs"):
        m.MicroState.allocate(-1, p)
    with pytest.raises(ValueError, match="bucket size"):
        s.set_bucket_usd(0, -3.0)


def test_wrapper_checks_dtypes() -> None:
    s = m.MicroState.allocate(1, m.MicroParams())
    pid, t, side, q, px = cols([(0, BASE_MS, 0, 1.0, 1.0)])
    with pytest.raises(TypeError, match="int32"):
        s.apply_trades(pid.astype(np.int64), t, side, q, px)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int8"):
        s.apply_trades(pid, t, side.astype(np.int32), q, px)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float64"):
        s.apply_liquidations(pid, t.astype(np.float32), q)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        s.apply_liquidations(pid, t, np.ones(2))


def test_empty_input_and_no_pairs() -> None:
    s = m.MicroState.allocate(3, m.MicroParams())
    e = np.empty(0)
    assert s.apply_trades(np.empty(0, np.int32), e, np.empty(0, np.int8), e, e) == 0
    assert s.apply_liquidations(np.empty(0, np.int32), e, e) == 0
    r = readout(s, 1e9, 3)
    assert np.isnan(r.vpin).all() and np.isnan(r.liq_rate_z).all() and np.isnan(r.saturation).all()
    assert (r.trd_rate == 0).all() and np.isnan(r.imbalance).all()
    assert readout(s, 1e9, 0).vpin.shape == (0,)


# ---- screening: bad rows are counted and change nothing -----------------------------------------

bad_floats = st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -1e-300, 1e300, 0.0, 1.0])


@settings(deadline=None, max_examples=150)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(-2, 4), bad_floats | st.floats(), st.integers(-3, 3), bad_floats, bad_floats
        ),
        max_size=40,
    ),
    with_price=st.booleans(),
    with_side=st.booleans(),
)
def test_screen_events_matches_the_rule(
    rows: list[tuple[int, float, int, float, float]], with_price: bool, with_side: bool
) -> None:
    pid = np.array([r[0] for r in rows], dtype=np.int32)
    t = np.array([r[1] for r in rows], dtype=np.float64)
    side = np.array([r[2] for r in rows], dtype=np.int8) if with_side else np.empty(0, np.int8)
    q = np.array([r[3] for r in rows], dtype=np.float64)
    px = np.array([r[4] for r in rows], dtype=np.float64) if with_price else np.empty(0)
    ok = np.empty(len(rows), dtype=np.bool_)
    rejected = np.zeros(3, dtype=np.int64)
    n_bad = m.screen_events(pid, t, side, q, px, ok, rejected)
    want = [
        0 <= p < 3 and math.isfinite(ti) and abs(ti) <= 1e12 and 0 <= qi <= 1e15
        and (not with_side or 0 <= si < 2) and (not with_price or (math.isfinite(pi) and pi > 0))
        for p, ti, si, qi, pi in rows
    ]  # fmt: skip
    assert ok.tolist() == want and n_bad == want.count(False)
    for p in range(3):
        assert rejected[p] == sum(1 for r, w in zip(rows, want, strict=True) if r[0] == p and not w)


@HS
@given(data=event_lists(), bad_at=st.lists(st.integers(0, 200), max_size=10))
def test_bad_rows_never_poison_state(data: tuple[int, list[Event]], bad_at: list[int]) -> None:
    n_pairs, evs = data
    bad: list[Event] = [
        (0, BASE_MS, 0, math.nan, 100.0), (0, BASE_MS, 0, math.inf, 100.0),
        (0, BASE_MS, 1, -5.0, 100.0), (0, BASE_MS, 0, 1e300, 100.0), (0, BASE_MS, 0, 1.0, 0.0),
        (0, BASE_MS, 0, 1.0, -1.0), (0, BASE_MS, 0, 1.0, math.nan), (0, BASE_MS, 0, 1.0, math.inf),
        (0, BASE_MS, 5, 1.0, 1.0), (-1, BASE_MS, 0, 1.0, 1.0), (n_pairs, BASE_MS, 0, 1.0, 1.0),
    ]  # fmt: skip
    mixed = list(evs)
    n_counted = 0
    for j, pos in enumerate(bad_at):
        row = bad[j % len(bad)]
        mixed.insert(min(pos, len(mixed)), row)
        n_counted += 0 <= row[0] < n_pairs
    clean, dirty = (m.MicroState.allocate(n_pairs, m.MicroParams()) for _ in range(2))
    assert clean.apply_trades(*cols(evs)) == len(evs)
    assert dirty.apply_trades(*cols(mixed)) == len(evs)
    pid, t, _, q, _ = cols(mixed)
    t = t.copy()
    t[::2] = np.nan  # liquidations too: bad times
    good = ~np.isnan(t) & (pid >= 0) & (pid < n_pairs) & np.isfinite(q) & (q >= 0) & (q <= 1e15)
    clean.apply_liquidations(pid[good], t[good], q[good])
    dirty.apply_liquidations(pid, t, q)
    n_counted += int(((pid >= 0) & (pid < n_pairs) & ~good).sum())
    assert int(dirty.rejected.sum()) == n_counted and not clean.rejected.any()
    for name in clean._layout():
        if name != "rejected":
            np.testing.assert_array_equal(getattr(dirty, name), getattr(clean, name), err_msg=name)


def test_kernels_skip_bad_rows_when_called_directly() -> None:
    """Callers that bypass screen_events: the kernels themselves skip unusable rows."""
    s = m.MicroState.allocate(1, m.MicroParams(vpin_bucket_usd=10.0))
    before = {name: getattr(s, name).copy() for name in s._layout()}
    pid = np.array([0, 0, 0, 7, -1], dtype=np.int32)
    t = np.array([1.0, math.nan, 2.0, 3.0, 4.0])
    side = np.array([0, 0, 9, 0, 0], dtype=np.int8)
    q = np.array([-1.0, 5.0, 5.0, 5.0, 5.0])
    px = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    m.kyle_update(pid, side, t, q, px, 1.0, 300.0, s.ky_k, s.ky_l0, s.ky_l1, s.ky_t1, s.ky_s,
                  s.ky_v, s.ky_k_obs, s.ky_w, s.ky_mx, s.ky_my, s.ky_cxx, s.ky_cxy, s.ky_am,
                  s.ky_n, s.late)  # fmt: skip
    m.vpin_update(pid, side, t, q, 3600.0, 0.0, s.vp_size, s.vp_cur, s.vp_fill, s.vp_buy,
                  s.vp_sell, s.vp_imb, s.vp_vol, s.vp_n, s.vp_rate, s.vp_rt, s.vp_t0)  # fmt: skip
    q_liq = np.array([-1.0, 5.0, math.inf, 5.0, 5.0])  # side-free kernels: row 2 bad by notional
    m.notional_rate_update(pid, t, q_liq, s.tau, s.trd_rate, s.trd_t)
    m.baseline_update(pid, t, q_liq, 10.0, 60.0, 86400.0, s.bl_rate, s.bl_t, s.bl_k, s.bl_w, s.bl_m1,
                      s.bl_m2, s.bl_n)  # fmt: skip
    m.saturation_update(pid, t, q_liq, 1.0, 60.0, s.sat_f, s.sat_k_last, s.sat_k_first, s.sat_bits,
                        s.late)  # fmt: skip
    px_bad = np.array([0.0, 1.0, -1.0, 1.0, 1.0])
    t_bad = np.array([1.0, math.inf, 2.0, 3.0, 4.0])
    m.bipower_update(pid, t_bad, px_bad, 5.0, 900.0, s.bv_k, s.bv_l0, s.bv_l1, s.bv_t1,
                     s.bv_prev, s.bv_bv, s.bv_rv, s.bv_tref, s.bv_n, s.late)  # fmt: skip
    m.drawdown_update(pid, t_bad, px_bad, 3600.0, s.dd_lp, s.dd_t, s.dd_lhi, s.dd_llo, s.late)
    for name, arr in before.items():
        np.testing.assert_array_equal(getattr(s, name), arr, err_msg=name)


# ---- traded-notional rates, imbalance, liquidation share -----------------------------------------


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
    m.imbalance_at(liq, 3, imb)
    m.liq_share_at(liq, trd, 3, share)
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
    m.imbalance_at(liq, n, imb)
    m.liq_share_at(liq, trd, n, share)
    for i, (lo, sh, un, tr) in enumerate(vals):
        assert close(imb[i, 0], imbalance(lo, sh), rel=1e-15, abs_=0.0)
        assert close(share[i, 0], liq_share([lo, sh, un], tr), rel=1e-15, abs_=0.0)
        assert math.isnan(imb[i, 0]) or -1.0 <= imb[i, 0] <= 1.0


# ---- baseline and z-score ----------------------------------------------------------------------


@st.composite
def mixed_events(draw: st.DrawFn) -> tuple[int, list[tuple[str, int, float, float]]]:
    """(kind, pair, t, q): liquidations and trades (trades only start the clocks)."""
    n_pairs, evs = draw(event_lists(span_ms=1_500_000))
    kinds = draw(st.lists(st.sampled_from(["liq", "liq", "trd"]), min_size=len(evs),
                          max_size=len(evs)))  # fmt: skip
    return n_pairs, [(kd, e[0], e[1] / 1000.0, e[3]) for kd, e in zip(kinds, evs, strict=True)]


def apply_mixed(s: m.MicroState, evs: list[tuple[str, int, float, float]]) -> None:
    """Runs of the same kind through the wrapper, in arrival order."""
    i = 0
    while i < len(evs):
        j = i
        while j < len(evs) and evs[j][0] == evs[i][0]:
            j += 1
        run = evs[i:j]
        pid = np.array([e[1] for e in run], dtype=np.int32)
        t = np.array([e[2] for e in run])
        q = np.array([e[3] for e in run])
        if evs[i][0] == "liq":
            s.apply_liquidations(pid, t, q)
        else:
            s.apply_trades(pid, t, np.zeros(len(run), np.int8), q, np.ones(len(run)))
        i = j


@HS
@given(
    data=mixed_events(),
    sample_s=st.sampled_from([5.0, 10.0, 60.0]),
    tau_s=st.sampled_from([300.0, 3600.0, 86_400.0]),
    extra_s=st.floats(0.0, 600.0),
)
def test_baseline_matches_sample_walk(
    data: tuple[int, list[tuple[str, int, float, float]]], sample_s: float, tau_s: float,
    extra_s: float,
) -> None:  # fmt: skip
    n_pairs, evs = data
    p_ = m.MicroParams(baseline_sample_s=sample_s, baseline_tau_s=tau_s, baseline_warmup_s=60.0)
    s = m.MicroState.allocate(n_pairs, p_)
    apply_mixed(s, evs)
    refs = [BaselineRef(sample_s, 60.0, tau_s, 60.0) for _ in range(n_pairs)]
    for kind, p, t, q in evs:
        refs[p].start(t)
        if kind == "liq":
            refs[p].liquidation(t, q)
    t_max = max((e[2] for e in evs), default=BASE_MS / 1000.0)
    for p, ref in enumerate(refs):
        assert s.bl_n[p] == ref.n and s.bl_t[p] == ref.t_max
        assert s.bl_k[p] == (k.NO_INTERVAL if ref.k_s is None else ref.k_s)
        for got, want in zip((s.bl_w[p], s.bl_m1[p], s.bl_m2[p]), (ref.w, ref.m1, ref.m2),
                             strict=True):  # fmt: skip
            assert close(got, want)
    for now in (t_max, t_max + extra_s, t_max - 5.0):
        r = readout(s, now, n_pairs)
        for p, ref in enumerate(refs):
            x, mean, sd, z = ref.at(now)
            assert close(r.liq_rate_60s[p], x)
            assert close(r.baseline_mean[p], mean)
            if math.isnan(mean):
                assert math.isnan(r.baseline_sd[p]) and math.isnan(r.liq_rate_z[p])
                continue
            w, _, m2 = ref.moments(now)
            ex2 = m2 / w
            assert abs(r.baseline_sd[p] ** 2 - sd**2) <= 1e-9 * ex2
            if sd**2 >= 1e-6 * ex2:
                assert close(r.liq_rate_z[p], z, rel=1e-6, abs_=1e-5)
            else:  # variance at rounding level: both may call it 0 or not, never a number vs NaN
                assert math.isnan(r.liq_rate_z[p]) or math.isfinite(r.liq_rate_z[p])


def test_baseline_closed_form_over_a_long_gap() -> None:
    """25 days without liquidations (216k samples) fold in O(1) and match the sample walk."""
    p_ = m.MicroParams()
    s = m.MicroState.allocate(1, p_)
    ref = BaselineRef(10.0, 60.0, 86_400.0, 3600.0)
    t0 = BASE_MS / 1000.0
    for t, q in ((t0, 5e5), (t0 + 3.0, 1e6), (t0 + 25 * 86_400.0 + 0.5, 2e5)):
        s.apply_liquidations(np.zeros(1, np.int32), np.array([t]), np.array([q]))
        ref.liquidation(t, q)
    assert s.bl_n[0] == ref.n == 25 * 8640
    for got, want in zip((s.bl_w[0], s.bl_m1[0], s.bl_m2[0]), (ref.w, ref.m1, ref.m2),
                         strict=True):  # fmt: skip
        assert math.isclose(got, want, rel_tol=1e-9)
    now = t0 + 25 * 86_400.0 + 30.0
    r = readout(s, now, 1)
    x, _, _, z = ref.at(now)
    assert (
        math.isclose(r.liq_rate_z[0], z, rel_tol=1e-6) and z > 10
    )  # a quiet month: any burst is loud
    assert r.baseline_mean[0] < 1e-3 * x


def simulate_poisson_liquidations(
    s: m.MicroState, rng: np.random.Generator, t0: float, t1: float, rate_hz: float, mean_usd: float
) -> float:
    n = rng.poisson(rate_hz * (t1 - t0))
    t = np.sort(rng.uniform(t0, t1, n))
    s.apply_liquidations(np.zeros(n, np.int32), t, rng.exponential(mean_usd, n))
    return t1


def test_z_score_stationary_then_burst() -> None:
    """Stationary Poisson liquidations (0.5/s, exponential sizes, mean $10k) for 3 days with the
    default 24 h baseline: z read every 10 min over days 2-3 (288 nearly independent readings, the
    60 s rate forgets in minutes) has mean within +-0.25 and sd within [0.8, 1.2] (the 60 s rate of
    ~30 events is skewed, so only the first two moments are held to N(0, 1)); a burst of 200
    liquidations of $100k in 20 s then reads z > 20."""
    s = m.MicroState.allocate(1, m.MicroParams())
    rng = np.random.default_rng(7)
    t0 = BASE_MS / 1000.0
    zs = []
    t = simulate_poisson_liquidations(s, rng, t0, t0 + 86_400.0, 0.5, 1e4)
    for _ in range(288):
        t = simulate_poisson_liquidations(s, rng, t, t + 600.0, 0.5, 1e4)
        zs.append(readout(s, t, 1).liq_rate_z[0])
    z = np.asarray(zs)
    assert np.isfinite(z).all()
    assert abs(z.mean()) < 0.25 and 0.8 < z.std() < 1.2, (z.mean(), z.std())
    tb = np.linspace(t + 1.0, t + 20.0, 200)
    s.apply_liquidations(np.zeros(200, np.int32), tb, np.full(200, 1e5))
    assert readout(s, t + 20.0, 1).liq_rate_z[0] > 20.0


def test_z_score_nan_before_warmup() -> None:
    s = m.MicroState.allocate(1, m.MicroParams())  # warm-up 3600 s of samples
    t0 = BASE_MS / 1000.0
    s.apply_trades(np.zeros(1, np.int32), np.array([t0]), np.zeros(1, np.int8), np.ones(1),
                   np.ones(1))  # fmt: skip
    for dt, q in ((100.0, 1e4), (2000.0, 2e4), (3595.0, 3e4)):
        s.apply_liquidations(np.zeros(1, np.int32), np.array([t0 + dt]), np.array([q]))
    assert math.isnan(readout(s, t0 + 3599.0, 1).liq_rate_z[0])
    r = readout(s, t0 + 3600.0, 1)  # 360 samples of 10 s since the first trade
    assert math.isfinite(r.liq_rate_z[0]) and r.baseline_mean[0] > 0


# ---- saturation --------------------------------------------------------------------------------


@HS
@given(
    data=mixed_events(),
    slot_s=st.sampled_from([0.5, 1.0]),
    tau_s=st.sampled_from([5.0, 60.0]),
    extra_s=st.floats(0.0, 100.0),
)
def test_saturation_matches_slot_set(
    data: tuple[int, list[tuple[str, int, float, float]]], slot_s: float, tau_s: float,
    extra_s: float,
) -> None:  # fmt: skip
    n_pairs, evs = data
    s = m.MicroState.allocate(
        n_pairs, m.MicroParams(saturation_slot_s=slot_s, saturation_tau_s=tau_s)
    )
    apply_mixed(s, evs)
    refs = [SaturationRef(slot_s, tau_s) for _ in range(n_pairs)]
    for kind, p, t, _ in evs:
        refs[p].start(t)
        if kind == "liq":
            refs[p].liquidation(t)
    t_max = max((e[2] for e in evs), default=BASE_MS / 1000.0)
    for now in (t_max, t_max + extra_s, t_max - 5.0):
        r = readout(s, now, n_pairs)
        for p, ref in enumerate(refs):
            assert close(r.saturation[p], ref.at(now)), (p, now)
            assert s.late[p, m.LATE_SATURATION] == ref.late


def test_saturation_full_empty_and_alternating() -> None:
    t0 = BASE_MS / 1000.0
    s = m.MicroState.allocate(3, m.MicroParams())  # 1 s slots, tau 60 s
    secs = np.arange(600.0)
    # pair 0: two liquidations in every second (a sampled feed counts each second once)
    t = np.sort(np.concatenate([t0 + secs + 0.1, t0 + secs + 0.7]))
    s.apply_liquidations(np.zeros(118, np.int32), t[:118], np.full(118, 10.0))  # seconds 0..58
    assert math.isnan(readout(s, t0 + 58.9, 3).saturation[0])  # 59 slots < tau/slot = 60
    s.apply_liquidations(np.zeros(1082, np.int32), t[118:], np.full(1082, 10.0))
    # pair 1: trades only; pair 2: a liquidation every other second
    s.apply_trades(np.ones(600, np.int32), t0 + secs, np.zeros(600, np.int8), np.ones(600),
                   np.ones(600))  # fmt: skip
    s.apply_liquidations(np.full(300, 2, np.int32), t0 + secs[::2] + 0.5, np.ones(300))
    r = readout(s, t0 + 599.5, 3)  # slot 599 (pair 0: occupied) counts; pair 2: 598 is the last
    assert math.isclose(r.saturation[0], 1.0, rel_tol=1e-12)
    assert r.saturation[1] == 0.0
    beta = math.exp(-1.0 / 60.0)
    n = 599  # completed slots 0..598, occupied 0, 2, ..., 598
    want = sum(beta**j for j in range(0, n, 2)) / sum(beta**j for j in range(n))
    assert math.isclose(r.saturation[2], want, rel_tol=1e-9) and 0.5 < want < 0.51


def test_saturation_late_events() -> None:
    t0 = 1_000_000.0
    s = m.MicroState.allocate(1, m.MicroParams(saturation_tau_s=10.0))
    pid = np.zeros(1, np.int32)
    s.apply_liquidations(pid, np.array([t0]), np.ones(1))
    s.apply_liquidations(pid, np.array([t0 + 100.0]), np.ones(1))
    before = readout(s, t0 + 100.5, 1).saturation[0]
    s.apply_liquidations(pid, np.array([t0 + 95.5]), np.ones(1))  # 5 slots late: counted
    after = readout(s, t0 + 100.5, 1).saturation[0]
    alpha = 1 - math.exp(-0.1)
    assert math.isclose(
        after - before, alpha * math.exp(-0.5) / (1 - math.exp(-10.1)), rel_tol=1e-9
    )
    s.apply_liquidations(pid, np.array([t0 + 95.9]), np.ones(1))  # same slot again: no change
    assert readout(s, t0 + 100.5, 1).saturation[0] == after
    s.apply_liquidations(pid, np.array([t0 + 30.0]), np.ones(1))  # 70 slots late: ignored
    assert readout(s, t0 + 100.5, 1).saturation[0] == after
    assert s.late[0, m.LATE_SATURATION] == 1


# ---- Kyle's lambda -------------------------------------------------------------------------------


@HS
@given(
    data=event_lists(),
    split=st.integers(0, 120),
    bucket_s=st.sampled_from([0.25, 1.0, 10.0]),
    extra_s=st.floats(0.0, 100.0),
)
def test_kyle_matches_two_pass_regression(
    data: tuple[int, list[Event]], split: int, bucket_s: float, extra_s: float
) -> None:
    n_pairs, evs = data
    s = m.MicroState.allocate(n_pairs, m.MicroParams(kyle_bucket_s=bucket_s, kyle_min_buckets=2))
    trades_in_two_calls(s, evs, split)
    refs = [KyleRef(bucket_s, 300.0, 2) for _ in range(n_pairs)]
    for p, t_ms, side, q, px in evs:
        refs[p].trade(t_ms / 1000.0, side, q, px)
    for now in read_times(evs, extra_s):
        r = readout(s, now, n_pairs)
        for p, ref in enumerate(refs):
            lam, amihud, scale, _ = ref.at(now)
            assert s.ky_n[p] == len(ref.obs) and s.late[p, m.LATE_KYLE] == ref.late
            assert close(r.amihud[p], amihud)
            if math.isnan(lam):
                assert math.isnan(r.kyle_lambda[p]), (r.kyle_lambda[p], scale)
            else:
                assert abs(r.kyle_lambda[p] - lam) <= 1e-9 * scale, (r.kyle_lambda[p], lam, scale)


def synthetic_kyle(
    lam: float, noise: float, n_buckets: int, rng: np.random.Generator
) -> tuple[k.I32, k.F64, k.I8, k.F64, k.F64]:
    """Five taker orders per 1 s bucket (lognormal sizes around $20k, random sides); the bucket's
    last trade carries log price ``previous + lam*S + noise*N(0,1)``."""
    per = 5
    n = n_buckets * per
    t = BASE_MS / 1000.0 + np.repeat(np.arange(n_buckets, dtype=np.float64), per)
    t += np.tile(np.linspace(0.1, 0.9, per), n_buckets)
    side = rng.integers(0, 2, n).astype(np.int8)
    q = rng.lognormal(math.log(2e4), 1.0, n)
    sg = np.where(side == 0, 1.0, -1.0) * np.sqrt(q)
    s_b = sg.reshape(n_buckets, per).sum(axis=1)
    logp = math.log(50_000.0) + np.cumsum(lam * s_b + noise * rng.standard_normal(n_buckets))
    px = np.repeat(np.exp(logp), per)  # every trade of a bucket at its closing price
    return np.zeros(n, np.int32), t, side, q, px


def test_kyle_recovers_lambda_exactly_without_noise() -> None:
    s = m.MicroState.allocate(1, m.MicroParams())
    s.apply_trades(*synthetic_kyle(3e-7, 0.0, 200, np.random.default_rng(1)))
    r = readout(s, BASE_MS / 1000.0 + 200.0, 1)
    # log(exp(x)) round trips within ~1 ulp of x ~ 10.8: 2e-15 absolute on returns ~1e-4
    assert math.isclose(r.kyle_lambda[0], 3e-7, rel_tol=1e-6)
    assert s.ky_n[0] == 198  # bucket 0 only sets the reference price, bucket 199 is open
    assert r.amihud[0] > 0


def test_kyle_recovers_lambda_with_noise() -> None:
    """r = lam*S + e with Var(e) = Var(lam*S) (signal-to-noise 1), read after each of 20 chunks of
    300 buckets. With tau = 300 buckets the Kish effective sample is (1 + d)/(1 - d) ~ 600
    (d = exp(-1/300)), so the relative standard error is ~ 1/sqrt(600) = 4.1% (measured over 10
    seeds x 20 reads: 4.5%; the lognormal sizes give heavier tails, worst single read 22%).
    Tolerances: every read within 25%, the mean of the 20 reads within 6% (its sd is ~1.5%: reads
    one tau apart correlate at ~e^-1). With tau = 1e6 s over 20000 buckets the se is 0.7%;
    tolerance 3% (4.3 se)."""
    lam = 2e-7
    rng = np.random.default_rng(3)
    sd_s = math.sqrt(5 * 2e4 * math.exp(0.5))  # sd of S: sqrt(5 E[q]), E[q] = 2e4 e^(1/2)
    pid, t, side, q, px = synthetic_kyle(lam, lam * sd_s, 6000, rng)
    s = m.MicroState.allocate(1, m.MicroParams())
    rel = []
    for c in range(20):
        sl = slice(c * 1500, (c + 1) * 1500)  # 300 buckets of 5 trades
        s.apply_trades(pid[sl], t[sl], side[sl], q[sl], px[sl])
        rel.append(readout(s, t[sl][-1], 1).kyle_lambda[0] / lam - 1)
    assert max(abs(e) for e in rel) < 0.25 and abs(sum(rel) / 20) < 0.06, rel
    assert len(set(rel)) == 20  # every read saw a different state
    wide = m.MicroState.allocate(1, m.MicroParams(kyle_tau_s=1e6))
    wide.apply_trades(*synthetic_kyle(lam, lam * sd_s, 20_000, rng))
    got = readout(wide, BASE_MS / 1000.0 + 20_001.0, 1)
    assert abs(got.kyle_lambda[0] / lam - 1) < 0.03, got.kyle_lambda[0]
    assert got.amihud[0] > 0


def test_kyle_nan_until_enough_buckets_and_late_trades() -> None:
    s = m.MicroState.allocate(1, m.MicroParams())  # 30 buckets needed
    pid, t, side, q, px = synthetic_kyle(1e-7, 0.0, 31, np.random.default_rng(2))
    s.apply_trades(pid, t, side, q, px)
    t_end = BASE_MS / 1000.0 + 30.95
    assert s.ky_n[0] == 29 and math.isnan(readout(s, t_end, 1).kyle_lambda[0])
    assert math.isfinite(readout(s, t_end + 0.1, 1).kyle_lambda[0])  # read-out closes bucket 30
    late = np.array([BASE_MS / 1000.0 + 29.5])  # bucket 29 is closed
    s.apply_trades(pid[:1], late, side[:1], np.array([1e9]), np.array([1.0]))
    assert s.late[0, m.LATE_KYLE] == 1 and s.ky_n[0] == 29
    assert s.ky_v[0] == sum(q[-5:].tolist())  # the late flow did not enter the open bucket


def test_feedback_ratio() -> None:
    # density $1e12 per unit log move = $1e10 per 1%; a 1% move triggers $1e10, sqrt = 1e5
    assert math.isclose(m.feedback_ratio(1e-6, 1e12, 0.01), 10.0, rel_tol=1e-12)
    assert m.feedback_ratio(1e-6, -5.0, 0.01) == 0.0
    with pytest.raises(ValueError, match="move"):
        m.feedback_ratio(1e-6, 1e12, 0.0)


# ---- VPIN ----------------------------------------------------------------------------------------


def vpin_state(n: int, size: float) -> m.MicroState:
    return m.MicroState.allocate(1, m.MicroParams(vpin_n_buckets=n, vpin_bucket_usd=size))


def vtrades(s: m.MicroState, rows: list[tuple[int, float]], t: float = 1e6) -> None:
    n = len(rows)
    s.apply_trades(np.zeros(n, np.int32), np.full(n, t), np.array([r[0] for r in rows], np.int8),
                   np.array([r[1] for r in rows]), np.full(n, 1.0))  # fmt: skip


def vpin(s: m.MicroState) -> float:
    return float(readout(s, 1e6, 1).vpin[0])


def test_vpin_all_buys_is_one_and_balanced_is_zero() -> None:
    s = vpin_state(50, 1000.0)
    vtrades(s, [(0, 700.0)] * 71)  # 49_700 USD: 49 buckets
    assert math.isnan(vpin(s))
    vtrades(s, [(0, 700.0)])  # the 50th closes
    assert vpin(s) == 1.0 and s.vp_n[0] == 50 and s.vp_fill[0] == 400.0
    b = vpin_state(50, 1000.0)
    vtrades(b, [(0, 250.0), (1, 500.0), (0, 250.0)] * 50)
    assert vpin(b) == 0.0 and b.vp_n[0] == 50


def test_vpin_splits_trades_across_buckets() -> None:
    s = vpin_state(2, 100.0)
    vtrades(s, [(0, 150.0)])  # bucket 1: buy 100 (closed, |imb| 100); bucket 2: buy 50
    assert (s.vp_n[0], s.vp_buy[0], s.vp_fill[0]) == (1, 50.0, 50.0)
    vtrades(s, [(1, 30.0), (1, 70.0)])  # bucket 2: buy 50, sell 50 (closed, 0); bucket 3: sell 50
    assert vpin(s) == (100.0 + 0.0) / (2 * 100.0)
    vtrades(s, [(1, 250.0)])  # closes bucket 3 (sell 100), 4 and 5 (sell 100 each), exactly
    assert vpin(s) == 1.0 and s.vp_n[0] == 5 and s.vp_cur[0] == 0.0
    vtrades(s, [(0, 60.0), (1, 40.0)])  # bucket 6: buy 60, sell 40 -> |imb| 20
    assert s.vp_n[0] == 6 and vpin(s) == (100.0 + 20.0) / 200.0


def test_vpin_giant_trade_is_bounded_work() -> None:
    s = vpin_state(50, 1.0)
    vtrades(s, [(0, 0.5), (1, 1e12 + 0.25)])  # 1e12 buckets, in at most 52 loop turns
    assert s.vp_n[0] == 1_000_000_000_000 and s.vp_sell[0] == 0.75 and s.vp_fill[0] == 0.75
    assert vpin(s) == 1.0 and (s.vp_vol[0] == 1.0).all()


dyadic = st.integers(0, 4000).map(lambda i: i / 4.0)


@HS
@given(
    data=event_lists(notional=dyadic),
    split=st.integers(0, 120),
    n=st.sampled_from([1, 3, 50]),
    size=st.sampled_from([2.5, 8.0, 100.25, 1000.0]),
)
def test_vpin_matches_bucket_list_exactly(
    data: tuple[int, list[Event]], split: int, n: int, size: float
) -> None:
    n_pairs, evs = data
    s = m.MicroState.allocate(n_pairs, m.MicroParams(vpin_n_buckets=n, vpin_bucket_usd=size))
    trades_in_two_calls(s, evs, split)
    refs = [VpinRef(n, size, 3600.0, 900.0) for _ in range(n_pairs)]
    for p, t_ms, side, q, _ in evs:
        refs[p].trade(t_ms / 1000.0, side, q)
    r = readout(s, 0.0, n_pairs)
    for p, ref in enumerate(refs):
        assert s.vp_n[p] == len(ref.buckets)
        want = ref.vpin()
        assert r.vpin[p] == want or (math.isnan(want) and math.isnan(r.vpin[p]))
        size_, buy, sell, fill = ref.open if ref.open else (0.0, 0.0, 0.0, 0.0)
        assert (s.vp_cur[p], s.vp_buy[p], s.vp_sell[p], s.vp_fill[p]) == (size_, buy, sell, fill)
        assert r.vpin_bucket_usd[p] == size


@HS
@given(data=event_lists(span_ms=200_000), split=st.integers(0, 120),
       warmup_s=st.sampled_from([0.0, 30.0]))  # fmt: skip
def test_vpin_auto_mode_matches_reference(
    data: tuple[int, list[Event]], split: int, warmup_s: float
) -> None:
    n_pairs, evs = data
    p_ = m.MicroParams(vpin_n_buckets=3, vpin_auto_span_s=60.0, vpin_auto_warmup_s=warmup_s)
    s = m.MicroState.allocate(n_pairs, p_)
    trades_in_two_calls(s, evs, split)
    refs = [VpinRef(3, 0.0, 60.0, warmup_s) for _ in range(n_pairs)]
    for p, t_ms, side, q, _ in evs:
        refs[p].trade(t_ms / 1000.0, side, q)
    r = readout(s, 0.0, n_pairs)
    for p, ref in enumerate(refs):
        assert s.vp_n[p] == len(ref.buckets)
        assert close(r.vpin[p], ref.vpin())
        size = ref.open[0] if ref.open else ref.next_size()
        assert close(r.vpin_bucket_usd[p], size if size > 0 else math.nan)


def test_vpin_auto_bucket_is_hourly_volume_over_50() -> None:
    """$1000 traded every second: the debiased EW hourly notional is $3.6M (within the 0.1%
    discretisation of the continuous debiasing), so buckets are $72k; none before 900 s."""
    s = m.MicroState.allocate(1, m.MicroParams())
    t0 = BASE_MS / 1000.0
    ts = t0 + np.arange(0.0, 3601.0)
    n = ts.shape[0]
    sides = np.tile(np.array([0, 0, 1], np.int8), n // 3 + 1)[:n]
    s.apply_trades(np.zeros(900, np.int32), ts[:900], sides[:900], np.full(900, 1e3),
                   np.ones(900))  # fmt: skip
    assert (
        s.vp_n[0] == 0
        and s.vp_cur[0] == 0.0
        and math.isnan(readout(s, ts[899], 1).vpin_bucket_usd[0])
    )
    s.apply_trades(np.zeros(n - 900, np.int32), ts[900:], sides[900:], np.full(n - 900, 1e3),
                   np.ones(n - 900))  # fmt: skip
    r = readout(s, ts[-1], 1)
    assert abs(r.vpin_bucket_usd[0] / 72_000.0 - 1) < 2e-3, r.vpin_bucket_usd[0]
    assert abs(s.vp_vol[0, 0] / 72_000.0 - 1) < 2e-3
    # 2700 s x $1000 = $2.7M in ~72k buckets: 37 closed, not yet the 50 needed
    assert s.vp_n[0] == 37 and math.isnan(r.vpin[0])


def test_vpin_late_trade_goes_into_the_open_bucket() -> None:
    s = vpin_state(2, 100.0)
    vtrades(s, [(0, 60.0)], t=1000.0)
    vtrades(s, [(1, 60.0)], t=990.0)  # 10 s late: volume clock, no special case
    assert s.vp_n[0] == 1 and s.vp_sell[0] == 20.0 and s.vp_imb[0, 0] == 20.0


# ---- bipower variation and drawdown ---------------------------------------------------------------


@HS
@given(
    data=event_lists(),
    split=st.integers(0, 120),
    interval_s=st.sampled_from([1.0, 5.0, 60.0]),
    extra_s=st.floats(0.0, 1e4),
)
def test_bipower_matches_return_list(
    data: tuple[int, list[Event]], split: int, interval_s: float, extra_s: float
) -> None:
    n_pairs, evs = data
    p_ = m.MicroParams(bv_interval_s=interval_s, bv_tau_s=900.0, bv_min_returns=3)
    s = m.MicroState.allocate(n_pairs, p_)
    trades_in_two_calls(s, evs, split)
    refs = [BipowerRef(interval_s, 900.0, 3) for _ in range(n_pairs)]
    for p, t_ms, _, _, px in evs:
        refs[p].trade(t_ms / 1000.0, px)
    for now in read_times(evs, extra_s):
        r = readout(s, now, n_pairs)
        for p, ref in enumerate(refs):
            bv, rv, jump, _ = ref.at(now)
            assert s.bv_n[p] == len(ref.rets) and s.late[p, m.LATE_BIPOWER] == ref.late
            assert close(r.bipower[p], bv) and close(r.realized_var[p], rv)
            assert close(r.jump_share[p], jump, rel=0.0, abs_=1e-9)


def gaussian_path(n: int, sigma: float, rng: np.random.Generator) -> tuple[k.F64, k.F64]:
    """One trade per 1 s interval at t = k + 0.5, log price a Gaussian random walk."""
    t = BASE_MS / 1000.0 + np.arange(n) + 0.5
    return t, 100.0 * np.exp(np.cumsum(sigma * rng.standard_normal(n)))


def bv_run(params: m.MicroParams, t: k.F64, px: k.F64) -> m.MicroState:
    s = m.MicroState.allocate(1, params)
    t, px = np.ascontiguousarray(t), np.ascontiguousarray(px)  # one compiled layout (C) only
    n = t.shape[0]
    s.apply_trades(np.zeros(n, np.int32), t, np.zeros(n, np.int8), np.ones(n), px)
    return s


def test_bipower_equals_rv_without_jumps_and_not_with_one() -> None:
    """20000 1-s Gaussian returns, sigma 1e-4, decay 1e9 s (plain sums): BV/RV has sd
    sqrt(0.61/N) = 0.55%; tolerance 3% (5.4 sd). One 300-sigma jump among 2000 returns:
    RV ~ (2000 + 90000) sigma^2, BV ~ (2000 + pi*300*0.8) sigma^2, jump share ~ 0.97; assert > 0.9.
    RV per second = sigma^2 (one return per second) within 3% (sd sqrt(2/N) = 1%)."""
    rng = np.random.default_rng(11)
    sig = 1e-4
    p_ = m.MicroParams(bv_interval_s=1.0, bv_tau_s=1e9)
    t, px = gaussian_path(20_000, sig, rng)
    r = readout(bv_run(p_, t, px), t[-1] + 1.0, 1)
    # decay 1e9: sums * 1e-9; RV per second = sum r^2 / tau
    assert abs(r.bipower[0] / r.realized_var[0] - 1) < 0.03 and r.jump_share[0] < 0.03
    assert abs(r.realized_var[0] * 1e9 / (19_999 * sig**2) - 1) < 0.03
    t, px = gaussian_path(2000, sig, rng)
    px[1000:] *= math.exp(300 * sig)
    r = readout(bv_run(p_, t, px), t[-1] + 1.0, 1)
    assert r.jump_share[0] > 0.9 and r.bipower[0] < 0.1 * r.realized_var[0]


def test_bipower_default_params_and_thin_pairs() -> None:
    """Default 5 s returns, tau 900 s, a jump-free path read every 300 s after the first 1800 s.
    One trade per second: ~360 effective returns, sd of BV/RV ~ sqrt(0.61/360) = 4.1% (measured
    3-4% over 6 seeds, worst jump share 0.08): every read <= 0.2, mean <= 0.05. One trade every
    30 s (5 empty intervals between trades): ~60 effective returns, sd ~ 10% (measured 6-9%, worst
    0.27): every read <= 0.45, mean <= 0.15. Had empty intervals added zero returns, BV would be 0
    and the share 1."""
    rng = np.random.default_rng(5)
    t, px = gaussian_path(7200, 1e-4, rng)
    for step, worst, mean in ((1, 0.2, 0.05), (30, 0.45, 0.15)):
        tt, pp = np.ascontiguousarray(t[::step]), np.ascontiguousarray(px[::step])
        s = m.MicroState.allocate(1, m.MicroParams())
        reads = []
        for c in range(24):
            sel = (tt >= t[0] + c * 300) & (tt < t[0] + (c + 1) * 300)
            n = int(sel.sum())
            s.apply_trades(
                np.zeros(n, np.int32), tt[sel], np.zeros(n, np.int8), np.ones(n), pp[sel]
            )
            if c >= 5:
                reads.append(readout(s, tt[sel][-1], 1).jump_share[0])
        assert all(0.0 <= j <= worst for j in reads) and np.mean(reads) <= mean, (step, reads)
        assert len(set(reads)) > 1  # the reads follow the state
    thin = bv_run(m.MicroParams(), t[:600:30], px[:600:30])
    assert thin.bv_n[0] == 18  # 20 traded intervals: the first is the reference, the last open


@HS
@given(data=event_lists(), split=st.integers(0, 120), extra_s=st.floats(0.0, 1e5),
       tau_s=st.sampled_from([1.0, 3600.0]))  # fmt: skip
def test_drawdown_matches_gap_recursion(
    data: tuple[int, list[Event]], split: int, extra_s: float, tau_s: float
) -> None:
    n_pairs, evs = data
    s = m.MicroState.allocate(n_pairs, m.MicroParams(drawdown_tau_s=tau_s))
    trades_in_two_calls(s, evs, split)
    refs = [DrawdownRef(tau_s) for _ in range(n_pairs)]
    for p, t_ms, _, _, px in evs:
        refs[p].trade(t_ms / 1000.0, px)
    for now in read_times(evs, extra_s):
        r = readout(s, now, n_pairs)
        for p, ref in enumerate(refs):
            down, up = ref.at(now)
            assert s.late[p, m.LATE_DRAWDOWN] == ref.late
            assert close(r.drawdown[p], down, abs_=1e-12) and close(r.drawup[p], up, abs_=1e-12)
            assert math.isnan(down) or (0.0 <= r.drawdown[p] <= 1.0 and 0.0 <= r.drawup[p] <= 1.0)


def test_drawdown_hand_computed() -> None:
    s = m.MicroState.allocate(1, m.MicroParams(drawdown_tau_s=100.0))

    def tr(t: float, px: float) -> None:
        s.apply_trades(np.zeros(1, np.int32), np.array([t]), np.zeros(1, np.int8), np.ones(1),
                       np.array([px]))  # fmt: skip

    def dd(now: float) -> tuple[float, float]:
        r = readout(s, now, 1)
        return float(r.drawdown[0]), float(r.drawup[0])

    tr(0.0, 100.0)
    assert dd(0.0) == (0.0, 0.0)
    tr(10.0, 80.0)  # high 100 (relaxation toward 100 does nothing), low 80
    assert math.isclose(dd(10.0)[0], 0.2, rel_tol=1e-12) and dd(10.0)[1] == 0.0
    g = math.log(100.0 / 80.0) * math.exp(-1.0)  # 100 s later the log gap has decayed by e
    assert math.isclose(dd(110.0)[0], 1 - math.exp(-g), rel_tol=1e-12)
    tr(110.0, 90.0)  # high relaxed to 80*e^g, above 90? e^g = 1.0856 -> 86.8 < 90: new high 90
    assert dd(110.0)[0] == 0.0
    assert math.isclose(dd(110.0)[1], 1 - 80.0 / 90.0, rel_tol=1e-12)  # the low stayed at 80
    tr(50.0, 1.0)  # late: ignored, counted
    assert s.late[0, m.LATE_DRAWDOWN] == 1 and dd(110.0)[0] == 0.0


# ---- the whole wrapper on one realistic stream -------------------------------------------------


def test_read_rejects_bad_shapes() -> None:
    s = m.MicroState.allocate(2, m.MicroParams())
    with pytest.raises(ValueError, match="n_pairs"):
        s.read(0.0, 3, np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="liq_rate_at"):
        s.read(0.0, 2, np.zeros((2, 3, 2)))
