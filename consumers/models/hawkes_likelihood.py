"""The Hawkes model's exact log-likelihood, its gradient, and the BFGS that maximises it
(docs/risk-models.md §2). Pure (numpy + numba).

* Recursion (Ozaki 1979): ``R_1 = 0``, ``R_k = exp(-beta*(t_k - t_{k-1}))*(R_{k-1} + g_{k-1})``,
  ``lambda(t_k) = mu + alpha*R_k``; with ``R'_k = dR_k/dbeta =
  exp(-beta*dt)*(R'_{k-1} - dt*(R_{k-1} + g_{k-1}))`` the gradient costs the same O(N) pass.
* Log-likelihood over the window ``[T0, T1]``, ``T = T1 - T0``, ``s_k = t_k - T0`` (docs/risk-models.md §2):
  ``LL = sum_k log(mu + alpha*R_k) - mu*T - (alpha/beta)*sum_k g_k*(1 - exp(-beta*(T - s_k)))``.
  Gradient: ``dLL/dmu = sum 1/lambda_k - T``; ``dLL/dalpha = sum R_k/lambda_k - C/beta``;
  ``dLL/dbeta = alpha*sum R'_k/lambda_k + alpha*C/beta^2 - (alpha/beta)*sum g_k*(T - s_k)*E_k``
  with ``E_k = exp(-beta*(T - s_k))`` and ``C = sum g_k*(1 - E_k)``.
* Constraints by reparametrisation, so every iterate is valid: ``mu = exp(a)``,
  ``n = n_max*sigmoid(b)`` (``0 <= n < n_max < 1``), ``log beta = log beta_lo +
  log(beta_max/beta_lo)*sigmoid(c)``, ``alpha = n*beta/E[g] >= 0``. BFGS (Nocedal & Wright 2006,
  Alg. 6.1, update 6.17, first-step scaling 6.20) on ``-LL/N`` with Armijo backtracking,
  warm-started from the pair's last fit (its n and beta pulled back inside the sigmoids' +-6).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from consumers.models.jit import F64, njit

_MAX_STEP: Final = 3.0  # largest BFGS step per coordinate (log/logit units)
_ARMIJO: Final = 1e-4


@njit
def loglik_grad_step(
    s: F64, g: F64, n_ev: int, T: float, tau: float, mu1: float, mu2: float, alpha: float,
    beta: float, grad: F64,
) -> float:  # fmt: skip
    """Exact log-likelihood of the first ``n_ev`` sorted times ``s`` in ``[0, T]`` with the
    baseline ``mu1`` on ``[0, tau)`` and ``mu2`` on ``[tau, T]`` (``tau >= T``: constant ``mu1``);
    writes ``(dLL/dmu1, dLL/dmu2, dLL/dalpha, dLL/dbeta)`` into ``grad``."""
    r = 0.0
    dr = 0.0
    ll = 0.0
    g_mu1 = 0.0
    g_mu2 = 0.0
    g_al = 0.0
    g_be = 0.0
    comp = 0.0  # sum g_k (1 - E_k)
    dcomp = 0.0  # sum g_k (T - s_k) E_k
    for k in range(n_ev):
        if k > 0:
            dt = s[k] - s[k - 1]
            e = math.exp(-beta * dt)
            x = r + g[k - 1]
            dr = e * (dr - dt * x)
            r = e * x
        before = s[k] < tau
        lam = (mu1 if before else mu2) + alpha * r
        ll += math.log(lam)
        inv = 1.0 / lam
        if before:
            g_mu1 += inv
        else:
            g_mu2 += inv
        g_al += r * inv
        g_be += dr * inv
        tail = T - s[k]
        comp -= g[k] * math.expm1(-beta * tail)
        dcomp += g[k] * tail * math.exp(-beta * tail)
    len1 = min(tau, T)
    len2 = T - len1
    ll -= mu1 * len1 + mu2 * len2 + (alpha / beta) * comp
    grad[0] = g_mu1 - len1
    grad[1] = g_mu2 - len2
    grad[2] = g_al - comp / beta
    grad[3] = alpha * g_be + alpha * comp / (beta * beta) - (alpha / beta) * dcomp
    return ll


@njit
def loglik_grad(
    s: F64, g: F64, n_ev: int, T: float, mu: float, alpha: float, beta: float, grad: F64
) -> float:
    """The constant-baseline case; writes ``(dLL/dmu, dLL/dalpha, dLL/dbeta)`` into ``grad``."""
    g4 = np.empty(4)
    ll = loglik_grad_step(s, g, n_ev, T, np.inf, mu, mu, alpha, beta, g4)
    grad[0] = g4[0]
    grad[1] = g4[2]
    grad[2] = g4[3]
    return ll


@njit
def sigmoid(x: float) -> float:
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@njit
def beta_of(c: float, beta_lo: float, beta_hi: float) -> tuple[float, float]:
    """``beta`` in [beta_lo, beta_hi] (log-sigmoid map, clamped against rounding) and d beta/dc."""
    lb, ub = math.log(beta_lo), math.log(beta_hi)
    sc = sigmoid(c)
    beta = min(max(math.exp(lb + (ub - lb) * sc), beta_lo), beta_hi)
    return beta, beta * (ub - lb) * sc * (1.0 - sc)


@njit
def params_from_x(x: F64, g_mean: float, beta_lo: float, beta_hi: float, n_max: float) -> F64:
    """(mu, alpha, beta, n, mu_before) from the unconstrained ``x = (a, b, c)`` or ``(a1, a2, b,
    c)``: ``mu`` is the baseline now (after the step), ``mu_before`` the one before it (NaN for a
    constant baseline)."""
    k = x.shape[0] - 2
    out = np.empty(5)
    out[0] = math.exp(x[k - 1])
    out[3] = n_max * sigmoid(x[k])
    out[2] = beta_of(x[k + 1], beta_lo, beta_hi)[0]
    out[1] = out[3] * out[2] / g_mean
    out[4] = math.exp(x[0]) if k == 2 else np.nan
    return out


@njit
def _objective(
    x: F64, s: F64, g: F64, n_ev: int, T: float, tau: float, g_mean: float, beta_lo: float,
    beta_hi: float, n_max: float, gx: F64, gp: F64,
) -> float:  # fmt: skip
    """``-LL/N`` at ``x`` and its gradient in ``gx``; +inf where LL is not finite.
    ``x = (log mu, b, c)``, or ``(log mu1, log mu2, b, c)`` for the step baseline at ``tau``;
    ``gp`` (4 long) receives the natural-parameter gradient."""
    k = x.shape[0] - 2  # index of b
    sb = sigmoid(x[k])
    mu1 = math.exp(x[0])
    mu2 = math.exp(x[1]) if k == 2 else mu1
    n = n_max * sb
    beta, dbeta_dc = beta_of(x[k + 1], beta_lo, beta_hi)
    alpha = n * beta / g_mean
    ll = loglik_grad_step(s, g, n_ev, T, tau if k == 2 else np.inf, mu1, mu2, alpha, beta, gp)
    if not (math.isfinite(ll) and math.isfinite(gp[0] + gp[1] + gp[2] + gp[3])):
        return np.inf
    w = -1.0 / n_ev
    gx[0] = w * gp[0] * mu1
    if k == 2:
        gx[1] = w * gp[1] * mu2
    gx[k] = w * gp[2] * (beta / g_mean) * n * (1.0 - sb)
    gx[k + 1] = w * (gp[3] + gp[2] * n / g_mean) * dbeta_dc
    return -ll / n_ev


@njit
def _dot(u: F64, v: F64) -> float:
    acc = 0.0
    for i in range(u.shape[0]):
        acc += u[i] * v[i]
    return acc


@njit
def mle_fit(
    s: F64, g: F64, n_ev: int, T: float, tau: float, g_mean: float, beta_lo: float,
    beta_hi: float, n_max: float, max_iter: int, gtol: float, x: F64,
) -> tuple[float, int, bool]:  # fmt: skip
    """BFGS from ``x`` (updated in place to the optimum), beta in ``[beta_lo, beta_hi]``; ``x``
    has 3 entries (constant baseline) or 4 (a baseline step at ``tau``), see ``_objective``.

    Returns (log-likelihood, iterations, converged): converged means max |grad(-LL/N)| < gtol.
    Plain loops (no BLAS: numba's np.dot needs SciPy, which is a test-only dependency).
    """
    dim = x.shape[0]
    gx = np.empty(dim)
    gp = np.empty(4)
    gx1 = np.empty(dim)
    x1 = np.empty(dim)
    d = np.empty(dim)
    sv = np.empty(dim)
    yv = np.empty(dim)
    hy = np.empty(dim)
    h = np.eye(dim)
    f = _objective(x, s, g, n_ev, T, tau, g_mean, beta_lo, beta_hi, n_max, gx, gp)
    if not math.isfinite(f):
        return -np.inf, 0, False
    it = 0
    converged = False
    while True:
        if np.max(np.abs(gx)) < gtol:
            converged = True
            break
        if it >= max_iter:
            break
        it += 1
        for i in range(dim):
            acc = 0.0
            for j in range(dim):
                acc += h[i, j] * gx[j]
            d[i] = -acc
        slope = _dot(d, gx)
        if not slope < 0.0:  # not a descent direction: restart from steepest descent
            h[:, :] = 0.0
            for i in range(dim):
                h[i, i] = 1.0
                d[i] = -gx[i]
            slope = _dot(d, gx)
        big = np.max(np.abs(d))
        if big > _MAX_STEP:
            for i in range(dim):
                d[i] *= _MAX_STEP / big
            slope *= _MAX_STEP / big
        step = 1.0
        f1 = np.inf
        for _ in range(60):
            for i in range(dim):
                x1[i] = x[i] + step * d[i]
            f1 = _objective(x1, s, g, n_ev, T, tau, g_mean, beta_lo, beta_hi, n_max, gx1, gp)
            if f1 <= f + _ARMIJO * step * slope:
                break
            step *= 0.5
        if not f1 <= f + _ARMIJO * step * slope:  # no decrease left at float precision
            break
        for i in range(dim):
            sv[i] = x1[i] - x[i]
            yv[i] = gx1[i] - gx[i]
        sy = _dot(sv, yv)
        if sy > 1e-300:
            if it == 1:  # scale the initial inverse Hessian (N&W 6.20)
                scale = sy / _dot(yv, yv)
                for i in range(dim):
                    for j in range(dim):
                        h[i, j] = scale if i == j else 0.0
            rho = 1.0 / sy
            for i in range(dim):
                acc = 0.0
                for j in range(dim):
                    acc += h[i, j] * yv[j]
                hy[i] = acc
            c_ss = rho * rho * _dot(yv, hy) + rho
            for i in range(dim):
                for j in range(dim):
                    h[i, j] += c_ss * sv[i] * sv[j] - rho * (hy[i] * sv[j] + sv[i] * hy[j])
        for i in range(dim):
            x[i] = x1[i]
            gx[i] = gx1[i]
        f = f1
    return -f * n_ev, it, converged
