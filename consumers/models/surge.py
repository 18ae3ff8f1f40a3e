"""Liquidation-flow surge: the 60 s liquidation rate against the pair's own baseline, with a floor.
Pure module (numpy), vectorised over pairs; docs/risk-models.md §9.

``surge = rate_60s / max(baseline, floor)``

* ``rate_60s``: the pair's liquidation notional rate over 60 s, every side (USD/s, the decayed
  rate of ``consumers.models.flow``);
* ``baseline``: the mean of that rate over the pair's own history
  (``consumers.models.baseline``: an exponentially weighted mean of 10 s samples over a day), 0
  until the baseline has its warm-up (``risk.baseline_warmup_s`` of history, which a restarted
  consumer replays from Kafka);
* ``floor``: the market-wide minimum rate that can count as a surge (``risk.surge_floor_usd_s``
  for a pair, ``risk.surge_floor_venue_usd_s`` for the venue-wide row). It is the prior that
  stands in while a pair has no history of its own, and it keeps a quiet pair's first
  liquidations from reading as a thousandfold surge: a surge of 5 means five times the pair's
  normal flow and at least five times the floor.

So ``surge >= k`` reads "liquidations run at k times their normal rate, and at k floors at least".
The floors are set from the shared real Binance hours (docs/risk-models.md §9): their venue-wide
60 s rate peaks at 880-1,850 USD/s and single pairs at up to about 1,150 USD/s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from consumers.models.jit import F64


@dataclass(frozen=True)
class SurgeParams:
    floor_usd_s: float = 1_000.0  # a pair's minimum surge denominator
    floor_venue_usd_s: float = 5_000.0  # the venue-wide row's

    def __post_init__(self) -> None:
        for name in ("floor_usd_s", "floor_venue_usd_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"surge {name} = {v!r}: must be finite and > 0")


def surge(rate_60s: F64, baseline: F64, floor: F64) -> F64:
    """``rate / max(baseline, floor)`` per pair; an undefined baseline counts as 0, an undefined
    rate gives NaN."""
    base = np.where(np.isfinite(baseline), baseline, 0.0)
    out: F64 = rate_60s / np.maximum(base, floor)
    return out
