"""Per pair, the sampling-aware branching ratio (``consumers.models.sampled_hawkes``) refit from
the liquidation times the exact fit buffers: binning, the refit of many pairs per tick, read-outs.

Pure module (numpy + numba only); docs/risk-models.md §2.5. The kernels read a pair's sorted event
times from a ring buffer in the layout of ``consumers.models.hawkes.HawkesState`` (``buf_t[p]``,
start slot ``buf_start[p]``, ``buf_len[p]`` events), so the per-pair buffer that feeds the exact
fit feeds this one too and nothing is copied:

* ``sampling_phase``: where a sampled venue's one-second windows start, from the times it kept;
* ``bin_ring``: the counts per bin over the last ``len(out)`` whole bins at that phase;
* ``refit_pairs``: per listed pair, the phase (binary series), the bins and ``fit_kernel``, in one
  compiled loop;
* ``SampledHawkesState``: per pair, the warm starts, the outputs of the last fit, the phase and
  the observation mode it used; ``refit`` once per tick, ``read`` any pairs.

A sampled feed (at most one event per ``dt`` window) fills at most one slot per second, so a
4096-event ring always covers a 900 s window; a complete feed faster than 4.5/s does not, and the
fitted stretch then starts at the oldest buffered event (``t_first``). Bitget keeps one event per
side: a pair buffering both sides sees up to two per window, which a binary series reads as one
(the union of the sides) and which leaves ``sampling_phase`` some collisions; one pair per side
keeps the sampler's rule exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from consumers.models.jit import F64, I8, I32, I64, njit, pair_rows
from consumers.models.sampled_hawkes import (
    OBS_BINARY,
    OBS_COUNTS,
    OUT_BETA,
    OUT_BINS,
    OUT_CONV,
    OUT_HI,
    OUT_ITERS,
    OUT_LEN,
    OUT_LL,
    OUT_LO,
    OUT_MU,
    OUT_MU_BEFORE,
    OUT_N,
    OUT_NZ,
    OUT_STEP,
    WARM_LEN,
    SampledParams,
    fit_kernel,
)


@njit
def sampling_phase(buf_t: F64, start: int, count: int, dt: float) -> tuple[float, int]:
    """Where a sampled feed's windows start, from the times it kept: ``(phase in [0, dt), pairs
    of consecutive events that still share a bin there)``.

    A venue that keeps one event per window ``[phase + j*dt, phase + (j+1)*dt)`` never sends two
    from one window, so a window boundary lies between any two consecutive kept events less than
    ``dt`` apart: inside the arc ``(t_i, t_i+1]`` taken modulo dt. The phase covered by the most
    arcs is found by one sweep over their ends (O(K log K)). Its stretch starts at a kept event
    and the true boundary lies after it, usually within milliseconds when the kept event is the
    latest of its window (Binance); the phase is put ``0.01*dt`` into the stretch (at most half
    of it), because binning earlier than the venue's boundary reads n far too low and binning
    later by a few hundredths of dt hardly changes it (benchmarks/bench_sampled_hawkes.py). Times
    are read from a ring ``buf_t[(start + j) % len]``, sorted; no pair closer than dt: phase 0."""
    cap = buf_t.shape[0]
    pts = np.empty(2 * max(count, 1))
    deltas = np.empty(2 * max(count, 1), np.int64)
    k = 0
    cover = 0  # arcs covering phase 0+
    arcs = 0
    for j in range(count - 1):
        t_a = buf_t[(start + j) % cap]
        gap = buf_t[(start + j + 1) % cap] - t_a
        if not (0.0 < gap < dt):
            continue
        arcs += 1
        u = t_a - dt * math.floor(t_a / dt)
        end = u + gap
        if end >= dt:
            end -= dt
            cover += 1
        pts[k] = u
        deltas[k] = 1
        pts[k + 1] = end
        deltas[k + 1] = -1
        k += 2
    if arcs == 0:
        return 0.0, 0
    order = np.argsort(pts[:k], kind="mergesort")
    best = cover  # the wrap-around stretch (last point, dt) + [0, first point)
    left = pts[order[k - 1]]
    length = dt - pts[order[k - 1]] + pts[order[0]]
    cur = cover
    for i in range(k):
        cur += deltas[order[i]]
        nxt = pts[order[i + 1]] if i + 1 < k else dt + pts[order[0]]
        if cur > best and nxt > pts[order[i]]:
            best = cur
            left = pts[order[i]]
            length = nxt - pts[order[i]]
    phase = left + min(0.01 * dt, 0.5 * length)
    return phase - dt * math.floor(phase / dt), arcs - best


@njit
def bin_ring(
    buf_t: F64, start: int, count: int, t_first: float, t_end: float, dt: float, phase: float,
    out: I32,
) -> int:  # fmt: skip
    """Counts per bin of the ring ``buf_t[(start + j) % len]`` into ``out``: the ``len(out)``
    bins of ``dt`` ending at the last bin boundary ``phase + k*dt <= t_end``; bins that start
    before ``t_first`` (before the pair was observed) are left out. Returns the number of bins
    used: they are ``out[len(out) - used:]`` (the rest is zeroed)."""
    cap = buf_t.shape[0]
    nb: int = out.shape[0]
    out[:] = 0
    hi = phase + dt * math.floor((t_end - phase) / dt)
    lo = hi - nb * dt
    skip = 0
    if t_first > lo:
        skip = min(nb, math.ceil((t_first - lo) / dt - 1e-9))
    for j in range(count):
        tj = buf_t[(start + j) % cap]
        if lo <= tj < hi:
            k = min(int((tj - lo) / dt), nb - 1)
            if k >= skip:
                out[k] += 1
    return nb - skip


@njit
def ring_from(buf_t: F64, start: int, count: int, t_lo: float) -> tuple[int, int]:
    """``(start, count)`` of the ring's events at or after ``t_lo`` (sorted ring: bisection)."""
    cap = buf_t.shape[0]
    lo, hi = 0, count
    while lo < hi:
        mid = (lo + hi) // 2
        if buf_t[(start + mid) % cap] < t_lo:
            lo = mid + 1
        else:
            hi = mid
    return (start + lo) % cap if cap else 0, count - lo


