"""The simulator's markPrice frames through the producer's own subscription and parser (pure): every
MarketContext sits on the scenario's price path at its event time."""

from __future__ import annotations

from urllib.parse import urlsplit

from monitor.core.config import ExchangeConfig
from monitor.core.schema import MarketContext
from monitor.simulator.instruments import instrument
from monitor.simulator.scenario import crash_scenario
from monitor.simulator.venues.binance import BinanceFeed, BinanceSession, parse_route
from producers.binance import BinanceAdapter

START_MS = 1_700_000_001_000  # wall time of scenario second 0
RECV = 1_700_000_001_500_000_000


def test_simulated_marks_parse_to_the_scenario_path() -> None:
    sc = crash_scenario(
        duration_s=4.0, venues=("binance",), symbols=("BTCUSDT", "ETHUSDT", "SOLUSDT")
    )
    cfg = ExchangeConfig(symbols=sc.symbols)
    adapter = BinanceAdapter(cfg)
    _, trades = adapter.connections(cfg, "ws://127.0.0.1:9/market")
    url = urlsplit(trades.url)
    session = BinanceSession(parse_route(f"{url.path}?{url.query}"), "c1")  # as the simulator would
    assert [s for s in session.subscriptions if s.endswith("@markPrice@1s")] == [
        "btcusdt@markPrice@1s", "ethusdt@markPrice@1s", "solusdt@markPrice@1s",
    ]  # fmt: skip

    feed = BinanceFeed(sc, start_ms=START_MS)
    contexts: list[MarketContext] = []
    while (deadline := feed.next_deadline_ms()) is not None:
        for out in feed.flush(deadline):
            for frame in session.frames_for(out):
                parsed = adapter.parse(frame, RECV)
                assert parsed.errors == []
                contexts += [e for e in parsed.events if isinstance(e, MarketContext)]

    # one per second (scenario seconds 0..4) per symbol, in order; the path at each event time
    assert [(c.ts_ms, c.venue_symbol) for c in contexts] == [
        (START_MS + 1000 * k, s) for k in range(5) for s in sc.symbols
    ]
    for c in contexts:
        path = sc.price_at(c.venue_symbol, (c.ts_ms - START_MS) / 1000)
        assert c.mark_price == instrument(c.venue_symbol).round_price(path)  # to the tick
        assert c.index_price == float(f"{path:.8f}")  # to the 8 decimals Binance prints
        assert abs(c.index_price - path) <= 5e-9
        assert (c.funding_rate, c.next_funding_ms) == (0.0001, 1_700_006_400_000)
        assert (c.open_interest_base, c.open_interest_usd) == (None, None)
        assert c.exchange == "binance" and c.received_ns == RECV
    assert [c.symbol for c in contexts[:3]] == ["BTC-USDT-PERP", "ETH-USDT-PERP", "SOL-USDT-PERP"]
    first = {c.venue_symbol: c.mark_price for c in contexts[:3]}
    assert first == {"BTCUSDT": 95000.0, "ETHUSDT": 3300.0, "SOLUSDT": 190.0}  # start prices
    last = {c.venue_symbol: c.mark_price for c in contexts[-3:]}
    assert last["BTCUSDT"] == instrument("BTCUSDT").round_price(95000.0 * 0.94)  # end of the fall
