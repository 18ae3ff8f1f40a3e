"""Self-excitation of liquidations: the Hawkes model's parameters, per-pair state and read-out
(docs/risk-models.md §2). Pure module (numpy + numba only).

Kernels follow ``consumers.models.jit``: NumPy arrays and scalars only, preallocated outputs,
``cache=True``, per-pair struct-of-arrays state indexed by a dense pair id ``p``, event time ``t``
in float64 seconds. ``HawkesState`` owns the arrays (``allocate``/``grow``), checks dtypes and runs
the kernels of three modules:

* ``hawkes_intensity``: the online update per event (excitation sum, ring buffer of recent
  events) and the intensity ``lambda(now)`` between refits;
* ``hawkes_fit``: the rolling-window refit per tick (the window, a constant and a one-step
  baseline, the count-moment cross-check);
* ``hawkes_likelihood``: the exact log-likelihood, its gradient, and the BFGS that maximises it.

``HawkesParams`` is the frozen configuration. Slow references:
``tests/consumers/models/hawkes_ref.py``.

Model (exponential kernel, optional marks ``m`` = liquidation notional in USD):

* ``lambda(t) = mu + alpha * sum_{t_i < t} g(m_i) * exp(-beta*(t - t_i))``; branching ratio
  ``n = alpha*E[g]/beta``, exogenous share ``1 - n``, stationary mean rate ``mu/(1 - n)``.
* Marks: ``g = 1`` when ``mark_ref_usd == 0`` (default, the unmarked process); otherwise
  ``g(m) = log(1 + m/mark_ref_usd)`` and ``E[g]`` is the mean of ``g`` over the fitted window's
  events (the empirical mark distribution). The count-moment estimator ignores marks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from consumers.models.hawkes_fit import hawkes_refit
from consumers.models.hawkes_intensity import hawkes_intensity_at, hawkes_update
from consumers.models.jit import B1, F64, I32, I64, pair_rows


@dataclass(frozen=True, slots=True)
class HawkesParams:
    """Validated configuration; every field in base units (seconds, 1/s, USD)."""

    window_s: float = 900.0  # rolling window fitted at each refit
    capacity: int = 4096  # events kept per pair (ring buffer); 64 KiB per pair at the default
    min_events: int = 100  # fewer events in the window: the fit is NaN, not a guess
    beta_min_per_s: float = 0.01  # kernel decay rate bounds: decay times 10 ms .. 100 s
    beta_max_per_s: float = 100.0
    beta_init_per_s: float = 1.0  # cold-start beta (first fit of a pair)
    max_decay_frac: float = 0.05  # and 1/beta <= max_decay_frac * fitted window length
    n_max: float = 0.999  # upper bound of the fitted branching ratio (< 1)
    mark_ref_usd: float = 0.0  # 0: unmarked, g = 1; > 0: g(m) = log(1 + m/mark_ref_usd)
    max_iter: int = 100  # BFGS iterations per refit
    gtol: float = 1e-6  # stop when max |gradient of -LL/N| (reparametrised) is below this
    count_bin_s: float = 10.0  # bin width of the count-moment estimator
    baseline_step: bool = True  # also fit a one-step baseline; keep it when BIC prefers it
    step_min_after_s: float = 30.0  # a step must have lasted this long to be one
    step_min_side: int = 10  # events on each side of the step

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type == "bool":
                if not isinstance(v, bool):
                    raise ValueError(f"{f.name} must be a bool, got {v!r}")
            elif f.type == "int":
                if not isinstance(v, int) or isinstance(v, bool):
                    raise ValueError(f"{f.name} must be an int, got {v!r}")
            elif not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"{f.name} must be a finite number, got {v!r}")
        if self.window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {self.window_s}")
        if self.capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {self.capacity}")
        if not 1 <= self.min_events <= self.capacity:
            raise ValueError(
                f"min_events must be in [1, capacity={self.capacity}], got {self.min_events}"
            )
        if not 0 < self.beta_min_per_s < self.beta_init_per_s < self.beta_max_per_s:
            raise ValueError(
                "need 0 < beta_min_per_s < beta_init_per_s < beta_max_per_s, got "
                f"{self.beta_min_per_s}, {self.beta_init_per_s}, "
                f"{self.beta_max_per_s}"
            )
        if not 0 < self.max_decay_frac <= 1:
            raise ValueError(f"max_decay_frac must be in (0, 1], got {self.max_decay_frac}")
        if not 0 < self.n_max < 1:
            raise ValueError(f"n_max must be in (0, 1), got {self.n_max}")
        if self.mark_ref_usd < 0:
            raise ValueError(f"mark_ref_usd must be >= 0 (0 = unmarked), got {self.mark_ref_usd}")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")
        if self.gtol <= 0:
            raise ValueError(f"gtol must be > 0, got {self.gtol}")
        if self.count_bin_s <= 0:
            raise ValueError(f"count_bin_s must be > 0, got {self.count_bin_s}")
        if self.step_min_after_s < 0:
            raise ValueError(f"step_min_after_s must be >= 0, got {self.step_min_after_s}")
        if self.step_min_side < 1:
            raise ValueError(f"step_min_side must be >= 1, got {self.step_min_side}")


@dataclass(frozen=True, slots=True)
class HawkesReadout:
    """Per-pair values (row ``i``: pair ``rows[i]`` of the read). NaN where there is no valid fit."""

    mu_per_s: F64  # exogenous rate now (after a baseline step, if one was fitted), events/s
    alpha_per_s: F64  # intensity jump per event of weight g = 1, events/s
    beta_per_s: F64  # kernel decay rate, 1/s
    branching_ratio: F64  # n = alpha*E[g]/beta
    exogenous_share: F64  # 1 - n
    stationary_rate_per_s: F64  # mu/(1 - n), events/s
    intensity_per_s: F64  # lambda(now), events/s
    loglik: F64  # log-likelihood of the last fit (nats)
    iterations: I64  # BFGS iterations of the last fit
    converged: B1
    events_in_window: I64  # events in the last fitted window (also when too few to fit)
    window_s: F64  # length of the last fitted window (shorter than window_s at start / overflow)
    mark_mean: F64  # E[g] over the window (1 unmarked)
    n_count_moment: F64  # count-moment cross-check of n
    fit_time_s: F64  # ``now`` of the last refit
    baseline_step_t: F64  # when the fitted baseline stepped (event time), NaN: constant baseline
    mu_before_step_per_s: F64  # the baseline before that step (``mu_per_s`` is the one after)
    events_total: I64
    rejected_total: I64
    evicted_total: I64
    late_total: I64


_PAIR_INIT: Final = {  # per-pair array -> (dtype, initial value); shapes [pairs] unless listed
    "beta_cur": (np.float64, None),
    "t_obs_start": (np.float64, np.inf),
    "t_last": (np.float64, -np.inf),
    "s_exc": (np.float64, 0.0),
    "buf_t": (np.float64, 0.0),
    "buf_g": (np.float64, 0.0),
    "buf_start": (np.int64, 0),
    "buf_len": (np.int64, 0),
    "t_evicted": (np.float64, -np.inf),
    "n_events": (np.int64, 0),
    "n_rejected": (np.int64, 0),
    "n_evicted": (np.int64, 0),
    "n_late": (np.int64, 0),
    "warm_x": (np.float64, np.nan),
    "fit_mu": (np.float64, np.nan),
    "fit_alpha": (np.float64, np.nan),
    "fit_beta": (np.float64, np.nan),
    "fit_n": (np.float64, np.nan),
    "fit_loglik": (np.float64, np.nan),
    "fit_iters": (np.int64, 0),
    "fit_converged": (np.bool_, False),
    "fit_events": (np.int64, 0),
    "fit_window_s": (np.float64, np.nan),
    "fit_g_mean": (np.float64, np.nan),
    "fit_n_count": (np.float64, np.nan),
    "fit_t": (np.float64, np.nan),
    "fit_mu_before": (np.float64, np.nan),
    "fit_step_t": (np.float64, np.nan),
}


@dataclass(slots=True)
class HawkesState:
    """Per-pair Hawkes state, struct-of-arrays indexed by the dense pair id. Not thread-safe: the
    owner serialises update/refit/read (the scratch arrays are shared by all pairs)."""

    params: HawkesParams
    beta_cur: F64
    t_obs_start: F64
    t_last: F64
    s_exc: F64
    buf_t: F64
    buf_g: F64
    buf_start: I64
    buf_len: I64
    t_evicted: F64
    n_events: I64
    n_rejected: I64
    n_evicted: I64
    n_late: I64
    warm_x: F64
    fit_mu: F64
    fit_alpha: F64
    fit_beta: F64
    fit_n: F64
    fit_loglik: F64
    fit_iters: I64
    fit_converged: B1
    fit_events: I64
    fit_window_s: F64
    fit_g_mean: F64
    fit_n_count: F64
    fit_t: F64
    fit_mu_before: F64
    fit_step_t: F64
    scratch_s: F64
    scratch_g: F64

    @staticmethod
    def _shape(name: str, n_pairs: int, params: HawkesParams) -> tuple[int, ...]:
        if name in ("buf_t", "buf_g"):
            return (n_pairs, params.capacity)
        return (n_pairs, 5) if name == "warm_x" else (n_pairs,)

    @classmethod
    def allocate(cls, n_pairs: int, params: HawkesParams) -> HawkesState:
        if not isinstance(n_pairs, int) or n_pairs < 0:
            raise ValueError(f"n_pairs must be an int >= 0, got {n_pairs!r}")
        arrays: dict[str, npt.NDArray[Any]] = {}
        for name, (dtype, init) in _PAIR_INIT.items():
            fill = params.beta_init_per_s if init is None else init
            arrays[name] = np.full(cls._shape(name, n_pairs, params), fill, dtype=dtype)
        return cls(
            params=params,
            scratch_s=np.empty(params.capacity),
            scratch_g=np.empty(params.capacity),
            **arrays,
        )

    @property
    def n_pairs(self) -> int:
        return int(self.t_last.shape[0])

    @property
    def bytes_per_pair(self) -> int:
        total = sum(int(getattr(self, name).nbytes) for name in _PAIR_INIT)
        return total // max(self.n_pairs, 1)

    def grow(self, n_pairs: int) -> None:
        """Enlarge every per-pair array to ``n_pairs`` (>= current), keeping the values."""
        if not isinstance(n_pairs, int) or n_pairs < self.n_pairs:
            raise ValueError(f"grow needs an int >= {self.n_pairs}, got {n_pairs!r}")
        old = self.n_pairs
        fresh = HawkesState.allocate(n_pairs, self.params)
        for name in _PAIR_INIT:
            new = getattr(fresh, name)
            new[:old] = getattr(self, name)
            setattr(self, name, new)

    def update(self, pair_id: I32, t: F64, notional: F64) -> int:
        """Apply liquidations (arrival order); returns the rows rejected by screening."""
        if pair_id.dtype != np.int32 or t.dtype != np.float64 or notional.dtype != np.float64:
            raise TypeError("pair_id must be int32, t and notional float64")
        if not pair_id.shape == t.shape == notional.shape or pair_id.ndim != 1:
            raise ValueError("pair_id, t and notional must be 1-d and of equal length")
        bad = hawkes_update(pair_id, t, notional, self.params.mark_ref_usd, self.beta_cur,
                            self.t_obs_start, self.t_last, self.s_exc, self.buf_t, self.buf_g,
                            self.buf_start, self.buf_len, self.t_evicted, self.n_events,
                            self.n_rejected, self.n_evicted, self.n_late)  # fmt: skip
        return int(bad)

    def refit(self, pairs: I32, now_s: float) -> int:
        """Refit the listed pairs on the window ending at ``now_s``; returns how many were fitted
        (the others had too few events, or ids outside the state)."""
        if pairs.dtype != np.int32 or pairs.ndim != 1:
            raise TypeError("pairs must be a 1-d int32 array")
        if not math.isfinite(now_s):
            raise ValueError(f"now_s must be finite, got {now_s}")
        c = self.params
        fitted = hawkes_refit(pairs, float(now_s), c.window_s, c.min_events, c.beta_min_per_s,
                              c.beta_max_per_s, c.beta_init_per_s, c.max_decay_frac, c.n_max,
                              c.max_iter, c.gtol, c.count_bin_s,
                              c.step_min_after_s, c.step_min_side if c.baseline_step else 0,
                              self.buf_t, self.buf_g, self.buf_start, self.buf_len,
                              self.t_obs_start, self.t_evicted, self.t_last, self.s_exc,
                              self.beta_cur, self.warm_x,
                              self.fit_mu, self.fit_alpha, self.fit_beta, self.fit_n,
                              self.fit_loglik, self.fit_iters, self.fit_converged,
                              self.fit_events, self.fit_window_s, self.fit_g_mean,
                              self.fit_n_count, self.fit_t, self.fit_mu_before,
                              self.fit_step_t, self.scratch_s, self.scratch_g)  # fmt: skip
        return int(fitted)

    def read(self, now_s: float, rows: I64 | None = None) -> HawkesReadout:
        """Copies of the values of pairs ``rows`` (row ``i`` is pair ``rows[i]``; None: every
        pair, in order), intensity at ``now_s``. ``rows``: see ``jit.pair_rows`` (repeats allowed).
        """
        rows = pair_rows(rows, self.n_pairs)
        intensity = np.empty(rows.shape[0])
        hawkes_intensity_at(float(now_s), rows, self.fit_mu, self.fit_alpha, self.fit_beta,
                            self.s_exc, self.t_last, intensity)  # fmt: skip
        mu, br = self.fit_mu[rows], self.fit_n[rows]  # fancy indexing: copies
        return HawkesReadout(
            mu_per_s=mu,
            alpha_per_s=self.fit_alpha[rows],
            beta_per_s=self.fit_beta[rows],
            branching_ratio=br,
            exogenous_share=1.0 - br,
            stationary_rate_per_s=mu / (1.0 - br),
            intensity_per_s=intensity,
            loglik=self.fit_loglik[rows],
            iterations=self.fit_iters[rows],
            converged=self.fit_converged[rows],
            events_in_window=self.fit_events[rows],
            window_s=self.fit_window_s[rows],
            mark_mean=self.fit_g_mean[rows],
            n_count_moment=self.fit_n_count[rows],
            fit_time_s=self.fit_t[rows],
            baseline_step_t=self.fit_step_t[rows],
            mu_before_step_per_s=self.fit_mu_before[rows],
            events_total=self.n_events[rows],
            rejected_total=self.n_rejected[rows],
            evicted_total=self.n_evicted[rows],
            late_total=self.n_late[rows],
        )

    def warm_up(self) -> None:
        """Compile (or load from the numba cache) every kernel on empty input."""
        e = np.empty(0)
        self.update(np.empty(0, np.int32), e, e)
        self.refit(np.empty(0, np.int32), 0.0)
        self.read(0.0, np.empty(0, np.int64))
