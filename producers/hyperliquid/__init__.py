"""Hyperliquid perpetuals: ``trades`` and the market context ``activeAssetCtx`` per coin.
Hyperliquid has NO public liquidation feed."""

from producers.hyperliquid.parser import HyperliquidAdapter

__all__ = ["HyperliquidAdapter"]
