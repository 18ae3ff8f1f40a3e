"""Binance USD-M open interest: REST only (``GET /fapi/v1/openInterest?symbol=BTCUSDT``, weight 1),
polled politely by ``producers.poller`` for the configured symbols.

Answer: ``{"openInterest": "10659.509", "symbol": "BTCUSDT", "time": 1589437530011}`` with open
interest in base units (USD-M contracts are base-quantity). The USD value is not in the answer;
the consumer derives it from the latest mark price (``markPrice`` stream).
"""

from __future__ import annotations

from typing import Final

from monitor.core.errors import ParseError
from monitor.core.schema import MarketContext
from monitor.core.symbols import SymbolTable
from producers.events import json_body, non_negative, timestamp_ms

PATH: Final = "/fapi/v1/openInterest"


def open_interest_urls(rest_base: str, venue_symbols: tuple[str, ...]) -> list[str]:
    return [f"{rest_base}{PATH}?symbol={s.upper()}" for s in venue_symbols]


def parse_open_interest(
    exchange: str, body: bytes, received_ns: int, symbols: SymbolTable
) -> list[MarketContext]:
    doc = json_body(body, "openInterest")
    if not isinstance(doc, dict):
        raise ParseError("bad_shape", "openInterest")
    try:
        venue_symbol, oi, ts = doc["symbol"], doc["openInterest"], doc["time"]
    except KeyError as exc:
        raise ParseError("missing_field", str(exc)) from None
    if not isinstance(venue_symbol, str):
        raise ParseError("bad_type", "symbol")
    inst = symbols.resolve(venue_symbol)
    return [
        MarketContext(
            exchange=exchange, symbol=inst.symbol, venue_symbol=venue_symbol, mark_price=None,
            index_price=None, funding_rate=None, next_funding_ms=None,
            open_interest_base=non_negative(oi) * inst.contract_multiplier,
            open_interest_usd=None, ts_ms=timestamp_ms(ts), received_ns=received_ns,
        )
    ]  # fmt: skip
