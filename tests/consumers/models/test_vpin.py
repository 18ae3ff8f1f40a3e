"""consumers/models/vpin.py against the bucket list of microstructure_ref.py (hypothesis) plus
hand-computed cases: exact (==) on dyadic notionals, where every sum is exact, and rel 1e-9 in auto
mode.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from consumers.models import microstructure as m
from tests.consumers.models.micro_cases import (
    BASE_MS,
    HS,
    Event,
    close,
    event_lists,
    readout,
    trades_in_two_calls,
)
from tests.consumers.models.microstructure_ref import VpinRef


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
