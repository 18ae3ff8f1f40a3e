"""The score's fitting (monitor/app/calibration.py) on data whose answer is known by construction:
a fixed-seed sample of a known logistic model, and bins where one component carries the class
and another is noise. No figure of the project's scenarios is asserted here (those are printed by
benchmarks/calibrate_score.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitor.app import calibration as cal
from monitor.app.evaluation import Outcome, label


def _ds(comps: list[list[float]], group: list[int], y: list[bool], fold: list[int]) -> cal.Dataset:
    return cal.Dataset(np.array(comps, dtype=np.float64), np.array(group, dtype=np.int64),
                       np.array(y, dtype=np.bool_), np.array(fold, dtype=np.int64))  # fmt: skip


def test_raw_max_is_the_largest_renormalised_mean_per_bin() -> None:
    nan = math.nan
    ds = _ds([[1.0, nan], [0.2, 0.4], [nan, nan], [nan, 0.5]], [0, 0, 1, 1],
             [True, False], [1, 1])  # fmt: skip
    w = np.array([0.75, 0.25])
    # bin 0: row 0 reads component 0 alone (1.0); row 1 is 0.75*0.2 + 0.25*0.4 = 0.25
    # bin 1: no component -> 0; component 1 alone -> 0.5
    assert cal.raw_max(ds, w) == pytest.approx([1.0, 0.5])


def test_fit_logistic_recovers_a_known_map() -> None:
    rng = np.random.default_rng(7)  # a fixed sample: the test draws the same data every run
    x = rng.uniform(0, 1, 200_000)
    y = rng.uniform(0, 1, x.size) < cal.sigmoid(-3.0 + 6.0 * x)
    a, b = cal.fit_logistic(x, y, l2=0.0)
    assert a == pytest.approx(-3.0, abs=0.06)
    assert b == pytest.approx(6.0, abs=0.12)


def test_fit_logistic_keeps_the_slope_non_negative_and_needs_both_classes() -> None:
    x = np.linspace(0, 1, 100)
    a, b = cal.fit_logistic(x, x < 0.5)  # the class falls with x: the best allowed slope is 0
    assert b == 0.0
    assert cal.sigmoid(np.array([a]))[0] == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ValueError, match="both classes"):
        cal.fit_logistic(x, np.ones(100, dtype=np.bool_))


def _informative(bins: int, seed: int) -> cal.Dataset:
    """Two rows per bin; component 0 is high in positive bins, component 1 is noise."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(0, 1, bins) < 0.3
    comps, group = [], []
    for g in range(bins):
        for _ in range(2):
            signal = rng.uniform(0.5, 1.0) if y[g] else rng.uniform(0.0, 0.6)
            comps.append([signal, rng.uniform(0, 1)])
            group.append(g)
    return _ds(comps, group, list(y), list(np.arange(bins) % 4))


def test_fit_weights_moves_weight_to_the_informative_component() -> None:
    ds = _informative(4_000, 11)
    w, _, b, loss = cal.fit_weights(ds, [0.5, 0.5])
    assert w.sum() == pytest.approx(1.0)
    assert w[0] > 0.9  # the noise component loses (nearly) all its weight
    start, _, _ = cal.objective(ds, np.array([0.5, 0.5]))
    assert loss < start
    assert b > 0


def test_cross_validation_predicts_every_bin_out_of_fold_and_beats_a_constant() -> None:
    ds = _informative(2_000, 12)
    seen: list[int] = []

    def fit(d: cal.Dataset) -> tuple[cal.F64, float, float]:
        seen.append(d.bins)
        w = np.array([1.0, 0.0])
        return w, *cal.fit_logistic(cal.raw_max(d, w), d.y)

    p = cal.cross_validate(ds, fit)
    assert np.isfinite(p).all()
    assert len(seen) == 4 and all(n < ds.bins for n in seen)  # each fit left a fold out
    constant = np.full(ds.bins, ds.y.mean())
    assert cal.log_loss(p, ds.y) < cal.log_loss(constant, ds.y)
    assert cal.auc(p, ds.y) > 0.9


def test_reliability_counts_every_bin_once() -> None:
    p = np.array([0.05, 0.15, 0.15, 0.95, 1.0])
    y = np.array([False, True, False, True, True])
    rel = cal.reliability(p, y)
    assert sum(r["n"] for r in rel) == 5
    assert rel[1] == {"lo": 0.1, "hi": 0.2, "n": 2, "mean_p": pytest.approx(0.15),
                      "observed": 0.5}  # fmt: skip
    assert rel[9]["n"] == 2 and rel[9]["observed"] == 1.0


def test_dataset_takes_the_evaluation_labels_and_skips_unlabelled_bins() -> None:
    o = Outcome("jan27", 5, "binance", 3600.0, True, 2000.0, 2400.0, [],
                comps=[(0.0, "A", [0.1, None]), (0.0, "*", [None, 0.3]),
                       (2200.0, "A", [0.9, 0.8]),  # 200 s before the peak minute: positive
                       (1500.0, "A", [0.5, 0.5])])  # fmt: skip  # between: not scored
    ds = cal.dataset([o], label, 2)
    assert ds.y.tolist() == [False, True]
    assert ds.group.tolist() == [0, 0, 1]
    assert ds.fold.tolist() == [5, 5]
    assert np.isnan(ds.comps[0, 1]) and ds.comps[1, 1] == 0.3
    assert label(o, 1500.0) is None
