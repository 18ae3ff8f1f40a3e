"""Gate market context: ``futures.tickers`` -> MarketContext (mark, index, funding rate, open
interest in contracts x quanto_multiplier), the ticker subscriptions, and request times."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import MarketContext
from producers.gate import GateAdapter
from producers.gate.subscriptions import ping, restamp, subscribe_frames

DATA = Path(__file__).resolve().parent / "data"
URL = "https://api.gateio.ws/api/v4/futures/usdt/contracts"
RECV = 1_700_000_000_000_000_000
TICKER: dict[str, Any] = {
    "contract": "ETH_USDT", "last": "3300.25", "change_percentage": "-1.5",
    "funding_rate": "0.0001", "funding_rate_indicative": "0.00012", "mark_price": "3300.1",
    "index_price": "3299.87", "total_size": "1234567", "volume_24h": "1000",
    "quanto_base_rate": "", "low_24h": "3200", "high_24h": "3400",
}  # fmt: skip


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.fixture
def adapter() -> GateAdapter:
    adapter = GateAdapter(ExchangeConfig(symbols=("BTC_USDT",)), clock=lambda: 1700000000.9)
    assert adapter.load_instruments(URL, data("contracts.json")) == 2
    return adapter


def ctx(**fields: Any) -> MarketContext:
    base: dict[str, Any] = {
        "exchange": "gate", "symbol": "ETH-USDT-PERP", "venue_symbol": "ETH_USDT",
        "mark_price": None, "index_price": None, "funding_rate": None, "next_funding_ms": None,
        "open_interest_base": None, "open_interest_usd": None, "received_ns": RECV,
    }  # fmt: skip
    return MarketContext(**{**base, **fields})


def tickers(result: object, **envelope: object) -> bytes:
    head: dict[str, object] = {"time": 1700000000, "time_ms": 1700000000456}
    head.update(envelope)
    return orjson.dumps({**head, "channel": "futures.tickers", "event": "update",
                         "result": result})  # fmt: skip


def test_documented_tickers_notification(adapter: GateAdapter) -> None:
    """The documented example (contract renamed to BTC_USDT: the example is a BTC-settled one)."""
    parsed = adapter.parse(data("tickers.json"), RECV)
    assert parsed.errors == [] and not parsed.control and parsed.replies == []
    assert parsed.events == [
        ctx(
            symbol="BTC-USDT-PERP",
            venue_symbol="BTC_USDT",
            mark_price=118.35,
            index_price=118.36,
            funding_rate=-0.000114,  # funding_rate, not funding_rate_indicative
            next_funding_ms=None,  # not in the message
            open_interest_base=73648 * 0.0001,  # total_size contracts x quanto_multiplier
            open_interest_usd=None,  # not in the message: the consumer derives base x mark
            ts_ms=1541659086123,  # the frame's time_ms (items carry no time)
        )
    ]


def test_ticker_values_and_conversion(adapter: GateAdapter) -> None:
    (ev,) = adapter.parse(tickers([TICKER]), RECV).events
    assert ev == ctx(
        mark_price=3300.1, index_price=3299.87, funding_rate=0.0001,
        open_interest_base=1234567 * 0.01, ts_ms=1700000000456,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("envelope", "ts"),
    [
        ({"time_ms": 1700000000456}, 1700000000456),
        ({"time_ms": None, "time": 1700000001}, None),  # time_ms present but not a time: refused
    ],
)
def test_frame_time_ms_wins(adapter: GateAdapter, envelope: dict[str, Any], ts: int | None) -> None:
    raw = tickers([TICKER], **envelope)
    if ts is None:
        with pytest.raises(ParseError) as err:
            adapter.parse(raw, RECV)
        assert err.value.reason == "bad_ts"
    else:
        (ev,) = adapter.parse(raw, RECV).events
        assert ev.ts_ms == ts


@pytest.mark.parametrize(
    ("time", "ts"), [(1700000001, 1700000001000), (1700000001234, 1700000001234)]
)
def test_frame_time_in_seconds_or_ms(adapter: GateAdapter, time: int, ts: int) -> None:
    raw = orjson.dumps({"time": time, "channel": "futures.tickers", "event": "update",
                        "result": [TICKER]})  # fmt: skip
    (ev,) = adapter.parse(raw, RECV).events
    assert ev.ts_ms == ts


def test_numbers_as_json_numbers_and_partial_items(adapter: GateAdapter) -> None:
    items = [
        {"contract": "ETH_USDT", "mark_price": 3300.5, "total_size": 10},
        {"contract": "ETH_USDT", "funding_rate": "-0.00375", "index_price": ""},  # "": None
        {"contract": "ETH_USDT", "total_size": "0"},  # no open interest at all: zero
        {"contract": "ETH_USDT", "last": "3300.25"},  # nothing of the context: no event
        {"contract": "ETH_USDT", "total_size": "12.5"},  # fractional contracts (size decimal)
    ]
    parsed = adapter.parse(tickers(items), RECV)
    assert parsed.errors == []
    assert parsed.events == [
        ctx(mark_price=3300.5, open_interest_base=10 * 0.01, ts_ms=1700000000456),
        ctx(funding_rate=-0.00375, ts_ms=1700000000456),
        ctx(open_interest_base=0.0, ts_ms=1700000000456),
        ctx(open_interest_base=12.5 * 0.01, ts_ms=1700000000456),
    ]


def test_a_single_object_result_is_one_item(adapter: GateAdapter) -> None:
    (ev,) = adapter.parse(tickers(TICKER), RECV).events
    assert isinstance(ev, MarketContext) and ev.mark_price == 3300.1


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({**TICKER, "mark_price": "0"}, "bad_number"),
        ({**TICKER, "mark_price": "NaN"}, "bad_number"),
        ({**TICKER, "index_price": "-1"}, "bad_number"),
        ({**TICKER, "funding_rate": "inf"}, "bad_number"),
        ({**TICKER, "funding_rate": True}, "bad_type"),
        ({**TICKER, "total_size": "-5"}, "bad_number"),
        ({**TICKER, "total_size": [1]}, "bad_type"),
        ({**TICKER, "total_size": "1e400"}, "bad_number"),
        ({**TICKER, "contract": "XRP_USDC"}, "unknown_instrument"),
        ({**TICKER, "contract": 7}, "bad_type"),
        ({k: v for k, v in TICKER.items() if k != "contract"}, "missing_field"),
        ("junk", "bad_shape"),
    ],
)
def test_bad_ticker_items_are_skipped(adapter: GateAdapter, item: object, reason: str) -> None:
    parsed = adapter.parse(tickers([item, TICKER]), RECV)
    assert parsed.errors == [reason]
    assert len(parsed.events) == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"channel": "futures.tickers", "event": "update", "time": 1}', "missing_field"),
        (b'{"channel": "futures.tickers", "event": "update", "result": []}', "missing_field"),
        (b'{"channel": "futures.tickers", "event": "update", "time": 1, "result": "x"}',
         "bad_shape"),
        (b'{"channel": "futures.tickers", "event": "update", "time": -1, "result": []}', "bad_ts"),
    ],
)  # fmt: skip
def test_malformed_ticker_frames(adapter: GateAdapter, raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse(raw, RECV)
    assert err.value.reason == reason


def test_tickers_need_the_contract_list() -> None:
    adapter = GateAdapter(ExchangeConfig())
    assert adapter.parse(data("tickers.json"), RECV).errors == ["unknown_instrument"]


def test_ticker_subscriptions_follow_the_trades_in_batches() -> None:
    frames = [orjson.loads(f) for f in subscribe_frames(("a_usdt", "b_usdt", "c_usdt"), 5.0, 2)]
    assert [(f["channel"], f["payload"]) for f in frames] == [
        ("futures.public_liquidates", ["!all"]),
        ("futures.trades", ["A_USDT", "B_USDT"]),
        ("futures.trades", ["C_USDT"]),
        ("futures.tickers", ["A_USDT", "B_USDT"]),
        ("futures.tickers", ["C_USDT"]),
    ]
    assert subscribe_frames((), 5.0) == (
        '{"time":5,"channel":"futures.public_liquidates","event":"subscribe","payload":["!all"]}',
    )


def test_restamp_sets_the_request_time_to_now() -> None:
    now = [1700000000.9]
    adapter = GateAdapter(ExchangeConfig(symbols=("BTC_USDT",)), clock=lambda: now[0])
    (plan,) = adapter.connections(ExchangeConfig(symbols=("BTC_USDT",)), "ws://x")
    now[0] = 1700003600.2  # an hour later: a reconnect re-sends the planned frames
    for frame in plan.subscribe:
        doc, fresh = orjson.loads(frame), orjson.loads(adapter.restamp(frame))
        assert doc["time"] == 1700000000 and fresh == {**doc, "time": 1700003600}
    assert restamp(ping(1.0), 2.5) == '{"time":2,"channel":"futures.ping"}'
    for frame in ("not json", "[1]", '{"channel":"x"}', '{"time":"1"}'):
        assert restamp(frame, 2.0) == frame
