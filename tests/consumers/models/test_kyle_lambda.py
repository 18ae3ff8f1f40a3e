"""consumers/models/kyle_lambda.py against a two-pass weighted regression (microstructure_ref.py,
hypothesis) plus recovery of a known lambda with and without noise.

Tolerances: Kyle's lambda abs 1e-9 * sqrt(Var r / Var S) (its natural scale; West's update vs a
two-pass sum); statistical tolerances are stated at each test with the standard error they come
from; every random test uses a fixed seed.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from consumers.models import microstructure as m
from consumers.models.jit import F64, I8, I32
from consumers.models.screening import LATE_KYLE
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
from tests.consumers.models.microstructure_ref import KyleRef


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
            assert s.ky_n[p] == len(ref.obs) and s.late[p, LATE_KYLE] == ref.late
            assert close(r.amihud[p], amihud)
            if math.isnan(lam):
                assert math.isnan(r.kyle_lambda[p]), (r.kyle_lambda[p], scale)
            else:
                assert abs(r.kyle_lambda[p] - lam) <= 1e-9 * scale, (r.kyle_lambda[p], lam, scale)


def synthetic_kyle(
    lam: float, noise: float, n_buckets: int, rng: np.random.Generator
) -> tuple[I32, F64, I8, F64, F64]:
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
    assert s.late[0, LATE_KYLE] == 1 and s.ky_n[0] == 29
    assert s.ky_v[0] == sum(q[-5:].tolist())  # the late flow did not enter the open bucket
