"""Scenario families: one function per kind of market, each varied by its seed. Pure module.

Every family draws its own parameters from ``rng(seed, family, "params")`` and returns a
``ReflexiveScenario`` (``assemble.simulate``). Calibration sources (docs/scenarios.md has the
details): docs/risk-models.md §8 for the moves, long shares and notionals of
27 Jan 2025 and 10-11 Oct 2025, Cheng et al. 2021 for the leverage mix.

* ``calm``: no news; liquidations only from noise reaching the most levered positions.
* ``jan27``: a 27-Jan-2025-class drop: BTC -6 %, ETH -8 %, SOL/DOGE -11 % over the window (news
  delivers 75-90 % of BTC's move in two legs, liquidations the rest), dense long leverage, few
  shorts. Forced notional scaled to the published day: the window holds ``JAN27_WINDOW_SHARE``
  of the 24 h figures per symbol (BTC $311M, ETH $143M, SOL $50M; DOGE, not published, taken as
  $30M), split over venues by activity.
* ``flash_crash``: a 10-Oct-2025-class break: a news drop of 3-5 % (BTC; alts 1.6-3x) within
  about a minute into very dense, highly levered longs, then a partial news recovery; one minute
  dominates. The shape of 10 Oct is kept (one minute, mostly longs), the absolute level is about a
  tenth of it so that a scenario stays within the event budget.
* ``short_squeeze``: an up-move into dense short leverage: shorts are liquidated.
* ``no_leverage_news``: hard negative: a large news move (either way) with little leverage near
  the price: a big move, few liquidations.
* ``slow_grind``: hard negative: a steady decline over hours, no break; liquidations trickle.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from monitor.simulator.reflexive.assemble import (
    MarketSetup,
    ReflexiveScenario,
    SymbolSetup,
    rng,
    simulate,
)
from monitor.simulator.reflexive.book import BookShape
from monitor.simulator.reflexive.exogenous import News, Shock
from monitor.simulator.reflexive.margin import DEFAULT_LEVERAGE, LeverageMix
from monitor.simulator.venues import SPECS

# Every simulated venue, in the order of ``VenueSpec.scenario_order``: a scenario assigns flow to
# venues by index in its venue tuple, so this order is part of what a seed means.
ALL_VENUES: Final = tuple(sorted(SPECS, key=lambda name: SPECS[name].scenario_order))
SYMBOLS: Final = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT")
JAN27_WINDOW_SHARE: Final = 0.25  # of the day's liquidations falls in the simulated window
JAN27_DAY_USD: Final = {"BTCUSDT": 311e6, "ETHUSDT": 143e6, "SOLUSDT": 50e6, "DOGEUSDT": 30e6}
JAN27_MOVE: Final = {"BTCUSDT": 0.06, "ETHUSDT": 0.08, "SOLUSDT": 0.11, "DOGEUSDT": 0.11}
FEEDBACK_ALLOWANCE: Final = 1.3  # liquidated notional per unit of starting density x move


@dataclass(frozen=True)
class Base:
    """A symbol's market before any family touches it."""

    depth_usd: float  # impact: net step flow moving the log price by 1 %
    trade_rate_per_s: float  # noise trades, all venues
    trade_median_usd: float
    position_median_usd: float


BASES: Final = {
    "BTCUSDT": Base(300e6, 8.0, 8000.0, 20000.0),
    "ETHUSDT": Base(120e6, 6.0, 5000.0, 12000.0),
    "SOLUSDT": Base(40e6, 4.0, 3000.0, 6000.0),
    "DOGEUSDT": Base(25e6, 3.0, 2000.0, 4000.0),
}
BETAS: Final = {s: JAN27_MOVE[s] / JAN27_MOVE["BTCUSDT"] for s in SYMBOLS}
# Near-price long density (USD per 1 %) that liquidates about the 27 Jan window's notional over
# its move, feedback included.
JAN27_DENSITY: Final = {
    s: JAN27_WINDOW_SHARE * JAN27_DAY_USD[s] / (100 * JAN27_MOVE[s]) / FEEDBACK_ALLOWANCE
    for s in SYMBOLS
}
HIGH_LEVERAGE: Final = DEFAULT_LEVERAGE.scaled(2.0)
LOW_LEVERAGE: Final = LeverageMix((5.0, 10.0, 20.0), (0.7, 0.25, 0.05))


