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
from producers.bybit import BybitAdapter

DATA = Path(__file__).resolve().parents[1] / "data"
RECV = 1_739_502_303_300_000_000


def frame(name: str) -> bytes:
    return (DATA / name).read_bytes()


def session_frames(name: str) -> list[bytes]:
    return [line for line in (DATA / name).read_bytes().splitlines() if line.strip()]


@pytest.fixture
def adapter() -> BybitAdapter:
    return BybitAdapter(ExchangeConfig(symbols=("BTCUSDT", "ROSEUSDT")))


def liq_frame(*items: object, topic: str = "allLiquidation.BTCUSDT") -> bytes:
    return orjson.dumps({"topic": topic, "type": "snapshot", "ts": 1, "data": list(items)})


LIQ: dict[str, Any] = {"T": 1739502302929, "s": "BTCUSDT", "S": "Buy", "v": "0.5", "p": "64000.5"}
TRD: dict[str, Any] = {"T": 1672304486865, "s": "BTCUSDT", "S": "Buy", "v": "0.001", "p": "16578.50",
       "L": "PlusTick", "i": "20f43950-d8dd-5b31-9112-a178eb6023af", "BT": False}  # fmt: skip


def test_documented_all_liquidation_sell_is_a_short(adapter: BybitAdapter) -> None:
    parsed = adapter.parse(frame("bybit/allLiquidation.json"), RECV)
    assert parsed.errors == [] and not parsed.control
    assert parsed.events == [
        Liquidation(
            exchange="bybit",
            symbol="ROSE-USDT-PERP",
            venue_symbol="ROSEUSDT",
            liquidated_side=Side.SHORT,  # position side: Sell = a short was liquidated
            order_side=None,  # Bybit does not say the order side
            price=0.04499,
            price_kind=PriceKind.BANKRUPTCY,
            qty_raw=20000.0,
            qty_unit=QtyUnit.BASE,
            contract_multiplier=1.0,
            qty_base=20000.0,
            notional_usd=20000.0 * 0.04499,
            coverage=Coverage.AGGREGATED,
            ts_ms=1739502302929,
            received_ns=RECV,
            event_id=liquidation_id("bybit", "ROSEUSDT", 1739502302929, "short", 20000.0, 0.04499),
        )
    ]


def test_bybit_buy_means_long_liquidated_the_reverse_of_binance(adapter: BybitAdapter) -> None:
    """Bybit ``S`` is the POSITION side: "Buy" = a long was liquidated. (On Binance the forced
    order's side is given, so SELL = long liquidated: the same event reads the other way.)"""
    (ev,) = adapter.parse(liq_frame(LIQ), RECV).events
    assert isinstance(ev, Liquidation)
    assert ev.liquidated_side is Side.LONG
    assert ev.order_side is None
    assert (ev.qty_base, ev.price, ev.notional_usd) == (0.5, 64000.5, 0.5 * 64000.5)


def test_several_liquidations_in_one_frame_bad_item_skipped(adapter: BybitAdapter) -> None:
    items = [LIQ, {**LIQ, "S": "Sell", "T": LIQ["T"] + 1}, {**LIQ, "v": "-1"}, {**LIQ, "S": "B"},
             {**LIQ, "s": "XYZ"}, "junk", {k: v for k, v in LIQ.items() if k != "p"}]  # fmt: skip
    parsed = adapter.parse(liq_frame(*items), RECV)
    assert [e.liquidated_side for e in parsed.events if isinstance(e, Liquidation)] == [
        Side.LONG,
        Side.SHORT,
    ]
    assert parsed.errors == [
        "bad_number",
        "bad_side",
        "unknown_symbol",
        "bad_shape",
        "missing_field",
    ]
    ids = {e.event_id for e in parsed.events if isinstance(e, Liquidation)}
    assert len(ids) == 2


def test_documented_public_trade(adapter: BybitAdapter) -> None:
    parsed = adapter.parse(frame("bybit/publicTrade.json"), RECV)
    assert parsed.events == [
        Trade(
            exchange="bybit",
            symbol="BTC-USDT-PERP",
            venue_symbol="BTCUSDT",
            taker_side=OrderSide.BUY,  # S is the taker side for trades
            price=16578.5,
            qty_raw=0.001,
            qty_unit=QtyUnit.BASE,
            contract_multiplier=1.0,
            qty_base=0.001,
            notional_usd=0.001 * 16578.5,
            is_liquidation=None,
            ts_ms=1672304486865,
            received_ns=RECV,
            trade_id="20f43950-d8dd-5b31-9112-a178eb6023af",
        )
    ]


