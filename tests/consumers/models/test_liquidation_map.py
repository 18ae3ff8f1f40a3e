"""The liquidation map (consumers/models/liquidation_map.py and the kernels it runs) against
hand-computed values and the slow reference in liqmap_ref.py (hypothesis, random and adversarial
sequences).

Tolerances: liquidation prices rel 1e-12 against hand-computed decimals; lattice indices (anchor,
price bin, level bins), counts and clocks exact; bin masses and read-outs rel 1e-9 against the
reference, with an absolute floor of 1e-12 x the pair's deposited notional (the lazy decay scale and
the closed form round differently; the held scalar is a running sum); conservation
``deposited = held + liquidated + decayed + dropped`` to 1e-12 x deposited; decay over one half-life
rel 1e-13; the normal CDF against scipy.special.ndtr
rel 1e-14 for |x| < 5 and 1e-15*(1 + x**2) in the tails (its condition number); level bins of
entry prices within 12 ulps of a bin edge exact (the formula's, bin masses ==); the decay factors
within 1 ulp of 60-digit values.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import ndtr  # type: ignore[import-untyped]

from consumers.models import liquidation_map as lm
from consumers.models import liquidation_map_update as lmu
from consumers.models import liquidation_price as lq
from consumers.models.jit import F64
from tests.consumers.models.liqmap_ref import LiqMapRef, ref_liq_price

LONG, SHORT = lq.LONG, lq.SHORT
DEP, HELD, LIQ, DEC, DROP = lmu.DEPOSITED, lmu.HELD, lmu.LIQUIDATED, lmu.DECAYED, lmu.DROPPED
T0 = 1_700_000_000.0
REL = 1e-9
CONS = 1e-12


def trades(s: lm.LiqMapState, rows: list[tuple[int, int, float, float, float]]) -> int:
    """rows: (pair, taker side, t, notional, price)."""
    return s.apply_trades(
        np.array([r[0] for r in rows], np.int32), np.array([r[1] for r in rows], np.int8),
        np.array([r[2] for r in rows], np.float64), np.array([r[3] for r in rows], np.float64),
        np.array([r[4] for r in rows], np.float64),
    )  # fmt: skip


def oi(s: lm.LiqMapState, rows: list[tuple[int, float, float]]) -> int:
    return s.apply_oi(
        np.array([r[0] for r in rows], np.int32), np.array([r[1] for r in rows], np.float64),
        np.array([r[2] for r in rows], np.float64),
    )  # fmt: skip


def read(s: lm.LiqMapState, now: float, sigma: float = 1e-4, h: float = 3600.0,
         traded: float = 1e6) -> lm.LiqMapReadout:  # fmt: skip
    c = s.capacity
    return s.read(now, np.full(c, sigma), h, np.full(c, traded))


def bin_of(s: lm.LiqMapState, price: float) -> int:
    """Lattice bin of a price (the kernel's rule, written out)."""
    return math.floor(math.log(price) * s.params.bins_per_unit)


def true_mass(s: lm.LiqMapState, p: int) -> F64:
    out: F64 = s.mass[p] * s.scale[p]
    return out


def assert_conserved(acc: F64, p: int, side: int) -> None:
    a = acc[p, side]
    assert abs(a[DEP] - (a[HELD] + a[LIQ] + a[DEC] + a[DROP])) <= CONS * a[DEP]


NO_DECAY = lm.LiqMapParams(half_life_s=math.inf)


def test_tier_cumulative_amounts() -> None:
    cum = lm.LiqMapParams().tier_cum_usd  # 0, 50k*0.1%, +250k*0.5%, +1M*1.5%
    for got, want in zip(cum, (0.0, 50.0, 1_300.0, 16_300.0), strict=True):
        assert math.isclose(got, want, rel_tol=1e-12)


def test_taker_buy_deposits_one_long_level_per_bucket() -> None:
    s = lm.LiqMapState.allocate(2)
    assert trades(s, [(1, 0, T0, 10_000.0, 100.0)]) == 0
    k0 = bin_of(s, 100.0) - 300
    assert (s.anchor_k[1], s.price_k[1], s.t_last[1]) == (k0, bin_of(s, 100.0), T0)
    want = np.zeros(600)
    for lev in (5.0, 10.0, 25.0, 50.0, 100.0):
        want[bin_of(s, 100.0 * (1.0 - 1.0 / lev) / (1.0 - 0.004)) - k0] += 2_000.0
    assert np.array_equal(true_mass(s, 1)[LONG], want)
    assert not s.mass[1, SHORT].any() and not s.mass[0].any()
    assert s.acc[1, LONG].tolist() == [10_000.0, 10_000.0, 0.0, 0.0, 0.0]


def test_crossing_removes_exactly_the_crossed_levels() -> None:
    s = lm.LiqMapState.allocate(1, NO_DECAY)
    trades(s, [(0, 0, T0, 10_000.0, 100.0), (0, 1, T0, 5_000.0, 100.0)])
    lp100 = 100.0 * 0.99 / 0.996  # 99.398: the 100x long
    lp50 = 100.0 * 0.98 / 0.996  # 98.394: the 50x long
    before = true_mass(s, 0).copy()
    # a print in the 100x level's bin liquidates it (bin resolution 0.1%), nothing else
    trades(s, [(0, 1, T0 + 1, 0.0, lp100)])
    after = true_mass(s, 0)
    gone = np.flatnonzero(before[LONG] != after[LONG])
    assert gone.tolist() == [bin_of(s, lp100) - s.anchor_k[0]]
    assert s.acc[0, LONG, LIQ] == 2_000.0 and np.array_equal(after[SHORT], before[SHORT])
    # 98.45 is one bin above the 50x level: not crossed; 98.39 is inside it: crossed
    assert bin_of(s, 98.45) == bin_of(s, lp50) + 1 == bin_of(s, 98.39) + 1
    trades(s, [(0, 1, T0 + 2, 0.0, 98.45)])
    assert s.acc[0, LONG, LIQ] == 2_000.0
    trades(s, [(0, 1, T0 + 3, 0.0, 98.39)])
    assert s.acc[0, LONG, LIQ] == 4_000.0
    # back up through the entry: the shorts' levels (>= 100.6) are crossed only at 100.61+
    trades(s, [(0, 0, T0 + 4, 0.0, 100.5)])
    assert s.acc[0, SHORT, LIQ] == 0.0
    lp100s = 100.0 * 1.01 / 1.004  # 100.598
    trades(s, [(0, 0, T0 + 5, 0.0, lp100s)])
    assert s.acc[0, SHORT, LIQ] == 1_000.0
    for side in (LONG, SHORT):
        assert_conserved(s.acc, 0, side)
        assert math.isclose(true_mass(s, 0)[side].sum(), s.acc[0, side, HELD], rel_tol=1e-15)


def test_decay_matches_the_half_life() -> None:
    hl = 3_600.0
    s = lm.LiqMapState.allocate(1, lm.LiqMapParams(half_life_s=hl))
    trades(s, [(0, 0, T0, 10_000.0, 100.0)])
    r = read(s, T0 + hl)
    assert math.isclose(r.totals_usd[0, LONG, HELD], 5_000.0, rel_tol=1e-13)
    assert math.isclose(r.totals_usd[0, LONG, DEC], 5_000.0, rel_tol=1e-13)
    trades(s, [(0, 0, T0 + 2 * hl, 0.0, 100.0)])  # a zero-size print moves the clock only
    assert math.isclose(s.acc[0, LONG, HELD], 2_500.0, rel_tol=1e-13)
    assert math.isclose(true_mass(s, 0)[LONG].sum(), 2_500.0, rel_tol=1e-13)
    assert math.isclose(s.acc[0, LONG, DEC], 7_500.0, rel_tol=1e-13)
    # 400 half-lives later the lazy scale (2**-400 < 1e-100) is folded into the bins
    trades(s, [(0, 0, T0 + 402 * hl, 0.0, 100.0)])
    assert s.scale[0] == 1.0
    assert math.isclose(s.acc[0, LONG, HELD], 10_000.0 * 2.0**-402, rel_tol=1e-12)
    assert_conserved(s.acc, 0, LONG)


def test_recentring_shifts_whole_bins_and_counts_what_falls_off() -> None:
    s = lm.LiqMapState.allocate(1, NO_DECAY)
    trades(s, [(0, 0, T0, 10_000.0, 100.0)])  # longs only: rising prices cross nothing
    levels = s.anchor_k[0] + np.flatnonzero(s.mass[0, LONG])  # lattice bins of the 5 levels
    k0 = s.anchor_k[0]
    centre = k0 + 300
    # a price exactly recentre_bins (50) bins above the centre bin: no shift; 51: re-centred
    trades(s, [(0, 0, T0 + 1, 0.0, math.exp((centre + 50.5) / 1000.0))])
    assert s.anchor_k[0] == k0 and s.price_k[0] == centre + 50
    trades(s, [(0, 0, T0 + 2, 0.0, math.exp((centre + 51.5) / 1000.0))])
    assert s.anchor_k[0] == k0 + 51 and s.price_k[0] - s.anchor_k[0] == 300
    assert np.array_equal(s.anchor_k[0] + np.flatnonzero(s.mass[0, LONG]), levels)
    assert s.acc[0, LONG, HELD] == 10_000.0 and s.acc[0, LONG, DROP] == 0.0
    k1 = s.anchor_k[0]
    trades(s, [(0, 0, T0 + 3, 0.0, 110.0)])  # 44 bins above the new centre: no shift
    assert s.anchor_k[0] == k1
    # re-centred at 120, the grid starts at ln(120) - 0.3: the 5x level (80.32) falls off
    trades(s, [(0, 0, T0 + 4, 0.0, 120.0)])
    assert s.acc[0, LONG, DROP] == 2_000.0 and s.acc[0, LONG, HELD] == 8_000.0
    assert np.array_equal(s.anchor_k[0] + np.flatnonzero(s.mass[0, LONG]), levels[1:])
    assert_conserved(s.acc, 0, LONG)


def test_a_jump_across_the_whole_grid() -> None:
    s = lm.LiqMapState.allocate(1, NO_DECAY)
    trades(s, [(0, 0, T0, 7_000.0, 100.0), (0, 1, T0, 3_000.0, 100.0)])
    trades(s, [(0, 0, T0 + 1, 1.0, 1_000.0)])  # x10: every short crossed, every long off grid
    assert s.acc[0, SHORT, LIQ] == 3_000.0 and s.acc[0, LONG, DROP] == 7_000.0
    assert s.acc[0, LONG, LIQ] == 0.0 and s.price_k[0] - s.anchor_k[0] == 300
    # the 1 USD taker buy at 1000 was deposited on the new grid
    assert math.isclose(true_mass(s, 0)[LONG].sum(), 1.0, rel_tol=1e-15)
    trades(s, [(0, 1, T0 + 2, 0.0, 10.0)])  # /100: the new long levels are crossed
    assert math.isclose(s.acc[0, LONG, LIQ], 1.0, rel_tol=1e-15) and not s.mass.any()
    for side in (LONG, SHORT):
        assert_conserved(s.acc, 0, side)


def test_a_late_trade_touches_levels_but_moves_neither_price_nor_clock() -> None:
    hl = 100.0
    s = lm.LiqMapState.allocate(1, lm.LiqMapParams(half_life_s=hl))
    trades(s, [(0, 0, T0, 10_000.0, 100.0), (0, 1, T0 + 10, 0.0, 100.2)])
    k_before, held = s.price_k[0], s.acc[0, LONG, HELD]
    # 10 s late, at 99.39: crosses the 100x long level (99.398), deposits a short at 99.39
    trades(s, [(0, 1, T0, 1_000.0, 99.39)])
    assert (s.t_last[0], s.price_k[0], s.last_price[0]) == (T0 + 10, k_before, 100.2)
    assert math.isclose(s.acc[0, LONG, LIQ], held / 5, rel_tol=1e-15)
    w = 2.0**-0.1  # its deposit arrives decayed by the 10 s lag
    assert s.acc[0, SHORT, DEP] == 1_000.0
    assert math.isclose(s.acc[0, SHORT, DEC], 1_000.0 * (1 - w), rel_tol=1e-12)
    # its 100x short level, 99.39*1.01/1.004 = 99.98, is below the current price 100.2: crossed
    assert math.isclose(s.acc[0, SHORT, LIQ], 200.0 * w, rel_tol=1e-12)
    assert math.isclose(s.acc[0, SHORT, HELD], 800.0 * w, rel_tol=1e-12)
    for side in (LONG, SHORT):
        assert_conserved(s.acc, 0, side)


def test_a_late_deposit_is_liquidated_by_its_own_price_bin() -> None:
    prm = replace(NO_DECAY, bins_per_pct=1, half_range_pct=12.0, recentre_pct=3.0,
                  leverage_weights=(0, 0, 0, 0, 1.0))  # fmt: skip
    s = lm.LiqMapState.allocate(1, prm)
    trades(s, [(0, 1, T0 + 1, 0.0, 100.0)])  # current price bin floor(100*ln 100) = 460
    # 1 s late at 99.3 (bin 459): its 100x long level 99.3*0.99/0.996 = 98.70 is in bin 459 too,
    # a bin the late print touched: liquidated, although it is below the current price bin
    assert (bin_of(s, 100.0), bin_of(s, 99.3), bin_of(s, 99.3 * 0.99 / 0.996)) == (460, 459, 459)
    trades(s, [(0, 0, T0, 1_000.0, 99.3)])
    assert s.acc[0, LONG].tolist() == [1_000.0, 0.0, 1_000.0, 0.0, 0.0]


def test_open_interest_mode() -> None:
    s = lm.LiqMapState.allocate(2, NO_DECAY)
    assert oi(s, [(0, T0, 1_000.0)]) == 1 and s.rejected[0] == 1  # no price yet
    trades(s, [(0, 0, T0, 3_000.0, 100.0), (0, 1, T0, 1_000.0, 100.0)])  # deposited: no OI yet
    assert oi(s, [(0, T0, 2_000.0)]) == 0 and s.oi_fed[0] == 1
    # split by the taker imbalance 3000 : 1000
    assert s.acc[0, LONG, DEP] == 3_000.0 + 1_500.0 and s.acc[0, SHORT, DEP] == 1_000.0 + 500.0
    assert s.t_last[0] == T0
    # from now on trades only move price and imbalance; decreases deposit nothing
    trades(s, [(0, 1, T0 + 1, 4_000.0, 100.0)])
    assert oi(s, [(0, T0 + 2, -5_000.0), (0, T0 + 2, 0.0)]) == 0
    assert s.acc[0, LONG, DEP] == 4_500.0 and s.acc[0, SHORT, DEP] == 1_500.0
    assert s.t_last[0] == T0 + 2
    # taker flow decayed with tau 60 s to T0 + 2: buys 3000 from T0, sells 1000 from T0 + 4000 from T0 + 1
    b, sl = 3_000.0 * math.exp(-2 / 60), 1_000.0 * math.exp(-2 / 60) + 4_000.0 * math.exp(-1 / 60)
    oi(s, [(0, T0 + 2, 100.0)])
    assert math.isclose(s.acc[0, LONG, DEP] - 4_500.0, 100.0 * b / (b + sl), rel_tol=1e-12)
    assert s.oi_fed[1] == 0 and not s.acc[1].any()


def test_open_interest_deposits_use_oi_position_tier_and_even_split() -> None:
    s = lm.LiqMapState.allocate(1, replace(NO_DECAY, oi_position_usd=2e6))
    trades(s, [(0, 0, T0, 0.0, 100.0)])  # a price, no flow: B + S = 0 splits 50/50
    oi(s, [(0, T0 + 1, 1_000.0)])
    # tier 4 (2M USD): cum/N = 0.00815, MMR 2.5%, 25/50/100x capped at 20x
    want = np.zeros(600)
    for lev, w in ((5.0, 0.2), (10.0, 0.2), (20.0, 0.6)):
        want[bin_of(s, 100.0 * (1.0 - 1.0 / lev - 0.00815) / 0.975) - s.anchor_k[0]] += 500.0 * w
    assert np.allclose(true_mass(s, 0)[LONG], want, rtol=1e-15, atol=0.0)
    assert np.count_nonzero(want) == 3 and s.acc[0, SHORT, DEP] == 500.0


def test_readouts_hand_computed() -> None:
    s = lm.LiqMapState.allocate(2, replace(NO_DECAY, leverage_weights=(0, 0, 0, 0, 1.0)))
    trades(s, [(0, 0, T0, 10_000.0, 100.0), (0, 1, T0, 4_000.0, 100.0)])  # 100x levels only
    kb_l, kb_s = bin_of(s, 100 * 0.99 / 0.996), bin_of(s, 100 * 1.01 / 1.004)
    x = math.log(100.0) * 1000.0
    d_l, d_s = (x - (kb_l + 0.5)) / 1000.0, ((kb_s + 0.5) - x) / 1000.0  # log distances
    assert 0.005 < d_l < 0.01 and 0.005 < d_s < 0.01
    sigma, h, traded = 2e-4, 900.0, 5e5
    r = s.read(T0, np.array([sigma, sigma]), h, np.array([traded, traded]))
    assert r.at_risk_usd[0].tolist() == [[10_000.0] * 3, [4_000.0] * 3]
    assert r.density_usd_per_log[0].tolist() == [10_000.0 / 0.01, 4_000.0 / 0.01]
    sd = sigma * math.sqrt(h)
    e_l, e_s = 10_000.0 * 2 * ndtr(-d_l / sd), 4_000.0 * 2 * ndtr(-d_s / sd)
    assert math.isclose(r.expected_usd[0, LONG], e_l, rel_tol=1e-13)
    assert math.isclose(r.expected_usd[0, SHORT], e_s, rel_tol=1e-13)
    assert math.isclose(r.msi[0], (e_l + e_s) / traded, rel_tol=1e-13)
    assert r.price[0] == 100.0 and np.isnan(r.price[1]) and np.isnan(r.msi[1])
    # at 99.2 the long level (99.40) is crossed and the short level (100.60) is 1.4% away
    trades(s, [(0, 1, T0 + 1, 0.0, 99.2)])
    r = read(s, T0 + 1)
    assert r.at_risk_usd[0].tolist() == [[0.0] * 3, [0.0, 4_000.0, 4_000.0]]
    # unusable inputs give NaN, never an exception; sigma 0 gives E = 0
    r = s.read(T0 + 1, np.array([math.nan, 0.0]), h, np.array([0.0, traded]))
    assert np.isnan(r.expected_usd[0]).all() and np.isnan(r.msi[0])
    assert s.read(T0 + 1, np.array([0.0, 0.0]), h, np.full(2, traded)).expected_usd[0].tolist() == [
        0.0,
        0.0,
    ]
    assert np.isnan(s.read(T0, np.zeros(2), h, np.zeros(2)).msi[0])  # no traded notional


maybe_bad = st.sampled_from([1.0, math.nan, math.inf, -math.inf, -1.0, -1e-300, 0.0, 1e14])


def trade_ok(p: int, sd: int, t: float, q: float, px: float) -> bool:
    return (0 <= p < 3 and sd in (0, 1) and math.isfinite(t) and math.isfinite(q)
            and 0.0 <= q <= 1e13 and math.isfinite(px) and px > 0.0)  # fmt: skip


def oi_ok(p: int, t: float, d: float) -> bool:  # pair 2 has no price yet
    return 0 <= p < 2 and math.isfinite(t) and math.isfinite(d) and abs(d) <= 1e13


@settings(deadline=None, max_examples=60)
@given(rows=st.lists(st.tuples(st.integers(-1, 4), st.integers(-2, 3), maybe_bad, maybe_bad,
                               maybe_bad), min_size=1, max_size=30))  # fmt: skip
def test_screening_rejects_bad_rows_and_leaves_state_untouched(
    rows: list[tuple[int, int, float, float, float]],
) -> None:
    s = lm.LiqMapState.allocate(3)
    trades(s, [(0, 0, T0, 1e4, 100.0), (1, 1, T0, 1e4, 50.0)])
    snap = {f: getattr(s, f).copy() for f in s.PER_PAIR}
    bad_t = [
        (p, sd, T0 + t, q, px) for p, sd, t, q, px in rows if not trade_ok(p, sd, T0 + t, q, px)
    ]
    bad_oi = [(p, T0 + t, q) for p, _, t, q, _ in rows if not oi_ok(p, T0 + t, q)]
    assert trades(s, bad_t) == len(bad_t) and oi(s, bad_oi) == len(bad_oi)
    for f, arr in snap.items():
        if f != "rejected":
            assert np.array_equal(getattr(s, f), arr, equal_nan=True), f
    counted = [r[0] for r in bad_t] + [r[0] for r in bad_oi]
    assert s.rejected.tolist() == [counted.count(p) for p in range(3)]


SMALL = lm.LiqMapParams(bins_per_pct=2, half_range_pct=12.0, recentre_pct=3.0, half_life_s=60.0,
                        leverage_weights=(0.1, 0.0, 0.4, 0.3, 0.2))  # fmt: skip
CONFIGS = [lm.LiqMapParams(), SMALL, replace(SMALL, use_maintenance_amount=False,
           half_life_s=math.inf, oi_position_usd=3e6), replace(SMALL, bins_per_pct=7),
           replace(SMALL, bins_per_pct=1)]  # 1% bins: 100x levels share the price's bin  # fmt: skip

Event = tuple[Any, ...]


@st.composite
def sequences(draw: st.DrawFn, max_events: int = 120) -> tuple[lm.LiqMapParams, int, list[Event]]:
    prm = draw(st.sampled_from(CONFIGS))
    n_pairs = draw(st.integers(1, 3))
    n = draw(st.integers(0, max_events))
    t = T0
    log_px = [math.log(draw(st.sampled_from([100.0, 40_000.0, 0.05]))) for _ in range(n_pairs)]
    evs: list[Event] = []
    for _ in range(n):
        p = draw(st.integers(0, n_pairs - 1))
        t += draw(st.sampled_from([0.0, 0.0, 0.1, 1.0, 7.0, 3_000.0, 1e6]))
        late = draw(st.sampled_from([0.0] * 5 + [0.5, 3.0]))
        step = draw(st.one_of(
            st.floats(-0.004, 0.004), st.floats(-0.05, 0.05),
            st.sampled_from([0.5, -0.5, math.log(10), -math.log(10), 2.0, -2.0]),
        ))  # fmt: skip
        if not late:
            log_px[p] += step
        px = math.exp(log_px[p] + (step if late else 0.0))
        q = draw(st.one_of(st.floats(0.0, 1e6), st.sampled_from([0.0, 1e-6, 1e12, 1e13])))
        corrupt = draw(st.sampled_from([None] * 12 + ["t", "q", "px", "side", "pair"]))
        pid = n_pairs if corrupt == "pair" else p
        ti = math.nan if corrupt == "t" else t - late
        q = -q - 1.0 if corrupt == "q" else q
        px = draw(st.sampled_from([math.inf, math.nan, 0.0, -1.0])) if corrupt == "px" else px
        if draw(st.integers(0, 5)) == 0:
            d_oi = draw(st.one_of(st.floats(-1e6, 1e6), st.sampled_from([0.0, math.nan, 1e14])))
            evs.append(("oi", pid, ti, d_oi))
        else:
            evs.append(
                ("trade", pid, 2 if corrupt == "side" else draw(st.integers(0, 1)), ti, q, px)
            )
    return prm, n_pairs, evs


def run(
    prm: lm.LiqMapParams, n_pairs: int, evs: list[Event], split: int
) -> tuple[lm.LiqMapState, int]:
    """Apply through the kernels in runs of same-kind events, split at ``split``."""
    s = lm.LiqMapState.allocate(n_pairs, prm)
    n_rej = 0
    i = 0
    while i < len(evs):
        j = i + 1
        while j < len(evs) and evs[j][0] == evs[i][0] and j != split:
            j += 1
        chunk = [e[1:] for e in evs[i:j]]
        if evs[i][0] == "trade":
            n_rej += trades(s, [(p, sd, t, q, px) for p, sd, t, q, px in chunk])
        else:
            n_rej += oi(s, [(p, t, d) for p, t, d in chunk])
        i = j
    return s, n_rej


def close(a: float, b: float, scale: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=REL, abs_tol=CONS * scale + 1e-300)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=sequences(), split=st.integers(0, 120), extra_s=st.sampled_from([0.0, 30.0, 5e4]),
       sigma=st.sampled_from([0.0, 1e-4, 3e-3, math.nan, -1.0]),
       h=st.sampled_from([0.0, 60.0, 3_600.0]), traded=st.sampled_from([0.0, 1e6, math.nan]))  # fmt: skip
