from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.symbols import Instrument
from producers.okx import OkxAdapter
from producers.okx.instruments import instrument_urls, parse_instruments

DATA = Path(__file__).resolve().parent / "data"


def test_urls_on_the_configured_base() -> None:
    assert instrument_urls("https://www.okx.com/") == [
        "https://www.okx.com/api/v5/public/instruments?instType=SWAP"
    ]
    assert OkxAdapter(ExchangeConfig()).instrument_urls("http://127.0.0.1:9") == [
        "http://127.0.0.1:9/api/v5/public/instruments?instType=SWAP"
    ]


def test_linear_and_inverse_swaps_and_unusable_items_left_out() -> None:
    got = parse_instruments((DATA / "instruments.json").read_bytes())
    assert got == [
        Instrument("BTC-USDT-SWAP", "BTC-USDT-PERP", "BTC", "USDT", 0.01),
        Instrument("ETH-USDT-SWAP", "ETH-USDT-PERP", "ETH", "USDT", 0.1),
        Instrument("IOST-USDT-SWAP", "IOST-USDT-PERP", "IOST", "USDT", 1000.0),
        Instrument("BTC-USD-SWAP", "BTC-USD-PERP", "BTC", "USD", 100.0, inverse=True),
    ]


def item(**kw: str) -> dict[str, str]:
    base = {"instId": "SOL-USDT-SWAP", "ctVal": "1", "ctMult": "1", "ctValCcy": "SOL",
            "ctType": "linear", "state": "live"}  # fmt: skip
    return {**base, **kw}


@pytest.mark.parametrize(
    ("kw", "mult"),
    [
        ({}, 1.0),
        ({"ctMult": "10"}, 10.0),
        ({"ctVal": "0.1", "ctMult": "2"}, 0.2),
        ({"state": "suspend"}, 1.0),
        ({"ctValCcy": "USDT"}, None),  # linear contracts count the base coin
        ({"ctType": "inverse"}, None),  # an inverse contract's ctValCcy is the quote
        ({"ctType": ""}, None),
        ({"ctVal": "0"}, None),
        ({"ctVal": "nan"}, None),
        ({"ctMult": "-1"}, None),
        ({"instId": "SOL-USDT-250328"}, None),  # a dated future
        ({"instId": "SOL-USDT"}, None),
        ({"instId": "sol-USDT-SWAP", "ctValCcy": "sol"}, None),
    ],
)
def test_one_item(kw: dict[str, str], mult: float | None) -> None:
    body = orjson.dumps(
        {"code": "0", "data": [item(**kw), item(instId="X-USDT-SWAP", ctValCcy="X")]}
    )
    got = {i.venue_symbol: i.contract_multiplier for i in parse_instruments(body)}
    assert got.get(kw.get("instId", "SOL-USDT-SWAP")) == mult
    assert got["X-USDT-SWAP"] == 1.0


@pytest.mark.parametrize(
    "body",
    [b"nope", b"[]", b'{"code":"50011","msg":"Too Many Requests","data":[]}',
     b'{"code":"0","data":{}}', b'{"code":"0","data":[]}', b'{"code":0,"data":[]}',
     b'{"code":"0","data":[{"instId":"BTC-USDT-SWAP"}]}'],
)  # fmt: skip
def test_refused_bodies_keep_the_previous_instruments(body: bytes) -> None:
    a = OkxAdapter(ExchangeConfig())
    url = a.instrument_urls("https://www.okx.com")[0]
    a.load_instruments(url, (DATA / "instruments.json").read_bytes())
    with pytest.raises(ParseError) as err:
        a.load_instruments(url, body)
    assert err.value.reason in ("bad_json", "bad_instruments")
    assert len(a.parse((DATA / "trades.json").read_bytes(), 1).events) == 1


def test_reload_replaces_the_table() -> None:
    a = OkxAdapter(ExchangeConfig())
    url = a.instrument_urls("https://www.okx.com")[0]
    a.load_instruments(url, (DATA / "instruments.json").read_bytes())
    assert a.load_instruments(url, orjson.dumps({"code": "0", "data": [item()]})) == 1
    assert a.parse((DATA / "trades.json").read_bytes(), 1).errors == ["unknown_instrument"]


def test_symbol_cap_refuses_a_too_long_list() -> None:
    a = OkxAdapter(ExchangeConfig(max_symbols=2))
    with pytest.raises(ParseError) as err:
        a.load_instruments("u", (DATA / "instruments.json").read_bytes())
    assert err.value.reason == "symbol_cap"
