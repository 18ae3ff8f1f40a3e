"""OKX v5 public: ``liquidation-orders`` (all SWAP instruments) and ``trades`` per instId."""

from producers.okx.parser import OkxAdapter

__all__ = ["OkxAdapter"]