def test_map_matches_reference(
    data: tuple[lm.LiqMapParams, int, list[Event]],
    split: int,
    extra_s: float,
    sigma: float,
    h: float,
    traded: float,
) -> None:
    prm, n_pairs, evs = data
    s, n_rej = run(prm, n_pairs, evs, split)
    ref = LiqMapRef(prm, n_pairs)
    for e in evs:
        if e[0] == "trade":
            ref.trade(*e[1:])
        else:
            ref.oi(*e[1:])
    assert n_rej == ref.n_rejected
    now = max([T0, *(st_.clock for st_ in ref.pairs)]) + extra_s
    r = s.read(now, np.full(n_pairs, sigma), h, np.full(n_pairs, traded))
    for p, rp in enumerate(ref.pairs):
        assert (s.t_last[p], s.rejected[p], bool(s.oi_fed[p])) == (rp.clock, rp.rejected, rp.oi_fed)
        want = ref.read(p, now, sigma, h, traded)
        if rp.clock == -math.inf:
            assert not s.acc[p].any() and np.isnan(r.msi[p]) and np.isnan(r.at_risk_usd[p]).all()
            continue
        assert (s.anchor_k[p], s.price_k[p], s.last_price[p]) == (rp.k0, rp.pk, rp.price)
        dep = max(rp.deposited)
        tot = r.totals_usd[p]
        f = math.exp(-prm.decay_per_s * (now - rp.clock))
        for side in (LONG, SHORT):
            assert close(tot[side, DEP], rp.deposited[side], dep)
            assert close(tot[side, LIQ], rp.liquidated[side], dep)
            assert close(tot[side, DROP], rp.dropped[side], dep)
            assert close(tot[side, HELD], want.held[side], dep)
            assert close(tot[side, DEC], want.decayed[side], dep)
            got_bins = s.mass[p, side] * (s.scale[p] * f)
            for b in np.flatnonzero((got_bins != 0) | (np.asarray(want.bins[side]) != 0)):
                assert close(got_bins[b], want.bins[side][b], dep), (side, b)
            for j in range(len(prm.at_risk_levels_pct)):
                assert close(r.at_risk_usd[p, side, j], want.at_risk[side][j], dep)
            assert close(r.density_usd_per_log[p, side], want.density[side], 100 * dep)
            assert close(r.expected_usd[p, side], want.expected[side], dep)
        assert close(r.msi[p], want.msi, dep / traded if traded > 0 else 1.0)


@settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(data=sequences(max_events=400))
def test_mass_is_conserved_and_state_stays_finite(
    data: tuple[lm.LiqMapParams, int, list[Event]],
) -> None:
    prm, n_pairs, evs = data
    s, _ = run(prm, n_pairs, evs, -1)
    assert np.isfinite(s.mass).all() and (s.mass >= 0).all() and (s.acc >= 0).all()
    assert np.isfinite(s.acc).all() and (s.scale >= lmu.RENORM_BELOW).all()
    for p in range(n_pairs):
        for side in (LONG, SHORT):
            assert_conserved(s.acc, p, side)
            held_bins = float(true_mass(s, p)[side].sum())
            assert math.isclose(s.acc[p, side, HELD], held_bins, rel_tol=REL,
                                abs_tol=CONS * s.acc[p, side, DEP])  # fmt: skip
        if s.t_last[p] > -math.inf:  # the price stays within recentre_bins of the centre
            assert abs(s.price_k[p] - s.anchor_k[p] - prm.n_bins // 2) <= prm.recentre_bins


def test_reference_liquidation_price_agrees_with_the_kernel() -> None:
    for prm in CONFIGS:
        tiers = prm.tiers()
        for n_usd in (0.0, 1.0, 49_999.99, 50_000.0, 3e5, 1e6, 1e9):
            for lev in (1.0, 5.0, 33.0, 125.0):
                for side in (LONG, SHORT):
                    assert lq.liquidation_price(side, 123.4, lev, n_usd, tiers) == ref_liq_price(
                        prm, side, 123.4, lev, n_usd)  # fmt: skip


EDGE_CONFIGS = [
    lm.LiqMapParams(bins_per_pct=1),
    lm.LiqMapParams(),
    lm.LiqMapParams(bins_per_pct=1000, half_range_pct=2.5, recentre_pct=1.0),
    lm.LiqMapParams(use_maintenance_amount=False, leverages=(1.0001, 2.0, 3.3, 77.0, 240.0),
                    leverage_weights=(1.0,) * 5, tier_max_leverage=(240.0, 100.0, 50.0, 20.0)),
]  # fmt: skip


def edge_prices(prm: lm.LiqMapParams, side: int, j: int, k: int, ulps: int) -> list[float]:
    """Entry prices whose bucket-``j`` level lies within ``ulps`` ulps of the edge of bin ``k``."""
    r = lq.liquidation_price(side, 1.0, float(prm.buckets()[0, j]), 0.0, prm.tiers())
    ep = math.exp(k / prm.bins_per_unit) / r
    for _ in range(ulps):
        ep = math.nextafter(ep, 0.0)
    out = []
    for _ in range(2 * ulps + 1):
        out.append(ep)
        ep = math.nextafter(ep, math.inf)
    return out


@pytest.mark.parametrize("prm", EDGE_CONFIGS)
def test_level_bins_are_the_formulas_at_bin_edges(prm: lm.LiqMapParams) -> None:
    """Entry prices that put a level within 12 ulps of a bin edge, at prices from 1e-255 to 1e255
    (the shortcut's range ends at |ln LP| = 600) and in every tier: each deposit lands in the bins
    of the tiered formula (the reference's rule), although the shortcut alone disagrees with it."""
    tiers, buckets, bpu = prm.tiers(), prm.buckets(), prm.bins_per_unit
    offsets, _ = lq.level_offsets(tiers, buckets, bpu)
    n, disagree = prm.n_bins, 0
    for side in (LONG, SHORT):
        for j in range(buckets.shape[1]):
            for ln_ep in (-587.0, -21.0, 0.0, 4.6, 10.6, 587.0, 605.0):
                rows = [
                    (0, side, T0, q, ep)
                    for ep in edge_prices(prm, side, j, round(ln_ep * bpu), 12)
                    for q in (1_000.0, 60_000.0, 3e6)  # first, second and last tier
                ]
                rows = [(p, *r[1:]) for p, r in enumerate(rows)]
                s = lm.LiqMapState.allocate(len(rows), prm)
                trades(s, rows)
                for p, _, _, q, ep in rows:
                    want, acc = np.zeros(n), [q, 0.0, 0.0, 0.0, 0.0]
                    k0 = bin_of(s, ep) - n // 2
                    assert s.anchor_k[p] == k0
                    for jj in range(buckets.shape[1]):
                        lev, part = float(buckets[0, jj]), q * float(buckets[1, jj])
                        lp = ref_liq_price(prm, side, ep, lev, q)
                        kb = math.floor(math.log(lp) * bpu) if lp > 0.0 else None
                        if kb is None or not k0 <= kb < k0 + n:
                            acc[DROP] += part
                        elif (kb >= k0 + n // 2) if side == LONG else (kb <= k0 + n // 2):
                            acc[LIQ] += part
                        else:
                            want[kb - k0] += part
                            acc[HELD] += part
                        if kb is not None and q < 50_000.0 and abs(math.log(ep)) < 590.0:
                            disagree += math.floor(math.log(ep) * bpu + offsets[side, jj]) != kb
                    assert np.array_equal(true_mass(s, p)[side], want), (side, ep, q)
                    assert not true_mass(s, p)[1 - side].any()
                    assert np.allclose(s.acc[p, side], acc, rtol=1e-15, atol=0.0), (side, ep, q)
    assert disagree > 0  # the edge cases do reach the guard


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tier_floors_usd": (1.0, 5e4, 2.5e5, 1e6)}, "start at 0"),
        ({"tier_floors_usd": (0.0, 5e4, 5e4, 1e6)}, "increase strictly"),
        ({"tier_mmr": (0.004, 0.003, 0.01, 0.025)}, "non-decreasing"),
        ({"tier_mmr": (0.004, 0.005, 0.01)}, "differ in length"),
        ({"tier_max_leverage": (125.0, 100.0, 50.0, 40.0)}, "max_leverage"),
        ({"leverages": (0.5, 10.0, 25.0, 50.0, 100.0)}, ">= 1"),
        ({"leverage_weights": (0.0,) * 5}, "positive sum"),
        ({"leverage_weights": (0.5, 0.5)}, "differ in length"),
        ({"leverage_weights": (math.nan,) * 5}, "finite"),
        ({"bins_per_pct": 2.5}, "int"),
        ({"bins_per_pct": 0}, r"\[1, 1000\]"),
        ({"half_range_pct": -1.0}, "half_range_pct"),
        ({"recentre_pct": 30.0}, "recentre_pct"),
        ({"half_life_s": 0.0}, "half_life_s"),
        ({"imbalance_tau_s": math.inf}, "imbalance_tau_s"),
        ({"at_risk_levels_pct": ()}, "non-empty"),
    ],
)
def test_params_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        lm.LiqMapParams(**kwargs)


