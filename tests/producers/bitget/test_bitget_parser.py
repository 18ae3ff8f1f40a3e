"""Bitget v3 parser. The liquidation ``side`` is the liquidated POSITION's side ("buy" => a long
was liquidated) and ``amount`` is in quote coin (the USDT notional), as the Liquidation Channel
page documents them (docs/venues.md §7); a ``snapshot`` push is not new liquidations. Market
context: the futures ``ticker`` push (``openInterest`` read as base coin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import (
    Coverage,
    Liquidation,
    MarketContext,
    OrderSide,
    PriceKind,
    QtyUnit,
    Side,
    Trade,
    liquidation_id,
)
from producers.bitget import BitgetAdapter

DATA = Path(__file__).resolve().parent / "data"
RECV = 1_736_371_332_200_000_000


def frame(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.fixture
def adapter() -> BitgetAdapter:
    return BitgetAdapter(ExchangeConfig(symbols=("BTCUSDT",)))


def liq_frame(*items: Any) -> bytes:
    return orjson.dumps({"data": list(items), "action": "update", "ts": 1,
                         "arg": {"instType": "usdt-futures", "topic": "liquidation"}})  # fmt: skip


def test_documented_liquidation(adapter: BitgetAdapter) -> None:
    parsed = adapter.parse(frame("liquidation.json"), RECV)
    assert parsed.errors == [] and not parsed.control
    assert parsed.events == [
        Liquidation(
            exchange="bitget",
            symbol="BTC-USDT-PERP",
            venue_symbol="BTCUSDT",
            liquidated_side=Side.LONG,  # the position side: "buy" = a long was liquidated
            order_side=None,
            price=89000.0,
            price_kind=PriceKind.UNKNOWN,
            qty_raw=37.722858,
            qty_unit=QtyUnit.QUOTE,
            contract_multiplier=1.0,
            qty_base=37.722858 / 89000.0,
            notional_usd=37.722858,  # amount is the USDT notional
            coverage=Coverage.LARGEST_PER_SIDE_1S,
            ts_ms=1736371332162,
            received_ns=RECV,
            event_id=liquidation_id("bitget", "BTCUSDT", 1736371332162, "long", 37.722858, 89000.0),
        )
    ]


def test_sell_is_a_short_and_bad_items_are_skipped(adapter: BitgetAdapter) -> None:
    good = {"symbol": "ETHUSDT", "side": "sell", "price": "3000", "amount": "6000", "ts": "17"}
    parsed = adapter.parse(
        liq_frame(
            good,
            {**good, "side": "long"},
            {**good, "amount": "0"},
            {**good, "ts": 17},
            {**good, "symbol": "ETHEUR"},
            {**good, "symbol": 1},
            {k: v for k, v in good.items() if k != "price"},
            "x",
        ),
        RECV,
    )
    (ev,) = parsed.events
    assert isinstance(ev, Liquidation)
    assert (ev.symbol, ev.liquidated_side, ev.qty_base, ev.notional_usd) == (
        "ETH-USDT-PERP", Side.SHORT, 2.0, 6000.0,
    )  # fmt: skip
    assert parsed.errors == ["bad_side", "bad_number", "bad_ts", "unknown_symbol", "bad_type",
                             "missing_field", "bad_shape"]  # fmt: skip


def test_a_snapshot_push_is_not_new_liquidations(adapter: BitgetAdapter) -> None:
    item = {"symbol": "ETHUSDT", "side": "buy", "price": "3000", "amount": "6000", "ts": "17"}
    update = orjson.loads(liq_frame(item, {**item, "side": "sell"}))
    parsed = adapter.parse(orjson.dumps({**update, "action": "snapshot"}), RECV)
    assert parsed.events == [] and parsed.errors == []
    assert parsed.replayed == ["venue_snapshot", "venue_snapshot"]
    assert len(adapter.parse(orjson.dumps(update), RECV).events) == 2


def test_identical_liquidations_of_one_push_keep_distinct_ids(adapter: BitgetAdapter) -> None:
    item = {"symbol": "ETHUSDT", "side": "buy", "price": "3000", "amount": "6000", "ts": "17"}
    first = adapter.parse(liq_frame(item, item, {**item, "side": "sell"}, item), RECV).events
    ids = [e.event_id for e in first if isinstance(e, Liquidation)]
    assert len(ids) == 4 and len(set(ids)) == 4
    # the same push again maps to the same ids, and the item alone to the first one's id
    again = adapter.parse(liq_frame(item, item, {**item, "side": "sell"}, item), RECV).events
    assert [e.event_id for e in again if isinstance(e, Liquidation)] == ids
    (alone,) = adapter.parse(liq_frame(item), RECV).events
    assert isinstance(alone, Liquidation) and alone.event_id == ids[0]


def test_documented_trades(adapter: BitgetAdapter) -> None:
    parsed = adapter.parse(frame("publicTrade.json"), RECV)
    assert parsed.errors == []
    assert parsed.events == [
        Trade(
            exchange="bitget",
            symbol="BTC-USDT-PERP",
            venue_symbol="BTCUSDT",
            taker_side=OrderSide.SELL,
            price=80810.6,
            qty_raw=0.0246,
            qty_unit=QtyUnit.BASE,
            contract_multiplier=1.0,
            qty_base=0.0246,
            notional_usd=0.0246 * 80810.6,
            is_liquidation=None,
            ts_ms=1789940564662,
            received_ns=RECV,
            trade_id="1485683898127761410",
        ),
        Trade(
            exchange="bitget",
            symbol="BTC-USDT-PERP",
            venue_symbol="BTCUSDT",
            taker_side=OrderSide.BUY,
            price=80810.6,
            qty_raw=0.0716,
            qty_unit=QtyUnit.BASE,
            contract_multiplier=1.0,
            qty_base=0.0716,
            notional_usd=0.0716 * 80810.6,
            is_liquidation=None,
            ts_ms=1789940564662,
            received_ns=RECV,
            trade_id="1485683898127761408",
        ),
    ]


def test_bad_trades_are_skipped(adapter: BitgetAdapter) -> None:
    good = {"i": "1", "p": "100", "v": "2", "S": "buy", "T": "1700000000000"}
    doc = orjson.loads(frame("publicTrade.json"))
    doc["data"] = [good, {**good, "S": "Buy"}, {**good, "v": "nan"}, {**good, "T": "-1"},
                   {**good, "i": 1}, {"p": "1"}]  # fmt: skip
    parsed = adapter.parse(orjson.dumps(doc), RECV)
    assert len(parsed.events) == 1
    assert parsed.errors == ["bad_side", "bad_number", "bad_ts", "bad_type", "missing_field"]
    del doc["arg"]["symbol"]
    assert adapter.parse(orjson.dumps(doc), RECV).errors[0] == "missing_field"


def test_acks_and_pong_are_control(adapter: BitgetAdapter) -> None:
    assert adapter.parse(frame("subscribe_ok.json"), RECV).control
    assert adapter.parse(b'{"event":"unsubscribe","arg":{}}', RECV).control
    assert adapter.parse("pong", RECV).control and adapter.parse(b"pong", RECV).control
    assert adapter.heartbeat() == "ping"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (frame("subscribe_error.json"), "subscribe_failed"),
        (
            b'{"event":"error","code":30016,"msg":"Param error","op":"subscribe"}',
            "subscribe_failed",
        ),
        (b'{"event":"error","code":30002,"msg":"Illegal request"}', "venue_error"),
        (b'{"event":"login","code":0}', "unknown_event"),
        (b'{"arg":{"instType":"usdt-futures","topic":"books"},"data":[]}', "unknown_topic"),
        (b'{"arg":{"topic":"liquidation"},"data":{}}', "bad_shape"),
        (b'{"arg":"liquidation","data":[]}', "bad_shape"),
        (b'{"data":[]}', "missing_field"),
        (b'{"ts":1}', "unknown_event"),
        (b"{nope", "bad_json"),
        (b"ping", "bad_json"),
        (b"[]", "bad_shape"),
    ],
)
def test_frame_level_failures(adapter: BitgetAdapter, raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse(raw, RECV)
    assert err.value.reason == reason


# ---- market context: ticker ---------------------------------------------------------------------


def ticker_frame(*items: Any, ts: Any = 1736371332162, inst_type: str = "usdt-futures") -> bytes:
    doc: dict[str, Any] = {
        "data": list(items),
        "arg": {"instType": inst_type, "symbol": "BTCUSDT", "topic": "ticker"},
        "action": "snapshot",
    }
    if ts is not None:
        doc["ts"] = ts
    return orjson.dumps(doc)


def test_documented_futures_ticker(adapter: BitgetAdapter) -> None:
    parsed = adapter.parse(frame("ticker.json"), RECV)
    assert parsed.errors == [] and not parsed.control
    assert parsed.events == [
        MarketContext(
            exchange="bitget",
            symbol="BTC-USDT-PERP",
            venue_symbol="BTCUSDT",
            mark_price=99101.7,
            index_price=99142.61,
            funding_rate=0.000071,
            next_funding_ms=1736380800000,  # 2025-01-09 00:00 UTC
            open_interest_base=52741.0621,  # base coin x multiplier 1
            open_interest_usd=None,  # derived by the consumer: base x mark
            ts_ms=1736371332162,  # the push's ts (the item has none)
            received_ns=RECV,
        )
    ]


def test_ticker_partial_fields_and_timestamp_forms(adapter: BitgetAdapter) -> None:
    doc = orjson.loads(frame("ticker.json"))
    full = doc["data"][0]
    items = [
        {"markPrice": "95000.1", "fundingRate": "-0.000125", "nextFundingTime": 1736380800000},
        {"markPrice": "95000.2", "indexPrice": "", "nextFundingTime": "0", "openInterest": "0"},
        {"symbol": "BTCUSDT", "openInterest": "12.5", "ts": "1736371332999"},  # own ts first
        {"bid1Price": "1", "ask1Price": "2", "lastPrice": "1.5"},  # nothing of the context
        {**full, "fundingRate": None, "openInterest": None},
    ]
    parsed = adapter.parse(ticker_frame(*items, ts="1736371332500"), RECV)
    assert parsed.errors == []
    got = [(e.mark_price, e.index_price, e.funding_rate, e.next_funding_ms, e.open_interest_base,
            e.ts_ms) for e in parsed.events if isinstance(e, MarketContext)]  # fmt: skip
    assert got == [
        (95000.1, None, -0.000125, 1736380800000, None, 1736371332500),
        (95000.2, None, None, None, 0.0, 1736371332500),
        (None, None, None, None, 12.5, 1736371332999),
        (99101.7, 99142.61, None, 1736380800000, None, 1736371332500),
    ]
    assert adapter.parse(ticker_frame({"lastPrice": "1"}), RECV).events == []


def test_bad_ticker_items_are_skipped(adapter: BitgetAdapter) -> None:
    good = {"markPrice": "95000.1", "openInterest": "10"}
    parsed = adapter.parse(
        ticker_frame(
            good,
            {**good, "markPrice": "-1"},
            {**good, "markPrice": "nan"},
            {**good, "fundingRate": "1e400"},
            {**good, "fundingRate": True},
            {**good, "nextFundingTime": "soon"},
            {**good, "nextFundingTime": -5},
            {**good, "openInterest": "-3"},
            {**good, "symbol": "ETHUSDT"},  # not the push's symbol
            {**good, "ts": "0"},
            "x",
        ),
        RECV,
    )
    assert len(parsed.events) == 1
    assert parsed.errors == ["bad_number", "bad_number", "bad_number", "bad_type", "bad_ts",
                             "bad_ts", "bad_number", "bad_shape", "bad_ts", "bad_shape"]  # fmt: skip
    assert adapter.parse(ticker_frame(good, ts=None), RECV).errors == ["bad_ts"]
    assert adapter.parse(ticker_frame(good, ts=-1), RECV).errors == ["bad_ts"]
    doc = orjson.loads(ticker_frame(good))
    doc["arg"]["symbol"] = "ETHEUR"
    assert adapter.parse(orjson.dumps(doc), RECV).errors == ["unknown_symbol"]
    del doc["arg"]["symbol"]
    assert adapter.parse(orjson.dumps(doc), RECV).errors == ["missing_field"]


def test_ticker_of_another_segment_fails_the_frame(adapter: BitgetAdapter) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse(ticker_frame({"markPrice": "1"}, inst_type="coin-futures"), RECV)
    assert err.value.reason == "unknown_inst_type"
