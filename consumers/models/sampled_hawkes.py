"""The branching ratio the monitor exports: a Hawkes model observed in 1 s bins, as the feed's
coverage reveals them (sampled feeds present/absent per second, the others counts per second).

Pure module (numpy + numba only); docs/risk-models.md §2.5. ``consumers.models.sampled_series``
refits it per pair and tick (``consumers.models.bundle``: ``branching_ratio`` with
``branching_ratio_lower``/``_upper``; the exact fit stays beside it as ``branching_ratio_exact``).
Some venues push a sample of their
liquidations, not all of them: Binance the latest per symbol per second, OKX at most one order per
contract per second, Bitget the largest per side per pair per second. The exact continuous-time
MLE of ``consumers.models.hawkes`` then sees one event where there were ten and reads n too low
(n = 0.8 at 1 event/s reads about 0.50, n = 0.5 about 0.02). This module fits the same
exponential-kernel Hawkes process, ``lambda(t) = mu + alpha*sum exp(-beta*(t - t_i))``,
``n = alpha/beta``, to what such a feed reveals: bins of ``dt`` seconds (the venue's sampling
period, 1 s) and per bin either ``b_k = 1{N_k >= 1}`` (``OBS_BINARY``: a sampled feed, whichever
event the venue keeps) or the count ``N_k`` (``OBS_COUNTS``: a complete feed, binned).

Model. ``S`` is the excitation ``alpha*sum exp(-beta*(t - t_i))`` at the start of a bin.
* A stretch of length L holds no event with probability ``exp(-mu*L - S*A(L))``, ``A(L) = (1 -
  exp(-beta*L))/beta``, exactly (an event inside the bin needs a first one).
* Given S, the bin's mean count and the first two moments of S at its end are closed forms of the
  process's linear moment equations (``dE[S]/dt = alpha*mu - kappa*E[S]``, ``dE[S^2]/dt =
  -2*kappa*E[S^2] + (2*alpha*mu + alpha^2)*E[S] + alpha^2*mu``, ``kappa = beta*(1 - n)``).
* Binary bins (an assumed-density filter): S given the past bins is a Gamma law (mean m, variance
  v, moment-matched each bin). ``P(b_k = 0 | past) = exp(-mu*dt)*(1 + A*v/m)^(-m^2/v)``, after
  which S is again Gamma (conjugate); after ``b_k = 1`` its moments are those of the whole bin
  minus the empty-bin part, over ``P(b_k = 1)``, exact under the Gamma prior. A run of empty bins
  is one stretch, so a pass costs O(non-empty bins). ``LL = sum_k b_k log(1 - P0_k) + (1 - b_k)
  log P0_k``. Unobserved counts are never imputed one by one; the filter carries their law.
* Count bins: S is carried as its conditional mean; ``N_k`` is generalized Poisson (Consul &
  Jain 1973; a Poisson number of first events, each with a Borel in-bin cascade): ``P(x) =
  theta*(theta + l*x)^(x-1)*exp(-theta - l*x)/x!``, ``theta = mu*dt + A(dt)*S`` (so P(0) is
  exact) and ``l = 1 - theta/E[N_k]`` (so the mean is exact). S moves on by the mean carry per
  event, ``x*(E[S_end] - S*exp(-beta*dt))/E[N_k]``.
* The series starts from the stationary law of S (mean ``mu*n/(1 - n)``, variance
  ``alpha^2*mu/((1 - n)*2*kappa)``).
* Baseline step, as in ``consumers.models.hawkes``: the most likely change of a constant bin rate
  (Bernoulli or Poisson, one O(bins) scan, at least ``step_min_side`` non-empty bins on each side
  and ``step_min_after_s`` before the end), then ``mu1`` before it and ``mu2`` from it on; tried
  when the scan's own gain exceeds ``log`` (non-empty bins), kept when the Hawkes fit's gain does
  (BIC, two more parameters; excitation explains part of any rate change, so the Hawkes gain is
  the smaller one).

Fit: the posterior mode in ``x = (log mu [, log mu2], logit n, c)``, ``log beta = log beta_lo +
log(beta_hi/beta_lo)*sigmoid(c)``, with a Beta(prior_a, prior_b) prior on n (default 0.5, 0.5;
in the logit coordinate the density is ``n^a*(1 - n)^b``, which keeps small samples off 0 and 1),
a log-uniform prior on beta within its bounds and mu flat in log
(``consumers.models.sampled_likelihood``: exact gradient, BFGS, warm starts from the previous
fit's modes and Hessians).
``[n_lower, n_upper] = sigmoid(z -/+ q*sd_z)``, sd_z from the Laplace approximation (Hessian of
the log-posterior) in the logit coordinate. Undefined (NaN) below ``min_bins`` = 20 non-empty bins:
with fewer the interval spans more than half of [0, 1] and n_hat is mostly the prior (Poisson
streams read 0.13-0.16, n = 0.8 reads 0.54-0.59; the exact MLE needs 100 events).

Measured (benchmarks/bench_sampled_hawkes.py, 900 s windows, 20 seeds per case; n in {0.3, 0.5,
0.8}, mean rates 0.1-2/s, beta 0.2-2/s: 45 cases):
* Sampled feeds (latest per second as Binance, at an unknown phase as OKX, a random one as
  Bitget's largest; phase estimated): mean n_hat within 0.03 of n on average, at most 0.12 off
  (n = 0.5 at 2/s with beta 0.2 reads 0.38); sd 0.04-0.16; |n_hat - n| <= 0.1 in 69 % of windows
  (n = 0.8: 82 %, n = 0.3 and 0.5: 63 %); the 90 % interval covers n in 90 % of windows (0.65-1.0
  by case). The exact MLE on the same feed reads 0.00-0.72 (n = 0.8 at 1/s: 0.50).
* Complete feeds as counts: within 0.05 of the exact MLE in 94 % of windows (96 % when the series
  also starts empty, as the exact MLE does; the rest are slow kernels, where the exact MLE's empty
  start reads low). The exact MLE itself is within 0.1 of n in 82 % of these windows: at these
  rates 900 s does not pin n to 0.1 in every window, whatever the estimator.
* Poisson (n = 0): complete feeds read 0.09-0.11 on average (p90 <= 0.21); sampled feeds
  0.12-0.17 up to 1/s, but 0.29 at 2/s and 0.36 at 3/s (max 0.64), where 86-95 % of the seconds
  are non-empty and a binary series says little about n.
* A Poisson rate step (0.5 <-> 3/s, 0.1 -> 1/s): windows with the step inside read at most 0.47
  on the complete feed (consumers.models.hawkes with its step model: at most 0.45), 0.03-0.33
  with the step mid-window on the sampled one; a constant baseline reads 0.90-0.98. For about
  20 s after a drop, before a step may be placed there, a sampled feed reads up to 0.74.
* CPU per fit of 900 bins: cold 0.2-4 ms (the more non-empty bins, the more), a warm refit 5 s
  later 2-3 iterations, 0.2-1 ms; 200 pairs through ``consumers.models.sampled_series`` about
  120 ms.

Assumptions and known biases:
* The venue's windows coincide with the bins. A wrong phase reads n far too low (OKX binned on
  whole seconds: n = 0.8 reads 0.58-0.72); ``consumers.models.sampled_series.sampling_phase``
  estimates it from the kept times. Which event the venue keeps does not matter to a binary series.
* Events spread so that the mean carry per event is right, and S close to a Gamma law: on
  40,000 s series the filter's limit (pseudo-true n, no prior) is within 0.03 of the truth.
* Clustering faster than a bin is invisible to a binary feed: ``beta_max_per_s`` is 20/s (a decay
  time of a twentieth of a bin), and n is the excitation seen at the bin scale.
* Saturation: see the Poisson figures; read n of a sampled feed whose seconds are mostly
  non-empty with its interval (or not at all: ``cascade_liquidation_saturation`` says when).
* A ramp of the exogenous rate is not one step and still reads high, as in the exact fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final

import numpy as np

from consumers.models.jit import F64, I32, I64, njit
from consumers.models.sampled_likelihood import bfgs, laplace, log_post

OBS_COUNTS: Final = 0
OBS_BINARY: Final = 1

# fit_kernel's output slots
OUT_N, OUT_LO, OUT_HI, OUT_MU, OUT_BETA, OUT_LL, OUT_CONV, OUT_ITERS = 0, 1, 2, 3, 4, 5, 6, 7
OUT_BINS, OUT_NZ, OUT_SD, OUT_MU_BEFORE, OUT_STEP = 8, 9, 10, 11, 12
OUT_LEN: Final = 13
# warm-start state per stream: x and inverse Hessian of the constant fit, then of the step fit
W_X3, W_H3, W_X4, W_H4 = 0, 3, 12, 16
WARM_LEN: Final = 32
_WARM_CLIP: Final = 6.0  # warm logit n and c within +-6, so a saturated sigmoid can move


@njit
def compress(obs: I32, binary: bool, pos: I64, cnt: I32) -> tuple[int, int]:
    """Non-empty bins of ``obs`` into ``pos``/``cnt`` (binary: 1 each); returns (their number,
    events). Values <= 0 are empty bins."""
    k = 0
    events = 0
    for i in range(obs.shape[0]):
        if obs[i] > 0:
            pos[k] = i
            cnt[k] = 1 if binary else obs[i]
            events += cnt[k]
            k += 1
    return k, events


@njit
def _rate_ll(c: float, m: float, binary: bool) -> float:
    """Maximised log-likelihood of ``c`` (non-empty bins, or events) in ``m`` bins at one rate."""
    if c <= 0.0 or m <= 0.0:
        return 0.0
    p = c / m
    if binary:
        return c * math.log(p) + ((m - c) * math.log1p(-p) if c < m else 0.0)
    return c * math.log(p) - c


@njit
def step_scan(
    pos: I64, cnt: I32, n_nz: int, n_bins: int, binary: bool, min_side: int, min_after: int
) -> tuple[int, float]:
    """The most likely single change of a constant bin rate: ``(k, LL gain)``, the new rate from
    bin k on, at least ``min_side`` non-empty bins on each side and ``k <= n_bins - min_after``;
    ``(-1, 0)`` if none qualifies."""
    total = 0.0
    for i in range(n_nz):
        total += cnt[i]
    base = _rate_ll(total, n_bins, binary)
    best, k_best = 0.0, -1
    i, before, nz_before = 0, 0.0, 0
    for k in range(1, n_bins - min_after + 1):
        while i < n_nz and pos[i] < k:
            before += cnt[i]
            nz_before += 1
            i += 1
        if nz_before < min_side or n_nz - nz_before < min_side:
            continue
        gain = _rate_ll(before, k, binary) + _rate_ll(total - before, n_bins - k, binary) - base
        if gain > best:
            best, k_best = gain, k
    return k_best, best


@njit
def _start(x: F64, warm: F64, slot: int, h0: F64, h_slot: int) -> bool:
    """Copy a finite warm start (logit n and c clipped) into ``x`` and its inverse Hessian into
    ``h0``; False (``h0`` NaN) when there is none."""
    dim = x.shape[0]
    for j in range(dim):
        if not math.isfinite(warm[slot + j]):
            h0[:, :] = np.nan
            return False
        x[j] = warm[slot + j]
    for j in (dim - 2, dim - 1):
        x[j] = min(max(x[j], -_WARM_CLIP), _WARM_CLIP)
    for i in range(dim):
        for j in range(dim):
            h0[i, j] = warm[h_slot + i * dim + j]
    return True


@njit
def fit_kernel(
    obs: I32, dt: float, binary: bool, beta_lo: float, beta_hi: float, prior_a: float,
    prior_b: float, z_q: float, min_bins: int, max_iter: int, gtol: float, step_min_side: int,
    step_min_after: int, stationary: bool, warm: F64, out: F64,
) -> None:  # fmt: skip
    """Fit one series into ``out`` (``OUT_*`` slots; NaN where undefined: fewer than ``min_bins``
    non-empty bins). ``warm`` (``WARM_LEN``, NaN: none) is read as the start and updated.
    ``step_min_side`` < 1: no baseline-step model; ``step_min_after`` in bins."""
    nb = obs.shape[0]
    pos = np.empty(nb, np.int64)
    cnt = np.empty(nb, np.int32)
    n_nz, events = compress(obs, binary, pos, cnt)
    out[:] = np.nan
    out[OUT_BINS], out[OUT_NZ], out[OUT_CONV], out[OUT_ITERS] = nb, n_nz, 0.0, 0.0
    if n_nz < max(min_bins, 1):
        return
    lb, ub = math.log(beta_lo), math.log(beta_hi)
    args = (pos, cnt, n_nz, nb, dt, binary, stationary)
    prior = (beta_lo, beta_hi, prior_a, prior_b)
    x = np.empty(3)
    h = np.empty((3, 3))
    if not _start(x, warm, W_X3, h, W_H3):  # cold: n = 0.5, beta mid-range, mu from the data
        share = min(n_nz / nb, 1.0 - 0.5 / nb)
        rate = -math.log1p(-share) / dt if binary else events / (nb * dt)
        x[0], x[1], x[2] = math.log(0.5 * rate), 0.0, 0.0
    f, iters, conv = bfgs(x, *args, nb + 1, *prior, max_iter, gtol, h)
    if not math.isfinite(f):
        warm[:] = np.nan
        return
    g = np.empty(4)
    _, ll = log_post(*args, nb + 1, x, *prior, g)
    sd = laplace(x, *args, nb + 1, *prior, h)
    warm[W_X3 : W_X3 + 3] = x
    warm[W_H3 : W_H3 + 9] = h.ravel()
    z, c, mu, mu_before, k_step = x[1], x[2], math.exp(x[0]), np.nan, -1
    if step_min_side >= 1:
        k, gain = step_scan(pos, cnt, n_nz, nb, binary, step_min_side, step_min_after)
        # a rate step is worth a Hawkes fit only if it beats BIC for a Poisson rate already:
        # excitation explains part of any rate change, so the Hawkes gain is the smaller one
        if k >= 0 and gain > math.log(n_nz):
            x4 = np.empty(4)
            h4 = np.empty((4, 4))
            if not _start(x4, warm, W_X4, h4, W_H4):  # from the constant fit, n at most 0.5
                n0 = min(1.0 / (1.0 + math.exp(-z)), 0.5)
                nz1 = np.searchsorted(pos[:n_nz], k)  # non-empty bins before the step
                ev1 = 0.0
                for i in range(nz1):
                    ev1 += cnt[i]
                for j in range(2):
                    m_j = k if j == 0 else nb - k
                    if binary:
                        share = (nz1 if j == 0 else n_nz - nz1) / m_j
                        rate_j = -math.log1p(-min(share, 1.0 - 0.5 / m_j)) / dt
                    else:
                        rate_j = (ev1 if j == 0 else events - ev1) / (m_j * dt)
                    x4[j] = math.log(rate_j * (1.0 - n0))
                x4[2], x4[3] = math.log(n0 / (1.0 - n0)), c
            f4, it4, conv4 = bfgs(x4, *args, k, *prior, max_iter, gtol, h4)
            if math.isfinite(f4):
                warm[W_X4 : W_X4 + 4] = x4
                warm[W_H4 : W_H4 + 16] = h4.ravel()
                _, ll4 = log_post(*args, k, x4, *prior, g)
                if ll4 - ll > math.log(n_nz):
                    sd4 = laplace(x4, *args, k, *prior, h4)
                    ll, sd, iters, conv = ll4, sd4, iters + it4, conv4
                    z, c, mu, mu_before, k_step = x4[2], x4[3], math.exp(x4[1]), math.exp(x4[0]), k
    out[OUT_N] = 1.0 / (1.0 + math.exp(-z))
    out[OUT_SD] = sd
    out[OUT_LO] = 1.0 / (1.0 + math.exp(-(z - z_q * sd)))
    out[OUT_HI] = 1.0 / (1.0 + math.exp(-(z + z_q * sd)))
    out[OUT_MU] = mu
    out[OUT_MU_BEFORE] = mu_before
    out[OUT_STEP] = k_step if k_step >= 0 else np.nan
    out[OUT_BETA] = math.exp(lb + (ub - lb) / (1.0 + math.exp(-c)))
    out[OUT_LL] = ll
    out[OUT_CONV] = 1.0 if conv else 0.0
    out[OUT_ITERS] = iters


# ---- API ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SampledParams:
    """Validated configuration of the binned fit (base units: seconds, 1/s)."""

    beta_min_per_s: float = (
        0.01  # kernel decay bounds, as consumers.models.hawkes, but the upper bound
    )
    beta_max_per_s: float = 20.0  # is lower: clustering faster than a bin is invisible to it
    max_decay_frac: float = (
        0.05  # and 1/beta <= max_decay_frac * fitted length (consumers.models.hawkes)
    )
    prior_a: float = 0.5  # Beta(prior_a, prior_b) prior on n (Jeffreys' for a share)
    prior_b: float = 0.5
    level: float = 0.9  # two-sided level of [n_lower, n_upper]
    min_bins: int = 20  # fewer non-empty bins: every value NaN
    max_iter: int = 100  # BFGS iterations
    gtol: float = 1e-6  # on the gradient of -log posterior per bin
    stationary_start: bool = True  # the excitation starts from its stationary law, else from 0
    baseline_step: bool = True  # also fit a one-step baseline; kept when BIC prefers it
    step_min_after_s: float = 30.0  # a step must have lasted this long to be one
    step_min_side: int = 10  # non-empty bins on each side of the step
    end_lag_s: float = 1.0  # a refit at ``now`` fits the bins closed by ``now - end_lag_s``

    def __post_init__(self) -> None:
        for name in ("beta_min_per_s", "beta_max_per_s", "max_decay_frac", "prior_a", "prior_b",
                     "level", "gtol", "step_min_after_s", "end_lag_s"):  # fmt: skip
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number, got {v!r}")
        for name in ("baseline_step", "stationary_start"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        for name in ("min_bins", "max_iter", "step_min_side"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        if not 0 < self.beta_min_per_s < self.beta_max_per_s:
            raise ValueError("need 0 < beta_min_per_s < beta_max_per_s")
        if not 0 < self.max_decay_frac <= 1:
            raise ValueError(f"max_decay_frac must be in (0, 1], got {self.max_decay_frac}")
        if self.prior_a < 0 or self.prior_b < 0:
            raise ValueError("prior_a and prior_b must be >= 0")
        if not 0 < self.level < 1:
            raise ValueError(f"level must be in (0, 1), got {self.level}")
        if self.gtol <= 0:
            raise ValueError(f"gtol must be > 0, got {self.gtol}")
        if self.step_min_after_s < 0:
            raise ValueError(f"step_min_after_s must be >= 0, got {self.step_min_after_s}")
        if self.end_lag_s < 0:
            raise ValueError(f"end_lag_s must be >= 0, got {self.end_lag_s}")

    @property
    def z_q(self) -> float:
        """The normal quantile of the interval: 1.645 at level 0.9."""
        return NormalDist().inv_cdf(0.5 + 0.5 * self.level)

    def beta_bounds(self, window_s: float) -> tuple[float, float]:
        """``(beta_lo, beta_hi)`` for a fitted stretch of ``window_s`` seconds."""
        lo = max(self.beta_min_per_s, 1.0 / (self.max_decay_frac * window_s))
        return min(lo, 0.5 * self.beta_max_per_s), self.beta_max_per_s

    def kernel_args(
        self, n_bins: int, dt: float
    ) -> tuple[float, float, float, float, float, int, int, float, int, int, bool]:
        """``fit_kernel``'s arguments, ``beta_lo`` to ``stationary``, for ``n_bins`` of ``dt``."""
        lo, hi = self.beta_bounds(max(n_bins, 1) * dt)
        return (lo, hi, self.prior_a, self.prior_b, self.z_q, self.min_bins, self.max_iter,
                self.gtol, self.step_min_side if self.baseline_step else 0,
                math.ceil(self.step_min_after_s / dt), self.stationary_start)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SampledFit:
    """One fit. NaN values (and ``converged`` False) when the series was too thin to fit."""

    n: float  # branching ratio, the posterior mode
    n_lower: float  # Laplace interval at ``SampledParams.level``
    n_upper: float
    mu: float  # exogenous rate, events/s
    beta: float  # kernel decay rate, 1/s
    loglik: float  # log-likelihood at the mode (without the priors), nats
    converged: bool
    used_bins: int
    nonempty_bins: int
    iterations: int
    mu_before: float  # with a baseline step: mu before it (``mu`` is the one after), else NaN
    step_bin: float  # with a baseline step: the first bin at ``mu``, else NaN
    warm: F64  # ``WARM_LEN`` floats: pass as ``warm`` to the next fit of the same stream


