"""The composite score on the simulator's scenarios (docs/risk-models.md §7: "the score earns trust only
by replay"): the scripted crash raises it above anything the calm run of the same seed reads, more
than a minute before the largest liquidation minute; a calm market keeps it low. Events go straight into RiskState on event time (no broker); the models run with their
defaults except two warm-ups shortened to fit a one-hour scenario (the liquidation-rate baseline:
600 s instead of 3600 s; VPIN's auto bucket size: 300 s instead of 900 s)."""

from __future__ import annotations

import numpy as np
import pytest

from consumers.columns import BatchArrays
from consumers.models.bundle import ModelParams
from consumers.models.microstructure import MicroParams
from consumers.state import RiskState
from monitor.simulator.scenario import Scenario, SimLiquidation, SimTrade, crash_scenario

T0 = 1_700_000_000.0
STEP_S = 5.0  # the consumer's tick: refits and read-outs
DURATION_S = 3600.0
WARMUP_S = 600.0  # ignored at the start of each run: models still filling their windows
CALM_MAX = 0.5  # below the default warning level (0.7) with a margin


def replay(sc: Scenario, venue: str) -> tuple[list[tuple[float, float]], dict[int, float]]:
    """(t, score) every tick, and liquidation notional per minute."""
    params = ModelParams(micro=MicroParams(baseline_warmup_s=600.0, vpin_auto_warmup_s=300.0))
    st = RiskState(4, models=params)
    evs = [e for e in sc.events if e.venue == venue and e.venue_symbol == "BTCUSDT"]
    per_min: dict[int, float] = {}
    scores = []
    i, t = 0, STEP_S
    while t <= sc.duration_s:
        liqs: list[SimLiquidation] = []
        trades: list[SimTrade] = []
        while i < len(evs) and evs[i].t < t:
            e = evs[i]
            if isinstance(e, SimLiquidation):
                liqs.append(e)
                per_min[int(e.t // 60)] = per_min.get(int(e.t // 60), 0.0) + e.qty * e.price
            else:
                trades.append(e)  # type: ignore[arg-type]
            i += 1
        st.apply_arrays(BatchArrays(
            "sim", "BTC-USDT-PERP",
            np.array([T0 + e.t for e in liqs]),
            np.array([0 if e.liquidated_side == "long" else 1 for e in liqs], np.int8),
            np.array([e.qty * e.price for e in liqs]),
            np.array([T0 + e.t for e in trades]),
            np.array([0 if e.taker_side == "buy" else 1 for e in trades], np.int8),
            np.array([e.qty * e.price for e in trades]),
            np.array([e.price for e in trades]),
            np.zeros(len(liqs) + len(trades), np.int64),
        ))  # fmt: skip
        st.maintain(T0 + t)
        r = st.read(T0 + t)
        if r.keys:
            scores.append((t, float(r.models.score[0])))
        t += STEP_S
    return scores, per_min


@pytest.mark.parametrize(("venue", "seed"), [("bybit", 7), ("binance", 8), ("okx", 9)])
def test_crash_raises_the_score_before_the_peak_and_calm_stays_low(venue: str, seed: int) -> None:
    crash = crash_scenario(DURATION_S, seed, venues=(venue,), symbols=("BTCUSDT",))
    calm = crash_scenario(DURATION_S, seed, venues=(venue,), symbols=("BTCUSDT",),
                          calm_fraction=1.0)  # fmt: skip
    calm_scores, _ = replay(calm, venue)
    crash_scores, per_min = replay(crash, venue)
    assert all(0.0 <= s <= 1.0 for _, s in calm_scores + crash_scores)

    calm_max = max(s for t, s in calm_scores if t >= WARMUP_S)
    assert calm_max < CALM_MAX, calm_max  # a calm market: never near a warning

    peak_min = max(per_min, key=lambda m: per_min[m])
    assert peak_min * 60 > crash.crash_start_s  # the largest burst comes late in the fall
    before = [(t, s) for t, s in crash_scores if WARMUP_S <= t < peak_min * 60]
    # the crash exceeds everything the calm run of the same seed ever read, before its peak
    first = next((t for t, s in before if s > calm_max), None)
    assert first is not None, max(s for _, s in before)
    lead_min = peak_min - first / 60
    assert lead_min > 1.0  # raised at least a minute before the peak liquidation minute
    # and, over the last 10 minutes before the peak, well above the calm run's same minutes
    late = [s for t, s in before if t >= peak_min * 60 - 600]
    calm_late = [s for t, s in calm_scores if peak_min * 60 - 600 <= t < peak_min * 60]
    assert np.mean(late) > np.mean(calm_late) + 0.1
