"""One symbol's market, step by step: news, noise flow, impact, and the liquidation engine. Pure.

Log price on a grid of ``dt`` seconds:

    log P(t) = log P0 + X(t) + sum_k G(t - t_k) * f(Q_k)

``X`` the exogenous path (``exogenous``), ``Q_k`` the net signed taker notional of step ``k``
(noise trades and forced orders together), ``f(Q) = sign(Q) * impact_at_depth * sqrt(|Q|/depth)``
the concave (square-root) impact, and ``G(u) = theta + (1 - theta) * exp(-u / decay_s)`` the
propagator: an impulse decays toward its permanent fraction ``theta``.

Within a step the noise flow acts first; then the liquidation engine runs: while the price is at
or below the highest open long level (or at or above the lowest short level), that position is
force-closed as a market order of its whole size (a sell for a long). The step's impulse becomes
``f(Q_noise + Q_forced)``; each forced order adds the difference it makes, which moves the price at
once, so one step can chain through many levels in price order: the cascade. A forced order fills
at the price halfway through its own impact; its notional is ``qty * fill``. Positions opened by
this step's noise trades enter at the step's final price.

Counterfactual: the noise flow is exogenous, so the price without any liquidation-driven move is
exactly ``X + (noise impulses through G)``; it is tracked beside the actual price (``f(Q_noise)``
of a step is the noise part, ``f(Q_noise + Q_forced) - f(Q_noise)`` the forced part). A forced
order is **early** when the counterfactual price had not reached its level by the time it was
liquidated (running minimum above a long's level, maximum below a short's), and **endogenous**
when the counterfactual never reaches it in the whole run: without liquidation-driven moves it
would not have been liquidated at all. Every endogenous order is early; an early one that is not
endogenous was only brought forward. With ``feedback=False`` forced orders have no impact: actual
and counterfactual prices are equal, and nothing is early or endogenous.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.simulator.reflexive.book import PositionBook
from monitor.simulator.reflexive.flow import NoiseFlow
from monitor.simulator.reflexive.margin import MarginTiers, liquidation_prices

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Impact:
    depth_usd: float  # net step flow that moves the log price by ``impact_at_depth``
    permanent_fraction: float = 0.2  # theta
    decay_s: float = 60.0  # transient part's time constant
    impact_at_depth: float = 0.01

    def __post_init__(self) -> None:
        if not (self.depth_usd > 0 and 0.0 <= self.permanent_fraction <= 1.0 and self.decay_s > 0):
            raise ValueError(f"impact {self}: depth > 0, theta in [0, 1], decay > 0")

    def of(self, q: FloatArray) -> FloatArray:
        out: FloatArray = np.sign(q) * self.impact_at_depth * np.sqrt(np.abs(q) / self.depth_usd)
        return out


@dataclass(frozen=True, slots=True)
class ForcedOrder:
    t: float  # scenario seconds
    position: int  # index in the book
    venue: int
    long: bool  # the liquidated position's side (a long is closed by a sell)
    qty: float  # base units
    fill: float  # fill price
    level: float  # the liquidation price that was crossed
    early: bool  # the counterfactual had not reached the level yet
    endogenous: bool = False  # the counterfactual never reaches the level


@dataclass(frozen=True)
class SymbolRun:
    """What one symbol did: prices at the end of each step (``mark``), before that step's
    liquidations (``pre``, where its noise trades print), the counterfactual, the forced orders."""

    dt: float
    mark: FloatArray
    pre: FloatArray
    counterfactual: FloatArray
    forced: list[ForcedOrder]


def open_ratios(
    notional: FloatArray, leverage: FloatArray, buy: npt.NDArray[np.bool_], tiers: MarginTiers
) -> FloatArray:
    """Liquidation price / entry price of positions opened by trades of ``notional`` (the ratio
    does not depend on the entry price, so it is computed before the run)."""
    qty = notional  # at an entry price of 1
    liq, _ = liquidation_prices(np.ones_like(notional), qty, leverage, buy, tiers)
    return liq


def run_symbol(
    *,
    start_price: float,
    exo: FloatArray,
    noise: NoiseFlow,
    book: PositionBook,
    impact: Impact,
    dt: float,
    tiers: MarginTiers,
    feedback: bool = True,
) -> SymbolRun:
    """Run the market over ``exo.size`` steps; ``book`` is consumed (levels popped, positions
    appended)."""
    n = exo.size
    noise_impulse = impact.of(noise.net_by_step).tolist()
    noise_net = noise.net_by_step.tolist()
    exo_l = exo.tolist()
    ratios = open_ratios(noise.notional, noise.leverage, noise.buy, tiers).tolist()
    opening = np.flatnonzero(noise.opens)
    open_at = np.searchsorted(noise.step[opening], np.arange(n + 1)).tolist()
    opening_l = opening.tolist()
    n_notional, n_buy, n_venue = noise.notional.tolist(), noise.buy.tolist(), noise.venue.tolist()
    n_t, n_hold = noise.t.tolist(), noise.hold_s.tolist()

    theta = impact.permanent_fraction
    decay = math.exp(-dt / impact.decay_s)
    scale, depth = impact.impact_at_depth, impact.depth_usd
    lon, sho = book.levels_long, book.levels_short
    close_t, qty_of, venue_of = book.close_t, book.qty, book.venue
    heappop = heapq.heappop
    exp, sqrt = math.exp, math.sqrt

    log_p0 = math.log(start_price)
    n_perm = n_tr = f_perm = f_tr = 0.0
    cf_min = cf_max = start_price
    mark = np.empty(n)
    pre = np.empty(n)
    cf = np.empty(n)
    forced: list[ForcedOrder] = []
    for k in range(n):
        t = k * dt
        dn = noise_impulse[k]
        n_perm += theta * dn
        n_tr += (1.0 - theta) * dn
        cf_log = exo_l[k] + n_perm + n_tr
        cf_p = exp(log_p0 + cf_log)
        cf_min = min(cf_min, cf_p)
        cf_max = max(cf_max, cf_p)
        log_p = cf_log + f_perm + f_tr
        p = exp(log_p0 + log_p)
        pre[k] = p
        qn = noise_net[k]
        qf = 0.0
        applied = 0.0
        first = len(forced)
        while True:
            if lon and -lon[0][0] >= p:
                neg_level, i = heappop(lon)
                level, long = -neg_level, True
            elif sho and sho[0][0] <= p:
                level, i = heappop(sho)
                long = False
            else:
                break
            if close_t[i] <= t:
                continue  # closed voluntarily before the price got there
            q = qty_of[i]
            d = 0.0
            if feedback:
                qf += -q * p if long else q * p
                total = qn + qf
                step_impulse = math.copysign(scale * sqrt(abs(total) / depth), total)
                d = step_impulse - dn - applied
                applied += d
                f_perm += theta * d
                f_tr += (1.0 - theta) * d
            fill = p * exp(0.5 * d)
            early = cf_min > level if long else cf_max < level
            forced.append(ForcedOrder(t, i, venue_of[i], long, q, fill, level, early))
            log_p += d
            p = exp(log_p0 + log_p)
        m = len(forced) - first
        if m:  # spread the step's forced orders evenly over it, in the order they happened
            for j in range(m):
                f = forced[first + j]
                forced[first + j] = ForcedOrder(t + dt * (j + 1) / (m + 1), f.position, f.venue,
                                                f.long, f.qty, f.fill, f.level, f.early)  # fmt: skip
        mark[k] = p
        cf[k] = cf_p
        for j in range(open_at[k], open_at[k + 1]):
            x = opening_l[j]
            buy = n_buy[x]
            book.add(p, n_notional[x] / p, buy, p * ratios[x], n_venue[x], n_t[x] + n_hold[x])
        n_tr *= decay
        f_tr *= decay
    lo, hi = min(cf_min, start_price), max(cf_max, start_price)
    forced = [
        dataclasses.replace(f, endogenous=(lo > f.level) if f.long else (hi < f.level))
        if f.early else f
        for f in forced
    ]  # fmt: skip
    return SymbolRun(dt, mark, pre, cf, forced)
