"""Bitget UTA (v3) public: ``liquidation`` per instType (sampled), ``publicTrade`` and ``ticker``
(market context) per symbol."""

from producers.bitget.parser import BitgetAdapter

__all__ = ["BitgetAdapter"]
