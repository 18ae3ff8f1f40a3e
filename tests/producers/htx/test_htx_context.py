"""HTX market context: mark price and index klines (ws_index), funding rates (notification) and
open interest (REST poll), on the documented payloads."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import MarketContext
from producers.htx import HtxAdapter
from producers.htx.parser import ms_text
from tests.producers.htx.conftest import CONTRACT_INFO_URL, data, gz

RECV = 1_639_122_193_300_000_000
OI_URL = "https://api.hbdm.com/linear-swap-api/v1/swap_open_interest?contract_code=BTC-USDT"

FUNDING: dict[str, Any] = {
    "symbol": "BTC", "contract_code": "BTC-USDT", "fee_asset": "USDT",
    "funding_time": "1603778700000", "funding_rate": "-0.000220068774978695",
    "settlement_time": "1603785600000", "estimated_rate": "null",
}  # fmt: skip
OI: dict[str, Any] = {
    "volume": 78696, "amount": 78.696, "symbol": "BTC", "value": 3823138.2456,
    "contract_code": "BTC-USDT", "trade_amount": 0, "trade_volume": 0, "trade_turnover": 0,
    "business_type": "swap", "pair": "BTC-USDT", "contract_type": "swap",
}  # fmt: skip


def ctx(**fields: Any) -> MarketContext:
    base: dict[str, Any] = {
        "exchange": "htx", "symbol": "BTC-USDT-PERP", "venue_symbol": "BTC-USDT",
        "mark_price": None, "index_price": None, "funding_rate": None, "next_funding_ms": None,
        "open_interest_base": None, "open_interest_usd": None, "received_ns": RECV,
    }  # fmt: skip
    return MarketContext(**{**base, **fields})


def kline(kind: str, tick: object, ts: object = 1489474082831, period: str = "1min") -> bytes:
    return gz({"ch": f"market.BTC-USDT.{kind}.{period}", "ts": ts, "tick": tick})


def funding_frame(*items: object, ts: object = 1603778748166) -> bytes:
    return gz({"op": "notify", "topic": "public.BTC-USDT.funding_rate", "ts": ts,
               "data": list(items)})  # fmt: skip


def oi_body(*items: object, ts: object = 1638754059540) -> bytes:
    return orjson.dumps({"status": "ok", "data": list(items), "ts": ts})


def test_documented_mark_price_kline_close_is_the_mark(adapter: HtxAdapter) -> None:
    parsed = adapter.parse(gz(data("mark_price_kline.json")), RECV)
    assert parsed.errors == [] and not parsed.control and parsed.replies == []
    # the frame's ts (ms), not the kline id (its start, in seconds)
    assert parsed.events == [ctx(mark_price=9800.12, ts_ms=1489474082831)]


def test_documented_index_kline_close_is_the_index(adapter: HtxAdapter) -> None:
    parsed = adapter.parse(gz(data("index_kline.json")), RECV)  # a 15min kline: any period
    assert parsed.errors == []
    assert parsed.events == [ctx(index_price=19242.05, ts_ms=1607309592214)]


def test_documented_funding_rate(adapter: HtxAdapter) -> None:
    parsed = adapter.parse(gz(data("funding_rate.json")), RECV)
    assert parsed.errors == [] and not parsed.control
    assert parsed.events == [
        ctx(
            funding_rate=-0.000220068774978695,  # a fraction per 8-hour period, as sent
            next_funding_ms=1603785600000,  # settlement_time (a string), not funding_time
            ts_ms=1603778748166,  # the frame's ts
        )
    ]


def test_documented_open_interest_poll_skips_dated_futures(adapter: HtxAdapter) -> None:
    events = adapter.parse_poll(OI_URL, data("swap_open_interest.json"), RECV)
    # amount is base coin (78696 contracts x 0.001 BTC), value USDT at par
    assert events == [
        ctx(open_interest_base=78.696, open_interest_usd=3823138.2456, ts_ms=1638754059540)
    ]


def test_kline_numbers_and_timestamps_in_every_form(adapter: HtxAdapter) -> None:
    (ev,) = adapter.parse(kline("mark_price", {"close": 9800.5}), RECV).events  # a JSON number
    assert isinstance(ev, MarketContext) and ev.mark_price == 9800.5
    (ev,) = adapter.parse(kline("index", {"close": "19242"}, period="1mon"), RECV).events
    assert isinstance(ev, MarketContext) and (ev.index_price, ev.mark_price) == (19242.0, None)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (kline("mark_price", {"close": "0"}), "bad_number"),
        (kline("mark_price", {"close": "NaN"}), "bad_number"),
        (kline("mark_price", {"close": True}), "bad_type"),
        (kline("mark_price", {"open": "1"}), "missing_field"),
        (kline("mark_price", []), "bad_shape"),
        (kline("index", {"close": "-1"}), "bad_number"),
        (kline("index", {"close": "1"}, ts="1607309592214"), "bad_ts"),
        (kline("index", {"close": "1"}, ts=0), "bad_ts"),
    ],
)
def test_bad_kline_ticks_are_skipped(adapter: HtxAdapter, frame: bytes, reason: str) -> None:
    parsed = adapter.parse(frame, RECV)
    assert parsed.events == [] and parsed.errors == [reason]


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({**FUNDING, "funding_rate": "null"}, "bad_number"),
        ({**FUNDING, "funding_rate": "inf"}, "bad_number"),
        ({**FUNDING, "funding_rate": None}, "bad_type"),
        ({**FUNDING, "settlement_time": "1603785600000.5"}, "bad_ts"),
        ({**FUNDING, "settlement_time": "0"}, "bad_ts"),
        ({**FUNDING, "settlement_time": True}, "bad_ts"),
        ({**FUNDING, "contract_code": "ETH-USDT"}, "symbol_mismatch"),
        ({k: v for k, v in FUNDING.items() if k != "settlement_time"}, "missing_field"),
        ("junk", "bad_shape"),
    ],
)
def test_bad_funding_items_are_skipped(adapter: HtxAdapter, item: object, reason: str) -> None:
    parsed = adapter.parse(funding_frame(item, FUNDING), RECV)
    assert parsed.errors == [reason]
    assert len(parsed.events) == 1


def test_funding_settlement_time_as_an_integer(adapter: HtxAdapter) -> None:
    (ev,) = adapter.parse(funding_frame({**FUNDING, "settlement_time": 1603785600000}), RECV).events
    assert isinstance(ev, MarketContext) and ev.next_funding_ms == 1603785600000
    assert ms_text("1603785600000") == ms_text(1603785600000) == 1603785600000


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"op": "notify", "topic": "public.BTC-USDT.funding_rate", "ts": 1, "data": {}},
         "bad_shape"),
        ({"op": "notify", "topic": "public.BTC-USDT.funding_rate", "data": []}, "missing_field"),
        ({"op": "notify", "topic": "public.BTC-USDT.funding_rate", "ts": "1", "data": []},
         "bad_ts"),
        ({"op": "notify", "topic": "public.*.funding_rate", "ts": 1, "data": []},
         "unknown_topic"),
        ({"ch": "market.BTC-USDT.mark_price.2min", "ts": 1, "tick": {}}, "unknown_topic"),
        ({"ch": "market.BTC-USDT.mark_price", "ts": 1, "tick": {}}, "unknown_topic"),
        ({"ch": "public.BTC-USDT.funding_rate", "ts": 1, "tick": {}}, "unknown_topic"),
    ],
)  # fmt: skip
def test_malformed_context_frames(adapter: HtxAdapter, doc: object, reason: str) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse(gz(doc), RECV)
    assert err.value.reason == reason


def test_context_needs_the_instrument_list() -> None:
    adapter = HtxAdapter(ExchangeConfig(symbols=("BTC-USDT",)))
    assert adapter.parse(gz(data("mark_price_kline.json")), RECV).errors == ["unknown_instrument"]
    assert adapter.parse(gz(data("funding_rate.json")), RECV).errors == ["unknown_instrument"]
    with pytest.raises(ParseError) as err:
        adapter.parse_poll(OI_URL, data("swap_open_interest.json"), RECV)
    assert err.value.reason == "unknown_instrument"
    adapter.load_instruments(CONTRACT_INFO_URL, data("swap_contract_info.json"))
    assert len(adapter.parse(gz(data("mark_price_kline.json")), RECV).events) == 1


def test_open_interest_of_several_contracts(adapter: HtxAdapter) -> None:
    eth = {**OI, "contract_code": "ETH-USDT", "symbol": "ETH", "volume": 250, "amount": 2.5,
           "value": 8250.0}  # fmt: skip
    events = [e for e in adapter.parse_poll(OI_URL, oi_body(OI, eth), RECV)
              if isinstance(e, MarketContext)]  # fmt: skip
    assert [(e.symbol, e.open_interest_base, e.open_interest_usd) for e in events] == [
        ("BTC-USDT-PERP", 78.696, 3823138.2456),
        ("ETH-USDT-PERP", 2.5, 8250.0),
    ]
    empty = {**OI, "volume": 0, "amount": 0, "value": 0}  # no open position: zero, not an error
    (ev,) = adapter.parse_poll(OI_URL, oi_body(empty), RECV)
    assert isinstance(ev, MarketContext)
    assert (ev.open_interest_base, ev.open_interest_usd) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({**OI, "amount": 78.7}, "qty_mismatch"),  # 78696 x 0.001 != 78.7
        ({**OI, "volume": -1}, "bad_number"),
        ({**OI, "value": "x"}, "bad_number"),
        ({**OI, "amount": None}, "bad_type"),
        ({**OI, "contract_code": 5}, "bad_type"),
        ({**OI, "contract_code": "XRP-USDT"}, "unknown_instrument"),
        ({k: v for k, v in OI.items() if k != "value"}, "missing_field"),
        ("junk", "bad_shape"),
    ],
)
def test_bad_open_interest_items(adapter: HtxAdapter, item: object, reason: str) -> None:
    assert len(adapter.parse_poll(OI_URL, oi_body(item, OI), RECV)) == 1  # the good one stays
    with pytest.raises(ParseError) as err:  # alone: the poll fails with the item's reason
        adapter.parse_poll(OI_URL, oi_body(item), RECV)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>", "bad_json"),
        (b"[]", "bad_shape"),
        (b'{"status": "error", "err_code": 1332, "err_msg": "x", "ts": 1}', "venue_error"),
        (b'{"status": "ok", "data": []}', "missing_field"),
        (b'{"status": "ok", "data": {}, "ts": 1}', "bad_shape"),
        (b'{"status": "ok", "data": [], "ts": 1.5}', "bad_ts"),
    ],
)
def test_bad_open_interest_answers(adapter: HtxAdapter, body: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse_poll(OI_URL, body, RECV)
    assert err.value.reason == reason


def test_empty_open_interest_answer_is_no_event(adapter: HtxAdapter) -> None:
    assert adapter.parse_poll(OI_URL, oi_body(), RECV) == []
