"""Random and mutated Bitget v3 frames:
parse() returns Parsed or raises ParseError, nothing else (same checks as test_fuzz_parsers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from monitor.core.config import ExchangeConfig
from producers.bitget import BitgetAdapter
from tests.producers.test_fuzz_parsers import check, fuzz_suite

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


(
    test_random_bytes,
    test_random_json,
    test_mutated_valid_frames,
    test_truncated_and_bit_flipped_frames,
) = fuzz_suite(ADAPTER, VALID, check)
