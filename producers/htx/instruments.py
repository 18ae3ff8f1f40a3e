"""HTX instrument metadata: ``GET {rest}/linear-swap-api/v1/swap_contract_info``. Pure module.

Response ``{"status": "ok", "data": [{"symbol": "BTC", "contract_code": "BTC-USDT",
"contract_size": 0.001, "trade_partition": "USDT", ...}], "ts": ...}``. ``contract_size`` is the
base coin per contract (linear). Only USDT-settled swaps (``BASE-USDT``) are kept; items that are
malformed are left out (the list as a whole is refused only when nothing usable remains).
"""

from __future__ import annotations

import math
from typing import Any

from monitor.core.errors import ParseError
from monitor.core.symbols import Instrument, canonical
from producers.events import json_body
from producers.htx.endpoints import CONTRACT_INFO_PATH, SETTLE


def instrument_urls(rest_base: str) -> list[str]:
    return [f"{rest_base.rstrip('/')}{CONTRACT_INFO_PATH}"]


def parse_contract_info(body: bytes) -> list[Instrument]:
    doc = json_body(body, "swap_contract_info")
    if type(doc) is not dict or doc.get("status") != "ok" or type(doc.get("data")) is not list:
        raise ParseError("bad_instruments", "swap_contract_info: status/data")
    out = [i for i in map(_instrument, doc["data"]) if i is not None]
    if not out:
        raise ParseError("bad_instruments", "swap_contract_info: no USDT swap")
    return out


def _instrument(item: Any) -> Instrument | None:
    if type(item) is not dict:
        return None
    code, base, size = item.get("contract_code"), item.get("symbol"), item.get("contract_size")
    if type(code) is not str or type(base) is not str or not base.isalnum():
        return None
    if code != f"{base}-{SETTLE}" or item.get("trade_partition", SETTLE) != SETTLE:
        return None  # dated futures (BTC-USDT-210625) or another settle currency
    if not isinstance(size, int | float) or type(size) is bool or not 0.0 < size < math.inf:
        return None
    return Instrument(code, canonical(base, SETTLE), base, SETTLE, float(size))
