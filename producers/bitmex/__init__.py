"""BitMEX: the ``liquidation`` table (forced-order lifecycle), ``trade:<SYMBOL>`` trades and
``instrument:<SYMBOL>`` market context (mark, index, funding, open interest)."""

from producers.bitmex.parser import BitmexAdapter

__all__ = ["BitmexAdapter"]
