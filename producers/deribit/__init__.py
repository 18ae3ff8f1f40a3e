"""Deribit: ``trades.<INSTRUMENT>.100ms`` trades; liquidations from the trades' ``liquidation`` flag."""

from producers.deribit.parser import DeribitAdapter

__all__ = ["DeribitAdapter"]
