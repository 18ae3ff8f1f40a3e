from __future__ import annotations

import functools
from decimal import Decimal

import pytest

from monitor.simulator.instruments import INSTRUMENTS, fmt_decimal, instrument
from monitor.simulator.scenario import Scenario, SimLiquidation, SimTrade, crash_scenario

# Stated ranges: BTC ~6 %, ETH ~8 %, SOL ~11 % lower at the end.
DRAWDOWN_RANGES = {"BTCUSDT": (0.05, 0.07), "ETHUSDT": (0.07, 0.09), "SOLUSDT": (0.10, 0.12)}


@functools.cache
def scenario(duration_s: float = 60.0, seed: int = 7) -> Scenario:
    return crash_scenario(duration_s=duration_s, seed=seed)


def test_same_seed_gives_identical_events_and_another_seed_does_not() -> None:
    a = crash_scenario(duration_s=30, seed=3)
    b = crash_scenario(duration_s=30, seed=3)
    assert a.events == b.events
    assert a.paths == b.paths
    assert crash_scenario(duration_s=30, seed=4).events != a.events


def test_venue_and_symbol_flows_do_not_depend_on_the_other_venues_or_symbols() -> None:
    full = scenario()
    only_bybit = crash_scenario(venues=("bybit",))
    assert only_bybit.events == [e for e in full.events if e.venue == "bybit"]
    only_eth = crash_scenario(symbols=("ETHUSDT",))
    assert only_eth.events == [e for e in full.events if e.venue_symbol == "ETHUSDT"]


def test_events_are_sorted_inside_the_duration_and_cover_every_venue_and_symbol() -> None:
    sc = scenario()
    times = [e.t for e in sc.events]
    assert times == sorted(times)
    assert times[0] >= 0.0
    assert times[-1] <= sc.duration_s
    pairs = {(e.venue, e.venue_symbol, type(e)) for e in sc.events}
    assert pairs == {
        (v, s, k)
        for v in ("binance", "bybit")
        for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")
        for k in (SimTrade, SimLiquidation)
    }


@pytest.mark.parametrize("seed", [7, 1, 2, 3])
def test_each_symbol_falls_by_its_stated_drawdown_after_a_calm_quarter(seed: int) -> None:
    sc = scenario(seed=seed)
    summary = sc.summary()
    assert sc.crash_start_s == 15.0
    for sym, (lo, hi) in DRAWDOWN_RANGES.items():
        s = summary["symbols"][sym]
        assert s["start_price"] == INSTRUMENTS[sym].start_price
        assert lo <= s["drawdown"] <= hi
        assert lo <= 1 - s["min_price"] / s["start_price"] <= hi + 0.01
        # Calm first quarter: within 1 % of the start.
        assert abs(sc.price_at(sym, sc.crash_start_s) / s["start_price"] - 1) < 0.01
        # Trades follow the path: the last trades print near the end price.
        last = [e.price for e in sc.trades("binance") if e.venue_symbol == sym][-5:]
        assert all(abs(p / s["end_price"] - 1) < 0.005 for p in last)


@pytest.mark.parametrize("seed", [7, 1, 2, 3])
def test_crash_liquidations_are_mostly_longs_and_accelerate(seed: int) -> None:
    sc = scenario(seed=seed)
    quarter = sc.duration_s / 4
    for venue in ("binance", "bybit"):
        crash = [x for x in sc.liquidations(venue) if x.t >= sc.crash_start_s]
        long_notional = sum(x.qty * x.price for x in crash if x.liquidated_side == "long")
        share = long_notional / sum(x.qty * x.price for x in crash)
        assert share >= 0.8
        assert share == pytest.approx(sc.summary()["venues"][venue]["crash_long_share"])
        first = sum(x.t < quarter for x in sc.liquidations(venue))
        last = sum(x.t >= 3 * quarter for x in sc.liquidations(venue))
        assert last >= 4 * max(first, 1)
        # calm rate ~0.2/s per symbol per venue; end rate several per second per symbol
        assert first / quarter / 3 < 0.5
        tail = sum(x.t >= sc.duration_s - 5 for x in sc.liquidations(venue))
        assert tail / 5 / 3 >= 1.5


def test_taker_sells_dominate_the_crash_but_not_the_calm() -> None:
    sc = scenario()
    quarter = sc.duration_s / 4
    for venue in ("binance", "bybit"):
        trades = sc.trades(venue)
        calm = [t for t in trades if t.t < quarter]
        late = [t for t in trades if t.t >= 3 * quarter]
        calm_sells = sum(t.taker_side == "sell" for t in calm) / len(calm)
        late_sells = sum(t.taker_side == "sell" for t in late) / len(late)
        assert 0.4 <= calm_sells <= 0.6
        assert late_sells >= 0.65


def test_sixty_second_volumes_are_moderate() -> None:
    summary = scenario().summary()
    for venue in ("binance", "bybit"):
        v = summary["venues"][venue]
        assert 1000 <= v["trades"] <= 4000
        assert 120 <= v["liquidations"] <= 600
        assert v["long_liquidations"] > v["liquidations"] // 2
    # per symbol per venue: a few to about 20 trades per second
    trades = scenario().trades("binance")
    btc_first_s = sum(t.t < 1 and t.venue_symbol == "BTCUSDT" for t in trades)
    btc_last_s = sum(t.t >= 59 and t.venue_symbol == "BTCUSDT" for t in trades)
    assert 1 <= btc_first_s <= 12
    assert 10 <= btc_last_s <= 40


def test_prices_and_quantities_sit_exactly_on_the_tick_and_lot_grid() -> None:
    for e in scenario().events:
        spec = instrument(e.venue_symbol)
        price_text = spec.price_text(e.price)
        qty_text = spec.qty_text(e.qty)
        assert float(price_text) == e.price
        assert float(qty_text) == e.qty
        assert Decimal(price_text) % Decimal(fmt_decimal(spec.tick, spec.price_decimals)) == 0
        assert Decimal(qty_text) % Decimal(fmt_decimal(spec.lot, spec.qty_decimals)) == 0
        assert e.qty >= spec.lot


def test_decimal_formatting_is_exact() -> None:
    btc = instrument("BTCUSDT")
    assert btc.round_price(95000.06) == 95000.1
    assert btc.price_text(btc.round_price(95000.06)) == "95000.1"
    assert btc.price_text(95000.0, strip=True) == "95000"
    assert btc.round_price(94999.99, "floor") == 94999.9
    assert btc.round_price(94999.91, "ceil") == 95000.0
    assert btc.qty_text(btc.round_qty(0.0104)) == "0.010"
    assert btc.qty_text(0.01, strip=True) == "0.01"
    assert btc.round_qty(0.0001) == 0.001  # at least one lot
    sol = instrument("SOLUSDT")
    assert sol.qty_text(sol.round_qty(12.34)) == "12.3"
    assert sol.price_text(sol.round_price(190.005, "floor")) == "190.00"


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="XRPUSDT"):
        crash_scenario(symbols=("XRPUSDT",))
    with pytest.raises(ValueError, match="ftx"):
        crash_scenario(venues=("ftx",))
    with pytest.raises(ValueError, match="duration_s"):
        crash_scenario(duration_s=0)
