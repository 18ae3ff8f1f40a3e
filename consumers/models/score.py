"""The composite cascade score (docs/risk-models.md §7): a documented, calibrated combination in [0, 1].

Pure module (numpy; rows checked by ``jit.pair_rows``), vectorised over pairs; evaluated at read-out
time and at the pair's tick closes, never per event. Each component is mapped to [0, 1] first:

==================  ==========================================================================
component           mapping to [0, 1]
==================  ==========================================================================
``branching``       the sampling-aware Hawkes branching ratio n (s2.5), clipped to [0, 1]
``feedback``        ``min(n_struct, 2) / 2`` (s3: n_struct >= 1 is a self-sustaining spiral)
``liq_zscore``      z-score of the 60 s liquidation rate against its slow baseline (s1),
                    ``clip(z / z_saturation, 0, 1)``
``liq_share``       liquidation share of traded notional over 60 s, ``clip(share / share_sat)``
``vpin``            VPIN's rank against its own slow history: ``Phi((x - mean) / sd)`` (s4)
``volatility``      the EWMA volatility's rank against its own slow history, the same way (s5)
``margin_stress``   MSI (s6), ``clip(msi / msi_saturation, 0, 1)``
``surge``           the liquidation-flow surge (s9), ``clip(ln(surge) / ln(surge_saturation))``
==================  ==========================================================================

``raw = sum_defined w_i * c_i / sum_defined w_i``: the weighted mean over the components that are
*defined* for the pair (NaN: too few liquidations for a Hawkes fit, fewer than 50 VPIN buckets, no
history for a rank, no trades), the weights renormalised; ``coverage = sum_defined w_i / sum w_i``
says how much of the score is backed by data (exported, and rules can require a minimum). With no
component defined, raw is 0 and coverage 0. The score is then calibrated:
``score = 1 / (1 + exp(-(calib_intercept + calib_slope * raw)))``, the probability that a cascade's
peak minute is under way or within the next 5 minutes, as fitted on simulated scenarios
(``benchmarks/calibrate_score.py``, docs/detection.md); ``calib_slope = 0`` leaves the raw mean.
The ranks keep a bias-corrected exponentially weighted mean and variance per pair, updated at the
pair's maintenance (``rank_tau_s``, default 24 h; ``RankState``), so a venue's normal VPIN or
volatility level reads as 0.5 and only unusual values push the score.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from typing import Final

import numpy as np

from consumers.models.jit import F64, I64, pair_rows

COMPONENTS: Final = (
    "branching", "feedback", "liq_zscore", "liq_share", "vpin", "volatility", "margin_stress",
    "surge",
)  # fmt: skip


@dataclass(frozen=True)
class ScoreParams:
    # weights and calibration fitted on the training scenarios (benchmarks/calibrate_score.py,
    # docs/detection.md §6); the hand-set weights before them: 0.25, 0.20, 0.15, 0.10, 0.10,
    # 0.10, 0.10, 0 with the raw mean
    w_branching: float = 0.1068
    w_feedback: float = 0.0
    w_liq_zscore: float = 0.0
    w_liq_share: float = 0.0
    w_vpin: float = 0.0
    w_volatility: float = 0.3133
    w_margin_stress: float = 0.0
    w_surge: float = 0.5799
    z_saturation: float = 6.0  # a 6-sigma liquidation rate is the most alarming
    share_saturation: float = 0.2  # liquidations at 20% of traded notional
    msi_saturation: float = 1.0  # expected liquidations equal to the traded notional
    surge_saturation: float = 20.0  # liquidations at 20 times their normal rate
    calib_intercept: float = -5.322  # the logistic calibration (module docstring); slope 0: raw
    calib_slope: float = 7.758
    rank_tau_s: float = 86_400.0
    rank_min_samples: int = 30  # ticks of history before VPIN and volatility ranks are given
    warning: float = 0.7  # the default cascade-risk rule's levels (docs/alerts.md §2.4)
    critical: float = 0.85

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not math.isfinite(v) or (v < 0 and f.name != "calib_intercept"):
                raise ValueError(f"score {f.name} = {v!r}: must be finite and >= 0")
        if self.surge_saturation <= 1:
            raise ValueError("score surge_saturation must be > 1")
        if self.total_weight <= 0:
            raise ValueError("score weights: at least one must be > 0")
        for name in ("z_saturation", "share_saturation", "msi_saturation", "rank_tau_s",
                     "rank_min_samples"):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"score {name} must be > 0")
        if not 0 < self.warning <= self.critical <= 1:
            raise ValueError("score levels: need 0 < warning <= critical <= 1")

    @functools.cached_property
    def weights(self) -> F64:
        return np.array([getattr(self, f"w_{c}") for c in COMPONENTS])

    @functools.cached_property
    def total_weight(self) -> float:
        return float(self.weights.sum())


class RankState:
    """Per pair, a bias-corrected exponentially weighted mean and variance of one series sampled
    on the consumer's tick, for a normal-CDF rank.

    Each update has weight 1 and older ones decay by ``exp(-elapsed/tau_s)``: with ``S`` the
    decayed total weight (``S = S*decay + 1``), ``a = 1/S``, ``mean += a*d``,
    ``var = (1 - a)*(var + a*d^2)``. The first samples are a plain average (no start-up bias
    toward the first value), later ones an EW average over about ``tau_s``. The rank is undefined
    (NaN) until ``min_samples`` have been folded in."""

    def __init__(self, capacity: int, tau_s: float, min_samples: int = 30) -> None:
        self.tau_s = tau_s
        self.min_samples = min_samples
        self.mean = np.full(capacity, np.nan)
        self.var = np.zeros(capacity)
        self.weight = np.zeros(capacity)
        self.count = np.zeros(capacity, np.int64)
        self.t = np.full(capacity, -np.inf)

    def grow(self, capacity: int) -> None:
        n = capacity - self.mean.shape[0]
        if n > 0:
            self.mean = np.concatenate((self.mean, np.full(n, np.nan)))
            self.var = np.concatenate((self.var, np.zeros(n)))
            self.weight = np.concatenate((self.weight, np.zeros(n)))
            self.count = np.concatenate((self.count, np.zeros(n, np.int64)))
            self.t = np.concatenate((self.t, np.full(n, -np.inf)))

    def update(self, now_s: float, x: F64, rows: I64 | None = None) -> None:
        """Fold the current values in: ``x[i]`` is pair ``rows[i]``'s (None: pairs
        ``0..len(x)-1``; ``jit.pair_rows``, no repeated id). NaN values and repeated times are
        skipped; the other pairs' histories are untouched."""
        rows = pair_rows(rows, x.shape[0] if rows is None else self.mean.shape[0], distinct=True)
        if x.shape != rows.shape:
            raise ValueError("x needs one value per pair of rows")
        upd = np.isfinite(x) & (now_s > self.t[rows])
        if not upd.any():
            return
        idx = rows[upd]
        xu = x[upd]
        first = np.isnan(self.mean[idx])
        elapsed = np.where(first, np.inf, now_s - self.t[idx])
        w = self.weight[idx] * np.exp(-elapsed / self.tau_s) + 1.0
        a = 1.0 / w
        mean = np.where(first, xu, self.mean[idx])
        d = xu - mean
        self.mean[idx] = mean + a * d
        self.var[idx] = np.where(first, 0.0, (1.0 - a) * (self.var[idx] + a * d * d))
        self.weight[idx] = w
        self.count[idx] += 1
        self.t[idx] = now_s

    def rank(self, x: F64, rows: I64 | None = None) -> F64:
        """``Phi((x[i] - mean) / sd)`` against pair ``rows[i]``'s history (None: pairs
        ``0..len(x)-1``; repeats allowed); NaN where x or the history is undefined, short or
        flat."""
        rows = pair_rows(rows, x.shape[0] if rows is None else self.mean.shape[0])
        if x.shape != rows.shape:
            raise ValueError("x needs one value per pair of rows")
        sd = np.sqrt(self.var[rows])
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (x - self.mean[rows]) / sd
        out: F64 = 0.5 * _erfc(-z / math.sqrt(2.0))
        out[~(sd > 0) | (self.count[rows] < self.min_samples)] = np.nan
        return out


