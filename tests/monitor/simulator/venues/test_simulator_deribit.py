"""The Deribit protocol module, sans-I/O: JSON-RPC replies, heartbeats, trade batching, and the
round trip through the Deribit adapter."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.schema import Liquidation, MarketContext, Trade
from monitor.simulator.ledger import Ledger, SentLiquidation, SentTrade
from monitor.simulator.scenario import SimEvent, SimLiquidation, SimTrade
from monitor.simulator.venues.deribit import SPEC, DeribitFeed, DeribitSession
from producers.deribit import DeribitAdapter
from producers.deribit.instruments import instrument_for


def rpc(s: DeribitSession, request: dict[str, Any], now_s: float = 0.0) -> dict[str, Any]:
    r = s.handle(orjson.dumps({"jsonrpc": "2.0", **request}), now_s)
    assert len(r.frames) == 1
    body: dict[str, Any] = orjson.loads(r.frames[0])
    return body


def test_subscribe_unsubscribe_and_raw_refused() -> None:
    s = DeribitSession("c1")
    chans = ["trades.BTC-PERPETUAL.100ms", "trades.SOL_USDC-PERPETUAL.100ms"]
    r = s.handle(orjson.dumps({"jsonrpc": "2.0", "id": 2, "method": "public/subscribe",
                               "params": {"channels": chans}}), 0.0)  # fmt: skip
    assert r.frames == (
        b'{"jsonrpc":"2.0","id":2,"result":["trades.BTC-PERPETUAL.100ms","trades.SOL_USDC-PERPETUAL.100ms"]}',
    )
    assert r.subscriptions_changed and list(s.subscriptions) == chans
    assert rpc(s, {"id": 3, "method": "public/subscribe",
                   "params": {"channels": ["trades.ETH-PERPETUAL.raw"]}}) == {
        "jsonrpc": "2.0", "id": 3,
        "error": {"message": "raw_subscriptions_not_available_for_unauthorized", "code": 13778},
    }  # fmt: skip
    assert rpc(s, {"id": 4, "method": "public/unsubscribe",
                   "params": {"channels": ["trades.BTC-PERPETUAL.100ms", "trades.X-Y.100ms"]}}) == {
        "jsonrpc": "2.0", "id": 4, "result": ["trades.BTC-PERPETUAL.100ms"]}  # fmt: skip
    assert list(s.subscriptions) == ["trades.SOL_USDC-PERPETUAL.100ms"]
    assert rpc(s, {"id": 5, "method": "public/subscribe", "params": {"channels": ["book.x"]}})[
        "error"] == {"message": "Invalid params", "code": -32602}  # fmt: skip
    assert rpc(s, {"id": 6, "method": "private/buy"})["error"]["code"] == -32601


def test_heartbeat_test_request_cycle() -> None:
    s = DeribitSession("c")
    assert s.tick(100.0).frames == ()
    assert rpc(s, {"id": 1, "method": "public/set_heartbeat", "params": {"interval": 5}})[
        "error"]["code"] == -32602  # fmt: skip
    assert rpc(s, {"id": 1, "method": "public/set_heartbeat", "params": {"interval": 30}}, 0.0) == {
        "jsonrpc": "2.0", "id": 1, "result": "ok"}  # fmt: skip
    assert s.tick(29.0).frames == ()
    beat = s.tick(30.0)
    assert beat.frames == (
        b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}',
    )
    assert rpc(s, {"id": 7, "method": "public/test", "params": {}}, 31.0) == {
        "jsonrpc": "2.0", "id": 7, "result": {"version": "1.2.26"}}  # fmt: skip
    assert len(s.tick(60.0).frames) == 1 and s.tick(60.0).close is None  # answered: next one
    assert s.tick(90.0).close == (1000, "test_request not answered")


def test_adapter_answers_the_simulated_test_request() -> None:
    s = DeribitSession("c")
    adapter = DeribitAdapter(ExchangeConfig())
    cfg = ExchangeConfig(symbols=("BTC-PERPETUAL",))
    for frame in adapter.connections(cfg, "ws://x")[0].subscribe:
        assert "error" not in orjson.loads(s.handle(frame, 0.0).frames[0])
    for now in (30.0, 60.0, 90.0):
        (beat,) = s.tick(now).frames
        parsed = adapter.parse(beat, 1)
        assert parsed.control and len(parsed.replies) == 1
        s.handle(parsed.replies[0], now)
    assert s.tick(120.0).close is None


def test_route_and_spec() -> None:
    assert SPEC.route("/ws/api/v2") is None
    assert SPEC.route("/ws/api/v1") == (404, "Not Found")
    assert SPEC.tick_s == 1.0 and SPEC.name == "deribit" and SPEC.base_path == "/ws/api/v2"
    assert isinstance(SPEC.new_session("/ws/api/v2", "c"), DeribitSession)


def test_feed_batches_per_100ms_and_flags_liquidations() -> None:
    feed = DeribitFeed()
    assert feed.on_event(SimTrade(0, "deribit", "BTCUSDT", 95000.12, 0.01, "buy"), 1_000_050) == []
    feed.on_event(SimLiquidation(0, "deribit", "BTCUSDT", "long", 94990.0, 0.1), 1_000_060)
    feed.on_event(SimLiquidation(0, "deribit", "BTCUSDT", "long", 94980.0, 0.1), 1_000_070)
    feed.on_event(SimTrade(0, "deribit", "SOLUSDT", 190.123, 2.04, "sell"), 1_000_150)
    assert feed.next_deadline_ms() == 1_000_100
    assert feed.flush(1_000_099) == []
    (out,) = feed.flush(1_000_100)
    assert out.streams == ("trades.BTC-PERPETUAL.100ms",)
    data = orjson.loads(out.payload)["params"]["data"]
    assert [(d["trade_seq"], d["price"], d["amount"], d["direction"], d.get("liquidation"))
            for d in data] == [(1, 95000.0, 950, "buy", None), (2, 94990.0, 9500, "sell", "T"),
                               (3, 94980.0, 9500, "buy", "M")]  # fmt: skip
    assert out.keys == (0, 1, 2, 3, 4)
    assert out.items[2] == SentLiquidation("deribit", "BTC-PERPETUAL", "long", "9500", "94990",
                                           1_000_060, 1.0, True)  # fmt: skip
    (sol,) = feed.flush(1_000_200)
    (item,) = orjson.loads(sol.payload)["params"]["data"]
    assert (item["instrument_name"], item["amount"], item["price"]) == (
        "SOL_USDC-PERPETUAL",
        2.0,
        190.12,
    )
    assert sol.items == (SentTrade("deribit", "SOL_USDC-PERPETUAL", "sell", "2", "190.12",
                                   1_000_150, "4"),)  # fmt: skip
    assert feed.next_deadline_ms() is None


def test_session_receives_only_subscribed_channels() -> None:
    feed = DeribitFeed()
    feed.on_event(SimTrade(0, "deribit", "ETHUSDT", 3300.0, 1.0, "buy"), 0)
    (out,) = feed.flush(100)
    s = DeribitSession("c")
    assert s.frames_for(out) == []
    s.handle(
        b'{"id":1,"method":"public/subscribe","params":{"channels":["trades.ETH-PERPETUAL.100ms"]}}',
        0,
    )
    assert s.frames_for(out) == [out.payload]


def scenario_events() -> list[SimEvent]:
    events: list[SimEvent] = []
    for i in range(60):
        sym = ("BTCUSDT", "ETHUSDT", "SOLUSDT")[i % 3]
        base = {"BTCUSDT": 95000.0, "ETHUSDT": 3300.0, "SOLUSDT": 190.0}[sym]
        price = base * (1 - i / 1000)
        if i % 4 == 0:
            events.append(SimTrade(i, "deribit", sym, price, 0.3 + i / 7, "sell"))
        else:
            side = "long" if i % 5 else "short"
            events.append(SimLiquidation(i, "deribit", sym, side, price, 0.05 + i / 13))
    return events


def test_round_trip_notional_matches_ledger() -> None:
    feed, ledger = DeribitFeed(), Ledger()
    adapter = DeribitAdapter(ExchangeConfig(symbols=("BTC-PERPETUAL",)))
    outs = []
    for k, ev in enumerate(scenario_events()):
        outs += feed.on_event(ev, 1_700_000_000_000 + 37 * k)
    outs += feed.flush(1_700_000_100_000)
    got: dict[tuple[str, str], float] = {}
    trades = 0
    for out in outs:
        ledger.record("deribit", out.keys, out.items)
        parsed = adapter.parse(out.payload, 1)
        assert parsed.errors == [] and parsed.gaps == 0
        for e in parsed.events:
            if isinstance(e, Liquidation):
                got[(e.symbol, e.liquidated_side.value)] = (
                    got.get((e.symbol, e.liquidated_side.value), 0.0) + e.notional_usd
                )
            else:
                assert isinstance(e, Trade)
                trades += 1
    want: dict[tuple[str, str], float] = {}
    for (_, venue_symbol, side), notional in ledger.liquidation_notional().items():
        inst = instrument_for(venue_symbol)
        assert inst is not None
        want[(inst.symbol, side)] = want.get((inst.symbol, side), 0.0) + notional
    assert len(ledger.liquidations) == 45 and trades == len(ledger.trades) == 60
    assert set(got) == set(want) == {(s, side) for s in ("BTC-USD-PERP", "ETH-USD-PERP", "SOL-USDC-PERP")
                                     for side in ("long", "short")}  # fmt: skip
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-6)


# ---- market context: ticker.<INSTRUMENT>.100ms -----------------------------------------------


def flat_path(prices: dict[str, float]) -> Any:
    return lambda venue_symbol, t: prices[venue_symbol]


def test_ticker_frames_follow_the_price_path_and_are_throttled() -> None:
    # BTC 3 % below its start: half the scenario's 6 % drop (g = 0.5)
    feed = DeribitFeed(flat_path({"BTCUSDT": 92150.0, "SOLUSDT": 190.0}))
    btc = SimTrade(12.5, "deribit", "BTCUSDT", 92150.5, 0.01, "buy")
    (out,) = feed.on_event(btc, 1_000_050)
    assert out.streams == ("ticker.BTC-PERPETUAL.100ms",)
    assert out.keys == () and out.items == ()  # context: not in the ledger
    body = orjson.loads(out.payload)
    assert (body["method"], body["params"]["channel"]) == ("subscription", out.streams[0])
    data = body["params"]["data"]
    assert list(data) == sorted(data)  # the documented layout, keys sorted
    assert {k: data[k] for k in ("instrument_name", "timestamp", "mark_price", "index_price",
                                 "current_funding", "funding_8h", "open_interest",
                                 "best_bid_price", "best_ask_price", "last_price", "state")} == {
        "instrument_name": "BTC-PERPETUAL", "timestamp": 1_000_050, "mark_price": 92150.0,
        "index_price": 92219.11, "current_funding": -0.00015, "funding_8h": -0.000025,
        "open_interest": round(9.0e8 * (1 + 2e-5 * 12.5) * 0.9 / 10) * 10,
        "best_bid_price": 92150.0, "best_ask_price": 92150.0, "last_price": 92150.5,
        "state": "open",
    }  # fmt: skip
    assert data["stats"]["volume_usd"] == 920.0  # the one trade sent: 920 USD
    # throttled to one ticker per instrument per 100 ms, instruments independent
    assert feed.on_event(btc, 1_000_149) == []
    assert len(feed.on_event(SimTrade(12.6, "deribit", "SOLUSDT", 190.0, 1.0, "sell"),
                             1_000_149)) == 1  # fmt: skip
    assert len(feed.on_event(btc, 1_000_150)) == 1


def test_ticker_round_trip_through_the_adapter() -> None:
    feed = DeribitFeed(flat_path({"BTCUSDT": 95000.0, "ETHUSDT": 3300.0, "SOLUSDT": 167.2}))
    adapter = DeribitAdapter(ExchangeConfig())
    contexts = []
    for k, sym in enumerate(("BTCUSDT", "ETHUSDT", "SOLUSDT")):
        for out in feed.on_event(SimTrade(1.0, "deribit", sym, 100.0, 1.0, "buy"), 5_000 + k):
            parsed = adapter.parse(out.payload, 7)
            assert parsed.errors == []
            contexts += parsed.events
    btc, eth, sol = contexts
    assert btc == MarketContext("deribit", "BTC-USD-PERP", "BTC-PERPETUAL", 95000.0, 95000.0,
                                0.0001, None, 900018000.0 / 95000.0, 900018000.0, 5_000, 7)  # fmt: skip
    assert isinstance(eth, MarketContext) and eth.open_interest_usd == 250005000.0
    # linear SOL_USDC: base coin on the 0.1 lot grid, 12 % down = the full 11 % drop (g > 1)
    assert isinstance(sol, MarketContext) and sol.symbol == "SOL-USDC-PERP"
    assert sol.open_interest_usd is None and sol.open_interest_base == pytest.approx(
        1.5e7 * (1 + 2e-5) * (1 - 0.2 * 0.12 / 0.11) / 167.2, abs=0.05
    )
    assert sol.funding_rate == pytest.approx(0.0001 - 0.0005 * 0.12 / 0.11, abs=1e-8)


def test_no_ticker_without_a_price_path_and_only_to_subscribers() -> None:
    ev = SimTrade(0, "deribit", "ETHUSDT", 3300.0, 1.0, "buy")
    assert DeribitFeed().on_event(ev, 0) == []
    (out,) = DeribitFeed(flat_path({"ETHUSDT": 3300.0})).on_event(ev, 0)
    s = DeribitSession("c")
    rpc(s, {"id": 2, "method": "public/subscribe",
            "params": {"channels": ["trades.ETH-PERPETUAL.100ms"]}})  # fmt: skip
    assert s.frames_for(out) == []
    assert rpc(s, {"id": 3, "method": "public/subscribe",
                   "params": {"channels": ["ticker.ETH-PERPETUAL.100ms"]}})["result"] == [
        "ticker.ETH-PERPETUAL.100ms"]  # fmt: skip
    assert s.frames_for(out) == [out.payload]
    assert rpc(s, {"id": 4, "method": "public/subscribe",
                   "params": {"channels": ["ticker.ETH-PERPETUAL.raw"]}})["error"]["code"] == 13778  # fmt: skip


def test_adapter_plan_is_accepted_whole() -> None:
    cfg = ExchangeConfig(symbols=("BTC-PERPETUAL", "ETH-PERPETUAL", "SOL_USDC-PERPETUAL"))
    s = DeribitSession("c")
    for frame in DeribitAdapter(cfg).connections(cfg, "ws://x")[0].subscribe:
        assert "error" not in orjson.loads(s.handle(frame, 0.0).frames[0])
    assert sorted(s.subscriptions) == sorted(
        f"{kind}.{name}.100ms" for kind in ("trades", "ticker")
        for name in ("BTC-PERPETUAL", "ETH-PERPETUAL", "SOL_USDC-PERPETUAL")
    )  # fmt: skip
    assert SPEC.new_feed_for is not None
