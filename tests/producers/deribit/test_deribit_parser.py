from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from producers.deribit import DeribitAdapter
from producers.deribit.instruments import instrument_for
from tests.producers.test_fuzz_parsers import _mutate, _paths, check, json_values

DATA = Path(__file__).resolve().parent / "data"
RECV = 1_550_736_300_000_000_000


@pytest.fixture
def adapter() -> DeribitAdapter:
    return DeribitAdapter(ExchangeConfig(symbols=("BTC-PERPETUAL",)))


def trades_frame(*items: dict[str, Any], channel: str = "trades.BTC-PERPETUAL.100ms") -> bytes:
    return orjson.dumps(
        {
            "jsonrpc": "2.0",
            "method": "subscription",
            "params": {"channel": channel, "data": list(items)},
        }
    )


def trade(**kw: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"trade_seq": 10, "trade_id": "T-10", "timestamp": 1700000000000,
                            "price": 50000.0, "instrument_name": "BTC-PERPETUAL",
                            "direction": "buy", "amount": 1000}  # fmt: skip
    item.update(kw)
    return item


def test_documented_taker_liquidation(adapter: DeribitAdapter) -> None:
    parsed = adapter.parse((DATA / "trades_liquidation.json").read_bytes(), RECV)
    assert parsed.errors == [] and parsed.gaps == 0 and not parsed.control
    common: dict[str, Any] = dict(exchange="deribit", symbol="BTC-USD-PERP", venue_symbol="BTC-PERPETUAL",
                  price=3948.69, qty_raw=10.0, qty_unit=QtyUnit.USD, contract_multiplier=1.0,
                  qty_base=10 / 3948.69, notional_usd=10.0, ts_ms=1550736299753,
                  received_ns=RECV)  # fmt: skip
    assert parsed.events == [
        Trade(taker_side=OrderSide.SELL, is_liquidation=True, trade_id="9178", **common),
        Liquidation(
            liquidated_side=Side.LONG,  # T: the taker sold, so a long was liquidated
            order_side=OrderSide.SELL,
            price_kind=PriceKind.TRADE,
            coverage=Coverage.TRADE_FLAG,
            event_id=liquidation_id(
                "deribit", "BTC-PERPETUAL", 1550736299753, "long|9178", 10.0, 3948.69
            ),
            **common,
        ),
    ]


def test_maker_flag_liquidates_the_opposite_side(adapter: DeribitAdapter) -> None:
    parsed = adapter.parse(trades_frame(trade(direction="sell", liquidation="M")), RECV)
    trade_ev, liq = parsed.events
    assert isinstance(trade_ev, Trade) and trade_ev.taker_side == OrderSide.SELL
    assert isinstance(liq, Liquidation)
    assert (liq.liquidated_side, liq.order_side) == (Side.SHORT, OrderSide.BUY)
    assert liq.notional_usd == 1000.0 and liq.qty_base == 1000.0 / 50000.0


def test_mt_flag_gives_two_liquidations(adapter: DeribitAdapter) -> None:
    parsed = adapter.parse(trades_frame(trade(direction="buy", liquidation="MT")), RECV)
    assert [type(e).__name__ for e in parsed.events] == ["Trade", "Liquidation", "Liquidation"]
    liqs = [e for e in parsed.events if isinstance(e, Liquidation)]
    assert [(e.liquidated_side, e.order_side) for e in liqs] == [
        (Side.SHORT, OrderSide.BUY),  # the taker bought: a short was closed
        (Side.LONG, OrderSide.SELL),  # the maker sold: a long was closed
    ]
    assert [e.notional_usd for e in liqs] == [1000.0, 1000.0]
    assert liqs[0].event_id != liqs[1].event_id
    assert liqs[0].event_id == liquidation_id(
        "deribit", "BTC-PERPETUAL", 1700000000000, "short|T-10", 1000.0, 50000.0
    )


def test_plain_trade_is_not_a_liquidation(adapter: DeribitAdapter) -> None:
    (ev,) = adapter.parse(trades_frame(trade()), RECV).events
    assert ev == Trade("deribit", "BTC-USD-PERP", "BTC-PERPETUAL", OrderSide.BUY, 50000.0, 1000.0,
                       QtyUnit.USD, 1.0, 0.02, 1000.0, False, 1700000000000, RECV, "T-10")  # fmt: skip


def test_linear_usdc_amount_is_base() -> None:
    a = DeribitAdapter(ExchangeConfig())
    item = trade(instrument_name="SOL_USDC-PERPETUAL", amount=2.5, price=150.5, liquidation="T")
    parsed = a.parse(trades_frame(item, channel="trades.SOL_USDC-PERPETUAL.100ms"), RECV)
    tr, liq = parsed.events
    assert isinstance(liq, Liquidation)
    assert (tr.symbol, tr.qty_unit, tr.qty_base, tr.notional_usd) == (
        "SOL-USDC-PERP",
        QtyUnit.BASE,
        2.5,
        2.5 * 150.5,
    )
    assert (liq.liquidated_side, liq.notional_usd) == (Side.SHORT, 376.25)