_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def components(
    p: ScoreParams,
    branching: F64,
    n_struct: F64,
    liq_zscore: F64,
    liq_share: F64,
    vpin_rank: F64,
    vol_rank: F64,
    msi: F64,
    surge: F64,
) -> F64:
    """The components mapped to [0, 1], shape [pairs, len(COMPONENTS)]; NaN where undefined."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):  # inf saturates at 1
        cols = (
            np.clip(branching, 0.0, 1.0),
            np.minimum(np.maximum(n_struct, 0.0), 2.0) / 2.0,
            np.clip(liq_zscore / p.z_saturation, 0.0, 1.0),
            np.clip(liq_share / p.share_saturation, 0.0, 1.0),
            np.clip(vpin_rank, 0.0, 1.0),
            np.clip(vol_rank, 0.0, 1.0),
            np.clip(msi / p.msi_saturation, 0.0, 1.0),
            np.clip(np.log(surge) / math.log(p.surge_saturation), 0.0, 1.0),
        )
    return np.stack(cols, axis=1) if len(branching) else np.empty((0, len(COMPONENTS)))


def score(p: ScoreParams, comps: F64) -> tuple[F64, F64]:
    """``(score, coverage)`` per pair (the module docstring): the calibrated weighted mean of the
    defined components, and the share of weight they carry. Component by component, in the
    order of COMPONENTS, so a pair's value does not depend on the other rows of the block."""
    n = comps.shape[0]
    num, den = np.zeros(n), np.zeros(n)
    for j, w in enumerate(p.weights):
        if w == 0.0:
            continue
        c = comps[:, j]
        ok = np.isfinite(c)
        num += np.where(ok, w * np.where(ok, c, 0.0), 0.0)
        den += np.where(ok, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = np.where(den > 0, num / den, 0.0)
    coverage: F64 = den / p.total_weight
    if p.calib_slope > 0:
        out: F64 = 1.0 / (1.0 + np.exp(-(p.calib_intercept + p.calib_slope * raw)))
    else:
        out = np.clip(raw, 0.0, 1.0)  # the mean of ones can round to 1 + 2e-16
    return out, coverage


def drivers(p: ScoreParams, comps_row: F64, top: int = 3) -> list[tuple[str, float]]:
    """The components that contribute most to one pair's raw score: (name, weighted share of
    the defined components)."""
    defined = np.isfinite(comps_row)
    den = float(p.weights[defined].sum())
    if den <= 0:
        return []
    contrib = np.where(defined, np.nan_to_num(comps_row, nan=0.0) * p.weights, 0.0) / den
    order = np.argsort(-contrib, kind="stable")[:top]
    return [(COMPONENTS[i], float(contrib[i])) for i in order if contrib[i] > 0]
