"""Hyperliquid perpetuals: ``trades`` only. Hyperliquid has NO public liquidation feed."""

from producers.hyperliquid.parser import HyperliquidAdapter

__all__ = ["HyperliquidAdapter"]
