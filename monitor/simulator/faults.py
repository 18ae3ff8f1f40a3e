"""What a simulated venue sends while a fault is injected. Pure module: the server
(``monitor.simulator.server``) applies it to every venue's outgoing market data.

* ``muted``: channels the venue stops sending while keeping the others (``liquidation``, ``trade``
  or ``context``): a payload carrying a muted kind of item is not sent (and so not in the
  ledger), the connection and the other channels carry on, as when a venue drops one feed;
* ``garbled``: every market frame goes out malformed (cut in the middle: invalid JSON, or a
  truncated gzip stream on binary venues), as when a venue changes its payloads and every frame
  fails to parse; control replies (pongs, subscription acks) stay intact, so the socket stays
  up and busy, and nothing reaches the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from monitor.simulator.ledger import SentLiquidation, SentTrade
from monitor.simulator.wire import Outgoing

KINDS: Final = ("liquidation", "trade", "context")


@dataclass(frozen=True, slots=True)
class Fault:
    muted: frozenset[str] = frozenset()
    garbled: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.muted) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kind(s) {sorted(unknown)}: one of {KINDS}")


NONE: Final = Fault()


def kind_of(out: Outgoing) -> str:
    """The channel a payload belongs to: liquidation if it carries one, trade if it carries
    trades, else market context (mark, funding, open interest, tickers)."""
    if any(isinstance(i, SentLiquidation) for i in out.items):
        return "liquidation"
    if any(isinstance(i, SentTrade) for i in out.items):
        return "trade"
    return "context"


def passing(fault: Fault, outs: Iterable[Outgoing]) -> list[Outgoing]:
    """The payloads a venue with ``fault`` still sends."""
    if not fault.muted:
        return list(outs)
    return [o for o in outs if kind_of(o) not in fault.muted]


def garble(frame: bytes) -> bytes:
    """A malformed copy of a market frame: its first half."""
    return frame[: max(1, len(frame) // 2)]
