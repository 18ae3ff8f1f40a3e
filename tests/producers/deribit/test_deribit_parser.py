from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from producers.base import Parsed
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


# ---- market context: ticker.<NAME>.100ms -------------------------------------------------------

DOC_TICKER: dict[str, Any] = orjson.loads((DATA / "ticker.json").read_bytes())["params"]["data"]


def ticker_frame(data: Any, channel: str = "ticker.BTC-PERPETUAL.100ms") -> bytes:
    return orjson.dumps(
        {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}}
    )


def ticker(**kw: Any) -> dict[str, Any]:
    return {**DOC_TICKER, **kw}


def test_documented_ticker_of_an_inverse_perpetual(adapter: DeribitAdapter) -> None:
    # The documented BTC-PERPETUAL ticker (incremental_ticker snapshot layout; exchange docs).
    parsed = adapter.parse((DATA / "ticker.json").read_bytes(), RECV)
    assert parsed.errors == [] and parsed.gaps == 0 and not parsed.control
    assert parsed.events == [
        MarketContext(
            exchange="deribit",
            symbol="BTC-USD-PERP",
            venue_symbol="BTC-PERPETUAL",
            mark_price=36446.51,
            index_price=36441.64,
            funding_rate=0.0,  # current_funding; funding_8h (trailing) is not kept
            next_funding_ms=None,  # continuous funding
            open_interest_base=502097590 / 36446.51,  # USD open interest at the ticker's mark
            open_interest_usd=502097590.0,  # inverse: open_interest is in USD
            ts_ms=1623060194301,
            received_ns=RECV,
        )
    ]


def test_ticker_of_a_linear_usdc_perpetual_is_in_base_coin() -> None:
    a = DeribitAdapter(ExchangeConfig())
    data = ticker(instrument_name="SOL_USDC-PERPETUAL", mark_price=150.1234, index_price=150.2,
                  current_funding=-0.00012345, open_interest=81234.5, timestamp=1700000000123)  # fmt: skip
    (ev,) = a.parse(ticker_frame(data, "ticker.SOL_USDC-PERPETUAL.100ms"), RECV).events
    assert ev == MarketContext("deribit", "SOL-USDC-PERP", "SOL_USDC-PERPETUAL", 150.1234, 150.2,
                               -0.00012345, None, 81234.5, None, 1700000000123, RECV)  # fmt: skip


def test_ticker_of_a_dated_future_has_no_funding(adapter: DeribitAdapter) -> None:
    data = {k: v for k, v in DOC_TICKER.items() if k not in ("current_funding", "funding_8h")}
    data.update(instrument_name="ETH-27JUN25", mark_price=3500.5, index_price=3490.0,
                open_interest=1234560, timestamp=1700000000000)  # fmt: skip
    (ev,) = adapter.parse(ticker_frame(data, "ticker.ETH-27JUN25.agg2"), RECV).events
    assert ev == MarketContext("deribit", "ETH-USD-250627", "ETH-27JUN25", 3500.5, 3490.0, None,
                               None, 1234560 / 3500.5, 1234560.0, 1700000000000, RECV)  # fmt: skip


def test_ticker_null_and_absent_fields_are_none(adapter: DeribitAdapter) -> None:
    data = ticker(mark_price=None, current_funding=None, index_price=None)
    (ev,) = adapter.parse(ticker_frame(data), RECV).events
    assert isinstance(ev, MarketContext)
    # no mark in this ticker: the USD open interest has no base amount
    assert (ev.mark_price, ev.index_price, ev.funding_rate) == (None, None, None)
    assert (ev.open_interest_usd, ev.open_interest_base) == (502097590.0, None)
    bare = {"instrument_name": "BTC-PERPETUAL", "timestamp": 1623060194301, "state": "open"}
    assert adapter.parse(ticker_frame(bare), RECV) == Parsed()  # nothing to say: no event


