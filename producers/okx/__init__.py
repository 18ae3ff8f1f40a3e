"""OKX v5 public: ``liquidation-orders`` (all SWAP instruments); ``trades``, ``mark-price``,
``funding-rate`` and ``open-interest`` per instId."""

from producers.okx.parser import OkxAdapter

__all__ = ["OkxAdapter"]
