"""Gate USDT futures contracts: ``GET {rest}/api/v4/futures/usdt/contracts``. Pure module.

Response: a JSON list of ``{"name": "BTC_USDT", "quanto_multiplier": "0.0001", "type": "direct",
...}``; ``quanto_multiplier`` is the base coin per contract. Only linear (``direct``) ``BASE_USDT``
contracts are kept; malformed items are left out; a list with none usable is refused.
"""

from __future__ import annotations

import math
from typing import Any

from monitor.core.errors import ParseError
from monitor.core.symbols import Instrument, canonical
from producers.events import json_body
from producers.gate.endpoints import CONTRACTS_PATH, SETTLE


def instrument_urls(rest_base: str) -> list[str]:
    return [f"{rest_base.rstrip('/')}{CONTRACTS_PATH}"]


def parse_contracts(body: bytes) -> list[Instrument]:
    doc = json_body(body, "contracts")
    if type(doc) is not list:
        raise ParseError("bad_instruments", "contracts: not a list")
    out = [i for i in map(_instrument, doc) if i is not None]
    if not out:
        raise ParseError("bad_instruments", "contracts: no USDT contract")
    return out


def _instrument(item: Any) -> Instrument | None:
    if type(item) is not dict:
        return None
    name, mult = item.get("name"), item.get("quanto_multiplier")
    if type(name) is not str or item.get("type", "direct") != "direct":
        return None
    base, _, settle = name.partition("_")
    if settle != SETTLE or not base.isalnum():
        return None
    try:
        m = float(mult) if type(mult) is str else math.nan
    except ValueError:
        return None
    if not 0.0 < m < math.inf:
        return None
    return Instrument(name, canonical(base, SETTLE), base, SETTLE, m)
