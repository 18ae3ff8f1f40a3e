"""consumers/models/baseline.py against the sample-by-sample walk of microstructure_ref.py
(hypothesis) plus closed-form and statistical cases.

Tolerances: the baseline mean rel 1e-9; its variance abs 1e-9 * E[x^2] (it is a difference of
moments) and the z-score rel 1e-6 / abs 1e-5 where the variance is not below 1e-6 * E[x^2].
Statistical tolerances are stated at each test with the standard error they come from; every
random test uses a fixed seed.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from consumers.models import microstructure as m
from consumers.models.jit import NO_INTERVAL
from tests.consumers.models.micro_cases import (
    BASE_MS,
    HS,
    apply_mixed,
    close,
    mixed_events,
    readout,
)
from tests.consumers.models.microstructure_ref import BaselineRef


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
        assert s.bl_k[p] == (NO_INTERVAL if ref.k_s is None else ref.k_s)
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