def _symbols(
    symbols: Sequence[str],
    r: np.random.Generator,
    *,
    long_density: float,
    short_density: float,
    cleared: float,
    betas: dict[str, float] | None = None,
    rate_scale: float = 1.0,
) -> tuple[SymbolSetup, ...]:
    """Per symbol: the base market, densities as multiples of the 27 Jan density (each jittered
    +-30 % by the seed), no level within ``cleared`` of the price, betas (default: the 27 Jan
    moves relative to BTC)."""
    out = []
    for s in symbols:
        b = BASES[s]
        jitter = math.exp(r.uniform(-0.3, 0.3))
        dens = JAN27_DENSITY[s] * jitter
        out.append(
            SymbolSetup(
                symbol=s,
                beta=(betas or BETAS)[s],
                depth_usd=b.depth_usd * math.exp(r.uniform(-0.2, 0.2)),
                trade_rate_per_s=b.trade_rate_per_s * rate_scale,
                trade_median_usd=b.trade_median_usd,
                longs=BookShape(dens * long_density, b.position_median_usd, cleared=cleared),
                shorts=BookShape(dens * short_density, b.position_median_usd, cleared=cleared),
            )
        )
    return tuple(out)


def calm(
    seed: int, venues: Sequence[str] = ALL_VENUES, symbols: Sequence[str] = SYMBOLS
) -> ReflexiveScenario:
    r = rng(seed, "calm", "params")
    duration = 60.0 * r.uniform(90, 120)
    news = News(common_vol_per_sqrt_s=r.uniform(0.00004, 0.00007))
    syms = _symbols(symbols, r, long_density=1.0, short_density=1.0, rate_scale=0.8,
                    cleared=r.uniform(0.015, 0.025))  # fmt: skip
    return simulate(MarketSetup("calm", seed, duration, news, syms, tuple(venues)))


def jan27(
    seed: int, venues: Sequence[str] = ALL_VENUES, symbols: Sequence[str] = SYMBOLS
) -> ReflexiveScenario:
    r = rng(seed, "jan27", "params")
    duration = 60.0 * r.uniform(75, 90)
    exo = math.log1p(-JAN27_MOVE["BTCUSDT"]) * r.uniform(0.75, 0.9)  # the news part of the drop
    first = 60.0 * r.uniform(10, 16)
    split = r.uniform(0.35, 0.55)
    second = first + 60.0 * r.uniform(18, 28)
    news = News(
        shocks=(
            Shock(first, 60.0 * r.uniform(6, 12), exo * split),
            Shock(second, 60.0 * r.uniform(10, 18), exo * (1 - split)),
        ),
        activity_boost=r.uniform(1.0, 1.6),
    )
    syms = _symbols(symbols, r, long_density=1.0, short_density=r.uniform(0.15, 0.25),
                    cleared=r.uniform(0.008, 0.015))  # fmt: skip
    params = {"news_share_of_btc_move": exo / math.log1p(-JAN27_MOVE["BTCUSDT"]),
              "window_share_of_day": JAN27_WINDOW_SHARE}  # fmt: skip
    return simulate(MarketSetup("jan27", seed, duration, news, syms, tuple(venues), params=params))


