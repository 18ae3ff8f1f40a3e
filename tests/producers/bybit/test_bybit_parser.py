from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from monitor.config import ExchangeConfig
from monitor.errors import ParseError
from monitor.schema import (
    Coverage,
    Liquidation,
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


def liq_frame(*items: dict[str, object], topic: str = "allLiquidation.BTCUSDT") -> bytes:
    return orjson.dumps({"topic": topic, "type": "snapshot", "ts": 1, "data": list(items)})


LIQ = {"T": 1739502302929, "s": "BTCUSDT", "S": "Buy", "v": "0.5", "p": "64000.5"}
TRD = {"T": 1672304486865, "s": "BTCUSDT", "S": "Buy", "v": "0.001", "p": "16578.50",
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
