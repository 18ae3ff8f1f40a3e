"""Numerics of consumers/models/sampled_hawkes.py: the binned Hawkes log-posterior, its optimiser
and its Laplace curvature. Pure module (numpy + numba only); the model, its assumptions and its
measured biases are in consumers/models/sampled_hawkes.py's docstring (docs/risk-models.md §2.5).

* ``log_post``: one O(non-empty bins) pass of the assumed-density filter (binary bins) or the
  conditional-mean filter (count bins), returning the log-posterior, the log-likelihood and the
  exact gradient. The gradient is carried forward with the recursion as dual numbers: a value and
  its four partial derivatives in ``(log mu1, log mu2, logit n, c)`` in a tuple, so numba keeps
  them in registers; the helpers are inlined at numba IR level and the pass is compiled with the
  fast-math flags that allow reassociation (about 2x), not those that assume finite values.
* ``bfgs``: BFGS (Nocedal & Wright 2006, Alg. 6.1) on ``-log posterior / bins`` with Armijo
  backtracking, from an optional initial inverse Hessian (a warm start).
* ``laplace``: the Hessian of ``-log posterior`` by forward differences of the exact gradient,
  its Cholesky factor, the standard deviation of logit n and the inverse (for the next warm start).

Measured (one core): 80-170 ns per non-empty bin and evaluation, empty runs O(1); a cold fit of a
900-bin window 0.2-4 ms, a warm refit 2-3 iterations (benchmarks/bench_sampled_hawkes.py).
Reference: the per-bin pure-Python filter in tests/consumers/models/test_sampled_hawkes.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final, TypeVar, cast

import numba
import numpy as np

from consumers.models.jit import F64, I32, I64, njit

F = TypeVar("F", bound=Callable[..., object])
D = tuple[float, float, float, float, float]  # value and d/d(log mu1, log mu2, logit n, c)

MAX_STEP: Final = 3.0  # largest BFGS step per coordinate (log / logit units)
_ARMIJO: Final = 1e-4
Z_MAX: Final = 30.0  # |logit n| and |c| stay below this (n within 1e-13 of 0 and 1)
_H_STEP: Final = 1e-4  # finite-difference step of the Hessian (unconstrained units)
# below this mean, S is taken as known (the Gamma law's limit): after long empty stretches it
# underflows, and 1/m would turn its derivatives into NaN
_S_TINY: Final = 1e-150
# LLVM may reassociate and contract the dual-number arithmetic; not the no-NaN / no-inf flags,
# so non-finite values still propagate and are caught
_FAST: Final = {"nsz", "arcp", "contract", "afn", "reassoc"}


def _inline(fn: F) -> F:
    """A dual-number helper, inlined into its caller at numba IR level (no call per operation)."""
    return cast(F, numba.njit(cache=True, inline="always")(fn))


# ---- dual numbers (value + 4 partial derivatives), tuples so numba keeps them in registers ------


@_inline
def _c(v: float) -> D:
    return (v, 0.0, 0.0, 0.0, 0.0)


@_inline
def _add(a: D, b: D) -> D:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4])


@_inline
def _sub(a: D, b: D) -> D:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3], a[4] - b[4])


@_inline
def _mul(a: D, b: D) -> D:
    return (a[0] * b[0], a[1] * b[0] + a[0] * b[1], a[2] * b[0] + a[0] * b[2],
            a[3] * b[0] + a[0] * b[3], a[4] * b[0] + a[0] * b[4])  # fmt: skip


@_inline
def _div(a: D, b: D) -> D:
    q = a[0] / b[0]
    r = 1.0 / b[0]
    return (q, (a[1] - q * b[1]) * r, (a[2] - q * b[2]) * r, (a[3] - q * b[3]) * r,
            (a[4] - q * b[4]) * r)  # fmt: skip


@_inline
def _scl(a: D, s: float) -> D:
    return (a[0] * s, a[1] * s, a[2] * s, a[3] * s, a[4] * s)


@_inline
def _fn(a: D, f: float, df: float) -> D:
    """``f(a)`` with its derivative ``df = f'(a[0])`` (chain rule)."""
    return (f, df * a[1], df * a[2], df * a[3], df * a[4])


