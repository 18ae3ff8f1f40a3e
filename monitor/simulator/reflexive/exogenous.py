"""The exogenous part of the log price: news shocks, drift, diffusion and small jumps. Pure module.

Everything here is independent of trading: it is what the price would do with no order flow at
all. One common factor ``C(t)`` carries the news (every symbol sees it, scaled by its ``beta``),
and each symbol adds its own diffusion:

    X_s(t) = beta_s * C(t) + I_s(t)
    C(t)   = sum_i size_i * ramp((t - start_i) / duration_i) + sigma_c * W_c(t) + jumps(t)
    I_s(t) = sigma_i * W_s(t)

``ramp`` rises smoothly from 0 to 1 (half a cosine), so a shock of 20 s is a sharp break and one of
three hours a grind. ``activity(t)`` is the multiplier on the noise traders' trade rate: 1 in the
calm, ``1 + boost`` during a shock, relaxing back with ``activity_decay_s`` after it (news brings
trading). Both are computed on the simulation grid, vectorised, from their own RNG streams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Shock:
    """A news move of the common factor: ``log_size`` (log return, negative = down) spread over
    ``duration_s`` from ``start_s``."""

    start_s: float
    duration_s: float
    log_size: float

    def __post_init__(self) -> None:
        if not (self.start_s >= 0.0 and self.duration_s > 0.0 and math.isfinite(self.log_size)):
            raise ValueError(f"shock {self}: start >= 0, duration > 0, finite size")


@dataclass(frozen=True)
class News:
    """The exogenous schedule of a scenario."""

    shocks: tuple[Shock, ...] = ()
    common_vol_per_sqrt_s: float = 0.00006  # about 0.36 % an hour
    idio_vol_per_sqrt_s: float = 0.00003
    jump_rate_per_s: float = 0.0  # small common jumps (Poisson)
    jump_log_sigma: float = 0.002
    activity_boost: float = 1.5  # extra noise-trading intensity while a shock runs
    activity_decay_s: float = 300.0

    @property
    def first_shock_s(self) -> float | None:
        return min((s.start_s for s in self.shocks), default=None)


def ramp(u: FloatArray) -> FloatArray:
    """0 before 0, 1 after 1, half a cosine in between."""
    c = np.clip(u, 0.0, 1.0)
    out: FloatArray = 0.5 - 0.5 * np.cos(math.pi * c)
    return out


def common_factor(news: News, times: FloatArray, rng: np.random.Generator) -> FloatArray:
    """``C`` on ``times`` (seconds, starting at 0, evenly spaced): shocks + diffusion + jumps."""
    n = times.size
    dt = float(times[1] - times[0]) if n > 1 else 1.0
    c = np.zeros(n)
    for s in news.shocks:
        c += s.log_size * ramp((times - s.start_s) / s.duration_s)
    steps = rng.standard_normal(n) * news.common_vol_per_sqrt_s * math.sqrt(dt)
    steps[0] = 0.0
    c += np.cumsum(steps)
    if news.jump_rate_per_s > 0.0:
        counts = rng.poisson(news.jump_rate_per_s * dt, n)
        sizes = np.where(counts > 0, rng.standard_normal(n) * news.jump_log_sigma, 0.0)
        sizes[0] = 0.0
        c += np.cumsum(sizes)
    return c


def idiosyncratic(news: News, times: FloatArray, rng: np.random.Generator) -> FloatArray:
    n = times.size
    dt = float(times[1] - times[0]) if n > 1 else 1.0
    steps = rng.standard_normal(n) * news.idio_vol_per_sqrt_s * math.sqrt(dt)
    steps[0] = 0.0
    out: FloatArray = np.cumsum(steps)
    return out


def activity(news: News, times: FloatArray) -> FloatArray:
    """The trade-rate multiplier: ``1 + boost * h(t)``, ``h`` 1 while any shock runs, decaying
    exponentially after its end, 0 before it."""
    h = np.zeros(times.size)
    for s in news.shocks:
        end = s.start_s + s.duration_s
        after = np.exp(-np.clip(times - end, 0.0, None) / news.activity_decay_s)
        h = np.maximum(h, np.where(times >= s.start_s, after, 0.0))
    out: FloatArray = 1.0 + news.activity_boost * h
    return out
