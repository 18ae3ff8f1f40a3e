from __future__ import annotations

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
from producers.kraken import KrakenAdapter
from producers.kraken.instruments import instrument_for
from tests.producers.test_fuzz_parsers import _mutate, _paths, check, json_values

RECV = 1_565_342_713_000_000_000
# The documented trade message (docs/venues.md §10).
DOC = {"feed": "trade", "product_id": "PI_XBTUSD", "uid": "b5a1c239-7987-4207-96bf-02355a3263cf",
       "side": "sell", "type": "fill", "seq": 85423, "time": 1565342712903, "qty": 1135.0,
       "price": 11735.0}  # fmt: skip
PF = {**DOC, "product_id": "PF_XBTUSD", "qty": 0.25, "price": 60000.5, "uid": "u-1", "seq": 10}


def adapter() -> KrakenAdapter:
    return KrakenAdapter(ExchangeConfig(symbols=("PF_XBTUSD",)))


def test_documented_inverse_fill() -> None:
    parsed = adapter().parse(orjson.dumps(DOC), RECV)
    assert parsed.events == [
        Trade("kraken", "BTC-USD-PERP", "PI_XBTUSD", OrderSide.SELL, 11735.0, 1135.0, QtyUnit.CONTRACTS,
              1.0, 1135.0 / 11735.0, 1135.0, False, 1565342712903, RECV,
              "b5a1c239-7987-4207-96bf-02355a3263cf")
    ]  # fmt: skip
    assert parsed.gaps == 0 and parsed.errors == []


def test_liquidation_type_gives_unknown_side() -> None:
    parsed = adapter().parse(orjson.dumps({**PF, "type": "liquidation"}), RECV)
    tr, liq = parsed.events
    assert isinstance(tr, Trade) and tr.is_liquidation is True and tr.qty_unit == QtyUnit.BASE
    assert liq == Liquidation(
        "kraken", "BTC-USD-PERP", "PF_XBTUSD", Side.UNKNOWN, None, 60000.5, PriceKind.TRADE, 0.25,
        QtyUnit.BASE, 1.0, 0.25, 0.25 * 60000.5, Coverage.TRADE_FLAG, 1565342712903, RECV,
        liquidation_id("kraken", "PF_XBTUSD", 1565342712903, "unknown|u-1", 0.25, 60000.5),
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["fill", "block", "termination"])
def test_other_types_are_plain_trades(kind: str) -> None:
    (ev,) = adapter().parse(orjson.dumps({**PF, "type": kind}), RECV).events
    assert isinstance(ev, Trade) and ev.is_liquidation is False


def test_snapshot_emits_nothing_and_sets_the_seq_baseline() -> None:
    a = adapter()
    snap = {"feed": "trade_snapshot", "product_id": "PF_XBTUSD",
            "trades": [{**PF, "seq": 7}, {**PF, "seq": 9}, {**PF, "seq": 8}]}  # fmt: skip
    parsed = a.parse(orjson.dumps(snap), RECV)
    assert parsed.control and parsed.events == []
    assert a.parse(orjson.dumps({**PF, "seq": 10}), RECV).gaps == 0
    assert a.parse(orjson.dumps({**PF, "seq": 14}), RECV).gaps == 3
    assert a.parse(orjson.dumps({**PF, "seq": 12}), RECV).gaps == 0  # replay
    assert a.parse(orjson.dumps({**PF, "seq": 15}), RECV).gaps == 0
    assert a.parse(orjson.dumps(DOC), RECV).gaps == 0  # another product: its own baseline
    assert a.parse(orjson.dumps({**DOC, "seq": 85425}), RECV).gaps == 1


