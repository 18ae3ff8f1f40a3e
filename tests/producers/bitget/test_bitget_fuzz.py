"""Random and mutated Bitget v3 frames:
parse() returns Parsed or raises ParseError, nothing else (same checks as test_fuzz_parsers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import ExchangeConfig
from producers.bitget import BitgetAdapter
from tests.producers.test_fuzz_parsers import SETTINGS, _mutate, _paths, check, json_values

DATA = Path(__file__).resolve().parent / "data"
ADAPTER = BitgetAdapter(ExchangeConfig(max_symbols=50))
MULTI = {
    "data": [
        {"symbol": "BTCUSDT", "side": "sell", "price": "95000.1", "amount": "950.001", "ts": "17"},
        {"symbol": "ETHUSDT", "side": "buy", "price": "3300", "amount": "6600", "ts": "18"},
    ],
    "arg": {"instType": "usdt-futures", "topic": "liquidation"},
    "action": "update",
    "ts": 18,
}
VALID: list[Any] = [orjson.loads(p.read_bytes()) for p in sorted(DATA.glob("*.json"))] + [MULTI]


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_random_bytes(raw: bytes) -> None:
    check(ADAPTER, raw)


@SETTINGS
@given(value=json_values)
def test_random_json(value: Any) -> None:
    check(ADAPTER, orjson.dumps(value))


@SETTINGS
@given(data=st.data())
def test_mutated_valid_frames(data: st.DataObject) -> None:
    doc = data.draw(st.sampled_from(VALID))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        action = data.draw(st.sampled_from(["replace", "delete"]))
        doc = _mutate(doc, path, action, data.draw(json_values))
    check(ADAPTER, orjson.dumps(doc))


@SETTINGS
@given(data=st.data())
def test_truncated_and_bit_flipped_frames(data: st.DataObject) -> None:
    raw = bytearray(orjson.dumps(data.draw(st.sampled_from(VALID))))
    raw = raw[: data.draw(st.integers(0, len(raw)))] if data.draw(st.booleans()) else raw
    for _ in range(data.draw(st.integers(0, 3))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    check(ADAPTER, bytes(raw))
