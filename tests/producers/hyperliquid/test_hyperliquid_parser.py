from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import MarketContext, OrderSide, QtyUnit, Trade
from producers.base import Parsed
from producers.hyperliquid import HyperliquidAdapter
from tests.producers.test_fuzz_parsers import _mutate, _paths, check, json_values

RECV = 1_704_067_200_100_000_000
TRADE = {"coin": "BTC", "side": "A", "px": "42000.5", "sz": "0.015", "hash": "0xabc",
         "time": 1704067200000, "tid": 123, "users": ["0xbuyer", "0xseller"]}  # fmt: skip


def frame(*items: Any) -> bytes:
    return orjson.dumps({"channel": "trades", "data": list(items)})


def adapter() -> HyperliquidAdapter:
    return HyperliquidAdapter(ExchangeConfig(symbols=("BTC",)))


def test_documented_trade() -> None:
    parsed = adapter().parse(frame(TRADE, {**TRADE, "coin": "kPEPE", "side": "B", "tid": 7}), RECV)
    assert parsed.errors == [] and not parsed.control
    assert parsed.events == [
        Trade("hyperliquid", "BTC-USD-PERP", "BTC", OrderSide.SELL, 42000.5, 0.015, QtyUnit.BASE,
              1.0, 0.015, 0.015 * 42000.5, None, 1704067200000, RECV, "123"),
        Trade("hyperliquid", "KPEPE-USD-PERP", "kPEPE", OrderSide.BUY, 42000.5, 0.015, QtyUnit.BASE,
              1.0, 0.015, 0.015 * 42000.5, None, 1704067200000, RECV, "7"),
    ]  # fmt: skip


def test_bad_items_skipped() -> None:
    parsed = adapter().parse(
        frame({**TRADE, "side": "X"}, {**TRADE, "sz": "0"}, {**TRADE, "coin": "@107"},
              {**TRADE, "coin": "xyz:HOOD"}, {**TRADE, "tid": "1"}, {**TRADE, "time": 0}, [], TRADE),
        RECV,
    )  # fmt: skip
    assert parsed.errors == ["bad_side", "bad_number", "unknown_instrument", "unknown_instrument",
                             "bad_type", "bad_ts", "bad_shape"]  # fmt: skip
    assert len(parsed.events) == 1


