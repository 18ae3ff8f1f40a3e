"""What the simulator actually sent: the ground truth integration tests compare against. Pure module.

An item enters the ledger when a frame carrying it was written to at least one open connection
subscribed to its stream. Each market item has a key unique within its venue, so an item that
reaches several connections (or one connection through two streams, e.g. ``!forceOrder@arr`` and
``btcusdt@forceOrder``) is recorded once, in the order it was first sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

_QUOTES: Final = ("USDT", "USDC", "USD")
_AFFIXES: Final = re.compile(r"^(?:PF_|PI_)|(?:-SWAP|-PERPETUAL|-PERP)$")


def canonical_symbol(venue_symbol: str) -> str:
    """The canonical pair of a simulated instrument, from any venue's spelling: ``BTCUSDT``,
    ``BTC-USDT``, ``BTC_USDT``, ``BTC-USDT-SWAP`` -> ``BTC-USDT-PERP``; ``XBTUSD``, ``PF_XBTUSD``,
    ``BTC-PERPETUAL`` (USD-margined) -> ``BTC-USD-PERP``. Tests and the demo reconcile with it."""
    sym = _AFFIXES.sub("", venue_symbol.upper()).replace("_", "").replace("-", "")
    for quote in _QUOTES:
        if sym.endswith(quote) and len(sym) > len(quote):
            base = sym[: -len(quote)]
            break
    else:
        base, quote = sym, "USD"  # BTC-PERPETUAL, Hyperliquid coins
    return f"{'BTC' if base == 'XBT' else base}-{quote}-PERP"


@dataclass(frozen=True, slots=True)
class SentLiquidation:
    venue: str
    venue_symbol: str
    liquidated_side: str  # "long" / "short" / "unknown" (Kraken Futures)
    qty_text: str  # the quantity field used for notional: Binance ``o.z``, Bybit ``v``
    price_text: str  # Binance ``o.ap`` (average fill), Bybit ``p`` (bankruptcy price)
    ts_ms: int  # the item's own time: Binance ``o.T``, Bybit ``data[].T``
    multiplier: float = 1.0  # linear: base per contract; inverse: USD per contract
    inverse: bool = False

    @property
    def notional(self) -> float:
        """USD notional, computed the way a correct consumer must: linear contracts
        qty * multiplier * price, inverse contracts qty * multiplier (USD)."""
        if self.inverse:
            return float(self.qty_text) * self.multiplier
        return float(self.qty_text) * self.multiplier * float(self.price_text)


@dataclass(frozen=True, slots=True)
class SentTrade:
    venue: str
    venue_symbol: str
    taker_side: str  # "buy" / "sell"
    qty_text: str
    price_text: str
    ts_ms: int  # Binance ``T``, Bybit ``data[].T``
    trade_id: str  # Binance aggregate id ``a`` (as text), Bybit ``i``


SentItem = SentLiquidation | SentTrade


@dataclass
class Ledger:
    liquidations: list[SentLiquidation] = field(default_factory=list)
    trades: list[SentTrade] = field(default_factory=list)
    _seen: set[tuple[str, int]] = field(default_factory=set, repr=False)

    def record(self, venue: str, keys: Iterable[int], items: Iterable[SentItem]) -> None:
        for key, item in zip(keys, items, strict=True):
            if (venue, key) in self._seen:
                continue
            self._seen.add((venue, key))
            if isinstance(item, SentLiquidation):
                self.liquidations.append(item)
            else:
                self.trades.append(item)

    def liquidation_notional(self) -> dict[tuple[str, str, str], float]:
        """(venue, venue_symbol, liquidated_side) -> sum of qty * price, summed in send order."""
        out: dict[tuple[str, str, str], float] = {}
        for liq in self.liquidations:
            key = (liq.venue, liq.venue_symbol, liq.liquidated_side)
            out[key] = out.get(key, 0.0) + liq.notional
        return out

    def liquidation_notional_by_pair(self) -> dict[tuple[str, str, str], float]:
        """(venue, canonical symbol, liquidated_side) -> USD notional, summed in send order."""
        out: dict[tuple[str, str, str], float] = {}
        for liq in self.liquidations:
            key = (liq.venue, canonical_symbol(liq.venue_symbol), liq.liquidated_side)
            out[key] = out.get(key, 0.0) + liq.notional
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        """venue -> {"liquidations": n, "long_liquidations": n, "trades": n}."""
        out: dict[str, dict[str, int]] = {}
        for liq in self.liquidations:
            c = out.setdefault(liq.venue, _zero())
            c["liquidations"] += 1
            c["long_liquidations"] += liq.liquidated_side == "long"
        for tr in self.trades:
            out.setdefault(tr.venue, _zero())["trades"] += 1
        return out


def _zero() -> dict[str, int]:
    return {"liquidations": 0, "long_liquidations": 0, "trades": 0}
