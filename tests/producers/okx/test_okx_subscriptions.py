from __future__ import annotations

import orjson

from monitor.core.config import ExchangeConfig
from producers.okx.endpoints import MAX_ARGS_BYTES
from producers.okx.subscriptions import channel_args, plan_connections, subscribe_frames

URL = "wss://ws.okx.com:8443/ws/v5/public"


def test_one_request_for_the_default_symbols() -> None:
    (plan,) = plan_connections(ExchangeConfig(symbols=("BTC-USDT-SWAP", "eth-usdt-swap")), URL)
    assert (plan.name, plan.url, plan.headers) == ("public", URL, ())
    assert plan.subscribe == (
        '{"id":"sub1","op":"subscribe","args":[{"channel":"liquidation-orders","instType":"SWAP"},'
        '{"channel":"trades","instId":"BTC-USDT-SWAP"},'
        '{"channel":"mark-price","instId":"BTC-USDT-SWAP"},'
        '{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},'
        '{"channel":"open-interest","instId":"BTC-USDT-SWAP"},'
        '{"channel":"trades","instId":"ETH-USDT-SWAP"},'
        '{"channel":"mark-price","instId":"ETH-USDT-SWAP"},'
        '{"channel":"funding-rate","instId":"ETH-USDT-SWAP"},'
        '{"channel":"open-interest","instId":"ETH-USDT-SWAP"}]}',
    )


def test_liquidations_even_without_trade_symbols() -> None:
    (plan,) = plan_connections(ExchangeConfig(symbols=()), URL)
    (req,) = [orjson.loads(f) for f in plan.subscribe]
    assert req["args"] == [{"channel": "liquidation-orders", "instType": "SWAP"}]


def test_args_packed_under_64kb_in_order_and_deduplicated() -> None:
    syms = (*(f"COIN{i}-USDT-SWAP" for i in range(3000)), "COIN7-USDT-SWAP")
    args = channel_args(syms)
    assert len(args) == 1 + 4 * 3000
    frames = subscribe_frames(args)
    reqs = [orjson.loads(f) for f in frames]
    sizes = [len(orjson.dumps(r["args"])) for r in reqs]
    # 12001 args of 47 to 57 bytes (646 610 bytes, + commas and brackets): eleven requests of the
    # 480 allowed an hour, not 12001
    assert (len(reqs), sum(sizes)) == (11, 646_610 + 12_001 - 11 + 2 * 11)
    assert all(s <= MAX_ARGS_BYTES for s in sizes)
    assert min(sizes[:-1]) > MAX_ARGS_BYTES - 60  # greedily filled
    assert [r["id"] for r in reqs] == [f"sub{i}" for i in range(1, 12)]
    assert [a for r in reqs for a in r["args"]] == args
    channels = ("trades", "mark-price", "funding-rate", "open-interest")
    assert args[-4:] == [{"channel": c, "instId": "COIN2999-USDT-SWAP"} for c in channels]


def test_small_limit_exact_boundaries() -> None:
    args = channel_args(("A-USDT-SWAP",))  # liquidations, trades, mark, funding, open interest
    assert [len(orjson.dumps(a)) for a in args] == [50, 43, 47, 49, 50]
    first_two = len(orjson.dumps(args[:2]))  # 96; trades + mark-price: 93
    assert [len(orjson.loads(f)["args"]) for f in subscribe_frames(args, first_two)] == [2, 1, 1, 1]
    sizes = [len(orjson.loads(f)["args"]) for f in subscribe_frames(args, first_two - 1)]
    assert sizes == [1, 2, 1, 1]
    all_five = len(orjson.dumps(args))
    assert [len(orjson.loads(f)["args"]) for f in subscribe_frames(args, all_five)] == [5]
    assert [len(orjson.loads(f)["args"]) for f in subscribe_frames(args, all_five - 1)] == [4, 1]
    assert [len(orjson.loads(f)["args"]) for f in subscribe_frames(args, 10)] == [1] * 5
