"""Families: determinism, ground-truth invariants, and what each family is for."""

from __future__ import annotations

from collections import defaultdict

import orjson
import pytest

from monitor.simulator.reflexive.assemble import ReflexiveScenario
from monitor.simulator.reflexive.families import FAMILIES, jan27, no_leverage_news
from monitor.simulator.reflexive.listing import listed
from monitor.simulator.scenario import SimLiquidation, SimTrade

SEED = 11
_CACHE: dict[tuple[str, int], ReflexiveScenario] = {}


def scenario(family: str, seed: int = SEED) -> ReflexiveScenario:
    if (family, seed) not in _CACHE:
        _CACHE[(family, seed)] = FAMILIES[family](seed)
    return _CACHE[(family, seed)]


def test_same_seed_same_scenario_other_seed_other_scenario() -> None:
    a, b = no_leverage_news(5), no_leverage_news(5)
    assert a.events == b.events and a.paths == b.paths
    assert a.truth.to_dict() == b.truth.to_dict()
    c = no_leverage_news(6)
    assert c.events != a.events and c.truth.to_dict() != a.truth.to_dict()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_ground_truth_is_consistent_with_the_events(family: str) -> None:
    sc = scenario(family)
    tr = sc.truth
    assert tr.family == family and tr.seed == SEED
    assert [e.t for e in sc.events] == sorted(e.t for e in sc.events)
    liqs = sc.liquidations()
    usd: dict[str, float] = defaultdict(float)
    for liq in liqs:
        usd[liq.liquidated_side] += liq.qty * liq.price
        assert listed(liq.venue, liq.venue_symbol)
    assert tr.forced_usd["long"] == pytest.approx(usd["long"], rel=1e-12)
    assert tr.forced_usd["short"] == pytest.approx(usd["short"], rel=1e-12)
    assert tr.forced_usd["total"] == pytest.approx(usd["long"] + usd["short"], rel=1e-12)
    assert tr.forced_count["total"] == len(liqs) == len(sc.forced)
    assert sum(v["count"] for v in tr.by_venue.values()) == len(liqs)
    assert 0.0 <= tr.endogenous_share <= tr.early_share <= 1.0
    if tr.onset_s is not None:
        assert tr.peak_minute_s is not None and tr.onset_s < tr.peak_minute_s + 60
        assert tr.onset_s >= tr.baseline_end_s
    if tr.is_cascade:
        assert tr.onset_s is not None
    minutes: dict[int, float] = defaultdict(float)
    for liq in liqs:
        minutes[int(liq.t // 60)] += liq.qty * liq.price
    assert tr.peak_minute_usd == pytest.approx(max(minutes.values(), default=0.0), rel=1e-9)
    # each symbol's mark path covers the run, every venue lists what it trades
    for sym, path in sc.paths.items():
        assert len(path) == len(sc.path_times)
        assert sc.price_at(sym, sc.path_times[7] + 0.1) == pytest.approx(
            path[7] + (path[8] - path[7]) * 0.1 / sc.path_times[1]
        )
    assert not any(e.venue == "bitmex" and e.venue_symbol == "DOGEUSDT" for e in sc.events)
    assert 50_000 <= len(sc.events) <= 300_000  # the event budget of a backtest
    assert orjson.loads(tr.to_json()) == tr.to_dict()


def test_forced_orders_print_as_trades_except_where_the_feed_does_it() -> None:
    sc = scenario("flash_crash")
    prints = {(e.t, e.venue, e.venue_symbol) for e in sc.events if isinstance(e, SimTrade)}
    for e in sc.events:
        if isinstance(e, SimLiquidation):
            printed = (e.t, e.venue, e.venue_symbol) in prints
            assert printed == (e.venue not in ("deribit", "kraken", "hyperliquid"))


@pytest.mark.parametrize("seed", [SEED, 1, 2])
def test_jan27_is_a_long_cascade(seed: int) -> None:
    tr = scenario("jan27", seed).truth
    assert tr.long_share > 0.88
    assert tr.is_cascade
    btc = tr.by_symbol["BTCUSDT"]
    assert 0.03 < btc["max_drawdown"] < 0.10  # a -6 %-class move
    assert tr.by_symbol["SOLUSDT"]["max_drawdown"] > btc["max_drawdown"]


def test_flash_crash_has_one_dominant_minute() -> None:
    tr = scenario("flash_crash").truth
    assert tr.is_cascade and tr.long_share > 0.8
    assert tr.peak_minute_usd > 0.25 * tr.forced_usd["total"]


def test_short_squeeze_liquidates_shorts() -> None:
    tr = scenario("short_squeeze").truth
    assert tr.is_cascade and tr.long_share < 0.12
    assert tr.by_symbol["BTCUSDT"]["max_rise"] > 0.03


def test_calm_is_no_cascade() -> None:
    tr = scenario("calm").truth
    assert not tr.is_cascade
    assert tr.by_symbol["BTCUSDT"]["max_drawdown"] < 0.03


@pytest.mark.parametrize("seed", [SEED, 3])
def test_hard_negatives_move_a_lot_and_liquidate_little(seed: int) -> None:
    news = scenario("no_leverage_news", seed).truth
    btc = news.by_symbol["BTCUSDT"]
    assert max(btc["max_drawdown"], btc["max_rise"]) > 0.04
    assert not news.is_cascade
    crash = scenario("jan27", seed).truth if seed == SEED else jan27(seed).truth
    assert news.forced_usd["total"] < 0.1 * crash.forced_usd["total"]
    grind = scenario("slow_grind", seed).truth
    assert not grind.is_cascade
    assert grind.by_symbol["BTCUSDT"]["max_drawdown"] > 0.03