def test_test_request_is_answered_with_public_test(adapter: DeribitAdapter) -> None:
    first = adapter.parse((DATA / "test_request.json").read_bytes(), RECV)
    second = adapter.parse((DATA / "test_request.json").read_bytes(), RECV)
    assert first.control and first.events == []
    assert [orjson.loads(r) for r in first.replies + second.replies] == [
        {"jsonrpc": "2.0", "id": 1_000_000, "method": "public/test", "params": {}},
        {"jsonrpc": "2.0", "id": 1_000_001, "method": "public/test", "params": {}},
    ]
    plain = adapter.parse(
        b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}', 1
    )
    assert plain.control and plain.replies == []


def test_rpc_results_are_control_and_errors_raise(adapter: DeribitAdapter) -> None:
    assert adapter.parse((DATA / "subscribe_result.json").read_bytes(), RECV).control
    assert adapter.parse(b'{"jsonrpc":"2.0","id":9,"result":{"version":"1.2.26"}}', 1).control
    with pytest.raises(ParseError) as exc:
        adapter.parse(b'{"jsonrpc":"2.0","id":2,"error":{"code":13778,"message":"raw_subscriptions_not_available_for_unauthorized"}}', 1)  # fmt: skip
    assert exc.value.reason == "request_failed"


def test_sequence_gaps_per_instrument(adapter: DeribitAdapter) -> None:
    eth = dict(instrument_name="ETH-PERPETUAL")
    assert adapter.parse(trades_frame(trade(trade_seq=10)), RECV).gaps == 0  # baseline
    assert adapter.parse(trades_frame(trade(trade_seq=200, **eth)), RECV).gaps == 0  # other inst
    assert adapter.parse(trades_frame(trade(trade_seq=11), trade(trade_seq=12)), RECV).gaps == 0
    assert adapter.parse(trades_frame(trade(trade_seq=16)), RECV).gaps == 3  # 13, 14, 15 missed
    assert adapter.parse(trades_frame(trade(trade_seq=14)), RECV).gaps == 0  # replay: no gap
    assert adapter.parse(trades_frame(trade(trade_seq=17)), RECV).gaps == 0
    assert adapter.parse(trades_frame(trade(trade_seq=202, **eth)), RECV).gaps == 1


def test_bad_items_are_skipped_with_reasons(adapter: DeribitAdapter) -> None:
    parsed = adapter.parse(
        trades_frame(
            trade(liquidation="X"),
            trade(direction="up"),
            trade(amount=0),
            trade(timestamp=True),
            trade(instrument_name="BTC-27JUN25-100000-C"),
            {"trade_seq": 1},
            "junk",
            trade(trade_seq=11, liquidation="T"),
        ),
        RECV,
    )
    assert parsed.errors == ["bad_liq_flag", "bad_side", "bad_number", "bad_ts",
                             "unknown_instrument", "missing_field", "bad_shape"]  # fmt: skip
    assert len(parsed.events) == 2 and parsed.gaps == 0  # the skipped items moved no sequence


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "bad_json"),
        (b"[1]", "bad_shape"),
        (b'{"method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":[]}}', "unknown_channel"),
        (b'{"method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.100ms","data":{}}}', "bad_shape"),
        (b'{"method":"subscription","params":{}}', "missing_field"),
        (b'{"method":"heartbeat","params":{"type":"other"}}', "unknown_heartbeat"),
        (b'{"method":"other"}', "unknown_method"),
        (b'{"jsonrpc":"2.0"}', "unknown_event"),
    ],
)  # fmt: skip
def test_malformed_frames(adapter: DeribitAdapter, raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        adapter.parse(raw, RECV)
    assert exc.value.reason == reason


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BTC-PERPETUAL", ("BTC-USD-PERP", True)),
        ("ETH-27JUN25", ("ETH-USD-250627", True)),
        ("BTC_USDC-PERPETUAL", ("BTC-USDC-PERP", False)),
        ("BTC-27JUN25-100000-C", None),
        ("BTC_EUR-PERPETUAL", None),
        ("BTC-31XYZ25", None),
    ],
)
def test_instrument_names(name: str, expected: tuple[str, bool] | None) -> None:
    inst = instrument_for(name)
    assert (None if inst is None else (inst.symbol, inst.inverse)) == expected


VALID = [orjson.loads(p.read_bytes()) for p in sorted(DATA.glob("*.json"))]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(raw=st.binary(max_size=300))
def test_fuzz_random_bytes(raw: bytes) -> None:
    check(DeribitAdapter(ExchangeConfig(max_symbols=50)), raw)


@FUZZ
@given(value=json_values)
def test_fuzz_random_json(value: Any) -> None:
    check(DeribitAdapter(ExchangeConfig(max_symbols=50)), orjson.dumps(value))


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_frames(data: st.DataObject) -> None:
    doc = data.draw(st.sampled_from(VALID))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        action = data.draw(st.sampled_from(["replace", "delete"]))
        doc = _mutate(doc, path, action, data.draw(json_values))
    check(DeribitAdapter(ExchangeConfig(max_symbols=50)), orjson.dumps(doc))