def fit_sampled(
    obs: I32,
    dt: float = 1.0,
    observed: int = OBS_BINARY,
    params: SampledParams | None = None,
    warm: SampledFit | None = None,
) -> SampledFit:
    """Fit the Hawkes model to one binned series: ``obs[k]`` events in bin k of ``dt`` seconds,
    read as present/absent (``OBS_BINARY``, a sampled feed) or as counts (``OBS_COUNTS``).
    ``warm``: the previous fit of the same stream (its modes and Hessians start this one)."""
    if not isinstance(obs, np.ndarray) or obs.dtype != np.int32 or obs.ndim != 1:
        raise TypeError("obs must be a 1-d int32 array")
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be finite and > 0, got {dt}")
    if observed not in (OBS_COUNTS, OBS_BINARY):
        raise ValueError(f"observed must be OBS_COUNTS (0) or OBS_BINARY (1), got {observed!r}")
    p = params if params is not None else SampledParams()
    w = warm.warm.copy() if warm is not None else np.full(WARM_LEN, np.nan)
    out = np.empty(OUT_LEN)
    fit_kernel(obs, float(dt), observed == OBS_BINARY, *p.kernel_args(obs.shape[0], dt), w, out)
    return SampledFit(
        n=float(out[OUT_N]),
        n_lower=float(out[OUT_LO]),
        n_upper=float(out[OUT_HI]),
        mu=float(out[OUT_MU]),
        beta=float(out[OUT_BETA]),
        loglik=float(out[OUT_LL]),
        converged=bool(out[OUT_CONV] == 1.0),
        used_bins=int(out[OUT_BINS]),
        nonempty_bins=int(out[OUT_NZ]),
        iterations=int(out[OUT_ITERS]),
        mu_before=float(out[OUT_MU_BEFORE]),
        step_bin=float(out[OUT_STEP]),
        warm=w,
    )
