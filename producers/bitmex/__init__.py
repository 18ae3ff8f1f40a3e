"""BitMEX: the ``liquidation`` table (forced-order lifecycle) and ``trade:<SYMBOL>`` trades."""

from producers.bitmex.parser import BitmexAdapter

__all__ = ["BitmexAdapter"]
