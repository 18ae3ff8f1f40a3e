"""The Hawkes log-likelihood and its gradients (consumers/models/hawkes_likelihood.py) against the
double sum of hawkes_ref.py and central differences.

Tolerances: log-likelihood and gradient vs the double sum: |diff| <= 1e-9 * (sum of |terms|) per
value; reparametrised gradient vs central differences (step 1e-6): rel 1e-5 + 1e-8 * (1 + |f|).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.models import hawkes_likelihood as hk
from tests.consumers.models.hawkes_ref import loglik_ref


@st.composite
def window_data(draw: st.DrawFn) -> tuple[list[float], list[float], float]:
    n = draw(st.integers(1, 40))
    gaps = draw(
        st.lists(
            st.one_of(
                st.just(0.0), st.floats(0.0, 0.01), st.floats(0.0, 30.0), st.floats(0.0, 1e4)
            ),
            min_size=n,
            max_size=n,
        )
    )
    s = np.cumsum(gaps).tolist()
    # Marks as the model computes them: g = 1 (unmarked) or g = log(1 + m/mark_ref_usd), with a
    # notional m of at least a cent against a reference of at most $1B: g >= 1e-11 (or 0, a mark
    # that cannot excite). Smaller, e.g. subnormal, marks cannot occur, and alpha = n*beta/E[g]
    # would leave the float range.
    mark = st.one_of(st.just(1.0), st.just(0.0), st.floats(1e-11, 20.0))
    g = draw(st.lists(mark, min_size=n, max_size=n))
    T = s[-1] + draw(st.one_of(st.just(0.0), st.floats(0.0, 100.0)))
    if T <= 0:
        T = 1.0
    return s, g, T


@settings(deadline=None, max_examples=200)
@given(
    data=window_data(),
    mu=st.floats(1e-3, 100.0),
    alpha=st.one_of(st.just(0.0), st.floats(0.0, 50.0)),
    beta=st.floats(1e-2, 100.0),
)
def test_loglik_matches_double_sum(
    data: tuple[list[float], list[float], float], mu: float, alpha: float, beta: float
) -> None:
    s, g, T = data
    grad = np.empty(3)
    ll = hk.loglik_grad(np.array(s), np.array(g), len(s), T, mu, alpha, beta, grad)
    want, want_grad, mags = loglik_ref(s, g, T, mu, alpha, beta)
    assert abs(ll - want) <= 1e-9 * mags[0]
    for k in range(3):  # (+1e-300: subnormal terms round differently in the two sums)
        assert abs(grad[k] - want_grad[k]) <= 1e-9 * mags[k + 1] + 1e-300


@settings(deadline=None, max_examples=60)
@given(
    data=window_data(),
    x=st.tuples(st.floats(-5.0, 3.0), st.floats(-4.0, 4.0), st.floats(-4.0, 4.0)),
)
def test_reparametrised_gradient_matches_finite_differences(
    data: tuple[list[float], list[float], float], x: tuple[float, float, float]
) -> None:
    s, g, T = data
    g_mean = sum(g) / len(g)
    if g_mean <= 0:
        return
    _check_gradient(np.array(x), (np.array(s), np.array(g), len(s), T, np.inf, g_mean))


def _check_gradient(x: np.ndarray, args: tuple[Any, ...]) -> None:
    """``_objective``'s gradient against central differences, each coordinate."""
    full = (*args, 0.01, 100.0, 0.999)
    objective: Callable[..., float] = hk._objective  # a numba dispatcher: untyped arguments
    gx, gp, tmp = np.empty(x.size), np.empty(4), np.empty(x.size)
    f = objective(x, *full, gx, gp)
    h = 1e-6
    for k in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp[k] += h
        xm[k] -= h
        fd = (objective(xp, *full, tmp, gp) - objective(xm, *full, tmp, gp)) / (2 * h)
        # truncation ~h^2 |f'''|, rounding ~eps |f| / h: both below 1e-8 (1 + |f|)
        assert abs(gx[k] - fd) <= 1e-5 * abs(fd) + 1e-8 * (1 + abs(f))


@settings(deadline=None, max_examples=60)
@given(
    data=window_data(),
    x=st.tuples(*[st.floats(-4.0, 3.0)] * 2, st.floats(-4.0, 4.0), st.floats(-4.0, 4.0)),
    frac=st.floats(0.0, 1.0),
)
def test_step_baseline_likelihood_and_gradient(
    data: tuple[list[float], list[float], float], x: tuple[float, ...], frac: float
) -> None:
    """The one-step-baseline LL against the double sum, and its reparametrised gradient (4
    coordinates) against central differences; with equal levels it is the constant LL."""
    s, g, T = data
    g_mean = sum(g) / len(g)
    if g_mean <= 0:
        return
    tau = frac * T
    mu1, mu2, alpha, beta = math.exp(x[0]), math.exp(x[1]), 0.7, 1.3
    grad = np.empty(4)
    ll = hk.loglik_grad_step(np.array(s), np.array(g), len(s), T, tau, mu1, mu2, alpha, beta, grad)
    want, _, mags = loglik_ref(s, g, T, mu1, alpha, beta, step=(tau, mu2))
    assert abs(ll - want) <= 1e-9 * mags[0]
    same = hk.loglik_grad_step(
        np.array(s), np.array(g), len(s), T, tau, mu1, mu1, alpha, beta, grad
    )
    const = hk.loglik_grad(np.array(s), np.array(g), len(s), T, mu1, alpha, beta, np.empty(3))
    assert math.isclose(same, const, rel_tol=1e-12, abs_tol=1e-12)
    _check_gradient(np.array(x), (np.array(s), np.array(g), len(s), T, tau, g_mean))
