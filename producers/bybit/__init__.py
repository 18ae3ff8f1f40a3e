"""Bybit v5 linear: ``allLiquidation.<SYM>`` liquidations and ``publicTrade.<SYM>`` trades."""

from producers.bybit.parser import BybitAdapter

__all__ = ["BybitAdapter"]
