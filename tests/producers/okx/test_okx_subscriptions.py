from __future__ import annotations

import orjson

from monitor.config import ExchangeConfig
from producers.okx.endpoints import MAX_ARGS_BYTES
from producers.okx.subscriptions import channel_args, plan_connections, subscribe_frames

URL = "wss://ws.okx.com:8443/ws/v5/public"


def test_one_request_for_the_default_symbols() -> None:
    (plan,) = plan_connections(ExchangeConfig(symbols=("BTC-USDT-SWAP", "eth-usdt-swap")), URL)
    assert (plan.name, plan.url, plan.headers) == ("public", URL, ())
    assert plan.subscribe == (
        '{"id":"sub1","op":"subscribe","args":[{"channel":"liquidation-orders","instType":"SWAP"},'
        '{"channel":"trades","instId":"BTC-USDT-SWAP"},{"channel":"trades","instId":"ETH-USDT-SWAP"}]}',
    )


def test_liquidations_even_without_trade_symbols() -> None:
    (plan,) = plan_connections(ExchangeConfig(symbols=()), URL)
    (req,) = [orjson.loads(f) for f in plan.subscribe]
    assert req["args"] == [{"channel": "liquidation-orders", "instType": "SWAP"}]


def test_args_packed_under_64kb_in_order_and_deduplicated() -> None:
    syms = (*(f"COIN{i}-USDT-SWAP" for i in range(3000)), "COIN7-USDT-SWAP")
    frames = subscribe_frames(channel_args(syms))
    reqs = [orjson.loads(f) for f in frames]
    sizes = [len(orjson.dumps(r["args"])) for r in reqs]
    assert len(reqs) == 3  # 3001 args of about 47 bytes: 141 KB in three requests, not 3001
    assert all(s <= MAX_ARGS_BYTES for s in sizes)
    assert sizes[0] > MAX_ARGS_BYTES - 60  # greedily filled
    assert [r["id"] for r in reqs] == ["sub1", "sub2", "sub3"]
    assert [a for r in reqs for a in r["args"]] == channel_args(syms)
    assert len(channel_args(syms)) == 3001


def test_small_limit_exact_boundaries() -> None:
    args = channel_args(("A-USDT-SWAP", "B-USDT-SWAP"))
    first_two = len(orjson.dumps(args[:2]))
    last_two = len(orjson.dumps(args[1:]))  # the trade args are shorter than the liquidation arg
    assert [len(orjson.loads(f)["args"]) for f in subscribe_frames(args, first_two)] == [2, 1]
    assert [len(orjson.loads(f)["args"]) for f in subscribe_frames(args, first_two - 1)] == [1, 2]
    assert [len(orjson.loads(f)["args"]) for f in subscribe_frames(args, last_two - 1)] == [1, 1, 1]
    assert [len(orjson.loads(f)["args"]) for f in subscribe_frames(args, 10)] == [1, 1, 1]