def test_trade_sell_and_missing_id(adapter: BybitAdapter) -> None:
    raw = liq_frame(
        {**TRD, "S": "Sell"}, {**TRD, "i": ""}, {**TRD, "i": 5}, topic="publicTrade.BTCUSDT"
    )
    parsed = adapter.parse(raw, RECV)
    assert [e.taker_side for e in parsed.events if isinstance(e, Trade)] == [OrderSide.SELL]
    assert parsed.errors == ["bad_type", "bad_type"]


@pytest.mark.parametrize("name", ["bybit/subscribe_ok.json", "bybit/pong.json"])
def test_acks_and_pongs_are_control_frames(adapter: BybitAdapter, name: str) -> None:
    parsed = adapter.parse(frame(name), RECV)
    assert parsed.control and parsed.events == [] and parsed.errors == []


def test_op_pong_is_control(adapter: BybitAdapter) -> None:
    raw = b'{"req_id": "", "op": "pong", "args": ["1675418560633"], "conn_id": "x"}'
    assert adapter.parse(raw, RECV).control


def test_subscribe_failure_is_an_error_not_ignored(adapter: BybitAdapter) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse(frame("bybit/subscribe_fail.json"), RECV)
    assert err.value.reason == "subscribe_failed"
    assert "publicTrade.NOPEUSDT" in str(err.value)
    with pytest.raises(ParseError) as err:
        adapter.parse(b'{"op": "subscribe", "ret_msg": "?"}', RECV)  # no "success": not an ack
    assert err.value.reason == "subscribe_failed"


def test_heartbeat_and_subscribe_frames() -> None:
    cfg = ExchangeConfig(symbols=("BTCUSDT", "ethusdt"))
    adapter = BybitAdapter(cfg)
    assert orjson.loads(adapter.heartbeat() or "") == {"op": "ping"}
    (plan,) = adapter.connections(cfg, "wss://stream.bybit.com/v5/public/linear")
    assert plan.url == "wss://stream.bybit.com/v5/public/linear"
    assert [orjson.loads(f) for f in plan.subscribe] == [
        {
            "op": "subscribe",
            "args": [
                "allLiquidation.BTCUSDT",
                "allLiquidation.ETHUSDT",
                "publicTrade.BTCUSDT",
                "publicTrade.ETHUSDT",
                "tickers.BTCUSDT",
                "tickers.ETHUSDT",
            ],
            "req_id": "sub-1",
        }
    ]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "bad_json"),
        (b'{"topic": "publicTrade.BTCUSDT", "data": [', "bad_json"),
        (b"[]", "bad_shape"),
        (b"null", "bad_shape"),
        (b"{}", "unknown_event"),
        (b'{"topic": "orderbook.50.BTCUSDT", "data": []}', "unknown_topic"),
        (b'{"topic": "publicTradeX.BTCUSDT", "data": []}', "unknown_topic"),
        (b'{"topic": "publicTrade", "data": []}', "unknown_topic"),
        (b'{"topic": 7, "data": []}', "bad_type"),
        (b'{"topic": ["publicTrade.BTCUSDT"], "data": []}', "bad_shape"),
        (b'{"topic": "publicTrade.BTCUSDT"}', "missing_field"),
        (b'{"topic": "publicTrade.BTCUSDT", "data": {"T": 1}}', "bad_shape"),
        (b'{"op": "auth", "success": true}', "unknown_op"),
        (b'{"op": {}}', "bad_shape"),
    ],
)
def test_malformed_frames(adapter: BybitAdapter, raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse(raw, RECV)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({**TRD, "v": "NaN"}, "bad_number"),
        ({**TRD, "v": "Infinity"}, "bad_number"),
        ({**TRD, "p": "0"}, "bad_number"),
        ({**TRD, "p": "12,5"}, "bad_number"),
        ({**TRD, "p": False}, "bad_type"),
        ({**TRD, "T": "1672304486865"}, "bad_ts"),
        ({**TRD, "T": True}, "bad_ts"),
        ({**TRD, "S": "buy"}, "bad_side"),
        ({**TRD, "s": None}, "bad_type"),
        ({**TRD, "S": ["Buy"]}, "bad_shape"),
    ],
)
def test_malformed_trade_items_are_skipped(
    adapter: BybitAdapter, item: dict[str, object], reason: str
) -> None:
    parsed = adapter.parse(liq_frame(item, TRD, topic="publicTrade.BTCUSDT"), RECV)
    assert parsed.errors == [reason]
    assert len(parsed.events) == 1