def test_control_and_errors() -> None:
    a = adapter()
    assert a.parse(b'{"channel":"pong"}', 1).control
    sub = b'{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}}'
    assert a.parse(sub, 1).control
    assert a.heartbeat() == '{"method":"ping"}'


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"{", "bad_json"), (b"1", "bad_shape"), (b'{"channel":"error","data":"x"}', "request_failed"),
     (b'{"channel":"l2Book","data":{}}', "unknown_channel"), (b'{"data":[]}', "unknown_event"),
     (b'{"channel":"trades","data":{}}', "bad_shape"), (b'{"channel":"trades"}', "missing_field")],
)  # fmt: skip
def test_malformed_frames(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        adapter().parse(raw, RECV)
    assert exc.value.reason == reason


def test_subscriptions_trades_and_context_per_coin() -> None:
    cfg = ExchangeConfig(symbols=("BTC", "kPEPE", "BTC"))
    (plan,) = HyperliquidAdapter(cfg).connections(cfg, "wss://api.hyperliquid.xyz/ws")
    assert (plan.name, plan.url) == ("public", "wss://api.hyperliquid.xyz/ws")
    assert plan.subscribe == (
        '{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}',
        '{"method":"subscribe","subscription":{"type":"activeAssetCtx","coin":"BTC"}}',
        '{"method":"subscribe","subscription":{"type":"trades","coin":"kPEPE"}}',
        '{"method":"subscribe","subscription":{"type":"activeAssetCtx","coin":"kPEPE"}}',
    )
    assert HyperliquidAdapter(ExchangeConfig()).connections(ExchangeConfig(), "ws://x") == []


def test_subscriptions_stay_within_1000_per_ip() -> None:
    coins = tuple(f"C{i}" for i in range(700))
    cfg = ExchangeConfig(symbols=coins, max_symbols=1000)
    (plan,) = HyperliquidAdapter(cfg).connections(cfg, "ws://x")
    assert len(plan.subscribe) == 1000  # 500 coins x (trades, activeAssetCtx)
    assert orjson.loads(plan.subscribe[-1])["subscription"] == {"type": "activeAssetCtx",
                                                                "coin": "C499"}  # fmt: skip


# ---- market context: activeAssetCtx ------------------------------------------------------------

# A perps context as the venue sends it (field order and string values as in the official Python
# SDK's PerpAssetCtx and the metaAndAssetCtxs example): funding per hour, openInterest in coins.
CTX = {"funding": "0.0000125", "openInterest": "26512.31918", "prevDayPx": "94210",
       "dayNtlVlm": "2301457891.80211", "premium": "-0.00010526", "oraclePx": "95010",
       "markPx": "95000", "midPx": "95000.5", "impactPxs": ["94999", "95002"],
       "dayBaseVlm": "24388.10123"}  # fmt: skip
RECV_MS = RECV // 1_000_000


def ctx_frame(data: Any, channel: str = "activeAssetCtx") -> bytes:
    return orjson.dumps({"channel": channel, "data": data})


def context(coin: str, **fields: Any) -> MarketContext:
    base = dict(mark_price=95000.0, index_price=95010.0, funding_rate=0.0000125,
                next_funding_ms=None, open_interest_base=26512.31918,
                open_interest_usd=26512.31918 * 95000.0)  # fmt: skip
    return MarketContext("hyperliquid", f"{coin.upper()}-USD-PERP", coin, **(base | fields),
                         ts_ms=RECV_MS, received_ns=RECV)  # fmt: skip


def test_documented_active_asset_ctx() -> None:
    parsed = adapter().parse(ctx_frame({"coin": "BTC", "ctx": CTX}), RECV)
    assert (parsed.errors, parsed.control) == ([], False)
    # no timestamp in the message: the receive time; no settlement time: None (hourly funding)
    assert parsed.events == [context("BTC")]
    (e,) = parsed.events
    assert isinstance(e, MarketContext) and e.open_interest_usd == 2518670322.1  # coins x markPx


def test_context_numbers_as_json_numbers_and_signs() -> None:
    a = adapter()
    nums = {**CTX, "funding": -0.0000034827, "openInterest": 0, "oraclePx": 3300.1,
            "markPx": 3299.9, "midPx": None, "premium": None, "impactPxs": None}  # fmt: skip
    parsed = a.parse(ctx_frame({"coin": "kPEPE", "ctx": nums}), RECV)
    assert parsed.errors == []
    assert parsed.events == [
        context("kPEPE", mark_price=3299.9, index_price=3300.1, funding_rate=-0.0000034827,
                open_interest_base=0.0, open_interest_usd=0.0)  # an empty book is a value
    ]  # fmt: skip
    zero = a.parse(ctx_frame({"coin": "BTC", "ctx": {**CTX, "funding": "0.0"}}), RECV)
    assert [e.funding_rate for e in zero.events if isinstance(e, MarketContext)] == [0.0]


def without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


@pytest.mark.parametrize(
    ("data", "reason"),
    [({"coin": "BTC", "ctx": {**CTX, "markPx": "0"}}, "bad_number"),
     ({"coin": "BTC", "ctx": {**CTX, "markPx": "nan"}}, "bad_number"),
     ({"coin": "BTC", "ctx": {**CTX, "oraclePx": "-1"}}, "bad_number"),
     ({"coin": "BTC", "ctx": {**CTX, "funding": "inf"}}, "bad_number"),
     ({"coin": "BTC", "ctx": {**CTX, "funding": ""}}, "bad_number"),
     ({"coin": "BTC", "ctx": {**CTX, "openInterest": "-0.1"}}, "bad_number"),
     ({"coin": "BTC", "ctx": {**CTX, "openInterest": "1e308", "markPx": "1e10"}}, "bad_number"),
     ({"coin": "BTC", "ctx": {**CTX, "markPx": None}}, "bad_type"),
     ({"coin": "BTC", "ctx": {**CTX, "funding": True}}, "bad_type"),
     ({"coin": "BTC", "ctx": {**CTX, "openInterest": ["1"]}}, "bad_type"),
     ({"coin": "BTC", "ctx": without(CTX, "markPx")}, "missing_field"),
     ({"coin": "BTC", "ctx": without(CTX, "oraclePx")}, "missing_field"),
     ({"coin": "BTC", "ctx": without(CTX, "funding")}, "missing_field"),
     ({"coin": "BTC", "ctx": without(CTX, "openInterest")}, "missing_field"),
     ({"coin": "BTC"}, "missing_field"),
     ({"ctx": CTX}, "missing_field"),
     ({"coin": "BTC", "ctx": [CTX]}, "bad_shape"),
     ({"coin": "@107", "ctx": CTX}, "unknown_instrument"),
     ({"coin": "xyz:HOOD", "ctx": CTX}, "unknown_instrument"),
     ({"coin": 7, "ctx": CTX}, "bad_type"),
     ({"coin": ["BTC"], "ctx": CTX}, "bad_shape")],
)  # fmt: skip
def test_bad_contexts_are_skipped_with_a_reason(data: dict[str, Any], reason: str) -> None:
    parsed = adapter().parse(ctx_frame(data), RECV)
    assert (parsed.events, parsed.errors, parsed.control) == ([], [reason], False)


def test_context_without_a_receive_time_is_bad_ts() -> None:
    parsed = adapter().parse(ctx_frame({"coin": "BTC", "ctx": CTX}), 999_999)  # < 1 ms
    assert (parsed.events, parsed.errors) == ([], ["bad_ts"])
    assert adapter().parse(ctx_frame({"coin": "BTC", "ctx": CTX}), 1_000_000).events


def test_context_counts_against_the_symbol_cap() -> None:
    a = HyperliquidAdapter(ExchangeConfig(symbols=("BTC",), max_symbols=1))
    assert a.parse(ctx_frame({"coin": "BTC", "ctx": CTX}), RECV).errors == []
    assert a.parse(ctx_frame({"coin": "ETH", "ctx": CTX}), RECV).errors == ["symbol_cap"]
    assert a.parse(frame(TRADE), RECV).errors == []  # BTC is known


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(ctx_frame([{"coin": "BTC", "ctx": CTX}]), "bad_shape"),  # data is one object
     (b'{"channel":"activeAssetCtx"}', "missing_field"),
     (ctx_frame({"coin": "PURR/USDC", "ctx": CTX}, "activeSpotAssetCtx"), "unknown_channel"),
     (ctx_frame({"coin": "BTC", "ctx": CTX}, "ActiveAssetCtx"), "unknown_channel"),
     (ctx_frame({"coin": "BTC", "ctx": CTX}, "activeAssetCtx "), "unknown_channel")],
)  # fmt: skip
def test_malformed_context_frames(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        adapter().parse(raw, RECV)
    assert exc.value.reason == reason


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(raw=st.binary(max_size=300), value=json_values)
def test_fuzz_random(raw: bytes, value: Any) -> None:
    check(adapter(), raw)
    check(adapter(), orjson.dumps(value))


class _AtRecv(HyperliquidAdapter):
    """The adapter with a real receive time (``check`` parses at received_ns 1, where a context,
    timed by its arrival, is ``bad_ts``): mutated contexts then reach the event checks."""

    def parse(self, frame: bytes | str, received_ns: int) -> Parsed:
        return super().parse(frame, RECV)


@FUZZ
@given(data=st.data(), doc=st.sampled_from([frame(TRADE), ctx_frame({"coin": "BTC", "ctx": CTX})]))
def test_fuzz_mutated_frames(data: st.DataObject, doc: bytes) -> None:
    mutated: Any = orjson.loads(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(mutated)))
        action = data.draw(st.sampled_from(["replace", "delete"]))
        mutated = _mutate(mutated, path, action, data.draw(json_values))
    check(adapter(), orjson.dumps(mutated))
    check(_AtRecv(ExchangeConfig(symbols=("BTC",))), orjson.dumps(mutated))
