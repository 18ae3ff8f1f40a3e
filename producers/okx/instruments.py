"""OKX instrument metadata: ``GET {rest}/api/v5/public/instruments?instType=SWAP``. Pure module.

Response ``{"code": "0", "msg": "", "data": [{"instId": "BTC-USDT-SWAP", "ctType": "linear",
"ctVal": "0.01", "ctMult": "1", "ctValCcy": "BTC", "settleCcy": "USDT", "uly": "BTC-USDT",
"instFamily": "BTC-USDT", "state": "live", ...}]}``.

* linear (``ctType`` "linear", ``ctValCcy`` = the base coin): a contract is ``ctVal x ctMult``
  base units (BTC-USDT-SWAP: 0.01 BTC);
* inverse (``ctType`` "inverse", ``ctValCcy`` = the quote, USD): a contract is ``ctVal x ctMult``
  USD (BTC-USD-SWAP: 100 USD), so the USD notional does not depend on the price.

``BTC-USDT-SWAP`` becomes ``BTC-USDT-PERP``, ``BTC-USD-SWAP`` ``BTC-USD-PERP``. Nothing is guessed:
an item with a missing or inconsistent field, a quote that is not a USD stable coin, or state
``expired`` is left out; the list as a whole is refused only when nothing usable remains.
"""

from __future__ import annotations

import math
from typing import Any, Final

from monitor.core.errors import ParseError
from monitor.core.symbols import USD_QUOTES, Instrument, canonical
from producers.events import json_body
from producers.okx.endpoints import INST_TYPE, INSTRUMENTS_PATH

_SKIPPED_STATES: Final = frozenset({"expired"})


def instrument_urls(rest_base: str) -> list[str]:
    return [f"{rest_base.rstrip('/')}{INSTRUMENTS_PATH}"]


def parse_instruments(body: bytes) -> list[Instrument]:
    doc = json_body(body, "instruments")
    if type(doc) is not dict:
        raise ParseError("bad_instruments", "instruments: not an object")
    if doc.get("code") != "0" or type(doc.get("data")) is not list:
        raise ParseError("bad_instruments", f"instruments: code {str(doc.get('code'))[:20]}")
    out = [i for i in map(instrument, doc["data"]) if i is not None]
    if not out:
        raise ParseError("bad_instruments", "instruments: no usable SWAP")
    return out


def instrument(item: Any) -> Instrument | None:
    """One ``data`` item as an Instrument, or None when it is not a usable USD-quoted swap."""
    if type(item) is not dict:
        return None
    inst_id = item.get("instId")
    if type(inst_id) is not str or item.get("state") in _SKIPPED_STATES:
        return None
    parts = inst_id.split("-")
    if len(parts) != 3 or parts[2] != INST_TYPE:
        return None
    base, quote = parts[0], parts[1]
    if not (base.isascii() and base.isalnum() and base.isupper()) or quote not in USD_QUOTES:
        return None
    ct_type, ccy = item.get("ctType"), item.get("ctValCcy")
    if ct_type == "linear" and ccy == base:
        inverse = False
    elif ct_type == "inverse" and ccy == quote:
        inverse = True
    else:
        return None
    ct_val, ct_mult = _decimal(item.get("ctVal")), _decimal(item.get("ctMult"))
    if ct_val is None or ct_mult is None:
        return None
    mult = ct_val * ct_mult
    if not 0.0 < mult < math.inf:
        return None
    return Instrument(inst_id, canonical(base, quote), base, quote, mult, inverse=inverse)


def _decimal(value: object) -> float | None:
    if type(value) is not str:
        return None
    try:
        x = float(value)
    except ValueError:
        return None
    return x if 0.0 < x < math.inf else None
