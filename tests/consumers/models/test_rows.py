"""Per-pair read-outs and maintenance of the model states (``rows`` instead of "the first n
pairs"): the checks of ``jit.pair_rows``, and every state's read of some pairs equal, bit for bit,
to its full read at those rows; the rank histories updated for some pairs only."""

from __future__ import annotations

import math

import numpy as np
import pytest

from consumers.models import microstructure as m
from consumers.models.flow import flow_rates_at
from consumers.models.hawkes import HawkesParams, HawkesState
from consumers.models.jit import pair_rows
from consumers.models.liquidation_map import LiqMapState
from consumers.models.score import RankState
from tests.consumers.models.rows_cases import assert_rows_of, subsets

T0 = 1_700_000_000.0
N = 60  # pairs


def _events(rng: np.random.Generator, n: int, span_s: float) -> tuple[np.ndarray, ...]:
    """``n`` events over ``N`` pairs (pair 0 gets none): pair, time, side, notional, price."""
    pid = rng.integers(1, N, n).astype(np.int32)
    t = T0 + np.sort(rng.uniform(0.0, span_s, n))
    side = rng.integers(0, 2, n).astype(np.int8)
    q = rng.lognormal(8.0, 1.5, n)
    px = 100.0 * np.exp(rng.normal(0.0, 0.02, n))
    return pid, t, side, q, px


def test_pair_rows_checks_and_defaults() -> None:
    assert pair_rows(None, 4).tolist() == [0, 1, 2, 3] and pair_rows(None, 0).shape == (0,)
    assert pair_rows(np.array([3, 0, 3]), 4).tolist() == [3, 0, 3]  # repeats: allowed in a read
    assert pair_rows(np.empty(0, np.int64), 0, distinct=True).shape == (0,)
    strided = np.arange(8)[::2]
    assert pair_rows(strided, 7).flags.c_contiguous
    for bad in (np.array([4]), np.array([-1]), np.array([0, 9, 1])):
        with pytest.raises(ValueError, match="rows"):
            pair_rows(bad, 4)
    for wrong in (np.array([1], np.int32), np.array([[1]]), [1], np.array([1.0])):
        with pytest.raises(TypeError, match="rows"):
            pair_rows(wrong, 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="repeat"):
        pair_rows(np.array([1, 2, 1]), 4, distinct=True)


def test_flow_kernel_writes_pair_rows_i_at_index_i() -> None:
    rng = np.random.default_rng(1)
    tau = np.array([10.0, 60.0])
    rate = rng.uniform(0.0, 1e3, (N, 3, 2))
    t_last = T0 + rng.uniform(-100.0, 100.0, (N, 3))
    t_last[5] = -np.inf
    full = np.full((N, 3, 2), np.nan)
    flow_rates_at(T0, tau, rate, t_last, np.arange(N), full)
    for rows in subsets(rng, N):
        out = np.full((rows.shape[0], 3, 2), np.nan)
        flow_rates_at(T0, tau, rate, t_last, rows, out)
        assert out.tobytes() == full[rows].tobytes()


def _micro() -> tuple[m.MicroState, np.random.Generator]:
    rng = np.random.default_rng(2)
    s = m.MicroState.allocate(N, m.MicroParams(vpin_bucket_usd=5_000.0, vpin_n_buckets=5,
                                               baseline_warmup_s=60.0, kyle_min_buckets=3,
                                               bv_min_returns=3))  # fmt: skip
    pid, t, side, q, px = _events(rng, 6000, 1800.0)
    liq = rng.random(pid.shape[0]) < 0.2
    s.apply_liquidations(pid[liq], t[liq], q[liq])
    s.apply_trades(pid[~liq], t[~liq], side[~liq], q[~liq], px[~liq])
    return s, rng


