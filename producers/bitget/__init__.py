"""Bitget UTA (v3) public: ``liquidation`` per instType (sampled) and ``publicTrade`` per symbol."""

from producers.bitget.parser import BitgetAdapter

__all__ = ["BitgetAdapter"]
