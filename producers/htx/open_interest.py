"""HTX open interest: REST only, ``GET {rest}/linear-swap-api/v1/swap_open_interest?contract_code=
BTC-USDT``, polled politely by ``producers.poller`` for the configured contracts. Pure module.

Answer (USDT-margined "Get Swap Open Interest Information"): ``{"status": "ok", "data":
[{"volume": 78696, "amount": 78.696, "symbol": "BTC", "value": 3823138.2456, "contract_code":
"BTC-USDT", "trade_amount": 0, "trade_volume": 0, "trade_turnover": 0, "business_type": "swap",
"pair": "BTC-USDT", "contract_type": "swap"}], "ts": 1638754059540}``: ``volume`` contracts,
``amount`` base coin, ``value`` the position value in USDT (taken at par as USD); both sides
summed; numbers are JSON numbers. ``ts`` (the answer's generation time) is the event time.

open_interest_base = ``amount``, open_interest_usd = ``value``. As for liquidations, ``volume`` x
the instrument's ``contract_size`` must equal ``amount`` (relative 1e-6), else the item is refused
as ``qty_mismatch``. Items of dated futures (``business_type`` other than ``swap``) are left out
silently; other bad items are skipped, and an answer that yields no event but had a bad item raises
ParseError with that item's reason (the poller counts and logs it).
"""

from __future__ import annotations

from typing import Any, Final

from monitor.core.errors import ParseError
from monitor.core.schema import MarketContext
from monitor.core.symbols import SymbolTable
from producers.events import ITEM_ERRORS, item_error, json_body, non_negative, timestamp_ms
from producers.htx.endpoints import EXCHANGE, OPEN_INTEREST_PATH

_QTY_RTOL: Final = 1e-6
_SWAP: Final = "swap"


def open_interest_urls(rest_base: str, codes: list[str]) -> list[str]:
    base = rest_base.rstrip("/")
    return [f"{base}{OPEN_INTEREST_PATH}?contract_code={c}" for c in codes]


def parse_open_interest(body: bytes, received_ns: int, symbols: SymbolTable) -> list[MarketContext]:
    doc = json_body(body, "swap_open_interest")
    if type(doc) is not dict:
        raise ParseError("bad_shape", "swap_open_interest")
    if doc.get("status") != "ok":
        detail = f"{doc.get('err_code')}: {doc.get('err_msg')}"[:200]
        raise ParseError("venue_error", detail)
    try:
        data, ts = doc["data"], timestamp_ms(doc["ts"])
    except KeyError as exc:
        raise ParseError("missing_field", str(exc)) from None
    if type(data) is not list:
        raise ParseError("bad_shape", "data")
    events: list[MarketContext] = []
    errors: list[str] = []
    for item in data:
        try:
            if type(item) is dict and item.get("business_type", _SWAP) != _SWAP:
                continue  # a dated future of the same pair
            events.append(_item(item, ts, received_ns, symbols))
        except ITEM_ERRORS as exc:
            errors.append(item_error(exc))
    if errors and not events:
        raise ParseError(errors[0], f"{len(errors)} item(s)")
    return events


def _item(item: Any, ts: int, received_ns: int, symbols: SymbolTable) -> MarketContext:
    code = item["contract_code"]
    if type(code) is not str or not code:
        raise ParseError("bad_type", "contract_code")
    volume = non_negative(item["volume"])
    amount = non_negative(item["amount"])
    value = non_negative(item["value"])
    inst = symbols.resolve(code)  # strict: unknown_instrument until loaded
    if abs(volume * inst.contract_multiplier - amount) > _QTY_RTOL * amount:
        raise ParseError("qty_mismatch", f"{volume} x {inst.contract_multiplier} != {amount}")
    return MarketContext(
        exchange=EXCHANGE, symbol=inst.symbol, venue_symbol=code, mark_price=None,
        index_price=None, funding_rate=None, next_funding_ms=None, open_interest_base=amount,
        open_interest_usd=value, ts_ms=ts, received_ns=received_ns,
    )  # fmt: skip
