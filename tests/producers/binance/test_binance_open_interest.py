from __future__ import annotations

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import MarketContext
from monitor.simulator.venues import binance as sim
from producers.binance import BinanceAdapter
from producers.poller import PollSource

DOC = b'{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}'  # the docs' example


def test_documented_answer_becomes_open_interest_in_base_units() -> None:
    adapter = BinanceAdapter(ExchangeConfig(symbols=("BTCUSDT", "ethusdt")))
    assert isinstance(adapter, PollSource)
    assert adapter.poll_urls("https://fapi.binance.com") == [
        "https://fapi.binance.com/fapi/v1/openInterest?symbol=BTCUSDT",
        "https://fapi.binance.com/fapi/v1/openInterest?symbol=ETHUSDT",
    ]
    (ctx,) = adapter.parse_poll("u", DOC, 7)
    assert ctx == MarketContext(
        "binance", "BTC-USDT-PERP", "BTCUSDT", None, None, None, None, 10659.509, None,
        1589437530011, 7,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>", "bad_json"),
        (b"[]", "bad_shape"),
        (b'{"symbol":"BTCUSDT","time":1}', "missing_field"),
        (b'{"openInterest":"-1","symbol":"BTCUSDT","time":1}', "bad_number"),
        (b'{"openInterest":"1","symbol":"BTCEUR","time":1}', "unknown_symbol"),
        (b'{"openInterest":"1","symbol":"BTCUSDT","time":"x"}', "bad_ts"),
    ],
)
def test_bad_answers_are_parse_errors(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        BinanceAdapter(ExchangeConfig()).parse_poll("u", body, 1)
    assert exc.value.reason == reason


def test_simulated_endpoint_answers_in_the_venue_shape() -> None:
    status, body = sim.rest("/fapi/v1/openInterest?symbol=ETHUSDT") or (0, b"")
    doc = orjson.loads(body)
    assert status == 200 and doc["symbol"] == "ETHUSDT"
    (ctx,) = BinanceAdapter(ExchangeConfig()).parse_poll("u", body, 1)
    assert ctx.open_interest_base == pytest.approx(2e9 / 3300.0, rel=1e-3)
    assert sim.rest("/fapi/v1/openInterest?symbol=NOPE")[0] == 400  # type: ignore[index]
    assert sim.rest("/fapi/v1/ticker") is None
