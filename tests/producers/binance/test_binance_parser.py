from __future__ import annotations

from pathlib import Path

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
from monitor.core.symbols import Instrument, SymbolTable
from producers.binance import BinanceAdapter

DATA = Path(__file__).resolve().parents[1] / "data"


def frame(name: str) -> bytes:
    return (DATA / name).read_bytes()


def session_frames(name: str) -> list[bytes]:
    return [line for line in (DATA / name).read_bytes().splitlines() if line.strip()]


RECV = 1_700_000_000_123_456_789


@pytest.fixture
def adapter() -> BinanceAdapter:
    return BinanceAdapter(ExchangeConfig(symbols=("BTCUSDT", "ETHUSDT")))


def force_order(**o: object) -> bytes:
    doc = orjson.loads(frame("binance/forceOrder.json"))
    doc["o"].update(o)
    return orjson.dumps(doc)


def test_documented_force_order_is_a_long_liquidation_at_the_fill(adapter: BinanceAdapter) -> None:
    parsed = adapter.parse(frame("binance/forceOrder.json"), RECV)
    assert parsed.errors == [] and parsed.replies == [] and not parsed.control
    assert parsed.events == [
        Liquidation(
            exchange="binance",
            symbol="BTC-USDT-PERP",
            venue_symbol="BTCUSDT",
            liquidated_side=Side.LONG,  # order side SELL closes a long
            order_side=OrderSide.SELL,
            price=9910.0,
            price_kind=PriceKind.AVG_FILL,
            qty_raw=0.014,
            qty_unit=QtyUnit.BASE,
            contract_multiplier=1.0,
            qty_base=0.014,
            notional_usd=0.014 * 9910.0,
            coverage=Coverage.SAMPLED_LATEST_1S,
            ts_ms=1568014460893,
            received_ns=RECV,
            event_id=liquidation_id("binance", "BTCUSDT", 1568014460893, "long", 0.014, 9910.0),
        )
    ]
    assert parsed.events[0].notional_usd == pytest.approx(138.74)


def test_buy_forced_order_is_a_short_liquidation(adapter: BinanceAdapter) -> None:
    (ev,) = adapter.parse(force_order(S="BUY"), RECV).events
    assert isinstance(ev, Liquidation)
    assert (ev.liquidated_side, ev.order_side) == (Side.SHORT, OrderSide.BUY)
    assert ev.event_id == liquidation_id(
        "binance", "BTCUSDT", 1568014460893, "short", 0.014, 9910.0
    )


def test_quantity_and_price_are_the_fill_not_the_order(adapter: BinanceAdapter) -> None:
    raw = force_order(q="0.020", p="9900", z="0.012", l="0.002", ap="9905.5", T=1568014460999)
    (ev,) = adapter.parse(raw, RECV).events
    assert isinstance(ev, Liquidation)
    assert (ev.qty_raw, ev.price, ev.ts_ms) == (0.012, 9905.5, 1568014460999)
    assert ev.qty_base == 0.012
    assert ev.notional_usd == 0.012 * 9905.5


def test_unfilled_forced_order_is_skipped(adapter: BinanceAdapter) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse(force_order(X="NEW", z="0", l="0", ap="0"), RECV)
    assert err.value.reason == "no_fill"


def test_contract_multiplier_applies_once(adapter: BinanceAdapter) -> None:

    table = SymbolTable()
    table.add(Instrument("BTCUSDT", "BTC-USDT-PERP", "BTC", "USDT", 0.001))
    (ev,) = BinanceAdapter(ExchangeConfig(), symbols=table).parse(force_order(), RECV).events
    assert isinstance(ev, Liquidation)
    assert (ev.qty_raw, ev.contract_multiplier, ev.qty_base) == (0.014, 0.001, 0.014 * 0.001)
    assert ev.notional_usd == 0.014 * 0.001 * 9910.0


