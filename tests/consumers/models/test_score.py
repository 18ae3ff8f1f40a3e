"""The composite cascade score: parameter checks, component mapping, bounds, ranks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from consumers.models.score import COMPONENTS, RankState, ScoreParams, components, drivers, score

# the hand-set weights as a raw mean (no calibration): round numbers for the arithmetic below
RAW = ScoreParams(w_branching=0.25, w_feedback=0.20, w_liq_zscore=0.15, w_liq_share=0.10,
                  w_vpin=0.10, w_volatility=0.10, w_margin_stress=0.10, w_surge=0.0,
                  calib_intercept=0.0, calib_slope=0.0)  # fmt: skip


def comps_of(**kw: float) -> np.ndarray:
    base = {"branching": np.nan, "n_struct": np.nan, "liq_zscore": np.nan, "liq_share": np.nan,
            "vpin_rank": np.nan, "vol_rank": np.nan, "msi": np.nan, "surge": np.nan}  # fmt: skip
    base.update(kw)
    return components(ScoreParams(), *(np.array([v]) for v in base.values()))


def test_each_component_is_mapped_as_documented() -> None:
    c = comps_of(branching=0.8, n_struct=1.5, liq_zscore=3.0, liq_share=0.05, vpin_rank=0.9,
                 vol_rank=0.25, msi=0.4, surge=math.sqrt(20.0))[0]  # fmt: skip
    assert dict(zip(COMPONENTS, c, strict=True)) == pytest.approx(
        {
            "branching": 0.8,
            "feedback": 0.75,
            "liq_zscore": 0.5,
            "liq_share": 0.25,
            "vpin": 0.9,
            "volatility": 0.25,
            "margin_stress": 0.4,
            "surge": 0.5,  # ln(sqrt(20)) / ln(20)
        }
    )
    w = RAW.weights
    assert score(RAW, c[None, :])[0] == pytest.approx(float(c @ w / w.sum()))
    clipped = comps_of(branching=1.7, n_struct=9.0, liq_zscore=-4.0, liq_share=3.0, msi=8.0,
                       surge=0.5)[0]  # fmt: skip
    assert list(clipped[[0, 1, 2, 3, 6, 7]]) == [1.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    assert comps_of(surge=400.0)[0][7] == 1.0  # beyond the saturation


def test_missing_components_are_left_out_and_the_coverage_says_how_much_is_backed() -> None:
    none = comps_of()
    s, cov = score(RAW, none)
    assert np.isnan(none).all() and s[0] == 0.0 and cov[0] == 0.0
    only = comps_of(branching=0.8)
    s, cov = score(RAW, only)
    assert s[0] == pytest.approx(0.8) and cov[0] == pytest.approx(0.25)
    assert drivers(RAW, only[0]) == [("branching", pytest.approx(0.8))]
    two = comps_of(branching=0.8, liq_zscore=0.0)  # weights 0.25 and 0.15
    s, cov = score(RAW, two)
    assert s[0] == pytest.approx(0.8 * 0.25 / 0.4) and cov[0] == pytest.approx(0.4)


def test_the_logistic_calibration_maps_the_raw_mean() -> None:
    p = ScoreParams(calib_intercept=-4.0, calib_slope=8.0)
    c = comps_of(branching=0.5)
    assert score(p, c)[0][0] == pytest.approx(0.5)  # -4 + 8 * 0.5 = 0
    assert score(p, comps_of(branching=1.0))[0][0] == pytest.approx(1 / (1 + math.exp(-4.0)))
    assert score(p, comps_of())[0][0] == pytest.approx(1 / (1 + math.exp(4.0)))


def test_the_defaults_are_the_fitted_probability() -> None:
    """The default score is the logistic map of the fitted weights' mean (docs/detection.md §6):
    a quiet pair reads its floor sigmoid(a), a pair with every weighted component saturated
    sigmoid(a + b), and components with weight 0 do not move it."""
    p = ScoreParams()
    a, b = p.calib_intercept, p.calib_slope
    assert b > 0
    floor = 1 / (1 + math.exp(-a))
    top = 1 / (1 + math.exp(-(a + b)))
    quiet = comps_of(branching=0.0, n_struct=0.0, liq_zscore=0.0, vol_rank=0.0, surge=1.0)
    assert score(p, quiet)[0][0] == pytest.approx(floor)
    hot = comps_of(branching=1.0, vol_rank=1.0, surge=20.0, vpin_rank=0.0, msi=0.0)
    assert score(p, hot)[0][0] == pytest.approx(top)
    assert score(p, hot)[1][0] == pytest.approx(1.0)  # every weighted component defined


finite = st.floats(allow_nan=True, allow_infinity=True) | st.floats(-10.0, 10.0)


@settings(max_examples=200, deadline=None)
@given(x=arrays(np.float64, (5, 8), elements=finite))
def test_score_is_always_in_the_unit_interval(x: np.ndarray) -> None:
    c = components(ScoreParams(), *x.T)
    s, cov = score(ScoreParams(), c)
    assert ((s >= 0) & (s <= 1)).all() and ((cov >= 0) & (cov <= 1 + 1e-12)).all()
    assert (np.isnan(c) | ((c >= 0) & (c <= 1))).all()


@pytest.mark.parametrize(
    "kw",
    [{"w_vpin": -1.0}, {"w_branching": math.nan}, {"warning": 0.9, "critical": 0.8},
     {"z_saturation": 0.0}, {f"w_{c}": 0.0 for c in COMPONENTS}],
)  # fmt: skip
def test_bad_parameters_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ScoreParams(**kw)


def test_rank_of_a_stationary_series_is_centred_and_a_spike_ranks_high() -> None:
    rng = np.random.default_rng(4)
    r = RankState(1, tau_s=3600.0)
    assert np.isnan(r.rank(np.array([10.0])))[0]
    ranks = []
    for k in range(20_000):
        x = np.array([rng.normal(10.0, 2.0)])
        if k > 2000:
            ranks.append(float(r.rank(x)[0]))
        r.update(float(k), x)
    assert abs(np.mean(ranks) - 0.5) < 0.03
    assert abs(np.mean(np.array(ranks) > 0.9) - 0.1) < 0.03  # calibrated tails
    assert r.rank(np.array([20.0]))[0] > 0.999  # five sigma
    assert math.isclose(r.mean[0], 10.0, abs_tol=0.3) and math.isclose(r.var[0], 4.0, rel_tol=0.2)


def test_rank_history_is_a_plain_average_first_and_skips_nan() -> None:
    r = RankState(2, tau_s=10.0, min_samples=2)
    r.update(0.0, np.array([1.0, np.nan]))
    assert np.isnan(r.rank(np.array([1.0, 1.0]))).all()  # one sample: no rank yet
    r.update(5.0, np.array([3.0, np.nan]))
    w = math.exp(-0.5) + 1.0  # decayed weight of the first sample + the new one
    a = 1.0 / w
    assert r.mean[0] == pytest.approx(1.0 + a * 2.0)
    assert r.var[0] == pytest.approx((1.0 - a) * a * 4.0)
    assert np.isnan(r.mean[1]) and np.isnan(r.rank(np.array([1.0, 1.0]))[1])
    assert 0.0 < r.rank(np.array([1.0, 1.0]))[0] < 0.5
    r.update(5.0, np.array([100.0, 1.0]))  # no time elapsed: not folded in again
    assert r.mean[0] == pytest.approx(1.0 + a * 2.0)
    r.grow(4)
    assert r.mean.shape == (4,) and np.isnan(r.mean[3]) and r.count[3] == 0
