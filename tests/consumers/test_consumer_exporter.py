"""The scrape-time collector, read back through the Prometheus text format."""

from __future__ import annotations

import math
import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from consumers.exporter import RiskCollector
from consumers.state import RiskState
from monitor.core.codec import decode_batch, encode_batch
from monitor.core.metrics import RISK_METRICS
from monitor.core.schema import Event
from tests.consumers.consumer_refs import (
    label_values,
    liq,
    scrape,
    series,
    trade,
    value,
)

X = "binance"


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _apply(state: RiskState, events: list[Event]) -> None:
    state.apply(decode_batch(encode_batch(events)))


def _setup(
    cap: int = 200, lam: float = 0.94
) -> tuple[RiskState, CollectorRegistry, Clock, RiskCollector]:
    clock = Clock(50_000.0)
    state = RiskState(16, vol_interval_s=1.0, vol_lambda=lam, wall_clock=clock)
    registry = CollectorRegistry()
    collector = RiskCollector.for_registry(registry)
    collector.attach(X, state, cap)
    return state, registry, clock, collector


def test_exact_values_at_the_event_clock_and_decay_with_wall_time() -> None:
    state, registry, clock, _ = _setup(lam=0.5)
    _apply(state, [liq("BTC-USDT-PERP", "long", 600.0, 1_000_000),
                   liq("BTC-USDT-PERP", "short", 120.0, 1_000_000),
                   trade("BTC-USDT-PERP", "buy", 100.0, 2_000.0, 1_000_000),
                   trade("BTC-USDT-PERP", "sell", 125.0, 500.0, 1_001_000)])  # fmt: skip
    sym = {"exchange": X, "symbol": "BTC-USDT-PERP"}
    s = scrape(registry)
    # now = last event time (1001 s): the long rate has decayed for 1 s
    rate = "cascade_liquidation_rate_usd_per_second"
    assert value(s, rate, **sym, side="long", window="10s") == 60.0 * math.exp(-1.0 / 10.0)
    assert value(s, rate, **sym, side="long", window="60s") == 10.0 * math.exp(-1.0 / 60.0)
    assert value(s, rate, **sym, side="short", window="300s") == 0.4 * math.exp(-1.0 / 300.0)
    assert value(s, "cascade_liquidation_notional_usd_total", **sym, side="long") == 600.0
    assert value(s, "cascade_liquidation_notional_usd_total", **sym, side="short") == 120.0
    assert value(s, "cascade_liquidations_total", **sym, side="long") == 1.0
    assert value(s, "cascade_trade_notional_usd_total", **sym) == 2_500.0
    assert value(s, "cascade_last_price", **sym) == 125.0
    # interval 1000 closed by the 1001 trade with r = ln(100/100) = 0; 1001 still open
    assert value(s, "cascade_volatility_ewma", **sym, interval="1s") == 0.0
    assert label_values(s, rate, "side") == {"long", "short"}  # no unknown-side liquidations
    # a quiet market: 29 s of wall time later the read-out is at 1030 s
    clock.t += 29.0
    s = scrape(registry)
    assert value(s, rate, **sym, side="long", window="10s") == 60.0 * math.exp(-30.0 / 10.0)
    assert value(s, "cascade_liquidation_notional_usd_total", **sym, side="long") == 600.0
    r = math.log(125.0 / 100.0)  # interval 1001 closed, 1002..1029 empty
    want = math.sqrt((0.5 * 0.0 + 0.5 * r * r) * 0.5**28)
    assert value(s, "cascade_volatility_ewma", **sym, interval="1s") == want


def test_families_follow_risk_metrics_definitions() -> None:
    state, registry, _, _ = _setup()
    _apply(state, [liq("ETH-USDT-PERP", "unknown", 5.0, 1000),
                   trade("ETH-USDT-PERP", "buy", 10.0, 5.0, 1000)])  # fmt: skip

    fams = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    for name, m in RISK_METRICS.items():
        fam = fams[name]
        assert fam.type == m.kind and fam.documentation == m.doc
        for sample in fam.samples:
            if not sample.name.endswith("_created"):
                assert set(sample.labels) == set(m.labels), name
    s = scrape(registry)
    assert label_values(s, "cascade_liquidations_total", "side") == {"long", "short", "unknown"}
    assert value(s, "cascade_liquidations_total", exchange=X, symbol="ETH-USDT-PERP",
                 side="unknown") == 1.0  # fmt: skip
    assert "cascade_volatility_ewma" not in {n for n, _ in s}  # no closed interval yet
    assert RiskCollector.for_registry(registry) is RiskCollector.for_registry(registry)
    with pytest.raises(ValueError, match="Duplicated"):
        RiskCollector(registry)


