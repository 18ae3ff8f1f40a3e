"""Deribit: ``trades.<INSTRUMENT>.100ms`` trades; liquidations from the trades' ``liquidation`` flag;
market context (mark/index price, funding, open interest) from ``ticker.<INSTRUMENT>.100ms``."""

from producers.deribit.parser import DeribitAdapter

__all__ = ["DeribitAdapter"]