@_inline
def _log1p_over(q: D) -> D:
    """``log(1 + q)/q`` (1 at q = 0), stable for small q."""
    x = q[0]
    if x < 1e-4:
        return _fn(q, 1.0 - x / 2.0 + x * x / 3.0, -0.5 + 2.0 * x / 3.0)
    h = math.log1p(x) / x
    return _fn(q, h, (1.0 / (1.0 + x) - h) / x)


# ---- the log-posterior -------------------------------------------------------------------------


@_inline
def _consts(
    mu: D, n: D, alpha: D, dt: float, omek: D, k1: D, k2: D, ln: D
) -> tuple[D, D, D, D, D, D]:
    """Per-baseline constants: (mu*dt, c = mu*n/(1-n) (stationary mean of S), G = c*(1 - ek)
    (so E[S_end | S] = S*ek + G), BK2 and F (E[S_end^2 | S] = S^2*e2 + BK2*S + F),
    H (E[N | S] = H + ln*S))."""
    mudt = _scl(mu, dt)
    c = _div(_mul(mu, n), _sub(_c(1.0), n))
    b = _add(_scl(_mul(alpha, mu), 2.0), _mul(alpha, alpha))
    f = _add(_mul(b, _mul(c, _sub(k1, k2))), _mul(_mul(_mul(alpha, alpha), mu), k1))
    h = _sub(_div(mudt, _sub(_c(1.0), n)), _mul(c, ln))
    return mudt, c, _mul(c, omek), _mul(b, k2), f, h


@_inline
def _decay(beta: D, ell: float) -> tuple[D, D]:
    """``exp(-beta*ell)`` and ``A(ell) = (1 - exp(-beta*ell))/beta``."""
    e = math.exp(-beta[0] * ell)
    return _fn(beta, e, -ell * e), _div(_fn(beta, -math.expm1(-beta[0] * ell), ell * e), beta)


@_inline
def _gap(m: D, v: D, steps: float, mudt: D, decay: D, big_a: D, binary: bool) -> tuple[D, D, D]:
    """``steps`` empty bins (``decay``, ``big_a`` from ``_decay`` over their length): (log P(no
    event), mean and variance of S after them)."""
    lp = _scl(mudt, -steps)
    if not binary or m[0] <= _S_TINY or v[0] <= 0.0:  # S at its mean (counts), or negligible
        return _sub(lp, _mul(m, big_a)), _mul(m, decay), _mul(v, _mul(decay, decay))
    q = _div(_mul(big_a, v), m)  # Gamma(shape m^2/v, rate m/v): E[exp(-A S)] = (1+q)^(-shape)
    lp = _sub(lp, _mul(_mul(m, big_a), _log1p_over(q)))
    inv = _div(decay, _add(_c(1.0), q))
    return lp, _mul(m, inv), _mul(v, _mul(inv, inv))