@pytest.mark.parametrize("dt", [-600.0, 0.0, 250.0])
def test_micro_read_of_rows_is_the_full_read_at_rows(dt: float) -> None:
    s, rng = _micro()
    now = T0 + 1800.0 + dt
    liq_at = rng.uniform(0.0, 50.0, (N, 3, 3))
    liq_at[rng.random(N) < 0.3] = 0.0  # pairs without liquidations: NaN imbalance
    full = s.read(now, None, liq_at)
    assert np.isfinite(full.vpin).sum() > 10 and np.isfinite(full.kyle_lambda).sum() > 10
    for rows in subsets(rng, N):
        assert assert_rows_of(s.read(now, rows, liq_at[rows]), full, rows, N) == 19
    with pytest.raises(ValueError, match="trd_rate_at"):  # a full-size input with a subset
        s.read(now, np.array([1]), liq_at[:1], np.zeros((N, 3)))


def test_hawkes_read_of_rows_is_the_full_read_at_rows() -> None:
    rng = np.random.default_rng(3)
    h = HawkesState.allocate(N, HawkesParams(min_events=10, capacity=512))
    pid, t, _, q, _ = _events(rng, 4000, 900.0)
    h.update(pid, t, q)
    h.refit(np.arange(0, N, 2, dtype=np.int32), T0 + 900.0)  # half the pairs fitted
    for now in (T0 + 450.0, T0 + 960.0):
        full = h.read(now)
        assert np.isfinite(full.branching_ratio).sum() > 10
        for rows in subsets(rng, N):
            assert assert_rows_of(h.read(now, rows), full, rows, N) == 21


def test_liqmap_read_of_rows_is_the_full_read_at_rows() -> None:
    rng = np.random.default_rng(4)
    s = LiqMapState.allocate(N)
    pid, t, side, q, px = _events(rng, 3000, 600.0)
    s.apply_trades(pid, side, t, q, px)
    sigma = rng.uniform(1e-4, 1e-3, N)
    sigma[3] = math.nan
    traded = rng.uniform(0.0, 1e6, N)
    full = s.read(T0 + 700.0, sigma, 300.0, traded)
    assert np.isfinite(full.msi).sum() > 10
    for rows in subsets(rng, N):
        sub = s.read(T0 + 700.0, sigma[rows], 300.0, traded[rows], rows)
        assert assert_rows_of(sub, full, rows, N) == 6
    with pytest.raises(ValueError, match="one value per pair"):
        s.read(T0, sigma, 300.0, traded, np.array([1, 2]))


def test_rank_update_of_rows_touches_only_those_pairs() -> None:
    """``update(t, x, rows)`` is the full update with NaN (skipped) for every other pair."""
    rng = np.random.default_rng(5)
    part, whole = RankState(N, 600.0, 2), RankState(N, 600.0, 2)
    for k in range(12):
        rows = rng.choice(N, size=int(rng.integers(0, N)), replace=False).astype(np.int64)
        x = np.asarray(rng.normal(1.0, 0.3, (rows.shape[0],)))
        x[rng.random(rows.shape[0]) < 0.1] = math.nan
        part.update(T0 + 10.0 * k, x, rows)
        padded = np.full(N, math.nan)
        padded[rows] = x
        whole.update(T0 + 10.0 * k, padded)
        for name in ("mean", "var", "weight", "count", "t"):
            assert getattr(part, name).tobytes() == getattr(whole, name).tobytes(), name
    assert (part.count >= 2).sum() > N // 2
    probe = rng.normal(1.0, 0.3, N)
    full = whole.rank(probe)
    assert np.isfinite(full).sum() > N // 2
    for rows in subsets(rng, N):
        assert part.rank(probe[rows], rows).tobytes() == full[rows].tobytes()
    with pytest.raises(ValueError, match="repeat"):
        part.update(T0 + 1e3, np.ones(2), np.array([4, 4]))
    with pytest.raises(ValueError, match="one value per pair"):
        part.rank(np.ones(3), np.array([1, 2]))
