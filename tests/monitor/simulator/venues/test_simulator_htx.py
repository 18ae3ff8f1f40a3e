"""The HTX protocol module, sans-I/O: gzip framing, the three endpoints' subs and heartbeats,
contract quantization, market context pushes and the open-interest REST answer, and the round trip
through the real adapter."""

from __future__ import annotations

import dataclasses
import gzip
from typing import Any

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.schema import Liquidation, MarketContext, Trade
from monitor.simulator.instruments import instrument
from monitor.simulator.ledger import Ledger, SentLiquidation, SentTrade
from monitor.simulator.scenario import SimLiquidation, SimTrade, crash_scenario
from monitor.simulator.venues import htx
from monitor.simulator.wire import Outgoing, Reply
from producers.htx import HtxAdapter

CONTEXT_TOPICS = (".mark_price.", ".index.", ".funding_rate")


def body(frame: bytes) -> Any:
    return orjson.loads(gzip.decompress(frame))


def one(reply: Reply) -> Any:
    (frame,) = reply.frames
    return body(frame)


def market(outs: list[Outgoing]) -> list[Outgoing]:
    """The trade and liquidation pushes, without the market context."""
    return [o for o in outs if not any(t in o.streams[0] for t in CONTEXT_TOPICS)]


def context(outs: list[Outgoing]) -> dict[str, Any]:
    """The market context pushes by topic (first stream), decoded."""
    return {o.streams[0]: body(o.payload) for o in outs if o not in market(outs)}


