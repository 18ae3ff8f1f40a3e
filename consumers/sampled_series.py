"""From liquidation times to the binned series that consumers/sampled_hawkes.py fits.

Pure module (numpy + numba only); docs/risk-models.md §2. Both kernels read a pair's sorted event
times from a ring buffer in the layout of ``consumers.models.hawkes.HawkesState`` (``buf_t[p]``, start
slot ``buf_start[p]``, ``buf_len[p]`` events), so the per-pair buffer that feeds the exact fit feeds
this one too and nothing is copied:

* ``sampling_phase``: where a sampled venue's one-second windows start, from the times it kept;
* ``bin_ring``: the counts per bin over the last ``len(out)`` whole bins at that phase;
* ``SampledHawkesState``: per pair, the warm starts and outputs of ``fit_kernel``, refit from the
  rings in one call per tick.

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

from consumers.models.jit import F64, I8, I32, I64, njit
from consumers.sampled_hawkes import OBS_BINARY, OUT_LEN, OUT_N, WARM_LEN, SampledParams, fit_kernel


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


# ---- per-pair state: refit many pairs from their rings -----------------------------------------


@dataclass(slots=True)
class SampledHawkesState:
    """Per-pair fits of ``consumers.sampled_hawkes``, struct-of-arrays indexed by the dense pair
    id: the warm-start state, the last outputs (``OUT_*`` columns of ``out``) and the phase used.
    Not thread-safe (one scratch series for all pairs)."""

    params: SampledParams
    n_bins: int  # bins per fitted window (900 at dt = 1 s: 15 minutes)
    dt: float
    warm: F64  # [pairs, WARM_LEN]
    out: F64  # [pairs, OUT_LEN]
    phase: F64  # [pairs], seconds in [0, dt); 0 for count series
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
        out = np.full((n_pairs, OUT_LEN), np.nan)
        return cls(params=params if params is not None else SampledParams(), n_bins=n_bins,
                   dt=float(dt), warm=np.full((n_pairs, WARM_LEN), np.nan), out=out,
                   phase=np.zeros(n_pairs), scratch=np.zeros(n_bins, np.int32))  # fmt: skip

    @property
    def n_pairs(self) -> int:
        return int(self.out.shape[0])

    def grow(self, n_pairs: int) -> None:
        """Enlarge the per-pair arrays to ``n_pairs`` (>= current), keeping the values."""
        if not isinstance(n_pairs, int) or n_pairs < self.n_pairs:
            raise ValueError(f"grow needs an int >= {self.n_pairs}, got {n_pairs!r}")
        fresh = SampledHawkesState.allocate(n_pairs, self.params, self.n_bins, self.dt)
        old = self.n_pairs
        for name in ("warm", "out", "phase"):
            new = getattr(fresh, name)
            new[:old] = getattr(self, name)
            setattr(self, name, new)

    def refit(
        self, pairs: I32, t_end_s: float, buf_t: F64, buf_start: I64, buf_len: I64, t_first: F64,
        observed: I8,
    ) -> int:  # fmt: skip
        """Refit the listed pairs on their last ``n_bins`` whole bins before ``t_end_s`` (pass
        ``now`` minus the lateness you wait for). The rings ``buf_t[p]`` (sorted event times,
        ``buf_start[p]``/``buf_len[p]``: ``consumers.models.hawkes.HawkesState``'s layout) hold
        each pair's events; ``t_first[p]``: when its observation starts (the first event, or the
        oldest evicted one); ``observed[p]``: ``OBS_BINARY`` or ``OBS_COUNTS``. Binary pairs are
        binned at their estimated ``sampling_phase``. Returns how many pairs got a defined n."""
        if pairs.dtype != np.int32 or pairs.ndim != 1 or observed.dtype != np.int8:
            raise TypeError("pairs must be a 1-d int32 array and observed an int8 array")
        if buf_t.ndim != 2 or not buf_t.shape[0] == buf_start.shape[0] == buf_len.shape[0]:
            raise ValueError("buf_t [pairs, capacity], buf_start and buf_len [pairs] must agree")
        if not math.isfinite(t_end_s):
            raise ValueError(f"t_end_s must be finite, got {t_end_s}")
        p_, dt = self.params, self.dt
        defined = 0
        for p in pairs.tolist():
            if not (0 <= p < self.n_pairs and p < buf_t.shape[0]):
                continue
            binary = int(observed[p]) == OBS_BINARY
            st, cnt = int(buf_start[p]), int(buf_len[p])
            ph = sampling_phase(buf_t[p], st, cnt, dt)[0] if binary else 0.0
            self.phase[p] = ph
            used = bin_ring(buf_t[p], st, cnt, float(t_first[p]), t_end_s, dt, ph, self.scratch)
            obs = self.scratch[self.n_bins - used :]
            fit_kernel(obs, dt, binary, *p_.kernel_args(used, dt), self.warm[p], self.out[p])
            defined += int(math.isfinite(self.out[p, OUT_N]))
        return defined
