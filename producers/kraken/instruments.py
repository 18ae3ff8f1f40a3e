"""Kraken Futures product ids -> Instrument, derived from the id (no REST call). Pure module.

The prefix carries the contract type: ``PF_`` (perpetual, linear multi-collateral: ``qty`` in base
coin), ``PI_`` (perpetual, inverse: ``qty`` in USD contracts of 1 USD), ``FF_``/``FI_`` the dated
linear/inverse futures (``FI_XBTUSD_250627``). Only USD-quoted products; ``XBT`` is BTC. The REST
instrument list (``/derivatives/api/v3/instruments``) would confirm contract sizes; it is not
used: the prefix rule covers every USD product Kraken lists (UNVERIFIED for new prefixes, which
are refused as ``unknown_instrument``). ``PF_XBTUSD`` and ``PI_XBTUSD`` both map to
``BTC-USD-PERP``: the canonical symbol names the pair, ``venue_symbol`` keeps the contract.
"""

from __future__ import annotations

import re
from typing import Final

from monitor.core.symbols import Instrument, canonical

_ID_RE: Final = re.compile(r"^(PF|PI|FF|FI)_([A-Z0-9]{1,20}?)(USD)(?:_(\d{6}))?$")
_ALIASES: Final = {"XBT": "BTC"}


def instrument_for(product_id: str) -> Instrument | None:
    m = _ID_RE.match(product_id)
    if m is None:
        return None
    kind, base, quote, expiry = m.groups()
    if (kind[0] == "P") != (expiry is None) or not base:
        return None
    base = _ALIASES.get(base, base)
    return Instrument(product_id, canonical(base, quote, expiry), base, quote, 1.0, kind[1] == "I")