@pytest.mark.parametrize("ts", [1623060194301, 1623060194301.0])
def test_ticker_timestamp_forms(adapter: DeribitAdapter, ts: float) -> None:
    (ev,) = adapter.parse(ticker_frame(ticker(timestamp=ts)), RECV).events
    assert ev.ts_ms == 1623060194301 and type(ev.ts_ms) is int


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (ticker(timestamp=1623060194301.5), "bad_ts"),
        (ticker(timestamp="1623060194301"), "bad_ts"),
        (ticker(timestamp=True), "bad_ts"),
        (ticker(timestamp=0), "bad_ts"),
        (ticker(timestamp=2**53), "bad_ts"),
        (ticker(mark_price=0), "bad_number"),
        (ticker(mark_price=-1.5), "bad_number"),
        (ticker(mark_price="abc"), "bad_number"),
        (ticker(index_price=True), "bad_type"),
        (ticker(current_funding="nan"), "bad_number"),
        (ticker(current_funding=[]), "bad_type"),
        (ticker(open_interest=-1), "bad_number"),
        (ticker(open_interest=1e308, mark_price=1e-300), "bad_number"),  # base overflows
        (ticker(instrument_name="ETH-PERPETUAL"), "bad_shape"),  # not the channel's instrument
        ({k: v for k, v in DOC_TICKER.items() if k != "timestamp"}, "missing_field"),
        ({k: v for k, v in DOC_TICKER.items() if k != "instrument_name"}, "missing_field"),
    ],
)  # fmt: skip
def test_bad_tickers_are_skipped_with_a_reason(
    adapter: DeribitAdapter, data: dict[str, Any], reason: str
) -> None:
    parsed = adapter.parse(ticker_frame(data), RECV)
    assert parsed.events == [] and parsed.errors == [reason]


def test_tickers_of_unknown_instruments_are_skipped(adapter: DeribitAdapter) -> None:
    option = "BTC-27JUN25-100000-C"
    parsed = adapter.parse(
        ticker_frame(ticker(instrument_name=option), f"ticker.{option}.100ms"), 1
    )
    assert parsed.errors == ["unknown_instrument"] and parsed.events == []
    capped = DeribitAdapter(ExchangeConfig(max_symbols=1))
    assert capped.parse((DATA / "ticker.json").read_bytes(), 1).events  # BTC-PERPETUAL: 1 of 1
    eth = ticker_frame(ticker(instrument_name="ETH-PERPETUAL"), "ticker.ETH-PERPETUAL.100ms")
    assert capped.parse(eth, 1).errors == ["symbol_cap"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (ticker_frame([DOC_TICKER]), "bad_shape"),  # a ticker's data is one object
        (ticker_frame(DOC_TICKER, "ticker.BTC-PERPETUAL.1s"), "unknown_channel"),
        (ticker_frame(DOC_TICKER, "incremental_ticker.BTC-PERPETUAL"), "unknown_channel"),
        (ticker_frame(DOC_TICKER, "ticker..100ms"), "unknown_channel"),
        (b'{"method":"subscription","params":{"channel":["ticker"],"data":{}}}', "bad_type"),
        (b'{"method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.100ms"}}', "missing_field"),
    ],
)  # fmt: skip
def test_malformed_ticker_frames(adapter: DeribitAdapter, raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        adapter.parse(raw, RECV)
    assert exc.value.reason == reason


def test_tickers_and_trades_share_the_socket(adapter: DeribitAdapter) -> None:
    assert adapter.parse(trades_frame(trade(trade_seq=10)), RECV).gaps == 0
    (ctx,) = adapter.parse((DATA / "ticker.json").read_bytes(), RECV).events
    assert isinstance(ctx, MarketContext)
    assert adapter.parse(trades_frame(trade(trade_seq=11)), RECV).gaps == 0  # no seq consumed
    assert adapter.parse((DATA / "ticker.json").read_bytes(), RECV).events == [ctx]  # cached


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
