"""Canonical pair names and per-venue symbol resolution. Pure module.

Canonical form: ``BASE-QUOTE-PERP`` for perpetual swaps (``BTC-USDT-PERP``) and
``BASE-QUOTE-YYMMDD`` for dated futures. A venue's symbol is mapped once and cached; the cache is
capped so a flood of new symbols cannot grow memory without bound (past the cap, new symbols are
refused with a ParseError that producers count).

USD notional: quotes in ``USD_QUOTES`` are taken at par with USD (USDT and USDC trade within a few
basis points of 1; the monitor measures flows, not accounting values). Other quotes are refused
until a conversion source exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from monitor.errors import ParseError, UnknownSymbolError

# Longest first, so "FDUSD" wins over "USD".
QUOTES: Final = ("FDUSD", "USDT", "USDC", "BUSD", "USD")
USD_QUOTES: Final = frozenset(QUOTES)
_BASE_RE: Final = re.compile(r"^[A-Z0-9]{1,20}$")
_DATED_RE: Final = re.compile(r"^([A-Z0-9]+)[-_](\d{6})$")


@dataclass(frozen=True, slots=True)
class Instrument:
    venue_symbol: str
    symbol: str  # canonical
    base: str
    quote: str
    contract_multiplier: float  # base units per contract (1.0 where the venue quotes base units)


def canonical(base: str, quote: str, expiry: str | None = None) -> str:
    return f"{base}-{quote}-{expiry or 'PERP'}"


def split_concatenated(venue_symbol: str) -> tuple[str, str, str | None]:
    """``BTCUSDT`` -> (BTC, USDT, None); ``BTCUSDT_250328`` -> (BTC, USDT, "250328")."""
    sym = venue_symbol.upper()
    expiry = None
    m = _DATED_RE.match(sym)
    if m:
        sym, expiry = m.group(1), m.group(2)
    for q in QUOTES:
        if sym.endswith(q) and len(sym) > len(q):
            base = sym[: -len(q)]
            if _BASE_RE.match(base):
                return base, q, expiry
    raise UnknownSymbolError(venue_symbol)


class SymbolTable:
    """Venue symbol -> Instrument, resolved once, capped at ``max_symbols`` entries."""

    def __init__(self, max_symbols: int = 2000) -> None:
        self._by_venue: dict[str, Instrument] = {}
        self.max_symbols = max_symbols

    def __len__(self) -> int:
        return len(self._by_venue)

    def add(self, inst: Instrument) -> None:
        self._by_venue[inst.venue_symbol] = inst

    def resolve(self, venue_symbol: str) -> Instrument:
        inst = self._by_venue.get(venue_symbol)
        if inst is not None:
            return inst
        if len(self._by_venue) >= self.max_symbols:
            raise ParseError("symbol_cap", venue_symbol)
        base, quote, expiry = split_concatenated(venue_symbol)
        inst = Instrument(venue_symbol, canonical(base, quote, expiry), base, quote, 1.0)
        self._by_venue[venue_symbol] = inst
        return inst