def test_spec_routes_both_endpoints_and_serves_instruments() -> None:
    spec = htx.SPEC
    assert (spec.name, spec.base_path, spec.binary, spec.tick_s) == ("htx", "", True, 1.0)
    assert spec.route("/linear-swap-ws") is None
    assert spec.route("/linear-swap-notification?x=1") is None
    assert spec.route("/ws_index") is None
    assert spec.route("/swap-ws") == (404, "Not Found: /swap-ws")
    assert type(spec.new_session("/linear-swap-ws", "c")) is htx.HtxMarketSession
    assert type(spec.new_session("/ws_index", "c")) is htx.HtxIndexSession
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
    assert adapter.load_instruments("u", raw) == 4
    assert [(d["contract_code"], d["contract_size"]) for d in orjson.loads(raw)["data"]] == [
        ("BTC-USDT", 0.001), ("ETH-USDT", 0.01), ("SOL-USDT", 1.0), ("DOGE-USDT", 100.0),
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
    assert market(feed.on_event(SimTrade(0, "htx", "BTCUSDT", 95000.0, 0.0004, "buy"), 1)) == []
    (out,) = market(feed.on_event(SimTrade(0, "htx", "BTCUSDT", 95000.04, 0.0123, "sell"), 1_000))
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
    (liq,) = market(feed.on_event(SimLiquidation(0, "htx", "SOLUSDT", "long", 190.0, 13.6), 2_000))
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


def test_index_endpoint_subs_klines_only() -> None:
    s = htx.HtxIndexSession("i")
    r = s.handle(b'{"sub":"market.BTC-USDT.mark_price.1min","id":"mark-1"}', 2.0)
    assert r.subscriptions_changed and one(r) == {
        "id": "mark-1", "status": "ok", "subbed": "market.BTC-USDT.mark_price.1min", "ts": 2000,
    }  # fmt: skip
    assert one(s.handle(b'{"sub":"market.BTC-USDT.index.15min","id":"i"}', 2.0))["status"] == "ok"
    for topic in ("market.BTC-USDT.trade.detail", "market.BTC-USDT.mark_price.2min",
                  "market.BTC-USDT.kline.1min"):  # fmt: skip
        bad = one(s.handle(orjson.dumps({"sub": topic, "id": "x"}), 2.0))
        assert bad["status"] == "error" and bad["err-msg"] == f"invalid topic {topic}"
    assert list(s.subscriptions) == [
        "market.BTC-USDT.mark_price.1min", "market.BTC-USDT.index.15min",
    ]  # fmt: skip
    # the market endpoint does not serve the klines
    m = one(htx.HtxMarketSession("m").handle(b'{"sub":"market.BTC-USDT.index.1min"}', 1.0))
    assert m["status"] == "error"
    assert s.tick(0.0) == Reply()
    assert one(s.tick(5.0)) == {"ping": 5000}  # the market-style heartbeat


def test_funding_rate_subs_small_scope_first_per_topic() -> None:
    s = htx.HtxNotificationSession("n")
    assert (
        one(s.handle(b'{"op":"sub","topic":"public.*.liquidation_orders"}', 1.0))["err-code"] == 0
    )
    # another topic's wildcard does not block a contract's funding rate
    ok = one(s.handle(b'{"op":"sub","cid":"f","topic":"public.BTC-USDT.funding_rate"}', 1.0))
    assert ok == {"op": "sub", "cid": "f", "topic": "public.BTC-USDT.funding_rate", "ts": 1000,
                  "err-code": 0}  # fmt: skip
    assert one(s.handle(b'{"op":"sub","topic":"public.*.funding_rate"}', 1.0))["err-code"] == 0
    late = one(s.handle(b'{"op":"sub","topic":"public.ETH-USDT.funding_rate"}', 1.0))
    assert late["err-code"] == 2014
    assert one(s.handle(b'{"op":"sub","topic":"public.btc-usdt.funding_rate"}', 1.0))[
        "err-code"
    ] == 2001  # fmt: skip


def test_context_pushes_throttled_and_not_in_the_ledger() -> None:
    feed = htx.HtxFeed(lambda sym, t: 94_000.04)  # a flat path: g = (1 - 94000.04/95000) / 0.06
    w = 1_700_000_000_000
    outs = feed.on_event(SimTrade(3.0, "htx", "BTCUSDT", 93_990.0, 0.0001, "sell"), w)
    assert market(outs) == []  # below one contract: no trade, the context still moves
    assert all(o.keys == () and o.items == () for o in outs)
    assert [o.streams for o in outs] == [
        ("market.BTC-USDT.mark_price.1min",),
        ("market.BTC-USDT.index.1min",),
        ("public.BTC-USDT.funding_rate", "public.*.funding_rate"),
    ]
    got = context(outs)
    g = (1 - 94_000.04 / 95_000) / 0.06
    assert got["market.BTC-USDT.mark_price.1min"] == {
        "ch": "market.BTC-USDT.mark_price.1min", "ts": w,
        "tick": {"id": w // 60_000 * 60, "open": "94000.0", "close": "94000.0", "high": "94000.0",
                 "low": "94000.0", "amount": "0", "vol": "0", "count": "0",
                 "trade_turnover": "0"},
    }  # fmt: skip
    index = got["market.BTC-USDT.index.1min"]["tick"]
    assert index["close"] == f"{94_000.04 * (1 + 0.0005 * g):.3f}" and index["count"] == 0
    (fr,) = got["public.BTC-USDT.funding_rate"]["data"]
    assert fr == {
        "symbol": "BTC", "contract_code": "BTC-USDT", "fee_asset": "USDT",
        "funding_time": str(w // 60_000 * 60_000),
        "funding_rate": f"{round(0.0001 - 0.0005 * g, 10):.18f}",
        "settlement_time": str((w // 28_800_000 + 1) * 28_800_000), "estimated_rate": None,
    }  # fmt: skip
    # within a second: nothing; a second later the klines (the funding rate every 5 s)
    assert feed.on_event(SimTrade(3.1, "htx", "BTCUSDT", 1.0, 0.0001, "buy"), w + 999) == []
    later = feed.on_event(SimTrade(3.2, "htx", "BTCUSDT", 1.0, 0.0001, "buy"), w + 1_000)
    assert [o.streams[0] for o in later] == [
        "market.BTC-USDT.mark_price.1min", "market.BTC-USDT.index.1min",
    ]  # fmt: skip
    assert feed.next_deadline_ms() is None  # context never delays the end of playback


def test_klines_track_the_minute() -> None:
    prices = iter([100.0, 103.0, 99.0, 101.0, 102.0])
    feed = htx.HtxFeed(lambda sym, t: 190.0 + next(prices))
    minute = 1_700_000_040_000  # a minute boundary
    ticks = []
    for i, w in enumerate(
        (minute, minute + 1_000, minute + 2_000, minute + 3_000, minute + 60_000)
    ):
        outs = feed.on_event(SimTrade(i, "htx", "SOLUSDT", 290.0, 0.1, "buy"), w)
        ticks.append(context(outs)["market.SOL-USDT.mark_price.1min"]["tick"])
    ohlc = [(t["id"], t["open"], t["high"], t["low"], t["close"]) for t in ticks]
    assert ohlc == [
        (1_700_000_040, "290.00", "290.00", "290.00", "290.00"),
        (1_700_000_040, "290.00", "293.00", "290.00", "293.00"),
        (1_700_000_040, "290.00", "293.00", "289.00", "289.00"),
        (1_700_000_040, "290.00", "293.00", "289.00", "291.00"),
        (1_700_000_100, "292.00", "292.00", "292.00", "292.00"),  # a new minute, a new kline
    ]


def test_open_interest_rest_answer() -> None:
    status, raw = htx.rest("/linear-swap-api/v1/swap_open_interest?contract_code=BTC-USDT") or (
        0, b"",
    )  # fmt: skip
    assert status == 200
    doc = orjson.loads(raw)
    assert doc["status"] == "ok" and isinstance(doc["ts"], int)
    (item,) = doc["data"]
    # 1.2e9 USD at 95000 = 12631.58 BTC = 12631579 contracts of 0.001 BTC
    keys = ("contract_code", "volume", "amount", "value", "business_type")
    assert {k: item[k] for k in keys} == {
        "contract_code": "BTC-USDT", "volume": 12_631_579, "amount": 12631.579,
        "value": 12631.579 * 95000.0, "business_type": "swap",
    }  # fmt: skip
    adapter = HtxAdapter(ExchangeConfig(symbols=("BTC-USDT",)))
    adapter.load_instruments("u", htx.rest(htx.CONTRACT_INFO_PATH)[1])  # type: ignore[index]
    (ev,) = adapter.parse_poll("u", raw, 1)
    assert isinstance(ev, MarketContext)
    assert (ev.symbol, ev.open_interest_base, ev.open_interest_usd) == (
        "BTC-USDT-PERP", 12631.579, 12631.579 * 95000.0,
    )  # fmt: skip
    _, every = htx.rest("/linear-swap-api/v1/swap_open_interest") or (0, b"")
    assert [i["contract_code"] for i in orjson.loads(every)["data"]] == [
        "BTC-USDT", "ETH-USDT", "SOL-USDT", "DOGE-USDT",
    ]  # fmt: skip
    assert len(adapter.parse_poll("u", every, 1)) == 4
    _, unknown = htx.rest("/linear-swap-api/v1/swap_open_interest?contract_code=X-USDT") or (0, b"")
    assert orjson.loads(unknown)["status"] == "error"


def test_context_round_trip_on_the_scenario_path() -> None:
    scenario = crash_scenario(duration_s=60.0, seed=7, venues=("htx",))
    adapter = HtxAdapter(ExchangeConfig())
    adapter.load_instruments("u", htx.rest(htx.CONTRACT_INFO_PATH)[1])  # type: ignore[index]
    index_session, notification = htx.HtxIndexSession("i"), htx.HtxNotificationSession("n")
    for code in ("BTC-USDT", "ETH-USDT", "SOL-USDT"):
        for kind in ("mark_price", "index"):
            index_session.handle(orjson.dumps({"sub": f"market.{code}.{kind}.1min"}), 0.0)
    notification.handle(b'{"op":"sub","topic":"public.*.funding_rate"}', 0.0)
    feed = htx.SPEC.new_feed_for(scenario)  # type: ignore[misc]
    t0 = 1_700_000_000_000
    marks: list[tuple[float, MarketContext]] = []
    fundings: list[MarketContext] = []
    n_index = 0
    for ev in scenario.events:
        now = t0 + round(ev.t * 1000)
        for out in feed.on_event(ev, now):
            for s in (index_session, notification):
                for frame in s.frames_for(out):
                    parsed = adapter.parse(frame, 1)
                    assert parsed.errors == []
                    for e in parsed.events:
                        assert isinstance(e, MarketContext) and e.ts_ms == now
                        if e.mark_price is not None:
                            marks.append((ev.t, e))
                        elif e.index_price is not None:
                            n_index += 1
                        else:
                            fundings.append(e)
    assert {e.symbol for _, e in marks} == {"BTC-USDT-PERP", "ETH-USDT-PERP", "SOL-USDT-PERP"}
    assert len(marks) == n_index > 100  # about one per contract per (wall = scenario) second
    for t, e in marks:
        sym = e.symbol.replace("-", "").removesuffix("PERP")
        assert e.mark_price == instrument(sym).round_price(scenario.price_at(sym, t))
    assert 30 <= len(fundings) <= 40  # every 5 s per contract over 60 s
    assert all(f.next_funding_ms is not None and f.next_funding_ms % 28_800_000 == 0
               for f in fundings)  # fmt: skip
    assert fundings[-1].funding_rate is not None and fundings[-1].funding_rate < 0