@numba.njit(cache=True, fastmath=_FAST)
def log_post(
    pos: I64, cnt: I32, n_nz: int, n_bins: int, dt: float, binary: bool, stationary: bool,
    k_step: int, x: F64, beta_lo: float, beta_hi: float, prior_a: float, prior_b: float,
    grad: F64,
) -> tuple[float, float]:  # fmt: skip
    """(log-posterior, log-likelihood) at ``x``; the posterior's gradient in ``grad`` (len(x)).

    The series: ``n_bins`` bins of ``dt`` s, of which ``pos[:n_nz]`` (increasing) are non-empty
    with counts ``cnt`` (1 for a binary feed). ``x = (log mu, logit n, c)`` or, with a baseline
    step, ``(log mu1, log mu2, logit n, c)`` and ``mu2`` from bin ``k_step`` on. ``stationary``:
    S starts from its stationary law, else from 0 (no event before the series)."""
    step = x.shape[0] == 4
    mu1 = (math.exp(x[0]), math.exp(x[0]), 0.0, 0.0, 0.0)
    mu2 = (math.exp(x[1]), 0.0, math.exp(x[1]), 0.0, 0.0) if step else mu1
    z, cc = x[x.shape[0] - 2], x[x.shape[0] - 1]
    sn = 1.0 / (1.0 + math.exp(-z))
    n = (sn, 0.0, 0.0, sn * (1.0 - sn), 0.0)
    sb = 1.0 / (1.0 + math.exp(-cc))
    lb, ub = math.log(beta_lo), math.log(beta_hi)
    bv = math.exp(lb + (ub - lb) * sb)
    beta = (bv, 0.0, 0.0, 0.0, bv * (ub - lb) * sb * (1.0 - sb))
    alpha = _mul(n, beta)
    kap = _mul(beta, _sub(_c(1.0), n))
    e_b, a = _decay(beta, dt)
    ekv = math.exp(-kap[0] * dt)
    ek = _fn(kap, ekv, -dt * ekv)
    omek = _fn(kap, -math.expm1(-kap[0] * dt), dt * ekv)
    e2 = _mul(ek, ek)
    k1 = _div(_fn(kap, -math.expm1(-2.0 * kap[0] * dt), 2.0 * dt * ekv * ekv), _scl(kap, 2.0))
    k2 = _div(_mul(ek, omek), kap)
    ln = _div(omek, kap)
    c1 = _consts(mu1, n, alpha, dt, omek, k1, k2, ln)
    c2 = _consts(mu2, n, alpha, dt, omek, k1, k2, ln) if step else c1
    m, v = _c(0.0), _c(0.0)  # the series starts empty (as consumers.models.hawkes's exact MLE does)
    if stationary:  # or from the stationary law of S under mu1
        m = c1[1]
        v = _div(_mul(_mul(alpha, alpha), _add(mu1, c1[1])), _scl(kap, 2.0))
    ll = _c(0.0)
    k0 = 0  # next bin to process
    for i in range(n_nz + 1):
        k_end = pos[i] if i < n_nz else n_bins
        while k0 < k_end:  # empty bins, split at the step
            k_to = k_step if k0 < k_step < k_end else k_end
            cs = c1 if k0 < k_step else c2
            if k_to - k0 == 1:
                lp, m, v = _gap(m, v, 1.0, cs[0], e_b, a, binary)
            else:
                dec, big_a = _decay(beta, (k_to - k0) * dt)
                lp, m, v = _gap(m, v, float(k_to - k0), cs[0], dec, big_a, binary)
            ll = _add(ll, lp)
            k0 = k_to
        if i == n_nz:
            break
        cs = c1 if k0 < k_step else c2
        mudt, g, bk2, f, h = cs[0], cs[2], cs[3], cs[4], cs[5]
        e_s1 = _add(_mul(m, ek), g)  # E[S_end]
        if binary:
            lp0, m0, v0 = _gap(m, v, 1.0, mudt, e_b, a, True)  # the empty-bin branch
            p1v = -math.expm1(lp0[0])
            p0 = 1.0 - p1v
            p1 = _fn(lp0, p1v, -p0)
            ll = _add(ll, _fn(p1, math.log(p1[0]), 1.0 / p1[0]))
            e_s2 = _add(_add(_mul(_add(v, _mul(m, m)), e2), _mul(bk2, m)), f)
            p0d = _fn(lp0, p0, p0)
            m_new = _div(_sub(e_s1, _mul(p0d, m0)), p1)
            s2 = _div(_sub(e_s2, _mul(p0d, _add(v0, _mul(m0, m0)))), p1)
            v = _sub(s2, _mul(m_new, m_new))
            floor = 1e-9 * m_new[0] * m_new[0] + 1e-300
            if v[0] < floor:  # rounding on a nearly deterministic S
                v = _c(floor)
            m = m_new
        else:
            xk = float(cnt[i])
            theta = _add(mudt, _mul(a, m))
            mean_n = _add(h, _mul(ln, m))
            lam = _sub(_c(1.0), _div(theta, mean_n))
            if lam[0] < 0.0:
                lam = _c(0.0)
            lt = _fn(theta, math.log(theta[0]), 1.0 / theta[0])
            w = _add(theta, _scl(lam, xk))
            lw = _fn(w, math.log(w[0]), 1.0 / w[0])
            term = _sub(_add(lt, _scl(lw, xk - 1.0)), w)
            ll = _add(ll, _add(term, _c(-math.lgamma(xk + 1.0))))
            me = _mul(m, e_b)
            m = _add(me, _scl(_div(_sub(e_s1, me), mean_n), xk))
        k0 += 1
    # priors: Beta(prior_a, prior_b) on n in the logit coordinate; log-uniform beta in its bounds
    lp_n = prior_a * math.log(sn) + prior_b * math.log1p(-sn)
    lp_b = math.log(sb) + math.log1p(-sb)
    k = x.shape[0] - 2
    for j in range(x.shape[0]):
        grad[j] = 0.0
    grad[0] = ll[1]
    if step:
        grad[1] = ll[2]
    grad[k] = ll[3] + prior_a * (1.0 - sn) - prior_b * sn
    grad[k + 1] = ll[4] + 1.0 - 2.0 * sb
    return ll[0] + lp_n + lp_b, ll[0]


