"""Bybit instruments: ``GET /v5/market/instruments-info?category=linear|inverse&limit=1000``.

Used to subscribe ``allLiquidation.<SYM>`` for every listed symbol, not just the configured ones
(the topic is per symbol; there is no wildcard). Kept: ``status == "Trading"`` perpetuals, linear
ones (``LinearPerpetual``) quoted in a USD stablecoin, whose quantities are base units (multiplier
1), and inverse ones (``InversePerpetual``, ``BTCUSD``) quoted in USD, on their own socket
(``/v5/public/inverse``), whose sizes are contracts of 1 USD. The answer is paged: a non-empty
``result.nextPageCursor`` means more rows, fetched with ``&cursor=<it>`` (``page_url``); the
producer's instrument loader follows the cursors of each category until it is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

import orjson

from monitor.core.errors import ParseError
from monitor.core.symbols import USD_QUOTES, Instrument, canonical

PATH: Final = "/v5/market/instruments-info"
LINEAR: Final = "linear"
INVERSE: Final = "inverse"
CATEGORIES: Final = (LINEAR, INVERSE)
_CONTRACT_TYPE: Final = {LINEAR: "LinearPerpetual", INVERSE: "InversePerpetual"}
INVERSE_CONTRACT_USD: Final = 1.0  # an inverse perpetual's contract is 1 USD (BTCUSD, ETHUSD)


def query(category: str) -> str:
    return f"category={category}&limit=1000"


def category_of(url: str) -> str:
    """The ``category`` of an instruments-info URL (linear when it names none)."""
    return INVERSE if f"category={INVERSE}" in url else LINEAR


@dataclass(frozen=True, slots=True)
class Listing:
    instruments: list[Instrument]
    cursor: str  # "" on the last page


def page_url(first_url: str, cursor: str) -> str:
    """The URL of the page after the one ``cursor`` came with."""
    base = first_url.split("&cursor=", 1)[0]
    return f"{base}&cursor={quote(cursor, safe='')}"


def parse_instruments(body: bytes, category: str = LINEAR) -> Listing:
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
            or row.get("contractType") != _CONTRACT_TYPE[category]
            or not (isinstance(sym, str) and isinstance(base, str) and isinstance(quote, str))
            or quote not in USD_QUOTES
        ):
            continue
        if category == INVERSE:
            inst = Instrument(sym, canonical(base, quote), base, quote, INVERSE_CONTRACT_USD, True)
        else:
            inst = Instrument(sym, canonical(base, quote), base, quote, 1.0)
        out.append(inst)
    cursor = result.get("nextPageCursor") or ""
    if not isinstance(cursor, str):
        raise ParseError("bad_shape", "nextPageCursor")
    return Listing(out, cursor)
