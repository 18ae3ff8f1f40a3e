"""Gate.io USDT futures: ``futures.public_liquidates`` (``!all``) liquidations, ``futures.trades``
trades and ``futures.tickers`` market context (mark, index, funding rate, open interest) on one
socket, sizes in contracts x ``quanto_multiplier``."""

from producers.gate.parser import GateAdapter

__all__ = ["GateAdapter"]
