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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from monitor.core.errors import ParseError, UnknownSymbolError

# Longest first, so "FDUSD" wins over "USD".
QUOTES: Final = ("FDUSD", "USDT", "USDC", "BUSD", "USD")
USD_QUOTES: Final = frozenset(QUOTES)
_BASE_RE: Final = re.compile(r"^[A-Z0-9]{1,20}$")
_DATED_RE: Final = re.compile(r"^([A-Z0-9]+)[-_](\d{6})$")


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable contract. ``contract_multiplier`` converts the venue's quantity unit:

    * linear (``inverse=False``): base units per contract (1.0 where the venue quotes base units;
      OKX BTC-USDT-SWAP 0.01 BTC; Gate BTC_USDT 0.0001 BTC);
    * inverse (``inverse=True``): USD per contract (OKX BTC-USD-SWAP 100; BitMEX XBTUSD 1).
    """

    venue_symbol: str
    symbol: str  # canonical
    base: str
    quote: str
    contract_multiplier: float
    inverse: bool = False

    def convert(self, qty_raw: float, price: float) -> tuple[float, float]:
        """(quantity in base units, USD notional) of ``qty_raw`` venue units at ``price``."""
        if self.inverse:
            usd = qty_raw * self.contract_multiplier
            return usd / price, usd
        qty_base = qty_raw * self.contract_multiplier
        return qty_base, qty_base * price


# The symbol of an exchange's venue-wide row: the producer publishes every liquidation once more
# under it (keyed "*", so one consumer of the group holds the whole venue's liquidation flow), and
# the consumer evaluates it like a pair (docs/risk-models.md §9).
VENUE_SYMBOL: Final = "*"


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
    """Venue symbol -> Instrument, resolved once, capped at ``max_symbols`` entries.

    Venues that quote base units (Binance USD-M, Bybit linear) resolve unseen symbols by splitting
    them (multiplier 1). A ``strict`` table (contract venues: OKX, HTX, Gate, BitMEX, ...) never
    guesses a multiplier: a symbol absent from the venue's instrument metadata is refused with
    ``unknown_instrument`` until ``add``/``replace`` has loaded it."""

    def __init__(self, max_symbols: int = 2000, *, strict: bool = False) -> None:
        self._by_venue: dict[str, Instrument] = {}
        self.max_symbols = max_symbols
        self.strict = strict

    def __len__(self) -> int:
        return len(self._by_venue)

    def add(self, inst: Instrument) -> None:
        self._by_venue[inst.venue_symbol] = inst

    def replace(self, instruments: Iterable[Instrument]) -> None:
        """Swap in a fresh instrument list (metadata refreshed from the venue's REST API)."""
        fresh = {i.venue_symbol: i for i in instruments}
        if len(fresh) > self.max_symbols:
            raise ParseError("symbol_cap", f"{len(fresh)} instruments > {self.max_symbols}")
        self._by_venue = fresh

    def get(self, venue_symbol: str) -> Instrument | None:
        return self._by_venue.get(venue_symbol)

    def resolve(self, venue_symbol: str) -> Instrument:
        inst = self._by_venue.get(venue_symbol)
        if inst is not None:
            return inst
        if self.strict:
            raise ParseError("unknown_instrument", venue_symbol)
        if len(self._by_venue) >= self.max_symbols:
            raise ParseError("symbol_cap", venue_symbol)
        base, quote, expiry = split_concatenated(venue_symbol)
        inst = Instrument(venue_symbol, canonical(base, quote, expiry), base, quote, 1.0)
        self._by_venue[venue_symbol] = inst
        return inst
