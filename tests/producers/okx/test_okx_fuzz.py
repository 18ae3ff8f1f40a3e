"""Random and mutated OKX frames, with the instruments loaded so mutations reach the conversions:
parse() returns Parsed or raises ParseError, nothing else (same checks as test_fuzz_parsers, plus
finite values in market contexts)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import MarketContext
from producers.okx import OkxAdapter
from tests.producers.test_fuzz_parsers import check as check_events
from tests.producers.test_fuzz_parsers import fuzz_suite

DATA = Path(__file__).resolve().parent / "data"
ADAPTER = OkxAdapter(ExchangeConfig(max_symbols=50))
ADAPTER.load_instruments("u", (DATA / "instruments.json").read_bytes())
MULTI = {
    "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
    "data": [
        {"instId": "BTC-USD-SWAP", "details": [
            {"bkPx": "50000", "posSide": "net", "side": "sell", "sz": "3", "ts": "1700000000000"},
            {"bkPx": "50001", "posSide": "short", "side": "buy", "sz": "1", "ts": "1700000000001"}]},
        {"instId": "BTC-USDT-SWAP", "details": [
            {"bkPx": "50000", "posSide": "long", "side": "sell", "sz": "2", "ts": "1700000000000"}]},
    ],
}  # fmt: skip
VALID: list[Any] = [orjson.loads(p.read_bytes()) for p in sorted(DATA.glob("*.json"))] + [MULTI]


def check(adapter: OkxAdapter, raw: bytes) -> None:
    """A frame is one channel: contexts are checked here, liquidations and trades by the shared
    check (which reads ``price``, a field contexts do not have)."""
    try:
        parsed = adapter.parse(raw, 1)
    except ParseError as exc:
        assert exc.reason and len(exc.reason) <= 20
        return
    contexts = [e for e in parsed.events if isinstance(e, MarketContext)]
    if len(contexts) < len(parsed.events):
        check_events(adapter, raw)
    for e in contexts:
        assert e.mark_price is None or (math.isfinite(e.mark_price) and e.mark_price > 0)
        assert e.funding_rate is None or math.isfinite(e.funding_rate)
        for oi in (e.open_interest_base, e.open_interest_usd):
            assert oi is None or (math.isfinite(oi) and oi >= 0)
        assert e.next_funding_ms is None or e.next_funding_ms > 0
        assert isinstance(e.ts_ms, int) and e.ts_ms > 0 and e.symbol.endswith("-PERP")


(
    test_random_bytes,
    test_random_json,
    test_mutated_valid_frames,
    test_truncated_and_bit_flipped_frames,
) = fuzz_suite(ADAPTER, VALID, check)
