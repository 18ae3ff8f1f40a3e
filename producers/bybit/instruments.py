"""Bybit linear instruments: ``GET /v5/market/instruments-info?category=linear&limit=1000``.

Used to subscribe ``allLiquidation.<SYM>`` for every listed symbol, not just the configured ones
(the topic is per symbol; there is no wildcard). Kept: ``status == "Trading"`` linear perpetuals
quoted in a USD stablecoin. Quantities on these are base units (multiplier 1). One page of 1000
covers the linear list (about 800 symbols in 2026); a further page (``nextPageCursor``) is
reported by ``more_pages`` and logged by the adapter rather than followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

from monitor.errors import ParseError
from monitor.symbols import USD_QUOTES, Instrument, canonical

PATH: Final = "/v5/market/instruments-info"
QUERY: Final = "category=linear&limit=1000"


@dataclass(frozen=True, slots=True)
class Listing:
    instruments: list[Instrument]
    more_pages: bool


def parse_instruments(body: bytes) -> Listing:
    try:
        doc = orjson.loads(body)
        if doc["retCode"] != 0:
            raise ParseError("venue_error", str(doc.get("retMsg"))[:60])
        result = doc["result"]
        rows = result["list"]
    except orjson.JSONDecodeError:
        raise ParseError("bad_json", "instruments-info") from None
    except (KeyError, TypeError):
        raise ParseError("bad_shape", "instruments-info") from None
    if not isinstance(rows, list):
        raise ParseError("bad_shape", "instruments-info list")
    out = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        sym, base, quote = row.get("symbol"), row.get("baseCoin"), row.get("quoteCoin")
        if (
            row.get("status") != "Trading"
            or row.get("contractType") != "LinearPerpetual"
            or not (isinstance(sym, str) and isinstance(base, str) and isinstance(quote, str))
            or quote not in USD_QUOTES
        ):
            continue
        out.append(Instrument(sym, canonical(base, quote), base, quote, 1.0))
    return Listing(out, bool(result.get("nextPageCursor")))