def test_state_memory_grow_and_dtype_checks() -> None:
    s = lm.LiqMapState.allocate(2)
    # 2 sides x 600 bins x 8 B, 5 float/int64 scalars, 10 accumulators, 2 imbalance, int8, int64
    assert s.params.n_bins == 600 and s.bytes_per_pair == 9600 + 40 + 80 + 16 + 1 + 8 == 9745
    trades(s, [(1, 0, T0, 1e4, 100.0)])
    before = {f: getattr(s, f).copy() for f in s.PER_PAIR}
    s.grow(5)
    assert s.capacity == 5 and s.t_last[4] == -math.inf and s.scale[4] == 1.0
    for f, a in before.items():
        assert np.array_equal(getattr(s, f)[:2], a, equal_nan=True)
    with pytest.raises(ValueError, match="shrink"):
        s.grow(3)
    with pytest.raises(TypeError, match="pair_id"):
        s.apply_trades(np.zeros(1, np.int64), np.zeros(1, np.int8), *(np.ones(1),) * 3)
    with pytest.raises(TypeError, match="d_oi_usd"):
        s.apply_oi(np.zeros(1, np.int32), np.ones(1), np.ones(1, np.float32))
    with pytest.raises(ValueError, match="one value per pair"):
        s.read(T0, np.ones(1), 60.0, np.ones(5))
