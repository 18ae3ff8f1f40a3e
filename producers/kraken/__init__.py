"""Kraken Futures: the ``trade`` feed; liquidations are trades of ``type`` ``liquidation``."""

from producers.kraken.parser import KrakenAdapter

__all__ = ["KrakenAdapter"]