def test_documented_agg_trade_buyer_maker_means_taker_sold(adapter: BinanceAdapter) -> None:
    parsed = adapter.parse(frame("binance/aggTrade.json"), RECV)
    assert parsed.events == [
        Trade(
            exchange="binance",
            symbol="BTC-USDT-PERP",
            venue_symbol="BTCUSDT",
            taker_side=OrderSide.SELL,
            price=0.001,
            qty_raw=100.0,
            qty_unit=QtyUnit.BASE,
            contract_multiplier=1.0,
            qty_base=100.0,
            notional_usd=100.0 * 0.001,
            is_liquidation=None,
            ts_ms=123456785,
            received_ns=RECV,
            trade_id="5933014",
        )
    ]


def test_combined_stream_is_unwrapped(adapter: BinanceAdapter) -> None:
    (ev,) = adapter.parse(frame("binance/aggTrade_combined.json"), RECV).events
    assert ev == Trade(
        exchange="binance", symbol="ETH-USDT-PERP", venue_symbol="ETHUSDT",
        taker_side=OrderSide.BUY,  # m=false: the buyer took
        price=3401.25, qty_raw=1.25, qty_unit=QtyUnit.BASE, contract_multiplier=1.0,
        qty_base=1.25, notional_usd=1.25 * 3401.25, is_liquidation=None,
        ts_ms=1760000000120, received_ns=RECV, trade_id="2401377513",
    )  # fmt: skip


def test_combined_force_order_and_array_of_events(adapter: BinanceAdapter) -> None:
    inner = orjson.loads(frame("binance/forceOrder.json"))
    wrapped = orjson.dumps({"stream": "!forceOrder@arr", "data": inner})
    (ev,) = adapter.parse(wrapped, RECV).events
    assert isinstance(ev, Liquidation) and ev.symbol == "BTC-USDT-PERP"
    bad = {"e": "forceOrder", "E": 1, "o": {**inner["o"], "S": "HOLD"}}
    parsed = adapter.parse(orjson.dumps([inner, bad, 7]), RECV)
    assert len(parsed.events) == 1
    assert parsed.errors == ["bad_side", "bad_shape"]


def test_request_reply_is_control(adapter: BinanceAdapter) -> None:
    parsed = adapter.parse(frame("binance/subscribe_result.json"), RECV)
    assert parsed.control and parsed.events == [] and parsed.errors == []
    with pytest.raises(ParseError) as err:
        adapter.parse(b'{"error": {"code": 2, "msg": "Invalid request"}, "id": 1}', RECV)
    assert err.value.reason == "request_failed"


def test_str_frames_parse_like_bytes(adapter: BinanceAdapter) -> None:
    raw = frame("binance/aggTrade.json")
    assert adapter.parse(raw.decode(), RECV) == adapter.parse(raw, RECV)


def agg(**fields: object) -> bytes:
    doc = orjson.loads(frame("binance/aggTrade.json"))
    doc.update(fields)
    return orjson.dumps({k: v for k, v in doc.items() if v is not DELETE})


DELETE = object()

# The documented markPriceUpdate payload (USD-M "Mark Price Stream" page), as the venue sends it.
MARK_PRICE = (
    b'{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000",'
    b'"i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}'
)


def mark_price(**fields: object) -> bytes:
    doc = orjson.loads(MARK_PRICE)
    doc.update(fields)
    return orjson.dumps({k: v for k, v in doc.items() if v is not DELETE})


def test_documented_mark_price_update_is_market_context(adapter: BinanceAdapter) -> None:
    parsed = adapter.parse(MARK_PRICE, RECV)
    assert parsed.errors == [] and parsed.replies == [] and not parsed.control
    assert parsed.events == [
        MarketContext(
            exchange="binance",
            symbol="BTC-USDT-PERP",
            venue_symbol="BTCUSDT",
            mark_price=11794.15,
            index_price=11784.62659091,
            funding_rate=0.00038167,
            next_funding_ms=1562306400000,
            open_interest_base=None,  # not on this stream
            open_interest_usd=None,
            ts_ms=1562305380000,
            received_ns=RECV,
        )
    ]


