"""The HTX protocol module, sans-I/O: gzip framing, both endpoints' subs and heartbeats, contract
quantization, and the round trip through the real adapter."""

from __future__ import annotations

import dataclasses
import gzip
from typing import Any

import orjson
import pytest

from monitor.config import ExchangeConfig
from monitor.schema import Liquidation, Trade
from monitor.simulator import htx
from monitor.simulator.ledger import Ledger, SentLiquidation, SentTrade
from monitor.simulator.scenario import SimLiquidation, SimTrade, crash_scenario
from monitor.simulator.wire import Reply
from producers.htx import HtxAdapter


def body(frame: bytes) -> Any:
    return orjson.loads(gzip.decompress(frame))


def one(reply: Reply) -> Any:
    (frame,) = reply.frames
    return body(frame)


def test_spec_routes_both_endpoints_and_serves_instruments() -> None:
    spec = htx.SPEC
    assert (spec.name, spec.base_path, spec.binary, spec.tick_s) == ("htx", "", True, 1.0)
    assert spec.route("/linear-swap-ws") is None
    assert spec.route("/linear-swap-notification?x=1") is None
    assert spec.route("/swap-ws") == (404, "Not Found: /swap-ws")
    assert isinstance(spec.new_session("/linear-swap-ws", "c"), htx.HtxMarketSession)
    assert isinstance(
        spec.new_session("/linear-swap-notification", "c"), htx.HtxNotificationSession
    )
    assert spec.rest is not None and spec.rest("/linear-swap-api/v2/x") is None
    status, raw = spec.rest("/linear-swap-api/v1/swap_contract_info?contract_code=BTC-USDT") or (
        0,
        b"",
    )
    assert status == 200
    adapter = HtxAdapter(ExchangeConfig())
    assert adapter.load_instruments("u", raw) == 3
    assert [(d["contract_code"], d["contract_size"]) for d in orjson.loads(raw)["data"]] == [
        ("BTC-USDT", 0.001), ("ETH-USDT", 0.01), ("SOL-USDT", 1.0),
    ]  # fmt: skip


def test_market_sub_ack_and_error_are_gzip() -> None:
    s = htx.HtxMarketSession("c")
    r = s.handle(b'{"sub":"market.BTC-USDT.trade.detail","id":"trades-1"}', 2.0)
    assert r.subscriptions_changed
    assert one(r) == {"id": "trades-1", "status": "ok", "subbed": "market.BTC-USDT.trade.detail",
                      "ts": 2000}  # fmt: skip
    assert list(s.subscriptions) == ["market.BTC-USDT.trade.detail"]
    bad = s.handle(b'{"sub":"market.btc-usdt.trade.detail","id":"x"}', 2.0)
    assert not bad.subscriptions_changed
    assert one(bad) == {"id": "x", "status": "error", "err-code": "bad-request",
                        "err-msg": "invalid topic market.btc-usdt.trade.detail", "ts": 2000}  # fmt: skip
    assert (
        one(s.handle(b'{"unsub":"market.BTC-USDT.trade.detail","id":"u"}', 3.0))["unsubbed"]
        == "market.BTC-USDT.trade.detail"
    )
    assert list(s.subscriptions) == []


def test_notification_sub_rules() -> None:
    s = htx.HtxNotificationSession("c")
    ok = s.handle(b'{"op":"sub","cid":"liq-1","topic":"public.BTC-USDT.liquidation_orders"}', 1.0)
    assert one(ok) == {"op": "sub", "cid": "liq-1", "topic": "public.BTC-USDT.liquidation_orders",
                       "ts": 1000, "err-code": 0}  # fmt: skip
    wild = b'{"op":"sub","topic":"public.*.liquidation_orders","business_type":"swap"}'
    assert one(s.handle(wild, 1.0))["err-code"] == 0
    again = one(s.handle(b'{"op":"sub","topic":"public.ETH-USDT.liquidation_orders"}', 1.0))
    assert again["err-code"] == 2014  # large scope first, then small: refused
    assert one(s.handle(b'{"op":"sub","topic":"public.BTC-USDT.trade"}', 1.0))["err-code"] == 2001
    assert one(s.handle(b'{"op":"sub","topic":"public.*.liquidation_orders",'
                        b'"business_type":"futures"}', 1.0))["err-code"] == 2001  # fmt: skip
    assert one(s.handle(b"nope", 1.0))["op"] == "error"
    assert list(s.subscriptions) == [
        "public.BTC-USDT.liquidation_orders",
        "public.*.liquidation_orders",
    ]


