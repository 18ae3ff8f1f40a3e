"""The ground-truth rules on hand-made forced orders (docstring of ``reflexive.truth``)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from monitor.simulator.reflexive.truth import (
    ONSET_FLOOR_USD,
    Forced,
    GroundTruth,
    ground_truth,
    runs,
)


def _truth(forced: list[Forced], baseline_end_s: float = 300.0) -> GroundTruth:
    return ground_truth(family="t", seed=1, duration_s=1200.0, baseline_end_s=baseline_end_s,
                        forced=forced, by_symbol={}, venues=("binance", "bybit"), params={})  # fmt: skip


def _f(t: float, usd: float, long: bool = True, endo: bool = False, early: bool = False) -> Forced:
    return Forced(
        t, "BTCUSDT", "binance" if int(t) % 2 else "bybit", long, usd, early or endo, endo
    )


def test_a_sustained_burst_has_its_onset_where_the_rate_first_crosses() -> None:
    # $1M a second from t = 600 to 639: the trailing 30 s sum reaches the $2.5M floor at 602
    burst = [_f(600.0 + i + 0.5, 1e6, endo=i >= 20) for i in range(40)]
    tr = _truth(burst)
    assert tr.onset_threshold_usd == ONSET_FLOOR_USD
    assert (tr.onset_s, tr.peak_minute_s, tr.peak_minute_usd) == (602.0, 600.0, 40e6)
    assert tr.forced_usd == {"long": 40e6, "short": 0.0, "total": 40e6}
    assert tr.endogenous_share == pytest.approx(0.5) and tr.early_share == pytest.approx(0.5)
    assert tr.is_cascade and tr.long_share == 1.0
    assert tr.by_venue["bybit"]["count"] + tr.by_venue["binance"]["count"] == 40


def test_a_single_huge_order_is_no_onset_and_no_cascade() -> None:
    tr = _truth([_f(700.5, 50e6, endo=True)])  # above the threshold for 30 s, but one order
    assert tr.onset_s is None and tr.peak_minute_s == 660.0 and not tr.is_cascade


def test_a_burst_without_endogenous_liquidations_is_no_cascade() -> None:
    tr = _truth([_f(600.0 + i, 1e6, long=i % 3 > 0) for i in range(40)])
    assert tr.onset_s is not None and tr.endogenous_share == 0.0 and not tr.is_cascade
    assert tr.long_share == pytest.approx(26 / 40)


def test_the_threshold_is_a_multiple_of_the_pre_shock_baseline() -> None:
    calm = [_f(2 * i + 0.5, 500_000.0) for i in range(150)]  # $250k/s until t = 300
    tr = _truth(calm + [_f(600.0 + i, 1e6) for i in range(40)])
    # every full 30 s window before 300 s holds 15 orders: baseline $250k/s
    assert tr.baseline_usd_per_s == pytest.approx(250_000.0, rel=1e-12)
    assert tr.onset_threshold_usd == pytest.approx(5 * 30 * tr.baseline_usd_per_s)
    assert tr.onset_threshold_usd > 30e6  # the later burst ($1M/s) never reaches it
    assert tr.onset_s is None


def test_no_forced_orders() -> None:
    tr = _truth([])
    assert (tr.onset_s, tr.peak_minute_s, tr.peak_minute_usd, tr.endogenous_share) == (
        None, None, 0.0, 0.0,
    )  # fmt: skip
    assert orjson.loads(tr.to_json()) == tr.to_dict()


def test_runs_bridge_short_gaps() -> None:
    above = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1], dtype=bool)
    assert runs(above, 2) == [(1, 5), (12, 12)]
    assert runs(above, 0) == [(1, 2), (5, 5), (12, 12)]
    assert runs(np.zeros(4, dtype=bool), 5) == []
