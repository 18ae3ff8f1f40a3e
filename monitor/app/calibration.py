"""Fitting the composite score (docs/detection.md §6): its component weights and the logistic map
from the weighted mean to a probability, on the detection evaluation's labelled 10 s bins. Pure
module (numpy); ``benchmarks/calibrate_score.py`` runs the scenarios and prints the result.

The data: per scenario, per 10 s bin, per pair (the venue-wide row ``*`` included), the score
components at the pair's last evaluation in the bin (``evaluation.run_job`` with components), and
the bin's class (``evaluation.label``: positive from 5 minutes before a cascade's peak minute to
its end, negative in calm, slow-grind and no-leverage scenarios and in a cascade scenario's bins
ending 15 minutes before its onset; other bins are not used). The model, for weights ``w``:

    raw_pair = sum_defined w_i * c_i / sum_defined w_i   (0 when no component is defined)
    x_bin    = max over the venue's pairs of raw_pair    (an alert fires on any pair)
    p_bin    = 1 / (1 + exp(-(a + b * x_bin)))

``fit_logistic`` gives (a, b) for fixed weights (Newton's method on the mean log-loss, slope kept
>= 0: the config refuses a falling map). ``fit_weights`` searches the weights coordinate by
coordinate on a grid, refitting (a, b) at each step. ``cross_validate`` holds one seed's
scenarios out at a time, so every reported probability comes from a fit that never saw its bin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

WEIGHT_GRID: tuple[float, ...] = tuple(np.round(np.arange(0.0, 0.61, 0.05), 2))


@dataclass(frozen=True)
class Dataset:
    comps: F64  # [rows, components], NaN: undefined
    group: I64  # [rows] the bin of each row, non-decreasing, every bin has a row
    y: B  # [bins] the bin's class
    fold: I64  # [bins] the scenario seed (the cross-validation's folds)

    @property
    def bins(self) -> int:
        return int(self.y.shape[0])

    def subset(self, keep: B) -> Dataset:
        """The bins where ``keep`` (and their rows), renumbered."""
        rows = keep[self.group]
        new_index = np.cumsum(keep) - 1
        return Dataset(self.comps[rows], new_index[self.group[rows]], self.y[keep],
                       self.fold[keep])  # fmt: skip


def dataset(
    outcomes: Sequence[Any], label: Callable[[Any, float], bool | None], n_components: int
) -> Dataset:
    """The labelled bins of ``outcomes`` (``evaluation.Outcome`` with ``comps``)."""
    comps: list[list[float]] = []
    group: list[int] = []
    y: list[bool] = []
    fold: list[int] = []
    for o in outcomes:
        by_bin: dict[float, list[list[float]]] = {}
        for t, _symbol, row in o.comps or ():
            by_bin.setdefault(t, []).append([math.nan if v is None else v for v in row])
        for t in sorted(by_bin):
            cls = label(o, t)
            if cls is None:
                continue
            for row in by_bin[t]:
                if len(row) != n_components:
                    raise ValueError(f"a row has {len(row)} components, expected {n_components}")
                comps.append(row)
                group.append(len(y))
            y.append(cls)
            fold.append(o.seed)
    return Dataset(np.array(comps, dtype=np.float64).reshape(-1, n_components),
                   np.array(group, dtype=np.int64), np.array(y, dtype=np.bool_),
                   np.array(fold, dtype=np.int64))  # fmt: skip


def undefined_in_positives(ds: Dataset, least: float = 0.05) -> list[int]:
    """The components defined in fewer than ``least`` of the positive bins' rows: the data says
    nothing about how they behave in a cascade, only that they are missing there (in the
    scenarios, a warm-up longer than the time to the onset), and a fit would learn their absence
    as a sign of a cascade; ``fit_weights`` keeps them at 0."""
    rows = ds.y[ds.group]
    defined = np.isfinite(ds.comps[rows]).mean(axis=0) if rows.any() else np.zeros(0)
    return [j for j, share in enumerate(defined) if share < least]


def raw_max(ds: Dataset, w: F64) -> F64:
    """Per bin, the largest weighted mean of the defined components over its rows."""
    defined = np.isfinite(ds.comps)
    num = np.where(defined, ds.comps, 0.0) @ w
    den = defined.astype(np.float64) @ w
    raw = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    starts = np.flatnonzero(np.r_[True, ds.group[1:] != ds.group[:-1]])
    out: F64 = np.maximum.reduceat(raw, starts) if raw.size else np.zeros(0)
    return out


def sigmoid(z: F64) -> F64:
    out: F64 = 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow warning for large |z|
    return out


def log_loss(p: F64, y: B) -> float:
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(np.where(y, np.log(q), np.log1p(-q))))


def brier(p: F64, y: B) -> float:
    return float(np.mean((p - y) ** 2))


def fit_logistic(x: F64, y: B, l2: float = 1e-4, iters: int = 100) -> tuple[float, float]:
    """(a, b) minimising the mean log-loss of ``sigmoid(a + b x)`` plus ``l2 * b^2 / 2`` (which
    keeps b finite when the classes separate), by Newton's method with step halving; b >= 0
    (the loss is convex, so when the free optimum has b < 0 the constrained one is b = 0 with
    the intercept of the base rate)."""
    if x.size == 0 or y.all() or not y.any():
        raise ValueError("the logistic fit needs both classes")
    yf = y.astype(np.float64)
    n = x.size

    def loss(a: float, b: float) -> float:
        return log_loss(sigmoid(a + b * x), y) + 0.5 * l2 * b * b

    base = (math.log(yf.mean() / (1 - yf.mean())), 0.0)
    a, b = base
    cur = loss(a, b)
    for _ in range(iters):
        p = sigmoid(a + b * x)
        r = p - yf
        g = np.array([r.sum() / n, (r @ x) / n + l2 * b])
        s = p * (1 - p)
        h = np.array([[s.sum(), s @ x], [s @ x, s @ (x * x)]]) / n + np.diag([1e-12, l2])
        step = np.linalg.solve(h, g)
        t = 1.0
        while t > 1e-6:
            na, nb = a - t * float(step[0]), b - t * float(step[1])
            new = loss(na, nb)
            if new <= cur:
                break
            t /= 2
        else:
            break
        done = cur - new < 1e-13
        a, b, cur = na, nb, new
        if done:
            break
    return base if b < 0 else (a, b)


def objective(ds: Dataset, w: F64, l2: float = 1e-4) -> tuple[float, float, float]:
    """(mean log-loss, a, b) for weights ``w`` with (a, b) fitted."""
    x = raw_max(ds, w)
    a, b = fit_logistic(x, ds.y, l2)
    return log_loss(sigmoid(a + b * x), ds.y), a, b


def fit_weights(
    ds: Dataset,
    w0: Sequence[float] | F64,
    grid: Sequence[float] = WEIGHT_GRID,
    sweeps: int = 6,
    tol: float = 1e-5,
    fixed: Sequence[int] = (),
) -> tuple[F64, float, float, float]:
    """Weights (summing to 1), a, b and the log-loss: coordinate descent from ``w0``, each weight
    tried at every grid value with the others fixed (then all rescaled to sum 1), kept when the
    log-loss falls by more than ``tol``; stops after a sweep without a change. The components
    in ``fixed`` keep weight 0."""
    w = np.asarray(w0, dtype=np.float64).copy()
    w[list(fixed)] = 0.0
    if w.sum() <= 0:
        raise ValueError("no free component with a starting weight > 0")
    w = w / w.sum()
    best, a, b = objective(ds, w)
    for _ in range(sweeps):
        changed = False
        for j in range(w.size):
            if j in fixed:
                continue
            for g in grid:
                if g == w[j]:
                    continue
                trial = w.copy()
                trial[j] = g
                if trial.sum() <= 0:
                    continue
                trial /= trial.sum()
                loss, ta, tb = objective(ds, trial)
                if loss < best - tol:
                    best, a, b, w, changed = loss, ta, tb, trial, True
        if not changed:
            break
    return np.round(w, 4), a, b, best


def cross_validate(ds: Dataset, fit: Callable[[Dataset], tuple[F64, float, float]]) -> F64:
    """Out-of-fold probabilities: for each fold (seed), ``fit`` on the others gives (w, a, b),
    applied to the fold's bins."""
    p = np.full(ds.bins, np.nan)
    for f in np.unique(ds.fold):
        held = ds.fold == f
        w, a, b = fit(ds.subset(~held))
        p[held] = sigmoid(a + b * raw_max(ds.subset(held), w))
    return p


def auc(p: F64, y: B) -> float:
    """P(a positive bin ranks above a negative one), ties half."""
    pos, neg = p[y], p[~y]
    if not pos.size or not neg.size:
        return math.nan
    order = np.argsort(np.r_[pos, neg], kind="mergesort")
    allv = np.r_[pos, neg][order]
    ranks = np.empty(allv.size)
    i = 0
    while i < allv.size:
        j = i
        while j + 1 < allv.size and allv[j + 1] == allv[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def reliability(p: F64, y: B, bins: int = 10) -> list[dict[str, float]]:
    """Per probability decile [k/bins, (k+1)/bins): bins counted, mean probability, observed
    frequency of the positive class (NaN when empty)."""
    k = np.minimum((p * bins).astype(np.int64), bins - 1)
    out = []
    for i in range(bins):
        sel = k == i
        n = int(sel.sum())
        out.append({"lo": i / bins, "hi": (i + 1) / bins, "n": n,
                    "mean_p": float(p[sel].mean()) if n else math.nan,
                    "observed": float(y[sel].mean()) if n else math.nan})  # fmt: skip
    return out