def test_session_replay(adapter: BybitAdapter) -> None:
    liqs: list[tuple[str, Side, float]] = []
    trades: list[tuple[str, OrderSide, float]] = []
    reasons: list[str] = []
    controls = 0
    for raw in session_frames("bybit/session.jsonl"):
        try:
            parsed = adapter.parse(raw, RECV)
        except ParseError as exc:
            reasons.append(exc.reason)
            continue
        controls += parsed.control
        reasons.extend(parsed.errors)
        for e in parsed.events:
            if isinstance(e, Liquidation):
                liqs.append((e.symbol, e.liquidated_side, e.notional_usd))
            else:
                assert isinstance(e, Trade)
                trades.append((e.trade_id[-1], e.taker_side, e.qty_base))
    assert controls == 2
    assert reasons == ["bad_number", "bad_json"]
    assert liqs == [
        ("BTC-USDT-PERP", Side.LONG, 0.25 * 64000.5),
        ("BTC-USDT-PERP", Side.SHORT, 0.1 * 66000.0),
        ("ETH-USDT-PERP", Side.LONG, 3.0 * 3300.0),
    ]
    assert trades == [
        ("1", OrderSide.SELL, 0.25),
        ("2", OrderSide.SELL, 0.5),
        ("3", OrderSide.BUY, 1.0),
        ("2", OrderSide.BUY, 2.0),
    ]


# ---- tickers: market context ---------------------------------------------------------------------

# The documented linear snapshot (Bybit v5 "Ticker" page, response example), verbatim.
TICKER_SNAPSHOT = (
    b'{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT",'
    b'"tickDirection":"PlusTick","price24hPcnt":"0.017103","lastPrice":"17216.00",'
    b'"prevPrice24h":"16926.50","highPrice24h":"17281.50","lowPrice24h":"16915.00",'
    b'"prevPrice1h":"17238.00","markPrice":"17217.33","indexPrice":"17227.36",'
    b'"openInterest":"68744.761","openInterestValue":"1183601235.91",'
    b'"turnover24h":"1570383121.943499","volume24h":"91705.276","nextFundingTime":"1673280000000",'
    b'"fundingRate":"-0.000212","bid1Price":"17215.50","bid1Size":"84.489","ask1Price":"17216.00",'
    b'"ask1Size":"83.020"},"cs":24987956059,"ts":1673272861686}'
)


def ticker(data: object, kind: object = "delta", ts: object = 1673272861786,
           topic: str = "tickers.BTCUSDT") -> bytes:  # fmt: skip
    return orjson.dumps({"topic": topic, "type": kind, "data": data, "cs": 24987956060, "ts": ts})


def ctx(**fields: object) -> MarketContext:
    base: dict[str, object] = {
        "exchange": "bybit", "symbol": "BTC-USDT-PERP", "venue_symbol": "BTCUSDT",
        "mark_price": None, "index_price": None, "funding_rate": None, "next_funding_ms": None,
        "open_interest_base": None, "open_interest_usd": None, "ts_ms": 1673272861786,
        "received_ns": RECV,
    }  # fmt: skip
    return MarketContext(**{**base, **fields})  # type: ignore[arg-type]


def test_documented_ticker_snapshot(adapter: BybitAdapter) -> None:
    parsed = adapter.parse(TICKER_SNAPSHOT, RECV)
    assert parsed.errors == [] and not parsed.control
    assert parsed.events == [
        MarketContext(
            exchange="bybit",
            symbol="BTC-USDT-PERP",
            venue_symbol="BTCUSDT",
            mark_price=17217.33,
            index_price=17227.36,
            funding_rate=-0.000212,
            next_funding_ms=1673280000000,
            open_interest_base=68744.761,  # linear: base units (BTC)
            open_interest_usd=1183601235.91,  # openInterestValue, USDT
            ts_ms=1673272861686,  # the message ts
            received_ns=RECV,
        )
    ]


def test_ticker_delta_carries_only_what_changed(adapter: BybitAdapter) -> None:
    """A delta without markPrice gives mark_price None: the consumer keeps the previous value."""
    adapter.parse(TICKER_SNAPSHOT, RECV)
    raw = ticker({"symbol": "BTCUSDT", "openInterest": "68745.001",
                  "openInterestValue": "1183605367.42", "bid1Price": "17215.00"})  # fmt: skip
    assert adapter.parse(raw, RECV).events == [
        ctx(open_interest_base=68745.001, open_interest_usd=1183605367.42)
    ]
    raw = ticker({"symbol": "BTCUSDT", "markPrice": "17218.01", "fundingRate": "0"})
    assert adapter.parse(raw, RECV).events == [ctx(mark_price=17218.01, funding_rate=0.0)]
    raw = ticker({"symbol": "BTCUSDT", "indexPrice": "17226.9", "fundingRate": "0.0001",
                  "nextFundingTime": "1673308800000"})  # fmt: skip
    assert adapter.parse(raw, RECV).events == [
        ctx(index_price=17226.9, funding_rate=0.0001, next_funding_ms=1673308800000)
    ]