def test_control_frames() -> None:
    a = adapter()
    for raw in (b'{"event":"info","version":1}', b'{"feed":"heartbeat","time":1534262350627}',
                b'{"event":"subscribed","feed":"trade","product_ids":["PF_XBTUSD"]}'):  # fmt: skip
        assert a.parse(raw, RECV).control
    assert a.heartbeat() is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "bad_json"),
        (b"[]", "bad_shape"),
        (b'{"event":"error","message":"Invalid product id"}', "subscribe_failed"),
        (b'{"event":"surprise"}', "unknown_event"),
        (b'{"feed":"book"}', "unknown_feed"),
        (b'{"x":1}', "unknown_event"),
        (orjson.dumps({**PF, "side": "up"}), "bad_side"),
        (orjson.dumps({**PF, "type": "weird"}), "bad_type"),
        (orjson.dumps({**PF, "qty": -1}), "bad_number"),
        (orjson.dumps({**PF, "time": 1.5}), "bad_ts"),
        (orjson.dumps({**PF, "product_id": "PF_XBTEUR"}), "unknown_instrument"),
        (orjson.dumps({k: v for k, v in PF.items() if k != "uid"}), "missing_field"),
    ],
)  # fmt: skip
def test_malformed_frames(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        adapter().parse(raw, RECV)
    assert exc.value.reason == reason


@pytest.mark.parametrize(
    ("pid", "expected"),
    [("PF_XBTUSD", ("BTC-USD-PERP", False)), ("PI_ETHUSD", ("ETH-USD-PERP", True)),
     ("FI_XBTUSD_250627", ("BTC-USD-250627", True)), ("PF_XBTUSD_250627", None),
     ("FF_ETHUSD", None), ("PF_XBTEUR", None), ("XBTUSD", None)],
)  # fmt: skip
def test_product_ids(pid: str, expected: tuple[str, bool] | None) -> None:
    inst = instrument_for(pid)
    assert (None if inst is None else (inst.symbol, inst.inverse)) == expected


def test_subscriptions() -> None:
    cfg = ExchangeConfig(symbols=("PF_XBTUSD", "pf_ethusd", "PF_XBTUSD"))
    (plan,) = KrakenAdapter(cfg).connections(cfg, "wss://futures.kraken.com/ws/v1")
    assert [orjson.loads(f) for f in plan.subscribe] == [
        {"event": "subscribe", "feed": "trade", "product_ids": ["PF_XBTUSD", "PF_ETHUSD"]},
        {"event": "subscribe", "feed": "ticker", "product_ids": ["PF_XBTUSD", "PF_ETHUSD"]},
        {"event": "subscribe", "feed": "heartbeat"},
    ]
    assert KrakenAdapter(ExchangeConfig()).connections(ExchangeConfig(), "ws://x") == []


# ---- market context: ticker ----------------------------------------------------------------------

# The documented ticker example (PI_XBTUSD; docs.kraken.com futures websocket "ticker"); its
# time/bid/ask/sizes/volume are placeholders in the docs, filled in here.
DOC_TICKER: dict[str, Any] = {
    "time": 1612270825253, "feed": "ticker", "product_id": "PI_XBTUSD", "bid": 34832.5,
    "ask": 34847.5, "bid_size": 42864.0, "ask_size": 2300.0, "volume": 262306237.0, "dtm": 0,
    "leverage": "50x", "index": 34803.45, "premium": 0.1, "last": 34852.0,
    "change": 2.995109121267192, "funding_rate": 3.891007752e-9,
    "funding_rate_prediction": 4.2233756e-9, "suspended": False, "tag": "perpetual",
    "pair": "XBT:USD", "openInterest": 107706940, "markPrice": 34844.25, "maturityTime": 0,
    "relative_funding_rate": 0.000135046879166667,
    "relative_funding_rate_prediction": 0.000146960125, "next_funding_rate_time": 1612281600000,
}  # fmt: skip
# A multi-collateral (linear) perpetual in the same layout: openInterest in BTC.
PF_TICKER: dict[str, Any] = {
    "time": 1700000000123, "product_id": "PF_XBTUSD", "funding_rate": 0.4612,
    "funding_rate_prediction": 0.52, "relative_funding_rate": 1.25e-05,
    "relative_funding_rate_prediction": 1.4e-05, "next_funding_rate_time": 1700002800000,
    "feed": "ticker", "bid": 36899.5, "ask": 36900.0, "bid_size": 0.5, "ask_size": 1.2,
    "volume": 4237.2723, "dtm": 0, "leverage": "50x", "index": 36895.12, "premium": 0.0,
    "last": 36900.0, "change": -0.22, "suspended": False, "tag": "perpetual", "pair": "XBT:USD",
    "openInterest": 2189.7813, "markPrice": 36901.25, "maturityTime": 0, "post_only": False,
    "volumeQuote": 156349282.1,
}  # fmt: skip


def test_documented_ticker_of_an_inverse_perpetual() -> None:
    parsed = adapter().parse(orjson.dumps(DOC_TICKER), RECV)
    assert parsed.errors == [] and not parsed.control
    assert parsed.events == [
        MarketContext(
            exchange="kraken",
            symbol="BTC-USD-PERP",
            venue_symbol="PI_XBTUSD",
            mark_price=34844.25,
            index_price=34803.45,
            funding_rate=0.000135046879166667,  # relative_funding_rate, not funding_rate
            next_funding_ms=1612281600000,
            open_interest_base=107706940 / 34844.25,  # USD contracts at the ticker's mark
            open_interest_usd=107706940.0,  # PI_: contracts of 1 USD
            ts_ms=1612270825253,
            received_ns=RECV,
        )
    ]


def test_ticker_of_a_linear_perpetual_is_in_base_units() -> None:
    (ev,) = adapter().parse(orjson.dumps(PF_TICKER), RECV).events
    assert ev == MarketContext("kraken", "BTC-USD-PERP", "PF_XBTUSD", 36901.25, 36895.12, 1.25e-05,
                               1700002800000, 2189.7813, None, 1700000000123, RECV)  # fmt: skip


def test_zero_funding_is_left_out_on_perpetuals_and_absent_on_futures() -> None:
    # "If zero, field is not populated": a perpetual without its funding fields pays 0.
    zero = {k: v for k, v in PF_TICKER.items() if "funding_rate" not in k}
    (ev,) = adapter().parse(orjson.dumps(zero), RECV).events
    assert isinstance(ev, MarketContext) and ev.funding_rate == 0.0 and ev.next_funding_ms is None
    dated = {**zero, "product_id": "FI_XBTUSD_250627", "tag": "quarter", "openInterest": 5000}
    (fut,) = adapter().parse(orjson.dumps(dated), RECV).events
    assert isinstance(fut, MarketContext)
    assert (fut.symbol, fut.funding_rate, fut.open_interest_usd) == ("BTC-USD-250627", None, 5000.0)
    assert fut.open_interest_base == 5000 / 36901.25


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1700002800000, 1700002800000),  # epoch ms: what the venue sends
        (1700002800000.0, 1700002800000),
        (2799877, 1700002800000),  # the documented form: ms until the next funding
        (2799877.4, 1700002800000),
        (0, None),
        (None, None),
    ],
)
def test_next_funding_time_forms(value: float | None, expected: int | None) -> None:
    (ev,) = adapter().parse(orjson.dumps({**PF_TICKER, "next_funding_rate_time": value}), 1).events
    assert isinstance(ev, MarketContext) and ev.next_funding_ms == expected


