"""BitMEX instrument metadata (``GET /api/v1/instrument/active``) -> Instrument. Pure module.

Per contract, BitMEX gives ``multiplier`` and one of ``underlyingToSettleMultiplier`` or
``quoteToSettleMultiplier`` (the other is null); the size of one contract is
``|multiplier / underlyingToSettleMultiplier|`` when the former is set, else
``|multiplier / quoteToSettleMultiplier|`` (the rule of BitMEX's sample market maker):

* inverse (``isInverse``): USD per contract. XBTUSD: -100000000 / -100000000 = 1 USD;
* linear: base units per contract. XBTUSDT: 1 / 1000000 = 0.000001 XBT.

Kept: perpetuals (``typ`` ``FFWCSX``) and dated futures (``FFCCSX``, canonical expiry from
``expiry``), quoted in a USD-like currency, not quanto (a quanto contract's USD value needs the
settlement coin's price: refused). ``rootSymbol`` XBT is BTC. ``lotSize`` is not needed: the
feeds carry contract counts.
"""

from __future__ import annotations

from typing import Any, Final

from monitor.core.errors import ParseError
from monitor.core.symbols import USD_QUOTES, Instrument, canonical
from producers.events import json_body

PERPETUAL: Final = "FFWCSX"
FUTURE: Final = "FFCCSX"
_ROOT_ALIASES: Final = {"XBT": "BTC"}


def _number(value: object) -> float | None:
    if type(value) not in (int, float) or not value:
        return None
    return float(value)  # type: ignore[arg-type]


def instrument_from(row: Any) -> Instrument | None:
    """One row of the instrument list, or None when it is not a contract we can size."""
    if type(row) is not dict:
        return None
    symbol, root, quote = row.get("symbol"), row.get("rootSymbol"), row.get("quoteCurrency")
    typ = row.get("typ")
    if not (type(symbol) is str and type(root) is str and type(quote) is str and symbol and root):
        return None
    if typ not in (PERPETUAL, FUTURE) or quote not in USD_QUOTES or row.get("isQuanto") is True:
        return None
    inverse = row.get("isInverse")
    if type(inverse) is not bool:
        return None
    multiplier = _number(row.get("multiplier"))
    per = _number(row.get("underlyingToSettleMultiplier")) or _number(
        row.get("quoteToSettleMultiplier")
    )
    if multiplier is None or per is None:
        return None
    size = abs(multiplier / per)
    expiry = None
    if typ == FUTURE:
        exp = row.get("expiry")
        if type(exp) is not str or len(exp) < 10:
            return None
        expiry = exp[2:4] + exp[5:7] + exp[8:10]  # "2025-06-27T12:00:00.000Z" -> "250627"
        if not expiry.isdigit():
            return None
    base = _ROOT_ALIASES.get(root, root)
    return Instrument(symbol, canonical(base, quote, expiry), base, quote, size, inverse)


def parse_instruments(body: bytes) -> list[Instrument]:
    """The sizable contracts of one response; ParseError if it is not an instrument list."""
    rows = json_body(body, "instruments")
    if type(rows) is not list:
        raise ParseError("bad_shape", "instruments")
    return [i for i in map(instrument_from, rows) if i is not None]