@pytest.mark.parametrize(
    ("session", "ping", "pong"),
    [
        (htx.HtxMarketSession("m"), {"ping": 6000}, b'{"pong":6000}'),
        (htx.HtxNotificationSession("n"), {"op": "ping", "ts": "6000"},
         b'{"op":"pong","ts":"6000"}'),
    ],
)  # fmt: skip
def test_server_pings_every_5s_and_closes_after_3_unanswered(
    session: htx.HtxMarketSession | htx.HtxNotificationSession, ping: Any, pong: bytes
) -> None:
    assert session.tick(1.0) == Reply()  # first tick: the clock starts
    assert session.tick(5.9) == Reply()
    assert one(session.tick(6.0)) == ping
    assert session.handle(pong, 6.1) == Reply()  # answered
    for t in (11.0, 16.0, 21.0):  # three pings unanswered
        assert len(session.tick(t).frames) == 1
    assert session.tick(25.0) == Reply()
    assert session.tick(26.0).close == (1008, "heartbeat timeout")


def test_a_wrong_pong_does_not_count() -> None:
    s = htx.HtxMarketSession("m")
    s.tick(0.0)
    for t in (5.0, 10.0, 15.0):
        s.tick(t)
        s.handle(b'{"pong":1}', t)
    assert s.tick(20.0).close is not None


def test_feed_quantizes_to_contracts_and_skips_zero() -> None:
    feed = htx.HtxFeed()
    assert feed.on_event(SimTrade(0, "htx", "BTCUSDT", 95000.0, 0.0004, "buy"), 1) == []
    (out,) = feed.on_event(SimTrade(0, "htx", "BTCUSDT", 95000.04, 0.0123, "sell"), 1_000)
    assert out.streams == ("market.BTC-USDT.trade.detail",)
    doc = body(out.payload)
    (item,) = doc["tick"]["data"]
    assert (item["amount"], item["quantity"], item["price"], item["direction"]) == (
        12, 0.012, 95000.0, "sell",
    )  # fmt: skip
    assert item["id"] == doc["tick"]["id"] * 10000
    assert out.items == (
        SentTrade("htx", "BTC-USDT", "sell", "0.012", "95000.0", 1_000, str(item["id"])),
    )
    (liq,) = feed.on_event(SimLiquidation(0, "htx", "SOLUSDT", "long", 190.0, 13.6), 2_000)
    assert liq.streams == ("public.SOL-USDT.liquidation_orders", "public.*.liquidation_orders")
    (li,) = body(liq.payload)["data"]
    keys = ("contract_code", "direction", "offset", "volume", "amount", "price", "created_at")
    assert [li[k] for k in keys] == ["SOL-USDT", "sell", "close", 14, 14.0, 189.05, 2_000]
    assert liq.items == (
        SentLiquidation("htx", "SOL-USDT", "long", "14", "189.05", 2_000, multiplier=1.0),
    )
    assert li["trade_turnover"] == 14 * 189.05
    assert feed.next_deadline_ms() is None and feed.flush(10**12) == []


def test_round_trip_feed_to_adapter_matches_the_ledger() -> None:
    scenario = crash_scenario(duration_s=60.0, seed=7, venues=("binance",))
    adapter = HtxAdapter(ExchangeConfig())
    adapter.load_instruments("u", htx.rest(htx.CONTRACT_INFO_PATH)[1])  # type: ignore[index]
    sessions = [htx.HtxMarketSession("m"), htx.HtxNotificationSession("n")]
    for sub in (b'{"sub":"market.BTC-USDT.trade.detail","id":"1"}',
                b'{"sub":"market.ETH-USDT.trade.detail","id":"2"}',
                b'{"sub":"market.SOL-USDT.trade.detail","id":"3"}'):  # fmt: skip
        sessions[0].handle(sub, 0.0)
    sessions[1].handle(b'{"op":"sub","topic":"public.*.liquidation_orders"}', 0.0)
    feed, ledger = htx.HtxFeed(), Ledger()
    got: dict[tuple[str, str], float] = {}
    n_trades = n_errors = 0
    for i, ev in enumerate(scenario.events):
        for out in feed.on_event(dataclasses.replace(ev, venue="htx"), 1_700_000_000_000 + i):
            for s in sessions:
                for frame in s.frames_for(out):
                    ledger.record("htx", out.keys, out.items)
                    parsed = adapter.parse(frame, 1)
                    n_errors += len(parsed.errors)
                    for e in parsed.events:
                        if isinstance(e, Liquidation):
                            key = (e.symbol, e.liquidated_side.value)
                            got[key] = got.get(key, 0.0) + e.notional_usd
                        else:
                            assert isinstance(e, Trade)
                            n_trades += 1
    want: dict[tuple[str, str], float] = {}
    for (_, code, side), notional in ledger.liquidation_notional().items():
        want[(f"{code}-PERP", side)] = notional
    assert n_errors == 0 and n_trades == len(ledger.trades) > 100
    assert len(ledger.liquidations) > 10
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-6)
