"""Bybit v5 linear: ``allLiquidation.<SYM>`` liquidations, ``publicTrade.<SYM>`` trades and
``tickers.<SYM>`` market context (mark/index price, funding, open interest)."""

from producers.bybit.parser import BybitAdapter

__all__ = ["BybitAdapter"]