# ---- optimiser ---------------------------------------------------------------------------------


@njit
def _objective(
    x: F64, pos: I64, cnt: I32, n_nz: int, n_bins: int, dt: float, binary: bool,
    stationary: bool, k_step: int, beta_lo: float, beta_hi: float, prior_a: float,
    prior_b: float, gx: F64,
) -> float:  # fmt: skip
    """``-log posterior / n_bins`` and its gradient in ``gx``; +inf where it is not finite or
    ``x`` is outside the box that keeps n and beta off their limits."""
    k = x.shape[0] - 2
    if abs(x[k]) > Z_MAX or abs(x[k + 1]) > Z_MAX:
        return np.inf
    lp, _ = log_post(pos, cnt, n_nz, n_bins, dt, binary, stationary, k_step, x, beta_lo,
                     beta_hi, prior_a, prior_b, gx)  # fmt: skip
    w = -1.0 / n_bins
    ok = math.isfinite(lp)
    for j in range(x.shape[0]):
        gx[j] *= w
        ok = ok and math.isfinite(gx[j])
    return -lp / n_bins if ok else np.inf


@njit
def _dot(u: F64, v: F64) -> float:
    acc = 0.0
    for i in range(u.shape[0]):
        acc += u[i] * v[i]
    return acc


@njit
def bfgs(
    x: F64, pos: I64, cnt: I32, n_nz: int, n_bins: int, dt: float, binary: bool,
    stationary: bool, k_step: int, beta_lo: float, beta_hi: float, prior_a: float,
    prior_b: float, max_iter: int, gtol: float, h0: F64,
) -> tuple[float, int, bool]:  # fmt: skip
    """Minimise ``_objective`` from ``x`` (updated in place): BFGS (Nocedal & Wright 2006, Alg.
    6.1), Armijo backtracking, steps capped at ``MAX_STEP`` per coordinate. The initial inverse
    Hessian is ``h0`` when its entries are finite (a warm start), else the identity scaled after
    the first step (N&W 6.20); ``h0`` receives the final one. Returns (objective, iterations,
    converged: max |gradient| < gtol)."""
    dim = x.shape[0]
    gx = np.empty(dim)
    gx1 = np.empty(dim)
    x1 = np.empty(dim)
    d = np.empty(dim)
    sv = np.empty(dim)
    yv = np.empty(dim)
    hy = np.empty(dim)
    warm = np.isfinite(h0).all()
    h = h0.copy() if warm else np.eye(dim)
    args = (pos, cnt, n_nz, n_bins, dt, binary, stationary, k_step, beta_lo, beta_hi, prior_a,
            prior_b)  # fmt: skip
    f = _objective(x, *args, gx)
    if not math.isfinite(f):
        return np.inf, 0, False
    it = 0
    converged = True
    while np.max(np.abs(gx)) >= gtol:
        if it >= max_iter:
            converged = False
            break
        it += 1
        for i in range(dim):
            d[i] = -_dot(h[i], gx)
        slope = _dot(d, gx)
        if not slope < 0.0:  # not a descent direction: restart from steepest descent
            h[:, :] = np.eye(dim)
            for i in range(dim):
                d[i] = -gx[i]
            slope = _dot(d, gx)
        big = np.max(np.abs(d))
        if big > MAX_STEP:
            d *= MAX_STEP / big
            slope *= MAX_STEP / big
        step = 1.0
        f1 = np.inf
        for _ in range(60):
            for i in range(dim):
                x1[i] = x[i] + step * d[i]
            f1 = _objective(x1, *args, gx1)
            if f1 <= f + _ARMIJO * step * slope:
                break
            step *= 0.5
        if not f1 <= f + _ARMIJO * step * slope:  # no decrease left at float precision
            converged = bool(np.max(np.abs(gx)) < 10.0 * gtol)
            break
        for i in range(dim):
            sv[i] = x1[i] - x[i]
            yv[i] = gx1[i] - gx[i]
        sy = _dot(sv, yv)
        if sy > 1e-300:
            if it == 1 and not warm:  # scale the initial inverse Hessian (N&W 6.20)
                h[:, :] = np.eye(dim) * (sy / _dot(yv, yv))
            rho = 1.0 / sy
            for i in range(dim):
                hy[i] = _dot(h[i], yv)
            c_ss = rho * rho * _dot(yv, hy) + rho
            for i in range(dim):
                for j in range(dim):
                    h[i, j] += c_ss * sv[i] * sv[j] - rho * (hy[i] * sv[j] + sv[i] * hy[j])
        x[:] = x1
        gx[:] = gx1
        f = f1
    h0[:, :] = h
    return f, it, converged


