"""The market loop: impact of forced orders, chains within a step, and the feedback itself."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitor.simulator.reflexive.assemble import MarketSetup, SymbolSetup, simulate
from monitor.simulator.reflexive.book import BookShape, PositionBook
from monitor.simulator.reflexive.exogenous import News, Shock
from monitor.simulator.reflexive.flow import NoiseFlow
from monitor.simulator.reflexive.margin import BINANCE_BTC_2021
from monitor.simulator.reflexive.market import Impact, run_symbol

DT = 0.25


def _quiet(n: int) -> NoiseFlow:
    """No noise trades at all."""
    f, i, b = np.array([], dtype=np.float64), np.array([], dtype=np.int64), np.array([], bool)
    return NoiseFlow(f, i, f, b, i, b, f, f, np.zeros(n))


def test_one_forced_order_moves_the_price_by_its_square_root_impact() -> None:
    n = 400
    exo = -0.0001 * np.arange(n)  # 1 bp a step, -4 % in all
    book = PositionBook()
    book.add(100_000.0, 1.0, True, 99_000.0, venue=0, close_t=1e9)
    book.add(100_000.0, 2.0, True, 98_500.0, venue=1, close_t=1.0)  # closed before it is reached
    impact = Impact(depth_usd=1e8, permanent_fraction=0.3, decay_s=30.0)
    run = run_symbol(start_price=100_000.0, exo=exo, noise=_quiet(n), book=book, impact=impact,
                     dt=DT, tiers=BINANCE_BTC_2021)  # fmt: skip
    (order,) = run.forced
    k = int(np.argmax(run.pre <= 99_000.0))  # the first step at or below the level
    p = run.pre[k]
    assert p == pytest.approx(100_000.0 * math.exp(exo[k]))
    d = -0.01 * math.sqrt(1.0 * p / 1e8)
    assert (order.position, order.long, order.level, order.venue) == (0, True, 99_000.0, 0)
    assert order.fill == pytest.approx(p * math.exp(d / 2), rel=1e-12)
    assert run.mark[k] == pytest.approx(p * math.exp(d), rel=1e-12)
    # one step later the transient part decayed: theta * d + (1 - theta) * d * exp(-dt/tau)
    left = 0.3 * d + 0.7 * d * math.exp(-DT / 30.0)
    assert run.pre[k + 1] == pytest.approx(100_000.0 * math.exp(exo[k + 1] + left), rel=1e-12)
    assert run.counterfactual[k + 1] == pytest.approx(100_000.0 * math.exp(exo[k + 1]), rel=1e-12)
    assert k * DT < order.t < (k + 1) * DT
    assert not order.early and not order.endogenous  # the news alone goes through 99000


def test_without_feedback_the_order_fills_at_the_price() -> None:
    n = 400
    book = PositionBook()
    book.add(100_000.0, 1.0, True, 99_000.0, venue=0, close_t=1e9)
    run = run_symbol(start_price=100_000.0, exo=-0.0001 * np.arange(n), noise=_quiet(n), book=book,
                     impact=Impact(1e8), dt=DT, tiers=BINANCE_BTC_2021, feedback=False)  # fmt: skip
    (order,) = run.forced
    assert order.fill == run.mark[int(order.t / DT)]
    assert np.array_equal(run.mark, run.counterfactual)


def _ladder(feedback: bool) -> list[float]:
    """30 long levels 10 $ apart just below the price; the news dips the price 1 bp."""
    n = 100
    exo = np.where(np.arange(n) >= 10, math.log(0.9999), 0.0)
    book = PositionBook()
    for j in range(30):
        book.add(100_000.0, 1.0, True, 99_995.0 - 10.0 * j, venue=j % 3, close_t=1e9)
    run = run_symbol(start_price=100_000.0, exo=exo, noise=_quiet(n), book=book,
                     impact=Impact(1e6), dt=DT, tiers=BINANCE_BTC_2021, feedback=feedback)  # fmt: skip
    assert all(10 * DT < f.t < 11 * DT for f in run.forced)  # all in the step of the dip
    assert [f.t for f in run.forced] == sorted(f.t for f in run.forced)
    # the first one the news liquidated, every further one only because of the others
    assert [f.endogenous for f in run.forced] == [False] + [True] * (len(run.forced) - 1)
    return [f.level for f in run.forced]


def test_one_step_chains_through_the_levels_in_price_order() -> None:
    levels = _ladder(feedback=True)
    assert levels == [99_995.0 - 10.0 * j for j in range(30)]  # every one, highest first
    assert _ladder(feedback=False) == [99_995.0]  # no feedback, no chain


def _crash(seed: int, feedback: bool) -> tuple[float, float, float]:
    """BTC alone, 15 min, a 3 % news drop into dense long leverage."""
    btc = SymbolSetup("BTCUSDT", 1.0, 300e6, 8.0, 8000.0,
                      longs=BookShape(20e6, 20_000.0, cleared=0.005),
                      shorts=BookShape(2e6, 20_000.0, cleared=0.005))  # fmt: skip
    news = News(shocks=(Shock(180.0, 60.0, math.log(0.97)),))
    sc = simulate(MarketSetup("test", seed, 900.0, news, (btc,), ("binance", "bybit"),
                              feedback=feedback))  # fmt: skip
    row = sc.truth.by_symbol["BTCUSDT"]
    assert sc.truth.endogenous_share <= sc.truth.early_share
    if not feedback:
        assert sc.truth.endogenous_share == 0.0 and sc.truth.early_share == 0.0
        assert row["counterfactual_min"] == row["min_price"]
    return sc.truth.forced_usd["total"], row["min_price"], sc.truth.endogenous_share


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_feedback_liquidates_more_and_moves_the_price_further(seed: int) -> None:
    on_usd, on_min, on_endo = _crash(seed, feedback=True)
    off_usd, off_min, _ = _crash(seed, feedback=False)
    assert on_usd > off_usd > 0
    assert on_min < off_min
    assert on_endo > 0.0
