"""Deribit instrument names -> Instrument, derived from the name (no REST call). Pure module.

Deribit's naming is regular and carries the contract type (docs/venues.md §5):

* ``BTC-PERPETUAL``, ``BTC-27JUN25``: inverse, ``amount`` in USD -> ``inverse=True``, multiplier 1
  (one unit of ``amount`` is one USD), quote USD; canonical ``BTC-USD-PERP`` / ``BTC-USD-250627``.
* ``BTC_USDC-PERPETUAL``, ``ETH_USDC-27JUN25``: linear, ``amount`` in base coin, multiplier 1;
  canonical ``BTC-USDC-PERP``. Only USD-like quotes (``monitor.core.symbols.USD_QUOTES``) are accepted.
* Anything else (options ``BTC-27JUN25-100000-C``, combos, spot ``BTC_USDC``): None.
"""

from __future__ import annotations

import re
from typing import Final

from monitor.core.symbols import USD_QUOTES, Instrument, canonical

_NAME_RE: Final = re.compile(
    r"^([A-Z0-9]{1,20})(?:_([A-Z]{2,6}))?-(PERPETUAL|(\d{1,2})([A-Z]{3})(\d{2}))$"
)
_MONTHS: Final = {m: i + 1 for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}  # fmt: skip


def instrument_for(name: str) -> Instrument | None:
    m = _NAME_RE.match(name)
    if m is None:
        return None
    base, quote, kind, day, month, year = m.groups()
    expiry = None
    if kind != "PERPETUAL":
        mon = _MONTHS.get(month)
        if mon is None or not 1 <= int(day) <= 31:
            return None
        expiry = f"{year}{mon:02d}{int(day):02d}"
    if quote is None:
        return Instrument(name, canonical(base, "USD", expiry), base, "USD", 1.0, inverse=True)
    if quote not in USD_QUOTES:
        return None
    return Instrument(name, canonical(base, quote, expiry), base, quote, 1.0)