@njit
def refit_pairs(
    pairs: I32, observed: I8, t_first: F64, t_end: float, dt: float,
    buf_t: F64, buf_start: I64, buf_len: I64,
    beta_min: float, beta_max: float, max_decay_frac: float, prior_a: float, prior_b: float,
    z_q: float, min_bins: int, max_iter: int, gtol: float, step_min_side: int,
    step_min_after: int, stationary: bool,
    warm: F64, out: F64, phase: F64, mode: I8, window_end: F64, scratch: I32,
) -> int:  # fmt: skip
    """Refit pair ``pairs[i]`` observed as ``observed[i]`` from ``t_first[i]`` on, on the last
    ``len(scratch)`` whole bins before ``t_end``: its phase (binary series, from the events of
    the fitted stretch), the counts per bin, ``fit_kernel`` into ``out[p]`` with the warm start
    ``warm[p]`` (dropped when the pair's mode changes). Ids outside the state are skipped.
    Returns how many pairs got a defined n."""
    n_pairs, nb = out.shape[0], scratch.shape[0]
    defined = 0
    for i in range(pairs.shape[0]):
        p = pairs[i]
        if p < 0 or p >= n_pairs or p >= buf_t.shape[0]:
            continue
        binary = observed[i] == OBS_BINARY
        if mode[p] != observed[i]:  # another likelihood: the last modes are no start for it
            warm[p, :] = np.nan
            mode[p] = observed[i]
        st, cnt = ring_from(buf_t[p], buf_start[p], buf_len[p], t_end - (nb + 1) * dt)
        ph = sampling_phase(buf_t[p], st, cnt, dt)[0] if binary else 0.0
        phase[p] = ph
        used = bin_ring(buf_t[p], st, cnt, t_first[i], t_end, dt, ph, scratch)
        window_end[p] = ph + dt * math.floor((t_end - ph) / dt)
        lo = min(max(beta_min, 1.0 / (max_decay_frac * max(used, 1) * dt)), 0.5 * beta_max)
        fit_kernel(scratch[nb - used :], dt, binary, lo, beta_max, prior_a, prior_b, z_q,
                   min_bins, max_iter, gtol, step_min_side, step_min_after, stationary, warm[p],
                   out[p])  # fmt: skip
        if math.isfinite(out[p, OUT_N]):
            defined += 1
    return defined


