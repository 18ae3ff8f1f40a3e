"""A reflexive market run turned into a ``Scenario`` every venue feed can play. Pure module.

``simulate(setup)`` draws everything from seeded, named RNG streams (``numpy.random.SeedSequence``
keyed by the seed, the family and the stream's name, so a symbol's noise does not change when
another symbol is added), runs each symbol's market (``market.run_symbol``) and assembles:

* noise trades: a ``SimTrade`` at the step's price before its liquidations, on the tick above for a
  buy and below for a sell, quantity on the lot grid;
* forced orders: a ``SimLiquidation`` at the fill price (floored to the tick for a long, ceiled for
  a short) and, except on the venues whose feed prints it as a trade itself
  (``VenueSpec.liquidations_as_trades``), the same fill as a ``SimTrade`` (a sell for a long):
  forced orders print on the public trade feed;
* the mark price on every step (``paths``), and the ground truth (``truth.ground_truth``) from the
  rounded liquidations, so its totals are the scenario's ``qty * price`` sums.

Positions and flow are spread over the scenario's venues by their ``VenueSpec.activity``, among
those that list the symbol (``listing``), by index in the scenario's venue tuple. ``ReflexiveScenario`` is a ``Scenario`` with the truth attached and
an O(1) ``price_at`` on the uniform step grid (the feeds call it for every mark push).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.simulator.events import Scenario, SimEvent, SimLiquidation, SimTrade
from monitor.simulator.instruments import instrument
from monitor.simulator.reflexive import exogenous
from monitor.simulator.reflexive.book import NEAR_BAND, BookShape, PositionBook, seed_book
from monitor.simulator.reflexive.exogenous import News
from monitor.simulator.reflexive.flow import noise_flow
from monitor.simulator.reflexive.listing import listed
from monitor.simulator.reflexive.margin import (
    BINANCE_BTC_2021,
    DEFAULT_LEVERAGE,
    LeverageMix,
    MarginTiers,
    weights_text,
)
from monitor.simulator.reflexive.market import Impact, SymbolRun, run_symbol
from monitor.simulator.reflexive.truth import Forced, GroundTruth, ground_truth
from monitor.simulator.venues import SPECS

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SymbolSetup:
    symbol: str  # a simulated instrument (``monitor.simulator.instruments``)
    beta: float  # exposure to the common news factor
    depth_usd: float  # ``market.Impact.depth_usd``
    trade_rate_per_s: float  # noise trades, all venues together
    trade_median_usd: float
    longs: BookShape
    shorts: BookShape
    start_price: float | None = None  # default: the instrument's


@dataclass(frozen=True)
class MarketSetup:
    family: str
    seed: int
    duration_s: float
    news: News
    symbols: tuple[SymbolSetup, ...]
    venues: tuple[str, ...]
    leverage: LeverageMix = DEFAULT_LEVERAGE
    tiers: MarginTiers = BINANCE_BTC_2021
    dt: float = 0.25
    permanent_fraction: float = 0.2
    decay_s: float = 60.0
    open_prob: float = 0.2  # share of noise trades that open a leveraged position
    trade_sigma: float = 1.2
    feedback: bool = True
    params: dict[str, Any] = field(default_factory=dict)  # family parameters, for the truth

    @property
    def baseline_end_s(self) -> float:
        first = self.news.first_shock_s
        return first if first is not None else self.duration_s / 4.0


@dataclass(frozen=True, eq=False)
class ReflexiveScenario(Scenario):
    family: str
    truth: GroundTruth
    forced: tuple[Forced, ...]  # every forced order, as the scenario shows it, in time order

    def price_at(self, venue_symbol: str, t: float) -> float:
        """Linear interpolation on the uniform grid of ``path_times`` (O(1))."""
        path = self.paths[venue_symbol]
        dt = self.path_times[1]
        x = min(max(t / dt, 0.0), len(path) - 1.0)
        i = min(int(x), len(path) - 2)
        return path[i] + (path[i + 1] - path[i]) * (x - i)


def rng(seed: int, *names: str) -> np.random.Generator:
    """An RNG stream for (seed, names...), stable across processes (crc32, not ``hash``)."""
    key = tuple(zlib.crc32(n.encode()) for n in names)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def venue_probs(venues: tuple[str, ...], symbol: str) -> FloatArray:
    w = np.array([SPECS[v].activity if listed(v, symbol) else 0.0 for v in venues])
    if w.sum() <= 0:
        raise ValueError(f"no venue of {venues} lists {symbol}")
    out: FloatArray = w / w.sum()
    return out


def simulate(setup: MarketSetup) -> ReflexiveScenario:
    for v in setup.venues:
        if v not in SPECS:
            raise ValueError(f"unknown venue {v!r} (known: {sorted(SPECS)})")
    dt = setup.dt
    n = max(2, math.ceil(setup.duration_s / dt))
    times: FloatArray = np.arange(n, dtype=np.float64) * dt
    seed, fam = setup.seed, setup.family
    common = exogenous.common_factor(setup.news, times, rng(seed, fam, "common"))
    act = exogenous.activity(setup.news, times)
    events: list[SimEvent] = []
    forced: list[Forced] = []
    paths: dict[str, tuple[float, ...]] = {}
    by_symbol: dict[str, dict[str, Any]] = {}
    for s in setup.symbols:
        spec = instrument(s.symbol)
        p0 = s.start_price if s.start_price is not None else spec.start_price
        probs = venue_probs(setup.venues, s.symbol)
        exo = s.beta * common + exogenous.idiosyncratic(
            setup.news, times, rng(seed, fam, "idio", s.symbol)
        )
        noise = noise_flow(
            rng(seed, fam, "noise", s.symbol), dt=dt, activity=act,
            rate_per_s=s.trade_rate_per_s, median_usd=s.trade_median_usd,
            sigma=setup.trade_sigma, venue_probs=probs, open_prob=setup.open_prob,
            leverage=setup.leverage, hold_mean_s=s.longs.hold_mean_s,
        )  # fmt: skip
        book = PositionBook()
        near = {}
        for side, shape in (("long", s.longs), ("short", s.shorts)):
            near[side] = seed_book(
                book, rng(seed, fam, "book", side, s.symbol), price=p0, long=side == "long",
                shape=shape, leverage=setup.leverage, tiers=setup.tiers, venue_probs=probs,
            )  # fmt: skip
        impact = Impact(s.depth_usd, setup.permanent_fraction, setup.decay_s)
        run = run_symbol(start_price=p0, exo=exo, noise=noise, book=book, impact=impact, dt=dt,
                         tiers=setup.tiers, feedback=setup.feedback)  # fmt: skip
        paths[s.symbol] = (p0, *run.mark.tolist())
        sym_forced = _events(setup, s.symbol, noise, run, events)
        forced += sym_forced
        by_symbol[s.symbol] = _symbol_truth(p0, run, sym_forced, near)
    events.sort(key=lambda e: (e.t, e.venue, e.venue_symbol, isinstance(e, SimLiquidation)))
    duration = n * dt
    params = {
        **setup.params, "dt_s": dt, "permanent_fraction": setup.permanent_fraction,
        "decay_s": setup.decay_s, "open_prob": setup.open_prob, "feedback": setup.feedback,
        "leverage": weights_text(setup.leverage.values, setup.leverage.weights),
        "shocks": [[x.start_s, x.duration_s, x.log_size] for x in setup.news.shocks],
        "symbols": {s.symbol: {"beta": s.beta, "depth_usd": s.depth_usd,
                               "trade_rate_per_s": s.trade_rate_per_s,
                               "long_density_usd_per_pct": s.longs.density_usd_per_pct,
                               "short_density_usd_per_pct": s.shorts.density_usd_per_pct}
                    for s in setup.symbols},
    }  # fmt: skip
    truth = ground_truth(
        family=fam, seed=seed, duration_s=duration, baseline_end_s=setup.baseline_end_s,
        forced=forced, by_symbol=by_symbol, venues=setup.venues, params=params,
    )  # fmt: skip
    return ReflexiveScenario(
        events=events,
        duration_s=duration,
        seed=seed,
        venues=setup.venues,
        symbols=tuple(s.symbol for s in setup.symbols),
        crash_start_s=setup.baseline_end_s,
        path_times=tuple((np.arange(n + 1) * dt).tolist()),
        paths=paths,
        family=fam,
        truth=truth,
        forced=tuple(sorted(forced, key=lambda f: f.t)),
    )


def _events(
    setup: MarketSetup, symbol: str, noise: Any, run: SymbolRun, out: list[SimEvent]
) -> list[Forced]:
    """Append the symbol's trades and liquidations to ``out``; the forced orders as rounded."""
    spec = instrument(symbol)
    venues = setup.venues
    pre = run.pre.tolist()
    for t, k, notional, buy, v in zip(noise.t.tolist(), noise.step.tolist(),
                                      noise.notional.tolist(), noise.buy.tolist(),
                                      noise.venue.tolist(), strict=True):  # fmt: skip
        price = spec.round_price(pre[k], "ceil" if buy else "floor")
        out.append(SimTrade(round(t, 6), venues[v], symbol, price, spec.round_qty(notional / price),
                            "buy" if buy else "sell"))  # fmt: skip
    forced: list[Forced] = []
    for f in run.forced:
        venue = venues[f.venue]
        price = spec.round_price(f.fill, "floor" if f.long else "ceil")
        qty = spec.round_qty(f.qty)
        t = round(f.t, 6)
        out.append(SimLiquidation(t, venue, symbol, "long" if f.long else "short", price, qty))
        if not SPECS[venue].liquidations_as_trades:
            out.append(SimTrade(t, venue, symbol, price, qty, "sell" if f.long else "buy"))
        forced.append(Forced(t, symbol, venue, f.long, qty * price, f.early, f.endogenous))
    return forced


def _symbol_truth(
    p0: float, run: SymbolRun, forced: list[Forced], near: dict[str, float]
) -> dict[str, Any]:
    mark, cf = run.mark, run.counterfactual
    total = sum(f.notional_usd for f in forced)
    endo = sum(f.notional_usd for f in forced if f.endogenous)
    return {
        "start_price": p0, "end_price": float(mark[-1]), "min_price": float(mark.min()),
        "max_price": float(mark.max()), "max_drawdown": float(1.0 - mark.min() / p0),
        "max_rise": float(mark.max() / p0 - 1.0),
        "counterfactual_min": float(cf.min()), "counterfactual_max": float(cf.max()),
        "counterfactual_end": float(cf[-1]),
        "forced_long_usd": sum(f.notional_usd for f in forced if f.long),
        "forced_short_usd": sum(f.notional_usd for f in forced if not f.long),
        "forced_count": len(forced),
        "endogenous_share": endo / total if total > 0 else 0.0,
        "early_share": sum(f.notional_usd for f in forced if f.early) / total if total > 0 else 0.0,
        f"long_usd_within_{NEAR_BAND:.0%}_at_start": near["long"],
        f"short_usd_within_{NEAR_BAND:.0%}_at_start": near["short"],
    }  # fmt: skip
