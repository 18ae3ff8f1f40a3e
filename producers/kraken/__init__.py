"""Kraken Futures: the ``trade`` feed; liquidations are trades of ``type`` ``liquidation``; market
context (mark/index price, funding, open interest) from the ``ticker`` feed."""

from producers.kraken.parser import KrakenAdapter

__all__ = ["KrakenAdapter"]
