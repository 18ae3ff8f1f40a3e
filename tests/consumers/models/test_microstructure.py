"""consumers/models/microstructure.py: parameters, allocation and growth, dtype checks, and that bad
rows never reach any model's state.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.models import microstructure as m
from consumers.models.baseline import baseline_update
from consumers.models.bipower import bipower_update
from consumers.models.drawdown import drawdown_update
from consumers.models.flow import notional_rate_update
from consumers.models.jit import NO_INTERVAL
from consumers.models.kyle_lambda import kyle_update
from consumers.models.saturation import saturation_update
from consumers.models.screening import N_LATE
from consumers.models.vpin import vpin_update
from tests.consumers.models.micro_cases import BASE_MS, HS, Event, cols, event_lists, readout


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
    assert s.late.shape == (2, N_LATE) and s.bl_k.dtype == np.int64
    assert (s.bl_k == NO_INTERVAL).all() and (s.vp_size == 100.0).all()
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
    kyle_update(pid, side, t, q, px, 1.0, 300.0, s.ky_k, s.ky_l0, s.ky_l1, s.ky_t1, s.ky_s,
                  s.ky_v, s.ky_k_obs, s.ky_w, s.ky_mx, s.ky_my, s.ky_cxx, s.ky_cxy, s.ky_am,
                  s.ky_n, s.late)  # fmt: skip
    vpin_update(pid, side, t, q, 3600.0, 0.0, s.vp_size, s.vp_cur, s.vp_fill, s.vp_buy,
                  s.vp_sell, s.vp_imb, s.vp_vol, s.vp_n, s.vp_rate, s.vp_rt, s.vp_t0)  # fmt: skip
    q_liq = np.array([-1.0, 5.0, math.inf, 5.0, 5.0])  # side-free kernels: row 2 bad by notional
    notional_rate_update(pid, t, q_liq, s.tau, s.trd_rate, s.trd_t)
    baseline_update(pid, t, q_liq, 10.0, 60.0, 86400.0, s.bl_rate, s.bl_t, s.bl_k, s.bl_w, s.bl_m1,
                      s.bl_m2, s.bl_n)  # fmt: skip
    saturation_update(pid, t, q_liq, 1.0, 60.0, s.sat_f, s.sat_k_last, s.sat_k_first, s.sat_bits,
                        s.late)  # fmt: skip
    px_bad = np.array([0.0, 1.0, -1.0, 1.0, 1.0])
    t_bad = np.array([1.0, math.inf, 2.0, 3.0, 4.0])
    bipower_update(pid, t_bad, px_bad, 5.0, 900.0, s.bv_k, s.bv_l0, s.bv_l1, s.bv_t1,
                     s.bv_prev, s.bv_bv, s.bv_rv, s.bv_tref, s.bv_n, s.late)  # fmt: skip
    drawdown_update(pid, t_bad, px_bad, 3600.0, s.dd_lp, s.dd_t, s.dd_lhi, s.dd_llo, s.late)
    for name, arr in before.items():
        np.testing.assert_array_equal(getattr(s, name), arr, err_msg=name)


def test_read_rejects_bad_shapes() -> None:
    s = m.MicroState.allocate(2, m.MicroParams())
    with pytest.raises(ValueError, match="rows"):
        s.read(0.0, np.arange(3), np.zeros((3, 3, 3)))
    with pytest.raises(TypeError, match="rows"):
        s.read(0.0, np.arange(2, dtype=np.int32), np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="liq_rate_at"):
        s.read(0.0, None, np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match="liq_rate_at"):  # a full-size input with a subset
        s.read(0.0, np.array([1]), np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="trd_rate_at"):
        s.read(0.0, np.array([1]), np.zeros((1, 3, 3)), np.zeros((2, 3)))