@pytest.mark.parametrize("ts", [1700000000123, 1700000000123.0])
def test_ticker_time_forms(ts: float) -> None:
    (ev,) = adapter().parse(orjson.dumps({**PF_TICKER, "time": ts}), RECV).events
    assert ev.ts_ms == 1700000000123 and type(ev.ts_ms) is int


def _without(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != key}


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({**PF_TICKER, "time": 1.5}, "bad_ts"),
        ({**PF_TICKER, "time": "1700000000123"}, "bad_ts"),
        ({**PF_TICKER, "time": 0}, "bad_ts"),
        ({**PF_TICKER, "time": True}, "bad_ts"),
        ({**PF_TICKER, "next_funding_rate_time": -1}, "bad_ts"),
        ({**PF_TICKER, "next_funding_rate_time": "soon"}, "bad_ts"),
        ({**PF_TICKER, "next_funding_rate_time": 2**53}, "bad_ts"),
        ({**PF_TICKER, "markPrice": 0}, "bad_number"),
        ({**PF_TICKER, "markPrice": "x"}, "bad_number"),
        ({**PF_TICKER, "index": False}, "bad_type"),
        ({**PF_TICKER, "relative_funding_rate": "inf"}, "bad_number"),
        ({**PF_TICKER, "openInterest": -3}, "bad_number"),
        ({**DOC_TICKER, "openInterest": 1e308, "markPrice": 1e-300}, "bad_number"),
        ({**PF_TICKER, "product_id": "PF_XBTEUR"}, "unknown_instrument"),
        ({**PF_TICKER, "product_id": 7}, "bad_type"),
        (_without(PF_TICKER, "time"), "missing_field"),
        (_without(PF_TICKER, "product_id"), "missing_field"),
    ],
)  # fmt: skip
def test_bad_tickers_are_skipped_with_a_reason(doc: dict[str, Any], reason: str) -> None:
    parsed = adapter().parse(orjson.dumps(doc), RECV)
    assert parsed.events == [] and parsed.errors == [reason]


def test_ticker_fields_missing_are_none() -> None:
    bare = {"feed": "ticker", "product_id": "PF_ETHUSD", "time": 1700000000000}
    (ev,) = adapter().parse(orjson.dumps(bare), RECV).events
    assert ev == MarketContext("kraken", "ETH-USD-PERP", "PF_ETHUSD", None, None, 0.0, None, None,
                               None, 1700000000000, RECV)  # fmt: skip


def test_ticker_ack_is_control_and_tickers_leave_trade_sequences_alone() -> None:
    a = adapter()
    ack = b'{"event":"subscribed","feed":"ticker","product_ids":["PF_XBTUSD"]}'
    assert a.parse(ack, RECV).control
    assert a.parse(orjson.dumps(PF), RECV).gaps == 0
    assert len(a.parse(orjson.dumps(PF_TICKER), RECV).events) == 1
    assert a.parse(orjson.dumps({**PF, "seq": 11}), RECV).gaps == 0


VALID: list[Any] = [DOC, {**PF, "type": "liquidation"},
                    {"feed": "trade_snapshot", "product_id": "PF_XBTUSD", "trades": [PF]},
                    DOC_TICKER, PF_TICKER]  # fmt: skip
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(raw=st.binary(max_size=300), value=json_values)
def test_fuzz_random(raw: bytes, value: Any) -> None:
    check(adapter(), raw)
    check(adapter(), orjson.dumps(value))


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_frames(data: st.DataObject) -> None:
    doc = data.draw(st.sampled_from(VALID))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        action = data.draw(st.sampled_from(["replace", "delete"]))
        doc = _mutate(doc, path, action, data.draw(json_values))
    check(adapter(), orjson.dumps(doc))