def test_combined_and_all_market_mark_price(adapter: BinanceAdapter) -> None:
    doc = orjson.loads(MARK_PRICE)
    (direct,) = adapter.parse(MARK_PRICE, RECV).events
    wrapped = orjson.dumps({"stream": "btcusdt@markPrice@1s", "data": doc})
    assert adapter.parse(wrapped, RECV).events == [direct]
    eth = {**doc, "s": "ETHUSDT", "p": "3401.25000000", "i": "3400.5", "r": "-0.00012500"}
    bad = {**doc, "r": "x"}
    parsed = adapter.parse(
        orjson.dumps({"stream": "!markPrice@arr", "data": [doc, bad, eth]}), RECV
    )
    assert parsed.errors == ["bad_number"]
    contexts = [e for e in parsed.events if isinstance(e, MarketContext)]
    assert len(contexts) == len(parsed.events)
    assert [(e.symbol, e.mark_price, e.index_price, e.funding_rate) for e in contexts] == [
        ("BTC-USDT-PERP", 11794.15, 11784.62659091, 0.00038167),
        ("ETH-USDT-PERP", 3401.25, 3400.5, -0.000125),  # funding can be negative
    ]


def test_delivery_contract_has_no_funding(adapter: BinanceAdapter) -> None:
    # "r": "" and "T": 0 are shown for delivery (non-perpetual) symbols
    (ev,) = adapter.parse(mark_price(r="", T=0), RECV).events
    assert isinstance(ev, MarketContext)
    assert (ev.mark_price, ev.funding_rate, ev.next_funding_ms) == (11794.15, None, None)


def test_numeric_mark_price_fields_are_accepted(adapter: BinanceAdapter) -> None:
    (ev,) = adapter.parse(mark_price(p=11794.15, i=11784, r=0), RECV).events
    assert isinstance(ev, MarketContext)
    assert (ev.mark_price, ev.index_price, ev.funding_rate) == (11794.15, 11784.0, 0.0)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "bad_json"),
        (b"{not json", "bad_json"),
        (b"\xff\xfe", "bad_json"),
        (b'"text"', "bad_shape"),
        (b"42", "bad_shape"),
        (b"{}", "unknown_event"),
        (b'{"e": "markPriceUpdate", "s": "BTCUSDT"}', "missing_field"),
        (b'{"e": "markPrice", "s": "BTCUSDT"}', "unknown_event"),
        (b'{"e": "markpriceupdate", "s": "BTCUSDT"}', "unknown_event"),
        (b'{"e": "markPriceUpdate "}', "unknown_event"),
        (b'{"e": ["aggTrade"]}', "unknown_event"),
        (b'{"stream": "btcusdt@aggTrade"}', "missing_field"),
        (b'{"stream": "btcusdt@aggTrade", "data": "x"}', "bad_shape"),
        (agg(q=DELETE), "missing_field"),
        (agg(q="abc"), "bad_number"),
        (agg(q="0"), "bad_number"),
        (agg(q="-1"), "bad_number"),
        (agg(p="NaN"), "bad_number"),
        (agg(p="inf"), "bad_number"),
        (agg(p="1e400"), "bad_number"),
        (agg(p=True), "bad_type"),
        (agg(q=True), "bad_type"),
        (agg(q=False), "bad_type"),
        (agg(p=None), "bad_type"),
        (agg(p=[1]), "bad_type"),
        (agg(m="true"), "bad_type"),
        (agg(a="5933014"), "bad_type"),
        (agg(T=1.5), "bad_ts"),
        (agg(T=-5), "bad_ts"),
        (agg(s=5), "bad_type"),
        (agg(s="FOO"), "unknown_symbol"),
        (agg(s="BTCEUR"), "unknown_symbol"),
        (force_order(S="sell"), "bad_side"),
        (force_order(z="-0.1"), "bad_number"),
        (force_order(ap="0"), "bad_number"),
        (b'{"e": "forceOrder", "o": []}', "bad_shape"),
        (mark_price(p=DELETE), "missing_field"),
        (mark_price(i=DELETE), "missing_field"),
        (mark_price(r=DELETE), "missing_field"),
        (mark_price(T=DELETE), "missing_field"),
        (mark_price(E=DELETE), "missing_field"),
        (mark_price(s=DELETE), "missing_field"),
        (mark_price(p="0.00000000"), "bad_number"),
        (mark_price(p="-1"), "bad_number"),
        (mark_price(p="abc"), "bad_number"),
        (mark_price(i="NaN"), "bad_number"),
        (mark_price(i=""), "bad_number"),
        (mark_price(p=None), "bad_type"),
        (mark_price(i=True), "bad_type"),
        (mark_price(r="abc"), "bad_number"),
        (mark_price(r="NaN"), "bad_number"),
        (mark_price(r="-inf"), "bad_number"),
        (mark_price(r="1e400"), "bad_number"),
        (mark_price(r=True), "bad_type"),
        (mark_price(r=None), "bad_type"),
        (mark_price(r=[0.0001]), "bad_type"),
        (mark_price(T=-1), "bad_ts"),
        (mark_price(T=False), "bad_ts"),
        (mark_price(T=0.0), "bad_ts"),
        (mark_price(T="1562306400000"), "bad_ts"),
        (mark_price(E=0), "bad_ts"),
        (mark_price(E=1562305380000.5), "bad_ts"),
        (mark_price(s=5), "bad_type"),
        (mark_price(s="FOO"), "unknown_symbol"),
    ],
)
def test_malformed_frames_raise_parse_error_with_reason(
    adapter: BinanceAdapter, raw: bytes, reason: str
) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse(raw, RECV)
    assert err.value.reason == reason


