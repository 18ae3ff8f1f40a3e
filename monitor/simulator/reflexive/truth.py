"""Ground truth of a reflexive scenario, from its forced orders. Pure module.

Definitions (times in scenario seconds; "forced notional" is ``qty * price`` of the scenario's
liquidations, summed over every symbol and venue):

* **rate**: ``r(s)``, the forced notional in the trailing ``ONSET_WINDOW_S`` seconds ending at
  whole second ``s`` (``(s - W, s]``).
* **baseline**: the mean of ``r`` over the full windows before ``baseline_end_s`` (the first news
  shock; a quarter of the scenario when there is none), as USD per second.
* **threshold**: ``max(ONSET_MULTIPLE * baseline * W, ONSET_FLOOR_USD)`` per window.
* **peak minute**: the minute ``[60m, 60m + 60)`` with the largest forced notional (the earliest
  on a tie); ``peak_minute_s = 60m``.
* **onset**: runs are the maximal intervals of seconds with ``r(s) >= threshold``, dips below it
  of at most ``ONSET_MAX_GAP_S`` seconds bridged. A run qualifies if it lasts at least
  ``ONSET_HOLD_S`` seconds and holds at least ``ONSET_MIN_ORDERS`` forced orders (in
  ``(start - W, end]``). The onset is the first second of the first qualifying run that overlaps
  the peak minute; None if there is none. So the onset is when the rate crossed the threshold and
  kept going into the peak, and ``onset_s`` is never after the end of the peak minute.
* **endogenous share**: the endogenous forced notional (``market``: the counterfactual price
  without liquidation-driven moves never reaches the level within the scenario, so the position
  would not have been liquidated) over the total; 0 with no forced orders.
* **early share**: likewise for the early forced notional (the counterfactual had not reached the
  level *by the time* of the liquidation): the endogenous ones plus those liquidation-driven moves
  only brought forward. It is at least the endogenous share.
* **is_cascade**: an onset exists, the endogenous share is at least ``CASCADE_MIN_ENDOGENOUS``
  and the total forced notional at least ``CASCADE_MIN_USD``: a sustained burst of liquidations,
  a material part of which only happened because liquidations moved the price.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

ONSET_WINDOW_S: Final = 30
ONSET_MULTIPLE: Final = 5.0
ONSET_FLOOR_USD: Final = 2_500_000.0  # per window: $5M a minute at least
ONSET_HOLD_S: Final = 30
ONSET_MIN_ORDERS: Final = 5
ONSET_MAX_GAP_S: Final = 5
CASCADE_MIN_ENDOGENOUS: Final = 0.1
CASCADE_MIN_USD: Final = 2_000_000.0

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Forced:
    """One forced order as the scenario shows it (rounded price and quantity)."""

    t: float
    symbol: str
    venue: str
    long: bool
    notional_usd: float
    early: bool
    endogenous: bool


@dataclass(frozen=True)
class GroundTruth:
    family: str
    seed: int
    duration_s: float
    baseline_end_s: float
    baseline_usd_per_s: float
    onset_threshold_usd: float  # per ONSET_WINDOW_S
    onset_s: float | None
    peak_minute_s: float | None
    peak_minute_usd: float
    forced_usd: dict[str, float]  # long, short, total
    forced_count: dict[str, int]
    endogenous_usd: float
    endogenous_share: float
    early_share: float
    long_share: float  # of the forced notional; 0 with none
    is_cascade: bool
    by_symbol: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_venue: dict[str, dict[str, Any]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def per_second(forced: Sequence[Forced], seconds: int) -> FloatArray:
    """Forced notional per whole second ``[s, s + 1)``."""
    idx = np.array([min(int(f.t), seconds - 1) for f in forced], dtype=np.int64)
    w = np.array([f.notional_usd for f in forced], dtype=np.float64)
    out: FloatArray = np.bincount(idx, weights=w, minlength=seconds).astype(np.float64)
    return out


def trailing(a: FloatArray, window: int) -> FloatArray:
    """``out[s] = a[s - window + 1] + ... + a[s]`` (shorter at the start)."""
    c = np.concatenate(([0.0], np.cumsum(a)))
    s = np.arange(a.size)
    out: FloatArray = c[s + 1] - c[np.maximum(s + 1 - window, 0)]
    return out


def onset(
    rate: FloatArray, threshold: float, peak_minute_s: int, order_seconds: FloatArray
) -> float | None:
    """The onset rule of the module docstring on the trailing-window rate ``rate``."""
    for start, end in runs(rate >= threshold, ONSET_MAX_GAP_S):
        if end < peak_minute_s or start >= peak_minute_s + 60 or end - start + 1 < ONSET_HOLD_S:
            continue
        inside = (order_seconds > start - ONSET_WINDOW_S) & (order_seconds <= end + 1)
        if int(np.count_nonzero(inside)) >= ONSET_MIN_ORDERS:
            return float(start)
    return None


def runs(above: npt.NDArray[np.bool_], max_gap: int) -> list[tuple[int, int]]:
    """``(first, last)`` indices of the runs of True, gaps of at most ``max_gap`` False bridged."""
    idx = np.flatnonzero(above)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > max_gap + 1)
    firsts = np.concatenate(([idx[0]], idx[breaks + 1]))
    lasts = np.concatenate((idx[breaks], [idx[-1]]))
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))


def ground_truth(
    *,
    family: str,
    seed: int,
    duration_s: float,
    baseline_end_s: float,
    forced: Sequence[Forced],
    by_symbol: Mapping[str, dict[str, Any]],
    venues: Sequence[str],
    params: Mapping[str, Any],
) -> GroundTruth:
    seconds = max(1, math.ceil(duration_s))
    a = per_second(forced, seconds)
    w = ONSET_WINDOW_S
    rate = trailing(a, w)
    full = rate[w - 1 : max(w - 1, int(baseline_end_s))]
    baseline = float(full.mean()) / w if full.size else 0.0
    threshold = max(ONSET_MULTIPLE * baseline * w, ONSET_FLOOR_USD)
    minutes = np.bincount(np.arange(seconds) // 60, weights=a)
    long_usd = sum(f.notional_usd for f in forced if f.long)
    short_usd = sum(f.notional_usd for f in forced if not f.long)
    total = long_usd + short_usd
    endo = sum(f.notional_usd for f in forced if f.endogenous)
    early = sum(f.notional_usd for f in forced if f.early)
    if forced:
        peak_m = int(np.argmax(minutes))
        peak_s: float | None = 60.0 * peak_m
        peak_usd = float(minutes[peak_m])
        t_orders = np.array([f.t for f in forced])
        onset_s = onset(rate, threshold, 60 * peak_m, t_orders)
    else:
        peak_s, peak_usd, onset_s = None, 0.0, None
    share = endo / total if total > 0 else 0.0
    is_cascade = (
        onset_s is not None and share >= CASCADE_MIN_ENDOGENOUS and total >= CASCADE_MIN_USD
    )
    venue_rows: dict[str, dict[str, Any]] = {}
    for v in venues:
        rows = [f for f in forced if f.venue == v]
        venue_rows[v] = {
            "long_usd": sum(f.notional_usd for f in rows if f.long),
            "short_usd": sum(f.notional_usd for f in rows if not f.long),
            "count": len(rows),
        }
    return GroundTruth(
        family=family,
        seed=seed,
        duration_s=float(duration_s),
        baseline_end_s=float(baseline_end_s),
        baseline_usd_per_s=baseline,
        onset_threshold_usd=threshold,
        onset_s=onset_s,
        peak_minute_s=peak_s,
        peak_minute_usd=peak_usd,
        forced_usd={"long": long_usd, "short": short_usd, "total": total},
        forced_count={
            "long": sum(f.long for f in forced),
            "short": sum(not f.long for f in forced),
            "total": len(forced),
        },
        endogenous_usd=endo,
        endogenous_share=share,
        early_share=early / total if total > 0 else 0.0,
        long_share=long_usd / total if total > 0 else 0.0,
        is_cascade=is_cascade,
        by_symbol=dict(by_symbol),
        by_venue=venue_rows,
        params=dict(params),
    )
