"""Gate.io USDT futures: ``futures.public_liquidates`` (``!all``) liquidations and
``futures.trades`` trades on one socket, sizes in contracts x ``quanto_multiplier``."""

from producers.gate.parser import GateAdapter

__all__ = ["GateAdapter"]
