"""Normalized market events: what every producer emits and every consumer reads.

Pure module (stdlib only). Field choices (docs/venues.md §13):

* Prices and quantities are float64 carried as JSON numbers. orjson writes the shortest repr that
  round-trips, so a venue decimal with up to 15 significant digits ("0.014", "9910.1") survives
  encode/decode exactly; derived values (``qty_base``, ``notional_usd``) are float64 products, which is
  what the numba kernels compute in anyway. ``qty_raw`` keeps the venue's own number and unit, and
  ``contract_multiplier`` the factor used, so every conversion can be audited.
* ``liquidated_side`` is the position that was force-closed (long/short/unknown), never the venue's
  raw side string; ``order_side`` is the side of the forced order when the venue says it.
* ``coverage`` says how complete the venue's feed is, so downstream code never presents a sample as a
  total.
* Timestamps: ``ts_ms`` is the venue's event time (ms since epoch); ``received_ns`` the producer's
  wall clock when the frame arrived.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

SCHEMA_VERSION: Final = 1


class Side(StrEnum):
    """Which position was liquidated."""

    LONG = "long"
    SHORT = "short"
    UNKNOWN = "unknown"


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


class PriceKind(StrEnum):
    AVG_FILL = "avg_fill"
    ORDER_LIMIT = "order_limit"
    BANKRUPTCY = "bankruptcy"
    TRADE = "trade"
    UNKNOWN = "unknown"


class QtyUnit(StrEnum):
    BASE = "base"
    CONTRACTS = "contracts"
    QUOTE = "quote"
    USD = "usd"


class Coverage(StrEnum):
    """How much of the venue's liquidations a feed carries."""

    COMPLETE = "complete"
    SAMPLED_LATEST_1S = "sampled_latest_per_symbol_1s"  # Binance: the latest per symbol per second
    SAMPLED_PER_CONTRACT_1S = "sampled_per_contract_1s"  # OKX: at most one per contract per second
    LARGEST_PER_SIDE_1S = "largest_per_side_1s"
    AGGREGATED = "aggregated"
    PARTIAL = "partial_unspecified"
    ORDER_LIFECYCLE = "order_lifecycle"
    TRADE_FLAG = "trade_flag"


@dataclass(frozen=True, slots=True)
class Liquidation:
    exchange: str
    symbol: str  # canonical, e.g. BTC-USDT-PERP
    venue_symbol: str  # as the venue spells it, e.g. BTCUSDT
    liquidated_side: Side
    order_side: OrderSide | None
    price: float
    price_kind: PriceKind
    qty_raw: float
    qty_unit: QtyUnit
    contract_multiplier: float
    qty_base: float
    notional_usd: float
    coverage: Coverage
    ts_ms: int
    received_ns: int
    event_id: str


@dataclass(frozen=True, slots=True)
class Trade:
    exchange: str
    symbol: str
    venue_symbol: str
    taker_side: OrderSide
    price: float
    qty_raw: float
    qty_unit: QtyUnit
    contract_multiplier: float
    qty_base: float
    notional_usd: float
    is_liquidation: bool | None  # None: the venue does not say
    ts_ms: int
    received_ns: int
    trade_id: str


@dataclass(frozen=True, slots=True)
class MarketContext:
    """What a venue says about a pair besides trades: mark price, funding, open interest.

    Any field the message does not carry is None (venues push them on different channels and
    cadences: Binance markPrice every second, OKX open interest on its own channel, Bybit
    tickers as snapshot + deltas). Open interest is in base units and USD, converted once with the
    instrument's multiplier like quantities."""

    exchange: str
    symbol: str
    venue_symbol: str
    mark_price: float | None
    index_price: float | None
    funding_rate: float | None  # per funding interval, as a fraction (0.0001 = 1 bp)
    next_funding_ms: int | None
    open_interest_base: float | None
    open_interest_usd: float | None
    ts_ms: int
    received_ns: int


Event = Liquidation | Trade | MarketContext


def liquidation_id(
    exchange: str,
    venue_symbol: str,
    ts_ms: int,
    side: str,
    qty_raw: float,
    price: float,
    rank: int = 0,
) -> str:
    """Deterministic id of a liquidation, so a re-sent one (after a reconnect or a restart) is
    recognised and dropped, while distinct real liquidations keep distinct ids.

    Hashes ``exchange|venue_symbol|ts_ms|side|qty|price`` with the numbers in their shortest
    round-trip repr (the same text the codec writes). Venues that give no event id can push two
    genuinely separate liquidations that share all of these in one frame (same millisecond, side,
    size and price); ``rank`` tells them apart: the k-th such item of a frame (k = 0, 1, ...)
    gets ``ranked_id(id, k)`` (``rank`` 0: the plain id). A replayed frame, or the same item re-sent alone
    in a later frame, gets the same ids again. Two identical liquidations that a venue pushes in
    two different frames would still share an id (none of the venues without ids splits one
    millisecond across frames). Venues with an id of their own (BitMEX ``orderID``, Deribit and
    Kraken trade ids) put it in ``side``.
    """
    key = f"{exchange}|{venue_symbol}|{ts_ms}|{side}|{qty_raw!r}|{price!r}".encode()
    base = hashlib.blake2b(key, digest_size=10).hexdigest()
    return ranked_id(base, rank) if rank else base


def ranked_id(event_id: str, rank: int) -> str:
    """The id of the ``rank``-th (1, 2, ...) item of a frame identical to the one with
    ``event_id`` (see ``liquidation_id``)."""
    return hashlib.blake2b(f"{event_id}#{rank}".encode(), digest_size=10).hexdigest()