# ---- per-pair state ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SampledReadout:
    """The last fit of pairs ``rows`` (row ``i``: pair ``rows[i]``). NaN where undefined: no fit
    yet, or fewer than ``min_bins`` non-empty bins in the last one."""

    branching_ratio: F64  # n, the posterior mode
    branching_ratio_lower: F64  # its interval at SampledParams.level (90 %)
    branching_ratio_upper: F64
    mu_per_s: F64  # exogenous rate (after the baseline step, if one was kept), events/s
    mu_before_step_per_s: F64  # the baseline before the step, NaN without one
    baseline_step_t: F64  # when the baseline stepped (a bin boundary, event time), NaN: none
    beta_per_s: F64  # kernel decay rate, 1/s
    loglik: F64  # log-likelihood at the mode, nats
    converged: npt.NDArray[np.bool_]
    iterations: I64  # BFGS iterations of the last fit
    bins: I64  # bins fitted (fewer than the window's at start or after an eviction)
    nonempty_bins: I64  # bins with an event (binary) or events (counts)
    observed: I8  # OBS_BINARY / OBS_COUNTS of the last fit, -1 before the first
    phase_s: F64  # where the bins start within a second (binary series), seconds
    window_end_s: F64  # the end of the fitted bins, event time; NaN before the first fit


_PER_PAIR = {"warm": WARM_LEN, "out": OUT_LEN, "phase": 0, "mode": 0, "window_end": 0}


