"""The Gate protocol module, sans-I/O: requests and replies, aggregation, sign convention, ticker
(market context) pushes, and the round trip through the real adapter."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.schema import Liquidation, MarketContext
from monitor.simulator.instruments import instrument
from monitor.simulator.ledger import Ledger, SentLiquidation, SentTrade
from monitor.simulator.scenario import SimLiquidation, SimTrade, crash_scenario
from monitor.simulator.venues import gate
from monitor.simulator.wire import Outgoing, Reply
from producers.gate import GateAdapter


def one(r: Reply) -> Any:
    (frame,) = r.frames
    return orjson.loads(frame)


def sub(channel: str, payload: Any, event: str = "subscribe") -> bytes:
    return orjson.dumps({"time": 1, "channel": channel, "event": event, "payload": payload})


def market(outs: list[Outgoing]) -> list[Outgoing]:
    """The trade and liquidation pushes, without the tickers (market context)."""
    return [o for o in outs if not o.streams[0].startswith("futures.tickers|")]


def tickers(outs: list[Outgoing]) -> list[Outgoing]:
    return [o for o in outs if o.streams[0].startswith("futures.tickers|")]


def test_spec_and_rest() -> None:
    spec = gate.SPEC
    assert (spec.name, spec.base_path, spec.binary, spec.tick_s) == (
        "gate",
        "/v4/ws/usdt",
        False,
        None,
    )
    assert spec.route("/v4/ws/usdt") is None and spec.route("/v4/ws/btc") == (
        404,
        "Not Found: /v4/ws/btc",
    )
    status, body = gate.rest("/api/v4/futures/usdt/contracts") or (0, b"")
    assert status == 200 and gate.rest("/api/v4/spot/currencies") is None
    adapter = GateAdapter(ExchangeConfig())
    assert adapter.load_instruments("u", body) == 4
    assert [(c["name"], c["quanto_multiplier"]) for c in orjson.loads(body)] == [
        ("BTC_USDT", "0.0001"), ("ETH_USDT", "0.01"), ("SOL_USDT", "1"), ("DOGE_USDT", "10"),
    ]  # fmt: skip


def test_subscribe_ping_and_errors() -> None:
    s = gate.GateSession("c")
    ok = s.handle(sub("futures.public_liquidates", ["!all"]), 1700000000.5)
    assert ok.subscriptions_changed
    assert one(ok) == {"time": 1700000000, "time_ms": 1700000000500,
                       "channel": "futures.public_liquidates", "event": "subscribe",
                       "payload": ["!all"], "error": None, "result": {"status": "success"}}  # fmt: skip
    bad = one(s.handle(sub("futures.trades", ["BTC_USDT", "!all"]), 1.0))
    assert bad["error"] == {"code": 2, "message": "unknown contract !all"}
    assert bad["result"] == {"status": "fail"}
    assert one(s.handle(sub("futures.trades", ["BTC_USDT"]), 1.0))["error"] is None
    assert list(s.subscriptions) == ["futures.public_liquidates|!all", "futures.trades|BTC_USDT"]
    s.handle(sub("futures.trades", ["BTC_USDT"], "unsubscribe"), 1.0)
    assert list(s.subscriptions) == ["futures.public_liquidates|!all"]
    pong = one(s.handle(b'{"time": 5, "channel": "futures.ping"}', 5.25))
    assert pong == {"time": 5, "time_ms": 5250, "channel": "futures.pong", "event": "",
                    "error": None, "result": None}  # fmt: skip
    assert one(s.handle(b"{x", 1.0))["error"]["code"] == 2


def liq(side: str, qty: float, sym: str = "BTCUSDT") -> SimLiquidation:
    return SimLiquidation(0, "gate", sym, side, 95000.0, qty)


def test_liquidations_aggregated_per_contract_per_second_with_sign() -> None:
    feed = gate.GateFeed()
    assert market(feed.on_event(liq("long", 0.25), 1_000_100)) == []
    assert market(feed.on_event(liq("short", 0.00004), 1_000_200)) == []  # 0 contracts: dropped
    assert market(feed.on_event(liq("short", 0.0123), 1_000_999)) == []
    assert market(feed.on_event(liq("long", 0.5), 1_001_000)) == []  # next window
    assert feed.next_deadline_ms() == 1_001_000
    (out,) = feed.flush(1_001_000)
    assert out.streams == ("futures.public_liquidates|BTC_USDT", "futures.public_liquidates|!all")
    assert orjson.loads(out.payload) == {
        "channel": "futures.public_liquidates", "event": "update", "time": 1001,
        "time_ms": 1_001_000,
        "result": [
            {"price": "94525.0", "size": "-2500", "time": 1_000_100, "contract": "BTC_USDT"},
            {"price": "95475.0", "size": "123", "time": 1_000_999, "contract": "BTC_USDT"},
        ],
    }  # fmt: skip
    assert out.items == (
        SentLiquidation(
            "gate", "BTC_USDT", "long", "2500", "94525.0", 1_000_100, multiplier=0.0001
        ),
        SentLiquidation(
            "gate", "BTC_USDT", "short", "123", "95475.0", 1_000_999, multiplier=0.0001
        ),
    )
    assert feed.next_deadline_ms() == 1_002_000


def test_early_flush_at_20() -> None:
    feed = gate.GateFeed()
    outs = [o for i in range(21) for o in feed.on_event(liq("long", 1.0, "SOLUSDT"), 5_000 + i)]
    (out,) = market(outs)
    assert len(orjson.loads(out.payload)["result"]) == 20 and len(out.keys) == 20
    (rest,) = feed.flush(6_000)
    assert len(orjson.loads(rest.payload)["result"]) == 1


def test_trades_pushed_at_once_negative_size_is_taker_sell() -> None:
    feed = gate.GateFeed()
    (out,) = market(
        feed.on_event(SimTrade(0, "gate", "ETHUSDT", 3300.0, 0.5, "sell"), 1_700_000_000_123)
    )
    (item,) = orjson.loads(out.payload)["result"]
    assert {k: item[k] for k in ("size", "create_time", "create_time_ms", "price", "contract")} == {
        "size": "-50", "create_time": 1_700_000_000, "create_time_ms": 1_700_000_000_123,
        "price": "3300.00", "contract": "ETH_USDT",
    }  # fmt: skip
    assert out.items == (
        SentTrade(
            "gate", "ETH_USDT", "sell", "0.50", "3300.00", 1_700_000_000_123, str(item["id"])
        ),
    )


def test_round_trip_feed_to_adapter_matches_the_ledger() -> None:
    scenario = crash_scenario(duration_s=60.0, seed=11, venues=("bybit",))
    adapter = GateAdapter(ExchangeConfig())
    adapter.load_instruments("u", gate.rest(gate.CONTRACTS_PATH)[1])  # type: ignore[index]
    session = gate.GateSession("c")
    session.handle(sub("futures.public_liquidates", ["!all"]), 0.0)
    session.handle(sub("futures.trades", ["BTC_USDT", "ETH_USDT", "SOL_USDT"]), 0.0)
    feed, ledger = gate.GateFeed(), Ledger()
    got: dict[tuple[str, str], float] = {}
    errors: list[str] = []
    n_trades = 0
    t0 = 1_700_000_000_000
    outs = []
    for ev in scenario.events:
        now = t0 + round(ev.t * 1000)
        outs += feed.flush(now)
        outs += feed.on_event(dataclasses.replace(ev, venue="gate"), now)
    outs += feed.flush(t0 + 10**9)
    for out in outs:
        for frame in session.frames_for(out):
            ledger.record("gate", out.keys, out.items)
            parsed = adapter.parse(frame, 1)
            errors += parsed.errors
            for e in parsed.events:
                if isinstance(e, Liquidation):
                    key = (e.symbol, e.liquidated_side.value)
                    got[key] = got.get(key, 0.0) + e.notional_usd
                else:
                    n_trades += 1
    want = {(f"{c.replace('_', '-')}-PERP", side): v
            for (_, c, side), v in ledger.liquidation_notional().items()}  # fmt: skip
    assert errors == [] and n_trades == len(ledger.trades) > 100
    assert len(ledger.liquidations) > 10 and ("BTC-USDT-PERP", "long") in want
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-6)


def test_tickers_subscription_takes_contracts_not_all() -> None:
    s = gate.GateSession("c")
    assert one(s.handle(sub("futures.tickers", ["BTC_USDT", "SOL_USDT"]), 1.0))["error"] is None
    bad = one(s.handle(sub("futures.tickers", ["!all"]), 1.0))
    assert bad["error"] == {"code": 2, "message": "unknown contract !all"}
    assert list(s.subscriptions) == ["futures.tickers|BTC_USDT", "futures.tickers|SOL_USDT"]
    feed = gate.GateFeed()
    (t,) = tickers(feed.on_event(liq("long", 0.25), 1_000))
    assert s.frames_for(t) == [t.payload]
    (eth,) = tickers(feed.on_event(liq("long", 0.25, "ETHUSDT"), 1_000))
    assert s.frames_for(eth) == []


def test_ticker_pushes_documented_shape_throttled_not_in_the_ledger() -> None:
    feed = gate.GateFeed(lambda sym, t: 95_000.04)  # a flat path at the start price: calm
    trade = SimTrade(10.0, "gate", "BTCUSDT", 95_010.0, 0.0123, "buy")
    trade_out, ticker = feed.on_event(trade, 1_700_000_000_123)
    assert trade_out.streams == ("futures.trades|BTC_USDT",)
    assert ticker.streams == ("futures.tickers|BTC_USDT",)
    assert ticker.keys == () and ticker.items == ()  # context: not in the ledger
    doc = orjson.loads(ticker.payload)
    assert list(doc) == ["time", "time_ms", "channel", "event", "result"]
    assert (doc["time"], doc["time_ms"], doc["channel"], doc["event"]) == (
        1_700_000_000, 1_700_000_000_123, "futures.tickers", "update",
    )  # fmt: skip
    (item,) = doc["result"]
    # 1e9 USD at 95000 = 10526.3 BTC, +2e-5/s for 10 s: 105284211 contracts of 0.0001 BTC
    assert item == {
        "contract": "BTC_USDT", "last": "95010.0", "change_percentage": "0.01",
        "funding_rate": "0.000100", "funding_rate_indicative": "0.000050",
        "mark_price": "95000.0", "index_price": "95000.040", "total_size": "105284211",
        "volume_24h": "123", "volume_24h_base": "0.0123", "volume_24h_quote": "1169",
        "volume_24h_settle": "1169", "low_24h": "95010.0", "high_24h": "95010.0",
        "quanto_base_rate": "",
    }  # fmt: skip
    assert list(item) == [  # the documented order, less the BTC-settled volume_24h_btc / _usd
        "contract", "last", "change_percentage", "funding_rate", "funding_rate_indicative",
        "mark_price", "index_price", "total_size", "volume_24h", "quanto_base_rate",
        "volume_24h_quote", "volume_24h_settle", "volume_24h_base", "low_24h", "high_24h",
    ]  # fmt: skip
    assert tickers(feed.on_event(trade, 1_700_000_000_999)) == []  # within the second: none
    assert len(tickers(feed.on_event(liq("long", 0.00001), 1_700_000_001_123))) == 1
    assert len(tickers(feed.on_event(liq("long", 1.0, "SOLUSDT"), 1_700_000_001_123))) == 1
    # only liquidations wait for a deadline: tickers never delay the end of playback
    assert feed.next_deadline_ms() == 1_700_000_002_000


def test_tickers_round_trip_on_the_scenario_path() -> None:
    scenario = crash_scenario(duration_s=60.0, seed=11, venues=("gate",))
    adapter = GateAdapter(ExchangeConfig())
    adapter.load_instruments("u", gate.rest(gate.CONTRACTS_PATH)[1])  # type: ignore[index]
    session = gate.GateSession("c")
    session.handle(sub("futures.tickers", ["BTC_USDT", "ETH_USDT", "SOL_USDT"]), 0.0)
    feed = gate.GateFeed(scenario.price_at)
    t0 = 1_700_000_000_000
    contexts: list[tuple[float, MarketContext]] = []
    for ev in scenario.events:
        now = t0 + round(ev.t * 1000)
        for out in feed.on_event(ev, now):
            for frame in session.frames_for(out):
                parsed = adapter.parse(frame, 1)
                assert parsed.errors == []
                for e in parsed.events:
                    assert isinstance(e, MarketContext) and e.ts_ms == now
                    contexts.append((ev.t, e))
    assert {e.symbol for _, e in contexts} == {"BTC-USDT-PERP", "ETH-USDT-PERP", "SOL-USDT-PERP"}
    assert len(contexts) > 100  # about one per contract per (wall = scenario) second
    for t, e in contexts:
        sym = e.symbol.replace("-", "").removesuffix("PERP")
        spec = instrument(sym)
        path = scenario.price_at(sym, t)
        assert e.mark_price == spec.round_price(path)  # the path, on the tick grid
        half_unit = 0.5 * 10 ** -(spec.price_decimals + 2)  # the index has two more decimals
        assert e.index_price is not None
        assert path - half_unit <= e.index_price <= path * 1.0005 + half_unit
        assert e.funding_rate is not None and -0.0004 - 1e-12 <= e.funding_rate <= 0.0001
        assert e.open_interest_base is not None and e.open_interest_base > 0
        assert e.open_interest_usd is None and e.next_funding_ms is None
    btc = [e for _, e in contexts if e.symbol == "BTC-USDT-PERP"]
    assert btc[-1].funding_rate is not None and btc[-1].funding_rate < 0  # the crash: negative
    assert btc[-1].open_interest_base < btc[0].open_interest_base  # type: ignore[operator]