def flash_crash(
    seed: int, venues: Sequence[str] = ALL_VENUES, symbols: Sequence[str] = SYMBOLS
) -> ReflexiveScenario:
    r = rng(seed, "flash_crash", "params")
    duration = 60.0 * r.uniform(30, 45)
    start = 60.0 * r.uniform(8, 14)
    drop = -r.uniform(0.03, 0.05)
    fall_s = r.uniform(30, 75)
    news = News(
        shocks=(
            Shock(start, fall_s, drop),
            Shock(start + fall_s + r.uniform(60, 180), 60.0 * r.uniform(5, 10),
                  -drop * r.uniform(0.4, 0.7)),
        ),
        activity_boost=r.uniform(2.0, 3.0),
        activity_decay_s=180.0,
    )  # fmt: skip
    betas = {"BTCUSDT": 1.0, "ETHUSDT": 1.6, "SOLUSDT": 2.5, "DOGEUSDT": 3.0}
    syms = _symbols(symbols, r, long_density=r.uniform(2.0, 3.0), short_density=0.2, betas=betas,
                    cleared=r.uniform(0.005, 0.01))  # fmt: skip
    return simulate(
        MarketSetup(
            "flash_crash",
            seed,
            duration,
            news,
            syms,
            tuple(venues),
            leverage=HIGH_LEVERAGE,
            decay_s=r.uniform(90, 180),
        )
    )


def short_squeeze(
    seed: int, venues: Sequence[str] = ALL_VENUES, symbols: Sequence[str] = SYMBOLS
) -> ReflexiveScenario:
    r = rng(seed, "short_squeeze", "params")
    duration = 60.0 * r.uniform(45, 60)
    start = 60.0 * r.uniform(10, 16)
    news = News(
        shocks=(Shock(start, 60.0 * r.uniform(4, 12), r.uniform(0.03, 0.05)),),
        activity_boost=r.uniform(1.0, 2.0),
    )
    syms = _symbols(symbols, r, long_density=r.uniform(0.15, 0.25), short_density=1.2,
                    cleared=r.uniform(0.008, 0.015))  # fmt: skip
    return simulate(MarketSetup("short_squeeze", seed, duration, news, syms, tuple(venues)))


def no_leverage_news(
    seed: int, venues: Sequence[str] = ALL_VENUES, symbols: Sequence[str] = SYMBOLS
) -> ReflexiveScenario:
    r = rng(seed, "no_leverage_news", "params")
    duration = 60.0 * r.uniform(60, 90)
    start = 60.0 * r.uniform(10, 20)
    sign = -1.0 if r.random() < 0.7 else 1.0
    news = News(
        shocks=(Shock(start, 60.0 * r.uniform(1, 5), sign * r.uniform(0.05, 0.08)),),
        activity_boost=r.uniform(1.0, 2.0),
    )
    syms = _symbols(symbols, r, long_density=0.04, short_density=0.04, rate_scale=0.8,
                    cleared=r.uniform(0.01, 0.02))  # fmt: skip
    return simulate(
        MarketSetup(
            "no_leverage_news",
            seed,
            duration,
            news,
            syms,
            tuple(venues),
            leverage=LOW_LEVERAGE,
            open_prob=0.05,
        )
    )


def slow_grind(
    seed: int, venues: Sequence[str] = ALL_VENUES, symbols: Sequence[str] = SYMBOLS
) -> ReflexiveScenario:
    r = rng(seed, "slow_grind", "params")
    duration = 60.0 * r.uniform(150, 180)
    start = 60.0 * r.uniform(10, 20)
    news = News(
        shocks=(Shock(start, duration - start, -r.uniform(0.04, 0.07)),),
        activity_boost=0.2,
    )
    syms = _symbols(symbols, r, long_density=r.uniform(0.15, 0.3), short_density=0.2,
                    rate_scale=0.6, cleared=r.uniform(0.01, 0.02))  # fmt: skip
    return simulate(
        MarketSetup("slow_grind", seed, duration, news, syms, tuple(venues), open_prob=0.08)
    )


FAMILIES: Final[dict[str, Callable[..., ReflexiveScenario]]] = {
    "calm": calm,
    "jan27": jan27,
    "flash_crash": flash_crash,
    "short_squeeze": short_squeeze,
    "no_leverage_news": no_leverage_news,
    "slow_grind": slow_grind,
}