@njit
def laplace(
    x: F64, pos: I64, cnt: I32, n_nz: int, n_bins: int, dt: float, binary: bool,
    stationary: bool, k_step: int, beta_lo: float, beta_hi: float, prior_a: float,
    prior_b: float, hinv: F64,
) -> float:  # fmt: skip
    """Laplace standard deviation of logit n at the mode ``x``: ``sqrt((H^-1)_zz)``, H the
    Hessian of -log posterior (forward differences of the exact gradient, symmetrised, Cholesky).
    ``hinv`` receives ``H^-1 * n_bins`` (the inverse Hessian of ``_objective``, for the next warm
    start). NaN (and a NaN ``hinv``) when H is not positive definite."""
    dim = x.shape[0]
    g0 = np.empty(dim)
    g1 = np.empty(dim)
    hes = np.empty((dim, dim))
    args = (pos, cnt, n_nz, n_bins, dt, binary, stationary, k_step, beta_lo, beta_hi, prior_a,
            prior_b)  # fmt: skip
    log_post(*args[:8], x, *args[8:], g0)
    xp = x.copy()
    for j in range(dim):
        xp[j] = x[j] + _H_STEP
        log_post(*args[:8], xp, *args[8:], g1)
        xp[j] = x[j]
        for i in range(dim):
            hes[i, j] = -(g1[i] - g0[i]) / _H_STEP
    hinv[:, :] = np.nan
    low = np.zeros((dim, dim))  # Cholesky of the symmetrised Hessian
    for i in range(dim):
        for j in range(i + 1):
            acc = 0.5 * (hes[i, j] + hes[j, i])
            for k in range(j):
                acc -= low[i, k] * low[j, k]
            if i == j:
                if not acc > 0.0:
                    return np.nan
                low[i, i] = math.sqrt(acc)
            else:
                low[i, j] = acc / low[j, j]
    e = np.empty(dim)
    for col in range(dim):  # solve H u = e_col: forward, then back substitution
        e[:] = 0.0
        e[col] = 1.0
        for i in range(dim):
            acc = e[i]
            for k in range(i):
                acc -= low[i, k] * e[k]
            e[i] = acc / low[i, i]
        for i in range(dim - 1, -1, -1):
            acc = e[i]
            for k in range(i + 1, dim):
                acc -= low[k, i] * e[k]
            e[i] = acc / low[i, i]
        for i in range(dim):
            hinv[i, col] = e[i] * n_bins
    var_z = hinv[dim - 2, dim - 2] / n_bins
    return math.sqrt(var_z) if var_z > 0.0 else np.nan