@dataclass(slots=True)
class SampledHawkesState:
    """Per-pair fits of ``consumers.models.sampled_hawkes``, struct-of-arrays indexed by the
    dense pair id: the warm-start state, the last outputs (``OUT_*`` columns of ``out``), the
    phase and mode used and the end of the fitted bins. Not thread-safe (one scratch series)."""

    params: SampledParams
    n_bins: int  # bins per fitted window (900 at dt = 1 s: 15 minutes)
    dt: float
    warm: F64  # [pairs, WARM_LEN]
    out: F64  # [pairs, OUT_LEN]
    phase: F64  # [pairs], seconds in [0, dt); 0 for count series
    mode: I8  # [pairs], the observation mode of the last fit; -1: none yet
    window_end: F64  # [pairs], the end of the last fit's bins (event time), NaN: none yet
    scratch: I32  # [n_bins]

    @classmethod
    def allocate(
        cls, n_pairs: int, params: SampledParams | None = None, n_bins: int = 900, dt: float = 1.0
    ) -> SampledHawkesState:
        if not isinstance(n_pairs, int) or n_pairs < 0:
            raise ValueError(f"n_pairs must be an int >= 0, got {n_pairs!r}")
        if not isinstance(n_bins, int) or n_bins < 2:
            raise ValueError(f"n_bins must be an int >= 2, got {n_bins!r}")
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be finite and > 0, got {dt}")
        return cls(params=params if params is not None else SampledParams(), n_bins=n_bins,
                   dt=float(dt), warm=np.full((n_pairs, WARM_LEN), np.nan),
                   out=np.full((n_pairs, OUT_LEN), np.nan), phase=np.zeros(n_pairs),
                   mode=np.full(n_pairs, -1, np.int8), window_end=np.full(n_pairs, np.nan),
                   scratch=np.zeros(n_bins, np.int32))  # fmt: skip

    @property
    def n_pairs(self) -> int:
        return int(self.out.shape[0])

    @property
    def bytes_per_pair(self) -> int:
        total = sum(int(getattr(self, name).nbytes) for name in _PER_PAIR)
        return total // max(self.n_pairs, 1)

    def grow(self, n_pairs: int) -> None:
        """Enlarge the per-pair arrays to ``n_pairs`` (>= current), keeping the values."""
        if not isinstance(n_pairs, int) or n_pairs < self.n_pairs:
            raise ValueError(f"grow needs an int >= {self.n_pairs}, got {n_pairs!r}")
        fresh = SampledHawkesState.allocate(n_pairs, self.params, self.n_bins, self.dt)
        old = self.n_pairs
        for name in _PER_PAIR:
            new = getattr(fresh, name)
            new[:old] = getattr(self, name)
            setattr(self, name, new)

    def refit(
        self, pairs: I32, t_end_s: float, buf_t: F64, buf_start: I64, buf_len: I64, t_first: F64,
        observed: I8,
    ) -> int:  # fmt: skip
        """Refit the listed pairs on their last ``n_bins`` whole bins before ``t_end_s`` (pass
        ``now`` minus the lateness you wait for, ``SampledParams.end_lag_s``). The rings
        ``buf_t[p]`` (sorted event times, ``buf_start[p]``/``buf_len[p]``:
        ``consumers.models.hawkes.HawkesState``'s layout) hold each pair's events. Per row ``i``
        of ``pairs``: ``t_first[i]``, when the pair's observation starts (its first event, or the
        latest evicted one); ``observed[i]``, ``OBS_BINARY`` or ``OBS_COUNTS``. Binary pairs are
        binned at their estimated ``sampling_phase``. Each pair's fit depends on its own ring and
        previous fit only. Returns how many pairs got a defined n."""
        if pairs.dtype != np.int32 or pairs.ndim != 1 or observed.dtype != np.int8:
            raise TypeError("pairs must be a 1-d int32 array and observed an int8 array")
        if not pairs.shape == observed.shape == t_first.shape or t_first.dtype != np.float64:
            raise ValueError("observed (int8) and t_first (float64) need one value per pair")
        if not np.isin(observed, (OBS_BINARY, OBS_COUNTS)).all():
            raise ValueError("observed must be OBS_BINARY or OBS_COUNTS")
        if buf_t.ndim != 2 or not buf_t.shape[0] == buf_start.shape[0] == buf_len.shape[0]:
            raise ValueError("buf_t [pairs, capacity], buf_start and buf_len [pairs] must agree")
        if not math.isfinite(t_end_s):
            raise ValueError(f"t_end_s must be finite, got {t_end_s}")
        p = self.params
        return int(refit_pairs(
            pairs, observed, t_first, float(t_end_s), self.dt, buf_t, buf_start, buf_len,
            p.beta_min_per_s, p.beta_max_per_s, p.max_decay_frac, p.prior_a, p.prior_b, p.z_q,
            p.min_bins, p.max_iter, p.gtol, p.step_min_side if p.baseline_step else 0,
            math.ceil(p.step_min_after_s / self.dt), p.stationary_start,
            self.warm, self.out, self.phase, self.mode, self.window_end, self.scratch,
        ))  # fmt: skip

    def read(self, rows: I64 | None = None) -> SampledReadout:
        """Copies of the last fits of pairs ``rows`` (row ``i`` is pair ``rows[i]``; None: every
        pair; ``jit.pair_rows``, repeats allowed)."""
        rows = pair_rows(rows, self.n_pairs)
        o = self.out[rows]  # fancy indexing: a copy
        end = self.window_end[rows]
        bins = np.nan_to_num(o[:, OUT_BINS]).astype(np.int64)
        return SampledReadout(
            branching_ratio=o[:, OUT_N].copy(),
            branching_ratio_lower=o[:, OUT_LO].copy(),
            branching_ratio_upper=o[:, OUT_HI].copy(),
            mu_per_s=o[:, OUT_MU].copy(),
            mu_before_step_per_s=o[:, OUT_MU_BEFORE].copy(),
            baseline_step_t=end - (o[:, OUT_BINS] - o[:, OUT_STEP]) * self.dt,
            beta_per_s=o[:, OUT_BETA].copy(),
            loglik=o[:, OUT_LL].copy(),
            converged=o[:, OUT_CONV] == 1.0,
            iterations=np.nan_to_num(o[:, OUT_ITERS]).astype(np.int64),
            bins=bins,
            nonempty_bins=np.nan_to_num(o[:, OUT_NZ]).astype(np.int64),
            observed=self.mode[rows],
            phase_s=self.phase[rows],
            window_end_s=end,
        )

    def warm_up(self) -> None:
        """Compile (or load from the numba cache) the kernels on empty input."""
        e = np.empty(0)
        self.refit(np.empty(0, np.int32), 0.0, np.empty((0, 1)), np.empty(0, np.int64),
                   np.empty(0, np.int64), e, np.empty(0, np.int8))  # fmt: skip
        self.read(np.empty(0, np.int64))