def test_ticker_delta_without_context_fields_is_no_event(adapter: BybitAdapter) -> None:
    raw = ticker({"symbol": "BTCUSDT", "lastPrice": "17216.50", "bid1Price": "17216.00",
                  "bid1Size": "1.2", "tickDirection": "PlusTick"})  # fmt: skip
    parsed = adapter.parse(raw, RECV)
    assert parsed.events == [] and parsed.errors == [] and not parsed.control


def test_ticker_not_applicable_fields_are_none(adapter: BybitAdapter) -> None:
    """Empty strings, and nextFundingTime "0" (dated futures print it), mean: no value."""
    raw = ticker({"symbol": "BTCUSDT", "markPrice": "17218.5", "fundingRate": "",
                  "nextFundingTime": "0", "indexPrice": ""}, kind="snapshot")  # fmt: skip
    assert adapter.parse(raw, RECV).events == [ctx(mark_price=17218.5)]


def test_ticker_json_numbers_are_accepted(adapter: BybitAdapter) -> None:
    raw = ticker({"symbol": "BTCUSDT", "markPrice": 17218.5, "fundingRate": -0.0001,
                  "nextFundingTime": 1673308800000, "openInterest": 0})  # fmt: skip
    assert adapter.parse(raw, RECV).events == [
        ctx(mark_price=17218.5, funding_rate=-0.0001, next_funding_ms=1673308800000,
            open_interest_base=0.0)
    ]  # fmt: skip


def test_tickers_and_trades_share_one_socket(adapter: BybitAdapter) -> None:
    """The per-topic cache keeps each channel's own handler (whole message vs items)."""
    for _ in range(2):
        (c,) = adapter.parse(TICKER_SNAPSHOT, RECV).events
        assert isinstance(c, MarketContext)
        (t,) = adapter.parse(frame("bybit/publicTrade.json"), RECV).events
        assert isinstance(t, Trade)


M = {"symbol": "BTCUSDT", "markPrice": "17218.01"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (ticker(M, topic="tickers"), "unknown_topic"),
        (ticker(M, topic="tickersX.BTCUSDT"), "unknown_topic"),
        (ticker(M, topic="tickers.ETHUSDT"), "bad_shape"),  # data.symbol is not the topic's
        (ticker({"markPrice": "17218.01"}), "missing_field"),
        (ticker({**M, "symbol": 5}), "bad_shape"),
        (ticker({**M, "symbol": "XYZ"}, topic="tickers.XYZ"), "unknown_symbol"),
        (ticker([M]), "bad_shape"),
        (ticker(M, kind="update"), "bad_type"),
        (ticker(M, kind=["delta"]), "bad_shape"),
        (ticker(M, ts="1673272861786"), "bad_ts"),
        (ticker(M, ts=0), "bad_ts"),
        (ticker(M, ts=True), "bad_ts"),
        (b'{"topic":"tickers.BTCUSDT","data":{"symbol":"BTCUSDT"},"ts":1}', "missing_field"),
        (
            b'{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT"}}',
            "missing_field",
        ),
        (b'{"topic":"tickers.BTCUSDT","type":"delta","ts":1}', "missing_field"),
        (ticker({**M, "markPrice": "NaN"}), "bad_number"),
        (ticker({**M, "markPrice": "0"}), "bad_number"),
        (ticker({**M, "markPrice": True}), "bad_type"),
        (ticker({**M, "indexPrice": "-1"}), "bad_number"),
        (ticker({**M, "fundingRate": "inf"}), "bad_number"),
        (ticker({**M, "fundingRate": "1e400"}), "bad_number"),
        (ticker({**M, "fundingRate": "0,01"}), "bad_number"),
        (ticker({**M, "fundingRate": False}), "bad_type"),
        (ticker({**M, "fundingRate": []}), "bad_type"),
        (ticker({**M, "nextFundingTime": "soon"}), "bad_ts"),
        (ticker({**M, "nextFundingTime": "-1"}), "bad_ts"),
        (ticker({**M, "nextFundingTime": 1.5}), "bad_ts"),
        (ticker({**M, "nextFundingTime": "9" * 20}), "bad_ts"),
        (ticker({**M, "openInterest": "-0.5"}), "bad_number"),
        (ticker({**M, "openInterestValue": "x"}), "bad_number"),
    ],
)
def test_malformed_ticker_frames(adapter: BybitAdapter, raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse(raw, RECV)
    assert err.value.reason == reason