def test_symbol_cap_refuses_new_symbols() -> None:
    adapter = BinanceAdapter(ExchangeConfig(max_symbols=1))
    assert adapter.parse(agg(s="BTCUSDT"), RECV).events
    with pytest.raises(ParseError) as err:
        adapter.parse(agg(s="ETHUSDT"), RECV)
    assert err.value.reason == "symbol_cap"
    assert adapter.parse(agg(s="BTCUSDT"), RECV).events  # known symbols still flow


def test_trades_session_replay(adapter: BinanceAdapter) -> None:
    events: list[Trade] = []
    reasons: list[str] = []
    for raw in session_frames("binance/trades_session.jsonl"):
        try:
            parsed = adapter.parse(raw, RECV)
        except ParseError as exc:
            reasons.append(exc.reason)
            continue
        events.extend(e for e in parsed.events if isinstance(e, Trade))
    assert reasons == ["bad_json", "unknown_symbol"]
    assert [(e.venue_symbol, e.trade_id, e.taker_side.value) for e in events] == [
        ("BTCUSDT", "3001", "sell"),
        ("ETHUSDT", "7001", "buy"),
        ("BTCUSDT", "3002", "buy"),
        ("BTCUSDT", "3003", "sell"),
        ("ETHUSDT", "7002", "sell"),
        ("BTCUSDT", "3005", "buy"),
    ]
    btc = sum(e.notional_usd for e in events if e.symbol == "BTC-USDT-PERP")
    assert btc == pytest.approx(0.002 * 65000.10 + 0.010 * 65000.0 + 1.5 * 64999.9 + 0.25 * 65002.0)


def test_liquidations_session_replay(adapter: BinanceAdapter) -> None:
    out: list[tuple[str, str, float, float]] = []
    reasons = []
    for raw in session_frames("binance/liquidations_session.jsonl"):
        try:
            for e in adapter.parse(raw, RECV).events:
                assert isinstance(e, Liquidation)
                out.append((e.symbol, e.liquidated_side.value, e.qty_base, e.price))
        except ParseError as exc:
            reasons.append(exc.reason)
    assert reasons == ["no_fill"]
    assert out == [
        ("BTC-USDT-PERP", "long", 0.5, 64650.0),
        ("ETH-USDT-PERP", "short", 10.0, 3430.0),
        ("1000PEPE-USDT-PERP", "long", 150000.0, 0.011),
    ]
