"""The simulator over real sockets, driven by a plain websockets client (not the producers)."""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from monitor.simulator.ledger import SentLiquidation, SentTrade
from monitor.simulator.scenario import Scenario, crash_scenario
from monitor.simulator.server import ExchangeSimulator


@functools.cache
def scenario(duration_s: float, seed: int = 11) -> Scenario:
    return crash_scenario(duration_s=duration_s, seed=seed)


async def _drain(ws: ClientConnection) -> list[dict[str, Any]]:
    return [orjson.loads(m) async for m in ws]


def collect(ws: ClientConnection) -> asyncio.Task[list[dict[str, Any]]]:
    """Read every frame, continuously, until the server closes the connection."""
    return asyncio.get_running_loop().create_task(_drain(ws))


async def test_urls_point_at_the_venue_paths() -> None:
    async with ExchangeSimulator(scenario(4)) as sim:
        assert sim.url("binance").startswith("ws://127.0.0.1:")
        assert sim.url("binance").endswith("/market")
        assert sim.url("bybit").endswith("/v5/public/linear")
        assert sim.url("binance").split(":")[2] != sim.url("bybit").split(":")[2]
        with pytest.raises(ValueError, match="okx"):
            sim.url("okx")


async def test_binance_force_orders_are_sampled_and_match_the_ledger() -> None:
    sc = scenario(20)
    async with (
        ExchangeSimulator(sc, speed=8) as sim,
        connect(sim.url("binance") + "/ws/!forceOrder@arr") as ws,
    ):
        received_frames = collect(ws)
        await sim.wait_subscribed("binance", ["!forceOrder@arr"])
        sim.play()
        await sim.wait_finished()
        await sim.stop()
        frames = await received_frames

    assert frames, "no liquidation pushed"
    assert all(f["e"] == "forceOrder" and "stream" not in f for f in frames)  # raw stream
    ledger = sim.ledger
    assert ledger.trades == []  # nobody subscribed to trades
    # Sampling: fewer pushed than happened, at most one per symbol per wall-clock second,
    # pushed once that second is over.
    assert len(frames) < len(sc.liquidations("binance"))
    per_symbol: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in frames:
        per_symbol[f["o"]["s"]].append(f["o"] | {"E": f["E"]})
    for orders in per_symbol.values():
        windows = [o["T"] // 1000 for o in orders]
        assert len(set(windows)) == len(windows)
        assert len({o["E"] // 1000 for o in orders}) == len(orders)
        assert all(o["E"] >= (o["T"] // 1000 + 1) * 1000 for o in orders)
    # The ledger is exactly what the client received, SELL = long liquidated.
    received = [
        SentLiquidation(
            "binance",
            f["o"]["s"],
            "long" if f["o"]["S"] == "SELL" else "short",
            f["o"]["z"],
            f["o"]["ap"],
            f["o"]["T"],
        )
        for f in frames
    ]
    assert ledger.liquidations == received
    notional: dict[tuple[str, str, str], float] = {}
    for f in frames:
        o = f["o"]
        key = ("binance", o["s"], "long" if o["S"] == "SELL" else "short")
        notional[key] = notional.get(key, 0.0) + float(o["z"]) * float(o["ap"])
    assert ledger.liquidation_notional() == notional
    for f in frames:
        o = f["o"]
        assert (o["o"], o["f"], o["X"]) == ("LIMIT", "IOC", "FILLED")
        assert o["q"] == o["l"] == o["z"]
        # the limit price is worse than the average fill
        assert (
            float(o["p"]) < float(o["ap"]) if o["S"] == "SELL" else float(o["p"]) > float(o["ap"])
        )


async def test_binance_combined_streams_subscribe_and_ledger_once_per_item() -> None:
    sc = scenario(4)
    async with ExchangeSimulator(sc, speed=8) as sim:
        url = sim.url("binance") + "/stream?streams=btcusdt@aggTrade"
        async with (
            connect(url) as comb,
            connect(url) as comb2,
            connect(sim.url("binance") + "/ws") as raw,
        ):
            await raw.send('{"method":"SUBSCRIBE","params":["ethusdt@aggTrade"],"id":7}')
            assert await raw.recv() == '{"result":null,"id":7}'
            await raw.send('{"method":"LIST_SUBSCRIPTIONS","id":8}')
            assert orjson.loads(await raw.recv()) == {"result": ["ethusdt@aggTrade"], "id": 8}
            await raw.send('{"method":"SUBSCRIBE","params":["ETHUSDT@aggTrade"],"id":9}')
            assert orjson.loads(await raw.recv()) == {
                "error": {
                    "code": 2,
                    "msg": "Invalid request: unknown stream name `ETHUSDT@aggTrade`",
                },
                "id": 9,
            }
            await raw.send("{oops")
            bad_json = orjson.loads(await raw.recv())
            assert bad_json["error"]["code"] == 3 and bad_json["id"] is None
            tasks = [collect(comb), collect(comb2), collect(raw)]
            await sim.wait_subscribed("binance", ["btcusdt@aggTrade", "ethusdt@aggTrade"])
            sim.play()
            await sim.wait_finished()
            await sim.stop()
            wrapped, wrapped2, bare = [await t for t in tasks]

    btc = [t for t in sc.trades("binance") if t.venue_symbol == "BTCUSDT"]
    eth = [t for t in sc.trades("binance") if t.venue_symbol == "ETHUSDT"]
    assert len(wrapped) == len(btc) > 0  # trades are not sampled
    assert wrapped == wrapped2
    assert all(list(f) == ["stream", "data"] and f["stream"] == "btcusdt@aggTrade" for f in wrapped)
    assert [f["data"]["p"] for f in wrapped] == [f"{t.price:.1f}" for t in btc]
    assert [f["data"]["m"] for f in wrapped] == [t.taker_side == "sell" for t in btc]
    ids = [f["data"]["a"] for f in wrapped]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert len(bare) == len(eth)
    assert all(f["e"] == "aggTrade" and f["s"] == "ETHUSDT" for f in bare)
    # two connections received the BTC trades: recorded once; SOL had no subscriber: absent
    ledger = sim.ledger
    assert [t.venue_symbol for t in ledger.trades].count("BTCUSDT") == len(btc)
    assert [t.venue_symbol for t in ledger.trades].count("ETHUSDT") == len(eth)
    assert len(ledger.trades) == len(btc) + len(eth)
    assert [t for t in ledger.trades if t.venue_symbol == "BTCUSDT"] == [
        SentTrade("binance", "BTCUSDT", "sell" if d["m"] else "buy", d["q"], d["p"], d["T"],
                  str(d["a"]))
        for d in (f["data"] for f in wrapped)
    ]  # fmt: skip


async def test_binance_refuses_unknown_paths_at_the_handshake() -> None:
    async with ExchangeSimulator(scenario(4)) as sim:
        base = sim.url("binance").removesuffix("/market")
        for path, status in [("/public/ws/btcusdt@aggTrade", 404), ("/market/ws/x@y", 400)]:
            with pytest.raises(InvalidStatus) as err:
                async with connect(base + path):
                    pass
            assert err.value.response.status_code == status
        with pytest.raises(InvalidStatus) as err:
            async with connect(sim.url("bybit").replace("linear", "option")):
                pass
        assert err.value.response.status_code == 404


async def test_bybit_all_liquidations_arrive_batched_with_position_side() -> None:
    sc = scenario(10)
    topics = [f"allLiquidation.{s}" for s in sc.symbols]
    inverse_topics = ["allLiquidation.BTCUSD", "allLiquidation.ETHUSD"]
    async with (
        ExchangeSimulator(sc, speed=8) as sim,
        connect(sim.url("bybit")) as liq,
        connect(sim.url("bybit")) as trades,
        connect(sim.url("bybit").replace("/linear", "/inverse")) as inverse,
    ):
        await inverse.send(orjson.dumps({"op": "subscribe", "args": inverse_topics}).decode())
        assert orjson.loads(await inverse.recv())["success"] is True
        await liq.send(orjson.dumps({"op": "subscribe", "args": topics, "req_id": "s1"}).decode())
        ack = orjson.loads(await liq.recv())
        assert ack == {"success": True, "ret_msg": "", "conn_id": ack["conn_id"],
                       "req_id": "s1", "op": "subscribe"}  # fmt: skip
        assert ack["conn_id"]
        await liq.send('{"op":"ping","req_id":"p1"}')
        assert orjson.loads(await liq.recv()) == {
            "success": True, "ret_msg": "pong", "conn_id": ack["conn_id"],
            "req_id": "p1", "op": "ping",
        }  # fmt: skip
        await liq.send('{"op":"subscribe","args":["allLiquidation.BTCUSD_X"]}')
        assert orjson.loads(await liq.recv())["ret_msg"] == (
            "error:handler not found,topic:allLiquidation.BTCUSD_X"
        )
        await trades.send('{"op":"subscribe","args":["publicTrade.SOLUSDT"]}')
        other = orjson.loads(await trades.recv())
        assert other["success"] is True and other["conn_id"] != ack["conn_id"]
        tasks = [collect(liq), collect(trades), collect(inverse)]
        await sim.wait_subscribed("bybit", [*topics, *inverse_topics, "publicTrade.SOLUSDT"])
        sim.play()
        await sim.wait_finished()
        await sim.stop()
        liq_frames, trade_frames, inverse_frames = [await t for t in tasks]

    items = []
    twins = {"BTCUSD": "BTCUSDT", "ETHUSD": "ETHUSDT"}
    for f in inverse_frames:  # every 4th BTC/ETH liquidation, in whole USD contracts
        assert f["type"] == "snapshot" and f["topic"] in inverse_topics
        items += [{**d, "s": twins[d["s"]]} for d in f["data"]]
    assert items, "some liquidations went to the inverse twins"
    linear_from = len(items)
    for f in liq_frames:
        assert f["type"] == "snapshot" and f["topic"].startswith("allLiquidation.")
        window = {d["T"] // 500 for d in f["data"]}
        assert len(window) == 1  # one frame = one 500 ms interval
        assert f["ts"] >= (window.pop() + 1) * 500
        assert {d["s"] for d in f["data"]} == {f["topic"].split(".")[1]}
        items += f["data"]
    # aggregated, none dropped: every scenario liquidation is there, in order, Buy = long
    expected = sc.liquidations("bybit")
    assert len(items) == len(expected)
    assert sorted((d["s"], d["S"]) for d in items) == sorted(
        (x.venue_symbol, "Buy" if x.liquidated_side == "long" else "Sell") for x in expected
    )
    received = [
        SentLiquidation(
            "bybit", d["s"], "long" if d["S"] == "Buy" else "short", d["v"], d["p"], d["T"]
        )
        for d in items[linear_from:]
    ]
    assert [x for x in sim.ledger.liquidations if not x.inverse] == received
    notional: dict[tuple[str, str, str], float] = {}
    for x in received:
        key = ("bybit", x.venue_symbol, x.liquidated_side)
        notional[key] = notional.get(key, 0.0) + float(x.qty_text) * float(x.price_text)
    for d in items[:linear_from]:  # inverse: contracts of 1 USD
        key = (
            "bybit",
            {v: k for k, v in twins.items()}[d["s"]],
            "long" if d["S"] == "Buy" else "short",
        )
        notional[key] = notional.get(key, 0.0) + float(d["v"])
    assert sim.ledger.liquidation_notional() == notional
    # trades: batched per 100 ms tick, all of them, taker side as sent
    sol = [t for t in sc.trades("bybit") if t.venue_symbol == "SOLUSDT"]
    trade_items = [d for f in trade_frames for d in f["data"]]
    assert all(len({d["T"] // 100 for d in f["data"]}) == 1 for f in trade_frames)
    assert len(trade_frames) < len(trade_items) == len(sol)
    assert [(d["S"], d["p"], d["v"]) for d in trade_items] == [
        ("Sell" if t.taker_side == "sell" else "Buy", f"{t.price:.2f}", f"{t.qty:.1f}") for t in sol
    ]
    assert [t.trade_id for t in sim.ledger.trades] == [d["i"] for d in trade_items]
