"""A deterministic falling-market scenario with accelerating long liquidations. Pure (stdlib, numpy).

``crash_scenario`` echoes 27 Jan 2025: a calm first quarter, then a steady, accelerating fall
(BTC -6 %, ETH -8 %, SOL -11 % by the end) during which liquidations cluster and speed up.

Model, per symbol and on a 0.1 s grid:

* One price path shared by all venues: ``log P = log P0 + log(1 - drop) * u**1.6 + B`` where ``u``
  is the crash progress (0 in the calm phase, 1 at the end) and ``B`` a Brownian bridge pinned to 0
  at both ends (volatility rising through the crash). The end price is exactly ``P0 * (1 - drop)``
  before tick rounding.
* Liquidations per venue: a discretised Hawkes process, intensity ``mu(t) + H(t)``. The baseline
  ``mu`` is driven by the drawdown ``g`` (0 calm, about 1 at the end); each liquidation adds
  ``HAWKES_ALPHA`` to ``H``, which decays at ``HAWKES_BETA`` (branching ratio alpha/beta = 1/3).
  90 % of crash-phase liquidations are longs (50 % in the calm phase); sizes grow with ``g``.
* Trades per venue: Poisson, rate rising with ``g`` and the liquidation intensity; takers sell
  more as the fall deepens (50 % calm, up to 75 %). Buys print at the tick above the path, sells
  at the tick below.

Every venue's flows come from their own RNG stream, keyed by (seed, venue, symbol) through
``numpy.random.SeedSequence``, so a venue's events do not depend on which other venues or symbols
are in the scenario, and the same seed gives identical events. A venue's rates are scaled by its
``VenueSpec.activity``; the default market has the venues whose spec sets
``in_default_scenario``. The event types live in ``events`` and are re-exported here.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from monitor.simulator.events import Scenario, SimEvent, SimLiquidation, SimTrade
from monitor.simulator.instruments import InstrumentSpec, instrument
from monitor.simulator.venues import SPECS

__all__ = ["VENUES", "Scenario", "SimEvent", "SimLiquidation", "SimTrade", "crash_scenario"]

VENUES: Final = tuple(name for name, spec in SPECS.items() if spec.in_default_scenario)
CALM_FRACTION: Final = 0.25  # share of the duration before the crash starts
PATH_DT_S: Final = 0.1
PATH_VOL: Final = 0.003  # Brownian-bridge scale: std of B mid-path is about PATH_VOL / 2
CRASH_SHAPE: Final = 1.6  # trend = log(1 - drop) * u**CRASH_SHAPE: an accelerating fall
LONG_SHARE_CALM: Final = 0.5
LONG_SHARE_CRASH: Final = 0.9
LIQ_RATE_CALM: Final = 0.2  # liquidations/s per symbol per venue before the crash
LIQ_RATE_CRASH: Final = 3.0  # added baseline at full drawdown (g = 1)
HAWKES_ALPHA: Final = 0.5  # intensity added by one liquidation, 1/s
HAWKES_BETA: Final = 1.5  # decay rate of that excitation, 1/s
TRADE_RATE_CALM: Final = 5.0  # aggregated trades/s per symbol per venue
TRADE_RATE_CRASH: Final = 12.0  # added at full drawdown
TRADES_PER_LIQ_INTENSITY: Final = 1.0  # extra trade rate per unit of liquidation intensity
MAX_TAKER_SELL: Final = 0.75
TRADE_SIZE_SIGMA: Final = 1.2
LIQ_SIZE_SIGMA: Final = 1.0
SIZE_CAP: Final = 40.0  # largest size, as a multiple of the median

FloatArray = npt.NDArray[np.float64]


def crash_scenario(
    duration_s: float = 60.0,
    seed: int = 7,
    venues: Sequence[str] = VENUES,
    symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT", "SOLUSDT"),
    calm_fraction: float = CALM_FRACTION,
) -> Scenario:
    """The scenario; ``calm_fraction`` of it is calm before the fall (1.0: a calm market
    throughout, no fall: the baseline the risk score is checked against)."""
    if not duration_s > 0:
        raise ValueError(f"duration_s {duration_s!r}: must be > 0")
    if not 0.0 <= calm_fraction <= 1.0:
        raise ValueError(f"calm_fraction {calm_fraction!r}: must be in [0, 1]")
    for v in venues:
        if v not in SPECS:
            raise ValueError(f"unknown venue {v!r} (known: {sorted(SPECS)})")
    specs = [instrument(s) for s in symbols]
    n = max(2, math.ceil(duration_s / PATH_DT_S))
    times: FloatArray = np.linspace(0.0, duration_s, n + 1)
    crash_start = calm_fraction * duration_s
    if calm_fraction < 1.0:
        progress = np.clip((times - crash_start) / (duration_s - crash_start), 0.0, 1.0)
    else:
        progress = np.zeros_like(times)
    events: list[SimEvent] = []
    paths: dict[str, tuple[float, ...]] = {}
    for spec in specs:
        path = _price_path(spec, times, progress, _rng(seed, "path", spec.venue_symbol))
        paths[spec.venue_symbol] = tuple(float(p) for p in path)
        drawdown = np.clip(1.0 - path / spec.start_price, 0.0, None) / spec.drop
        for v in venues:
            rng = _rng(seed, v, spec.venue_symbol)
            events += _venue_flow(v, spec, times, path, drawdown, crash_start, rng)
    events.sort(key=lambda e: (e.t, e.venue, e.venue_symbol, isinstance(e, SimLiquidation)))
    return Scenario(
        events=events,
        duration_s=float(duration_s),
        seed=seed,
        venues=tuple(venues),
        symbols=tuple(symbols),
        crash_start_s=crash_start,
        path_times=tuple(float(t) for t in times),
        paths=paths,
    )


def _rng(seed: int, *names: str) -> np.random.Generator:
    """An RNG stream for (seed, names...), stable across processes (crc32, not ``hash``)."""
    key = tuple(zlib.crc32(n.encode()) for n in names)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _price_path(
    spec: InstrumentSpec, times: FloatArray, progress: FloatArray, rng: np.random.Generator
) -> FloatArray:
    duration = float(times[-1])
    dt = np.diff(times)
    trend = math.log1p(-spec.drop) * progress**CRASH_SHAPE
    vol = PATH_VOL / math.sqrt(duration) * (1.0 + 2.0 * progress[1:])
    w = np.concatenate(([0.0], np.cumsum(rng.standard_normal(dt.size) * vol * np.sqrt(dt))))
    bridge = w - (times / duration) * w[-1]
    path: FloatArray = spec.start_price * np.exp(trend + bridge)
    return path


def _venue_flow(
    venue: str,
    spec: InstrumentSpec,
    times: FloatArray,
    path: FloatArray,
    drawdown: FloatArray,
    crash_start: float,
    rng: np.random.Generator,
) -> list[SimEvent]:
    activity = SPECS[venue].activity
    sym = spec.venue_symbol
    steps = times.size - 1
    dt = float(times[1] - times[0])
    mu = activity * (LIQ_RATE_CALM + LIQ_RATE_CRASH * drawdown[:steps] ** 1.5)
    decay = math.exp(-HAWKES_BETA * dt)
    excitation = 0.0
    liq_intensity = np.empty(steps)
    liq_counts = np.empty(steps, dtype=np.int64)
    for i in range(steps):
        lam = float(mu[i]) + excitation
        k = int(rng.poisson(lam * dt))
        liq_intensity[i] = lam
        liq_counts[i] = k
        excitation = excitation * decay + HAWKES_ALPHA * k
    trade_rate = (
        activity * (TRADE_RATE_CALM + TRADE_RATE_CRASH * drawdown[:steps])
        + TRADES_PER_LIQ_INTENSITY * liq_intensity
    )
    trade_counts = rng.poisson(trade_rate * dt)

    out: list[SimEvent] = []
    t_liq = _arrival_times(times, liq_counts, rng)
    g_liq = np.interp(t_liq, times, drawdown)
    long_share = np.where(t_liq >= crash_start, LONG_SHARE_CRASH, LONG_SHARE_CALM)
    is_long = rng.random(t_liq.size) < long_share
    liq_notional = _sizes(rng, t_liq.size, spec.liq_notional_usd, LIQ_SIZE_SIGMA) * (
        1.0 + 2.0 * np.minimum(g_liq, 1.5)
    )
    for t, long, notional in zip(t_liq, is_long, liq_notional, strict=True):
        mid = float(np.interp(t, times, path))
        # A long is closed by a sell (prints at or below the path), a short by a buy.
        price = spec.round_price(mid, "floor" if long else "ceil")
        out.append(
            SimLiquidation(
                t=round(float(t), 6),
                venue=venue,
                venue_symbol=sym,
                liquidated_side="long" if long else "short",
                price=price,
                qty=spec.round_qty(float(notional) / price),
            )
        )

    t_tr = _arrival_times(times, trade_counts, rng)
    g_tr = np.interp(t_tr, times, drawdown)
    crash_g = np.where(t_tr >= crash_start, np.minimum(g_tr, 1.0), 0.0)
    p_sell = 0.5 + (MAX_TAKER_SELL - 0.5) * np.sqrt(crash_g)
    sells = rng.random(t_tr.size) < p_sell
    tr_notional = _sizes(rng, t_tr.size, spec.trade_notional_usd, TRADE_SIZE_SIGMA)
    for t, sell, notional in zip(t_tr, sells, tr_notional, strict=True):
        mid = float(np.interp(t, times, path))
        price = spec.round_price(mid, "floor" if sell else "ceil")
        out.append(
            SimTrade(
                t=round(float(t), 6),
                venue=venue,
                venue_symbol=sym,
                price=price,
                qty=spec.round_qty(float(notional) / price),
                taker_side="sell" if sell else "buy",
            )
        )
    return out


def _arrival_times(
    times: FloatArray, counts: npt.NDArray[np.int64], rng: np.random.Generator
) -> FloatArray:
    """``counts[i]`` uniform arrival times inside grid step i, sorted."""
    starts = np.repeat(times[:-1], counts)
    widths = np.repeat(np.diff(times), counts)
    arrivals: FloatArray = np.sort(starts + rng.random(starts.size) * widths)
    return arrivals


def _sizes(rng: np.random.Generator, n: int, median: float, sigma: float) -> FloatArray:
    sizes: FloatArray = median * np.minimum(np.exp(sigma * rng.standard_normal(n)), SIZE_CAP)
    return sizes
