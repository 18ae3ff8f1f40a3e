"""Baseline of the liquidation rate and its z-score (docs/risk-models.md §1). Pure (numpy + numba).

``x_j`` = total liquidation rate over ``baseline_horizon_s`` (60 s, the decay form of
``consumers.models.flow``) sampled at the grid times ``g_j = j*baseline_sample_s`` that follow the
pair's first event (liquidation or trade; ``screening.start_clocks``). The sample at ``g_j`` counts
liquidations applied before the first one stamped ``>= g_j`` (a grid time is sampled lazily, by the
next in-order liquidation or a read-out). EW weights per sample ``alpha = 1 - beta``,
``beta = exp(-sample_s/baseline_tau_s)`` (24 h), debiased by the total weight ``w``:
``mean = m1/w``, ``var = m2/w - mean^2`` with ``w = sum alpha*beta^age``,
``m1 = sum alpha*beta^age*x``, ``m2 = sum alpha*beta^age*x^2``. Between liquidations the samples
are ``c*rho^i`` (``rho = exp(-sample_s/horizon)``), so ``m`` samples fold in closed form (geometric
sums through ``expm1``): O(1) for any gap. ``z = (x_now - mean)/sqrt(var)``, NaN until
``baseline_warmup_s`` of samples and while ``var <= 0``.

Out of order: a late liquidation enters the rate already decayed (as ``flow.flow_update`` does);
samples already taken are not rewritten (it enters later samples).
"""

from __future__ import annotations

import math

import numpy as np

from consumers.models.jit import F64, I32, I64, NO_INTERVAL, njit
from consumers.models.screening import usable


@njit
def _geom(log_r: float, m: float) -> float:
    """``sum_{i<m} r^i`` for ``r = exp(log_r) <= 1``."""
    if log_r == 0.0:
        return m
    return math.expm1(m * log_r) / math.expm1(log_r)


@njit
def _baseline_fold(
    k_from: int, k_to: int, rate: float, t_rate: float, w: float, m1: float, m2: float,
    sample_s: float, horizon_s: float, tau_s: float,
) -> tuple[float, float, float]:  # fmt: skip
    """(w, m1, m2) after the samples at grid times ``(k_from, k_to] * sample_s``."""
    m = float(k_to - k_from)
    bm = math.exp(-m * sample_s / tau_s)
    alpha = -math.expm1(-sample_s / tau_s)
    w_new = bm * w - math.expm1(-m * sample_s / tau_s)
    if rate > 0.0:
        c = rate * math.exp(-(float(k_from + 1) * sample_s - t_rate) / horizon_s)
        b1 = math.exp(-(m - 1.0) * sample_s / tau_s)
        lr1 = -sample_s / horizon_s + sample_s / tau_s
        m1 = bm * m1 + alpha * c * b1 * _geom(lr1, m)
        m2 = bm * m2 + alpha * c * c * b1 * _geom(lr1 - sample_s / horizon_s, m)
    else:
        m1 *= bm
        m2 *= bm
    return w_new, m1, m2


@njit
def baseline_update(
    pair_id: I32, t: F64, notional: F64, sample_s: float, horizon_s: float, tau_s: float,
    rate: F64, t_rate: F64, k_s: I64, w: F64, m1: F64, m2: F64, n_s: I64,
) -> None:  # fmt: skip
    """Liquidations into the 60 s total rate and its sampled, decayed baseline moments."""
    n_p = rate.shape[0]
    for i in range(t.shape[0]):
        p = pair_id[i]
        ti, q = t[i], notional[i]
        if not (0 <= p < n_p and usable(ti, q)):
            continue
        k = math.floor(ti / sample_s)
        if k_s[p] == NO_INTERVAL:
            k_s[p] = k
        tl = t_rate[p]
        if ti >= tl:
            if k > k_s[p]:
                w[p], m1[p], m2[p] = _baseline_fold(
                    k_s[p], k, rate[p], tl, w[p], m1[p], m2[p], sample_s, horizon_s, tau_s
                )
                n_s[p] += k - k_s[p]
                k_s[p] = k
            rate[p] = rate[p] * math.exp(-(ti - tl) / horizon_s) + q / horizon_s
            t_rate[p] = ti
        else:
            rate[p] += (q / horizon_s) * math.exp(-(tl - ti) / horizon_s)


@njit
def baseline_at(
    now: float, sample_s: float, horizon_s: float, tau_s: float, warmup_s: float,
    rate: F64, t_rate: F64, k_s: I64, w: F64, m1: F64, m2: F64, n_s: I64, rows: I64,
    out_rate: F64, out_mean: F64, out_sd: F64, out_z: F64,
) -> None:  # fmt: skip
    """Current 60 s rate, baseline mean and sd (USD/s) and z-score at ``now`` of pair ``rows[i]``
    into index ``i`` of the outputs (state untouched)."""
    k_now = math.floor(now / sample_s)
    for i in range(rows.shape[0]):
        p = rows[i]
        dt = now - t_rate[p]
        x = rate[p] * math.exp(-dt / horizon_s) if dt > 0.0 else rate[p]
        out_rate[i] = x
        out_mean[i] = out_sd[i] = out_z[i] = np.nan
        if k_s[p] == NO_INTERVAL:
            continue
        wp, a, b = w[p], m1[p], m2[p]
        n = n_s[p]
        if k_now > k_s[p]:
            wp, a, b = _baseline_fold(
                k_s[p], k_now, rate[p], t_rate[p], wp, a, b, sample_s, horizon_s, tau_s
            )
            n += k_now - k_s[p]
        if n == 0:
            continue
        mean = a / wp
        var = b / wp - mean * mean
        out_mean[i] = mean
        out_sd[i] = math.sqrt(var) if var > 0.0 else 0.0
        if var > 0.0 and float(n) * sample_s >= warmup_s:
            out_z[i] = (x - mean) / math.sqrt(var)
