"""RiskState read-outs and maintenance of some pairs (``rows``): on a state of a few hundred pairs
built from seeded random liquidation, trade and market-context records (with periodic
maintenance, so Hawkes fits, exact and sampling-aware, and rank histories exist; some pairs' feeds
are sampled, some complete), a read of any rows is the full read at those rows bit for bit, and
maintaining some pairs changes exactly those pairs, as a full maintenance would."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from consumers.columns import COVERAGES, BatchArrays
from consumers.models.bundle import ModelParams
from consumers.models.hawkes import HawkesParams, HawkesState
from consumers.models.microstructure import MicroParams, MicroState
from consumers.models.sampled_hawkes import OBS_BINARY, OBS_COUNTS
from consumers.models.sampled_series import SampledHawkesState
from consumers.models.score import ScoreParams
from consumers.state import RiskState
from monitor.core.codec import decode_batch, encode_batch
from monitor.core.schema import MarketContext
from tests.consumers.models.rows_cases import assert_rows_of, subsets

T0 = 1_700_000_000.0
N_PAIRS = 300
WINDOW_S = 300.0  # records are applied window by window, each followed by a full maintain
N_WINDOWS = 6
T_END = T0 + N_WINDOWS * WINDOW_S
PARAMS = ModelParams(
    hawkes=HawkesParams(min_events=8, capacity=256),
    micro=MicroParams(vpin_bucket_usd=20_000.0, vpin_n_buckets=8, baseline_warmup_s=120.0,
                      kyle_min_buckets=5, bv_min_returns=5),
    score=ScoreParams(rank_min_samples=3),
)  # fmt: skip
HAWKES_ARRAYS = [f.name for f in dataclasses.fields(HawkesState)
                 if f.name not in ("params", "scratch_s", "scratch_g")]  # fmt: skip
MICRO_ARRAYS = [f.name for f in dataclasses.fields(MicroState)
                if f.name not in ("params", "tau", "own_traded_rate")]  # fmt: skip
SAMPLED_ARRAYS = [f.name for f in dataclasses.fields(SampledHawkesState)
                  if f.name not in ("params", "n_bins", "dt", "scratch")]  # fmt: skip
RANK_ARRAYS = ("mean", "var", "weight", "count", "t")


def _context(sym: str, ts_ms: int, mark: float, oi_usd: float) -> Any:
    return decode_batch(encode_batch([MarketContext(
        "sim", sym, sym, mark, None, 1e-4, None, None, oi_usd, ts_ms, ts_ms * 10**6,
    )]))  # fmt: skip


def build(seed: int = 7) -> RiskState:
    """``N_PAIRS`` pairs of four kinds (trades and liquidations, trades only, liquidations only,
    market context only), events over ``N_WINDOWS`` windows, a few of them late, records of each
    window applied in a shuffled order and each window closed by a full ``maintain``."""
    rng = np.random.default_rng(seed)
    st = RiskState(512, models=PARAMS, wall_clock=lambda: 0.0)
    windows: list[list[Any]] = [[] for _ in range(N_WINDOWS)]
    span = N_WINDOWS * WINDOW_S
    for p in range(N_PAIRS):
        sym, kind = f"P{p:03d}-USDT-PERP", int(rng.integers(0, 4))
        n_liq = int(rng.integers(1, 90)) if kind in (0, 2) else 0
        n_trd = int(rng.integers(1, 500)) if kind in (0, 1) else 0
        tl = T0 + np.sort(rng.uniform(0.0, span, n_liq))
        tt = T0 + np.sort(rng.uniform(0.0, span, n_trd))
        tt[rng.random(n_trd) < 0.02] -= 2.0  # out of order, within the late tolerance
        px = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 2e-3, n_trd)))
        ls = rng.integers(0, 3, n_liq).astype(np.int8)
        ts = rng.integers(0, 2, n_trd).astype(np.int8)
        lq, tq = rng.lognormal(8.0, 1.5, n_liq), rng.lognormal(8.0, 1.5, n_trd)
        oi = 1e7 * rng.uniform(0.5, 2.0)
        coverage = np.full(n_liq, int(rng.integers(-1, len(COVERAGES))), np.int8)  # -1: unknown
        for w in range(N_WINDOWS):
            lo, hi = T0 + w * WINDOW_S, T0 + (w + 1) * WINDOW_S
            li, ti = (tl >= lo) & (tl < hi), (tt >= lo) & (tt < hi)
            if li.any() or ti.any():
                windows[w].append(BatchArrays(
                    "sim", sym, tl[li], ls[li], lq[li], tt[ti], ts[ti], tq[ti], px[ti],
                    np.zeros(int(li.sum() + ti.sum()), np.int64), coverage[li],
                ))  # fmt: skip
            if kind == 3 or (kind == 0 and rng.random() < 0.5):
                oi *= rng.uniform(0.95, 1.2)
                ts_ms = int((lo + rng.uniform(0.0, WINDOW_S)) * 1000)
                windows[w].append(_context(sym, ts_ms, float(px[-1]) if n_trd else 50.0, oi))
    for w, recs in enumerate(windows):
        for i in rng.permutation(len(recs)):
            r = recs[i]
            _ = st.apply_arrays(r) if isinstance(r, BatchArrays) else st.apply_context(r)
        st.maintain(T0 + (w + 1) * WINDOW_S)
    assert st.n_pairs == N_PAIRS
    return st


@pytest.fixture(scope="module")
def state() -> RiskState:
    return build()


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("now", [T_END - 1000.0, T_END, T_END + 123.4])
def test_read_of_rows_is_the_full_read_at_those_rows(state: RiskState, now: float) -> None:
    full = state.read(now)
    m = full.models
    for values in (m.branching_ratio_exact, m.branching_ratio, m.branching_ratio_lower,
                   m.branching_ratio_upper, m.micro.vpin, m.vpin_rank, m.vol_rank,
                   m.liqmap.msi, m.micro.kyle_lambda, m.micro.liq_rate_z):  # fmt: skip
        assert 20 < np.isfinite(values).sum() < N_PAIRS  # defined for some pairs, NaN for others
    modes = m.sampled.observed[np.isfinite(m.branching_ratio)]
    assert (modes == OBS_BINARY).sum() >= 5 and (modes == OBS_COUNTS).sum() >= 5
    assert _same(full.pair_ids, np.arange(N_PAIRS))
    rng = np.random.default_rng(int(now) % 1000)
    for rows in [*subsets(rng, N_PAIRS), np.arange(N_PAIRS)]:
        sub = state.read(now, rows)
        assert len(sub.keys) == rows.shape[0]
        assert assert_rows_of(sub, full, rows, N_PAIRS) > 60  # every array of every model


def test_rows_of_a_read_rank_and_export_as_in_the_full_read(state: RiskState) -> None:
    now = T_END + 10.0
    full_rows = state.risk_rows(now, N_PAIRS)
    full_snap = state.snapshot(now)
    rng = np.random.default_rng(3)
    for rows in subsets(rng, N_PAIRS)[:-1]:  # distinct ids
        keys = {state.read(now).keys[i] for i in rows.tolist()}
        sub = state.read(now, rows)
        ranked = [sub.keys[i] for i in sub.ranked()]
        full = state.read(now)
        assert ranked == [full.keys[i] for i in full.ranked() if full.keys[i] in keys]
        got = state.risk_rows(now, len(rows), rows)
        want = [r for r in full_rows if (r.exchange, r.symbol) in keys]
        assert [(r.symbol, repr(r.values), r.drivers()) for r in got] == [
            (r.symbol, repr(r.values), r.drivers()) for r in want
        ]
        assert [r.symbol for r in state.risk_rows(now, 2, rows)] == [r.symbol for r in got[:2]]
        assert [repr(s) for s in state.snapshot(now, rows)] == [
            repr(s) for s in full_snap if (s.exchange, s.symbol) in keys
        ]


def test_rows_are_checked(state: RiskState) -> None:
    assert state.capacity > N_PAIRS  # ids must be registered pairs, not merely below capacity
    for bad in (np.array([N_PAIRS]), np.array([-1]), np.array([0, 400])):
        with pytest.raises(ValueError, match="rows"):
            state.read(T_END, bad)
        with pytest.raises(ValueError, match="rows"):
            state.maintain(T_END, bad)
    for wrong in (np.array([1], np.int32), [1, 2], np.array([[1]])):
        with pytest.raises(TypeError, match="rows"):
            state.read(T_END, wrong)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="repeat"):
        state.maintain(T_END, np.array([5, 6, 5]))
    r = state.read(T_END, np.array([5, 5]))  # a read may repeat a pair: its row twice
    assert r.keys[0] == r.keys[1] and _same(r.models.score[:1], r.models.score[1:])


def _models_arrays(st: RiskState) -> dict[str, np.ndarray]:
    """Every per-pair array maintenance may touch (Hawkes, rank histories) or must not (the rest
    of the models, the flow and price state)."""
    m = st.models
    out = {f"hawkes.{k}": getattr(m.hawkes, k).copy() for k in HAWKES_ARRAYS}
    out |= {f"sampled.{k}": getattr(m.sampled, k).copy() for k in SAMPLED_ARRAYS}
    for h in ("vpin_hist", "vol_hist"):
        out |= {f"{h}.{k}": getattr(getattr(m, h), k).copy() for k in RANK_ARRAYS}
    out |= {f"micro.{k}": getattr(m.micro, k).copy() for k in MICRO_ARRAYS}
    out |= {f"liqmap.{k}": getattr(m.liqmap, k).copy() for k in m.liqmap.PER_PAIR}
    out |= {f"state.{i}": a.copy() for i, a in enumerate(st._arrays())}
    return out


def test_maintain_of_rows_changes_those_pairs_as_a_full_maintain_does() -> None:
    part, whole = build(), build()
    before = _models_arrays(part)
    assert all(_same(a, _models_arrays(whole)[k]) for k, a in before.items())  # deterministic
    t = T_END + 45.0
    rng = np.random.default_rng(9)
    rows = rng.choice(N_PAIRS, size=40, replace=False).astype(np.int64)
    others = np.setdiff1d(np.arange(part.models.allocated), rows)
    others_read = part.read(t + 5.0, others[others < N_PAIRS])
    n_part, n_whole = part.maintain(t, rows), whole.maintain(t)
    assert 0 < n_part < n_whole
    assert n_part == int(np.isfinite(whole.models.hawkes.fit_mu[rows]).sum())
    after, full = _models_arrays(part), _models_arrays(whole)
    changed = 0
    for k, a in after.items():
        if k.startswith(("hawkes.", "sampled.", "vpin_hist.", "vol_hist.")):
            assert _same(a[others], before[k][others]), k  # other pairs untouched
            assert _same(a[rows], full[k][rows]), k  # these pairs as the full maintain left them
            changed += not _same(a[rows], before[k][rows])
        else:
            assert _same(a, before[k]), k  # maintenance only reads the other models
    assert changed >= 15  # fits, warm starts, rank histories of the rows moved
    assert assert_rows_of(part.read(t + 5.0, rows), whole.read(t + 5.0), rows, N_PAIRS) > 60
    assert assert_rows_of(part.read(t + 5.0, others[others < N_PAIRS]), others_read,
                          np.arange(others_read.pair_ids.shape[0]),
                          others_read.pair_ids.shape[0]) > 60  # fmt: skip
    assert part.maintain(t + 60.0, np.empty(0, np.int64)) == 0
    assert all(_same(a, _models_arrays(part)[k]) for k, a in after.items())


def test_maintain_of_every_row_in_any_order_is_the_full_maintain() -> None:
    shuffled, whole = build(), build()
    t = T_END + 45.0
    perm = np.random.default_rng(4).permutation(N_PAIRS).astype(np.int64)
    assert shuffled.maintain(t, perm) == whole.maintain(t)
    full = _models_arrays(whole)
    assert all(_same(a, full[k]) for k, a in _models_arrays(shuffled).items())
    assert not math.isnan(float(np.nanmax(whole.read(t).models.vol_rank)))