def test_symbol_cap_exports_the_most_active_pairs() -> None:
    state, registry, clock, _ = _setup(cap=2)
    # activity = 300 s liquidation rate + 300 s trade rate; D's big liquidation is old
    _apply(state, [liq("D-USDT-PERP", "long", 50_000.0, 0)])
    _apply(state, [liq("A-USDT-PERP", "long", 1_000.0, 3_000_000)])
    _apply(state, [trade("B-USDT-PERP", "sell", 1.0, 4_000.0, 3_000_000)])
    _apply(state, [liq("C-USDT-PERP", "short", 3_000.0, 3_000_000)])
    s = scrape(registry)
    for name in ("cascade_liquidation_notional_usd_total", "cascade_trade_notional_usd_total",
                 "cascade_liquidation_rate_usd_per_second"):  # fmt: skip
        assert label_values(s, name, "symbol") == {"B-USDT-PERP", "C-USDT-PERP"}, name
    assert label_values(s, "cascade_last_price", "symbol") == {"B-USDT-PERP"}
    # a burst on A (36.7 USD/s over 300 s) moves it first; C (10 USD/s) drops out behind B (13.3)
    _apply(state, [liq("A-USDT-PERP", "long", 10_000.0, 3_000_000)])
    s = scrape(registry)
    assert label_values(s, "cascade_liquidations_total", "symbol") == {"A-USDT-PERP", "B-USDT-PERP"}
    assert value(s, "cascade_liquidation_notional_usd_total", exchange=X, symbol="A-USDT-PERP",
                 side="long") == 11_000.0  # fmt: skip
    assert len(series(s, "cascade_liquidation_notional_usd_total")) == 4  # 2 pairs x long/short
    assert len(series(s, "cascade_liquidation_rate_usd_per_second")) == 12
    clock.t += 1.0
    assert len([r for r in state.snapshot(state.now_s())]) == 4  # the snapshot is not capped


def test_scrape_reads_a_consistent_copy_while_another_thread_applies() -> None:
    state, registry, _, _ = _setup()
    n_batches = 400
    stop = threading.Event()
    bad: list[str] = []

    def scraper() -> None:
        while not stop.is_set():
            s = scrape(registry)
            for sym in ("P-USDT-PERP", "Q-USDT-PERP"):
                lab = {"exchange": X, "symbol": sym}
                n_long = value(s, "cascade_liquidations_total", **lab, side="long") or 0.0
                n_short = value(s, "cascade_liquidations_total", **lab, side="short") or 0.0
                usd = value(s, "cascade_liquidation_notional_usd_total", **lab, side="long") or 0.0
                trd = value(s, "cascade_trade_notional_usd_total", **lab) or 0.0
                # every record moves all four together
                if not (n_long == n_short == usd == trd / 2):
                    bad.append(f"{sym}: {n_long} {n_short} {usd} {trd}")

    th = threading.Thread(target=scraper)
    th.start()
    try:
        for i in range(n_batches):
            for sym in ("P-USDT-PERP", "Q-USDT-PERP"):
                _apply(state, [liq(sym, "long", 1.0, 1000 + i), liq(sym, "short", 1.0, 1000 + i),
                               trade(sym, "buy", 10.0, 2.0, 1000 + i)])  # fmt: skip
    finally:
        stop.set()
        th.join()
    assert not bad, bad[:5]
    s = scrape(registry)
    assert value(s, "cascade_liquidations_total", exchange=X, symbol="Q-USDT-PERP",
                 side="long") == float(n_batches)  # fmt: skip


def test_exchanges_share_a_registry_with_a_cap_each() -> None:
    state, registry, _, collector = _setup(cap=1)
    other = RiskState(4, wall_clock=state.wall_clock)
    collector.attach("bybit", other, 1)
    _apply(state, [liq("A-USDT-PERP", "long", 1.0, 1000)])
    _apply(state, [liq("B-USDT-PERP", "long", 2.0, 1000)])
    _apply(other, [liq("A-USDT-PERP", "short", 3.0, 1000, exchange="bybit")])
    _apply(other, [liq("C-USDT-PERP", "short", 1.0, 1000, exchange="bybit")])
    s = scrape(registry)
    name = "cascade_liquidation_notional_usd_total"
    assert {k: v for k, v in series(s, name).items() if v} == {
        frozenset({"exchange": X, "symbol": "B-USDT-PERP", "side": "long"}.items()): 2.0,
        frozenset({"exchange": "bybit", "symbol": "A-USDT-PERP", "side": "short"}.items()): 3.0,
    }
    # a restarted consumer's state replaces the previous one of its exchange
    fresh = RiskState(4)
    collector.attach("bybit", fresh, 1)
    _apply(fresh, [liq("D-USDT-PERP", "long", 9.0, 1000, exchange="bybit")])
    s = scrape(registry)
    assert label_values(s, name, "symbol") == {"B-USDT-PERP", "D-USDT-PERP"}
