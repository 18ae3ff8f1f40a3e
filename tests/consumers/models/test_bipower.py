"""consumers/models/bipower.py against the return list of microstructure_ref.py (hypothesis) plus
simulated paths with and without a jump. Tolerance: jump share abs 1e-9, sums rel 1e-9; every
random test uses a fixed seed.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from consumers.models import microstructure as m
from consumers.models.jit import F64
from consumers.models.screening import LATE_BIPOWER
from tests.consumers.models.micro_cases import (
    BASE_MS,
    HS,
    Event,
    close,
    event_lists,
    read_times,
    readout,
    trades_in_two_calls,
)
from tests.consumers.models.microstructure_ref import BipowerRef


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
            assert s.bv_n[p] == len(ref.rets) and s.late[p, LATE_BIPOWER] == ref.late
            assert close(r.bipower[p], bv) and close(r.realized_var[p], rv)
            assert close(r.jump_share[p], jump, rel=0.0, abs_=1e-9)


def gaussian_path(n: int, sigma: float, rng: np.random.Generator) -> tuple[F64, F64]:
    """One trade per 1 s interval at t = k + 0.5, log price a Gaussian random walk."""
    t = BASE_MS / 1000.0 + np.arange(n) + 0.5
    return t, 100.0 * np.exp(np.cumsum(sigma * rng.standard_normal(n)))


def bv_run(params: m.MicroParams, t: F64, px: F64) -> m.MicroState:
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
