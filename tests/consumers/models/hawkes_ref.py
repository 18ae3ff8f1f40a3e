"""Slow, obvious references for consumers/models/hawkes*.py, a seeded Hawkes simulator (Ogata
thinning), and an independent MLE (numpy likelihood, scipy L-BFGS-B) for the validation tests."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize  # type: ignore[import-untyped]

F64 = npt.NDArray[np.float64]


def mark_weight(m: float, mark_ref: float) -> float:
    """g(m): 1 unmarked (mark_ref == 0), else log(1 + m/mark_ref)."""
    return math.log1p(m / mark_ref) if mark_ref > 0 else 1.0


# ---- online state: every event kept, closed-form sums ------------------------------------------


@dataclass
class PairRef:
    events: list[tuple[float, float]] = field(default_factory=list)  # (t, g) in arrival order
    buffer: list[tuple[float, int, float]] = field(default_factory=list)  # (t, seq, g), sorted
    t_evicted: float = -math.inf
    rejected: int = 0
    evicted: int = 0
    late: int = 0


@dataclass
class HawkesRef:
    """The update kernel's contract, spelled out: screening, closed-form excitation sum, and a
    buffer holding the newest ``capacity`` events by time (ties: the earlier-buffered one is the
    older; an arriving event that would be the oldest of a full buffer is the one dropped)."""

    n_pairs: int
    capacity: int
    mark_ref: float = 0.0
    pairs: dict[int, PairRef] = field(default_factory=dict)
    bad: int = 0
    seq: int = 0

    def add(self, p: int, t: float, m: float) -> None:
        if not 0 <= p < self.n_pairs:
            self.bad += 1
            return
        pr = self.pairs.setdefault(p, PairRef())
        if not (math.isfinite(t) and math.isfinite(m) and m >= 0):
            pr.rejected += 1
            self.bad += 1
            return
        g = mark_weight(m, self.mark_ref)
        if pr.events and t < max(e[0] for e in pr.events):
            pr.late += 1
        pr.events.append((t, g))
        self.seq += 1
        if len(pr.buffer) == self.capacity:
            pr.evicted += 1
            if t <= pr.buffer[0][0]:
                pr.t_evicted = max(pr.t_evicted, t)
                return
            pr.t_evicted = max(pr.t_evicted, pr.buffer.pop(0)[0])
        bisect.insort_right(pr.buffer, (t, self.seq, g))

    def t_last(self, p: int) -> float:
        pr = self.pairs.get(p)
        return max((e[0] for e in pr.events), default=-math.inf) if pr else -math.inf

    def excitation(self, p: int, beta: float, buffered_only: bool = False) -> float:
        """sum_i g_i exp(-beta (t_last - t_i)) over every accepted event (or the buffer's)."""
        pr = self.pairs.get(p)
        if pr is None:
            return 0.0
        tl = self.t_last(p)
        evs = [(t, g) for t, _, g in pr.buffer] if buffered_only else pr.events
        return sum(g * math.exp(-beta * (tl - t)) for t, g in evs)


# ---- likelihood: the double sum ----------------------------------------------------------------


def loglik_ref(
    s: list[float], g: list[float], T: float, mu: float, alpha: float, beta: float,
    step: tuple[float, float] | None = None,
) -> tuple[float, tuple[float, float, float], tuple[float, float, float, float]]:  # fmt: skip
    """LL of sorted times ``s`` in [0, T] from the intensity written as a sum over earlier events
    (no recursion), its gradient in (mu, alpha, beta) by differentiating each term, and the
    magnitudes (sums of |terms|) of LL and each gradient component, for relative tolerances.
    ``step = (tau, mu2)``: the baseline is ``mu2`` from ``tau`` on (LL and magnitudes only are
    meaningful then)."""
    tau, mu2 = step if step is not None else (math.inf, mu)
    ll = ll_abs = 0.0
    d_mu = d_al = d_be = 0.0
    a_mu = a_al = a_be = 0.0
    for k, sk in enumerate(s):
        r = sum(g[i] * math.exp(-beta * (sk - s[i])) for i in range(k))
        dr = sum(-g[i] * (sk - s[i]) * math.exp(-beta * (sk - s[i])) for i in range(k))
        lam = (mu if sk < tau else mu2) + alpha * r
        ll += math.log(lam)
        ll_abs += abs(math.log(lam))
        d_mu += 1 / lam
        d_al += r / lam
        d_be += alpha * dr / lam
        a_mu += 1 / lam
        a_al += r / lam
        a_be += abs(alpha * dr / lam)
    comp = sum(-gk * math.expm1(-beta * (T - sk)) for sk, gk in zip(s, g, strict=True))
    dcomp = sum(gk * (T - sk) * math.exp(-beta * (T - sk)) for sk, gk in zip(s, g, strict=True))
    base = mu * min(tau, T) + mu2 * max(T - tau, 0.0)
    ll -= base + alpha / beta * comp
    ll_abs += base + alpha / beta * comp
    grad = (d_mu - T, d_al - comp / beta, d_be + alpha * comp / beta**2 - alpha / beta * dcomp)
    mags = (
        ll_abs,
        a_mu + T,
        a_al + comp / beta,
        a_be + alpha * comp / beta**2 + alpha / beta * dcomp,
    )
    return ll, grad, mags


def count_moment_ref(s: list[float], T: float, bin_s: float) -> float:
    """Counts in K = floor(T/bin) full bins ending at T; 1 - sqrt(mean/var), var with ddof=1."""
    k = math.floor(T / bin_s) if T > 0 else 0
    if k < 2:
        return math.nan
    start = T - k * bin_s
    counts = [0] * k
    for x in s:
        if x >= start:
            counts[min(int((x - start) / bin_s), k - 1)] += 1
    mean = sum(counts) / k
    var = sum((c - mean) ** 2 for c in counts) / (k - 1)
    if mean == 0:
        return math.nan
    if var == 0:
        return 0.0
    return min(max(1 - math.sqrt(mean / var), 0.0), 1 - 2**-53)


def count_ratio_theory(n: float, beta: float, bin_s: float) -> float:
    """Var[N]/E[N] over bins of ``bin_s`` for a stationary exponential Hawkes process, from its
    Bartlett spectrum Lambda*(beta^2 + w^2)/(kappa^2 + w^2), kappa = beta*(1 - n) (Hawkes 1971):
    1/(1-n)^2 - (1/(1-n)^2 - 1)*(1 - exp(-kappa*bin))/(kappa*bin)."""
    kappa = beta * (1 - n)
    big = 1 / (1 - n) ** 2
    return big - (big - 1) * (1 - math.exp(-kappa * bin_s)) / (kappa * bin_s)


# ---- simulation --------------------------------------------------------------------------------


def simulate_hawkes(
    mu: float,
    alpha: float,
    beta: float,
    t_end: float,
    seed: int,
    mark_sampler: Callable[[np.random.Generator], float] | None = None,
    mark_ref: float = 0.0,
) -> tuple[F64, F64]:
    """Ogata (1981) thinning on [0, t_end]: between events the intensity only decays, so its
    value now bounds it until the next candidate. Returns (times, marks); marks are 0 unmarked."""
    rng = np.random.default_rng(seed)
    t = 0.0
    exc = 0.0  # sum g_i exp(-beta (t - t_i))
    times: list[float] = []
    marks: list[float] = []
    while True:
        lam_bar = mu + alpha * exc
        w = rng.exponential(1 / lam_bar)
        t += w
        if t > t_end:
            break
        exc *= math.exp(-beta * w)
        if rng.uniform() * lam_bar <= mu + alpha * exc:
            m = mark_sampler(rng) if mark_sampler is not None else 0.0
            times.append(t)
            marks.append(m)
            exc += mark_weight(m, mark_ref)
    return np.asarray(times), np.asarray(marks)


def simulate_poisson_steps(rates: list[tuple[float, float]], seed: int) -> F64:
    """Poisson process with piecewise-constant rate: [(duration_s, rate_per_s), ...] in order."""
    rng = np.random.default_rng(seed)
    out: list[F64] = []
    t0 = 0.0
    for dur, rate in rates:
        n = rng.poisson(rate * dur)
        out.append(np.sort(t0 + rng.uniform(0, dur, n)))
        t0 += dur
    return np.concatenate(out)


def simulate_hawkes_step_baseline(
    mu1: float, mu2: float, tau: float, alpha: float, beta: float, t_end: float, seed: int
) -> F64:
    """Ogata thinning of an unmarked Hawkes process whose baseline steps from ``mu1`` to ``mu2``
    at ``tau``: the bound ``max(mu1, mu2) + excitation now`` holds until the next candidate."""
    rng = np.random.default_rng(seed)
    t, exc, out = 0.0, 0.0, list[float]()
    while True:
        bound = max(mu1, mu2) + exc
        w = rng.exponential(1.0 / bound)
        exc *= math.exp(-beta * w)
        t += w
        if t >= t_end:
            return np.array(out)
        if rng.uniform() * bound <= (mu1 if t < tau else mu2) + exc:
            out.append(t)
            exc += alpha


# ---- independent MLE ---------------------------------------------------------------------------


def _nll_numpy(theta: F64, s: F64, g: F64, T: float, g_mean: float) -> tuple[float, F64]:
    """-LL and its gradient in theta = (mu, n, beta), alpha = n*beta/g_mean. The excitation of
    each event is summed lag by lag (event k-j on event k, vectorised over k) until every
    term of a lag is below exp(-60) of its weight: no recursion."""
    mu, n, beta = (float(v) for v in theta)
    alpha = n * beta / g_mean
    r = np.zeros_like(s)
    dr = np.zeros_like(s)
    for j in range(1, s.size):
        dt = s[j:] - s[:-j]
        if beta * dt.min() > 60.0:
            break
        e = np.exp(-beta * dt)
        r[j:] += g[:-j] * e
        dr[j:] -= g[:-j] * dt * e
    lam = mu + alpha * r
    tail = T - s
    e_t = np.exp(-beta * tail)
    comp = float(np.sum(g * (1 - e_t)))
    ll = float(np.sum(np.log(lam))) - mu * T - alpha / beta * comp
    d_mu = float(np.sum(1 / lam)) - T
    d_alpha = float(np.sum(r / lam)) - comp / beta
    d_beta_direct = (
        alpha * float(np.sum(dr / lam))
        + alpha * comp / beta**2
        - alpha / beta * float(np.sum(g * tail * e_t))
    )
    # chain rule to (mu, n, beta): alpha = n*beta/g_mean
    grad = np.array([d_mu, d_alpha * beta / g_mean, d_beta_direct + d_alpha * n / g_mean])
    return -ll, -grad


def mle_scipy(
    t: F64,
    g: F64,
    t0: float,
    t1: float,
    beta_bounds: tuple[float, float] = (0.01, 100.0),
    n_max: float = 0.999,
    start: tuple[float, float, float] | None = None,
) -> tuple[float, float, float, float, float]:
    """(mu, alpha, beta, n, LL) by L-BFGS-B on box bounds mu >= 1e-12, 0 <= n <= n_max,
    beta in ``beta_bounds``. Times in [t0, t1], sorted."""
    s = np.asarray(t, dtype=np.float64) - t0
    g = np.asarray(g, dtype=np.float64)
    T = t1 - t0
    g_mean = float(g.mean())
    x0 = np.array(start if start is not None else (0.5 * s.size / T, 0.5, 1.0))
    res = minimize(
        _nll_numpy,
        x0,
        args=(s, g, T, g_mean),
        jac=True,
        method="L-BFGS-B",
        bounds=[(1e-12, None), (0.0, n_max), beta_bounds],
        options={"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-9},
    )
    mu, n, beta = (float(v) for v in res.x)
    return mu, n * beta / g_mean, beta, n, -float(res.fun)
