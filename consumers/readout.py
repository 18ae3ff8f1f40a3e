"""Read-outs of the risk state: a consistent copy of pairs' values at one time (every pair, or the
pairs asked for), and the rows made from it (pure module, numpy only).

``RiskState.read(now_s, rows)`` fills a ``Readout`` under its lock (scrapes run in another thread);
the rest works on that copy, whichever pairs it holds: ``snapshots`` turns it into rows for the CLI
table (``PairSnapshot``), ``risk_rows`` into the risk-record values of the most active pairs for the
risk topic and the alert rules (``RiskRow``, field names of ``monitor.core.riskrecord``; NaN where a
value is not defined yet), each with the score components that drive it most.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from consumers.columns import CONTEXT_FIELDS, F64, I64, LIQ_SIDES, PairKey
from consumers.models.bundle import ModelReadout
from consumers.models.score import ScoreParams, drivers
from monitor.core.riskrecord import fields_dict
from monitor.core.symbols import VENUE_SYMBOL


@dataclass(frozen=True, slots=True)
class Readout:
    """A consistent copy of some pairs' values at ``now_s``: row ``i`` of every array is pair
    ``pair_ids[i]``, keyed ``keys[i]`` (``RiskState.read(now_s, rows)``: the pairs of ``rows`` in
    that order; every pair in id order by default)."""

    now_s: float
    horizons_s: tuple[float, ...]
    keys: list[PairKey]
    pair_ids: I64  # [n], dense pair ids (RiskState.pair_id), the order of the rows
    liq_rate: F64  # [n, 3 sides, horizons], USD/s
    liq_notional: F64  # [n, 3]
    liq_count: I64  # [n, 3]
    trd_rate: F64  # [n, 2 taker sides, horizons], USD/s
    trd_notional: F64  # [n] (buy + sell)
    trd_count: I64  # [n]
    variance: F64  # [n], per sampling interval; NaN before the first closed interval
    last_price: F64  # [n], NaN before the first trade
    context: F64  # [n, CONTEXT_FIELDS]: NaN where the venue has not said
    models: ModelReadout  # docs/risk-models.md §1-§7 (consumers.models)

    def activity(self) -> F64:
        """Liquidation + traded notional rate (USD/s) over the longest horizon: the export rank."""
        h = int(np.argmax(self.horizons_s))
        out: F64 = self.liq_rate[:, :, h].sum(axis=1) + self.trd_rate[:, :, h].sum(axis=1)
        return out

    def ranked(self) -> npt.NDArray[np.intp]:
        """Row indices, most active first; ties by cumulative notional, then first seen (lower
        pair id), so a subset ranks in the order the full read-out ranks those pairs."""
        total = self.liq_notional.sum(axis=1) + self.trd_notional
        return np.lexsort((self.pair_ids, -total, -self.activity()))


@dataclass(frozen=True, slots=True)
class PairSnapshot:
    """One pair's values at a time, for the CLI table. Sides are indexed as ``LIQ_SIDES``."""

    exchange: str
    symbol: str
    horizons_s: tuple[float, ...]
    liq_rate_usd_s: tuple[tuple[float, ...], ...]  # [side][horizon], USD/s
    volatility: float  # EWMA std of log returns per sampling interval; NaN before the first
    last_price: float  # NaN before the first trade
    liq_notional_usd: tuple[float, ...]  # [side]
    liquidations: tuple[int, ...]  # [side]
    trade_notional_usd: float
    trades: int
    mark_price: float = math.nan  # market context: NaN until the venue sent it
    funding_rate: float = math.nan
    open_interest_usd: float = math.nan
    score: float = math.nan  # composite cascade score, 0..1
    branching_ratio: float = math.nan  # sampling-aware Hawkes n; NaN until enough liquidations
    n_struct: float = math.nan  # feedback ratio, the larger of the down and up moves
    vpin: float = math.nan
    margin_stress_index: float = math.nan

    def rate(self, side: int | str, window_s: float) -> float:
        """Decayed liquidation rate of ``side`` (0/1/2 or "long"/"short"/"unknown")."""
        j = LIQ_SIDES.index(side) if isinstance(side, str) else side
        return self.liq_rate_usd_s[j][self.horizons_s.index(float(window_s))]

    @property
    def liq_notional_long(self) -> float:
        return self.liq_notional_usd[0]

    @property
    def liq_notional_short(self) -> float:
        return self.liq_notional_usd[1]


def model_values(m: ModelReadout, i: int) -> dict[str, float]:
    """Pair ``i``'s model outputs under the risk-record field names (monitor.core.riskrecord)."""
    lm = m.liqmap
    out = {
        "score": m.score[i], "branching_ratio": m.branching_ratio[i],
        "branching_ratio_lower": m.branching_ratio_lower[i],
        "branching_ratio_upper": m.branching_ratio_upper[i],
        "branching_ratio_exact": m.branching_ratio_exact[i],
        "n_struct": m.feedback[i], "liq_share": m.liq_share_60s[i],
        "liq_zscore": m.micro.liq_rate_z[i], "vpin": m.micro.vpin[i],
        "margin_stress_index": lm.msi[i], "drawdown": m.micro.drawdown[i],
        "expected_liquidations_usd": lm.expected_usd[i].sum(),
        "score_coverage": m.score_coverage[i], "liq_surge": m.surge[i],
        "liq_rate_60s": m.micro.liq_rate_60s[i],
    }  # fmt: skip
    for j, pct in enumerate(lm.levels_pct):
        if pct in (1.0, 2.0, 5.0):
            out[f"at_risk_long_{pct:g}pct"] = lm.at_risk_usd[i, 0, j]
            out[f"at_risk_short_{pct:g}pct"] = lm.at_risk_usd[i, 1, j]
    return {k: float(v) for k, v in out.items()}


class RiskRow(NamedTuple):
    exchange: str
    symbol: str
    values: dict[str, float]  # monitor.core.riskrecord FIELDS
    # the score components that drive it most, (name, weighted share), largest first; computed
    # when called (the alert rules ask only on a transition)
    drivers: Callable[[], list[tuple[str, float]]]
    components: F64 | None = None  # the score components, COMPONENTS order (NaN: undefined)


def risk_rows(r: Readout, limit: int, score_params: ScoreParams) -> list[RiskRow]:
    """The ``limit`` most active pairs' risk values (see the module docstring)."""
    h = r.horizons_s.index(60.0) if 60.0 in r.horizons_s else len(r.horizons_s) // 2
    out = []
    for i in r.ranked()[:limit]:
        values = fields_dict({
            "liq_rate_long_60s": r.liq_rate[i, 0, h],
            "liq_rate_short_60s": r.liq_rate[i, 1, h],
            "liq_rate_unknown_60s": r.liq_rate[i, 2, h],
            "trade_rate_60s": r.trd_rate[i, :, h].sum(),
            "open_interest_usd": r.context[i, CONTEXT_FIELDS.index("oi_usd")],
            "volatility": math.sqrt(r.variance[i]),
            **model_values(r.models, i),
        })  # fmt: skip
        top = functools.partial(drivers, score_params, r.models.components[i])
        out.append(RiskRow(r.keys[i][0], r.keys[i][1], values, top, r.models.components[i]))
    return out


def snapshots(r: Readout) -> list[PairSnapshot]:
    """Every pair of the read-out, most active first (see ``Readout.ranked``); the venue-wide
    row (symbol ``*``) is not a pair and is left out."""
    return [
        PairSnapshot(
            exchange=r.keys[i][0],
            symbol=r.keys[i][1],
            horizons_s=r.horizons_s,
            liq_rate_usd_s=tuple(tuple(float(x) for x in row) for row in r.liq_rate[i]),
            volatility=math.sqrt(float(r.variance[i])),  # NaN stays NaN
            last_price=float(r.last_price[i]),
            liq_notional_usd=tuple(float(x) for x in r.liq_notional[i]),
            liquidations=tuple(int(x) for x in r.liq_count[i]),
            trade_notional_usd=float(r.trd_notional[i]),
            trades=int(r.trd_count[i]),
            mark_price=float(r.context[i, 0]),
            funding_rate=float(r.context[i, 2]),
            open_interest_usd=float(r.context[i, 4]),
            score=float(r.models.score[i]),
            branching_ratio=float(r.models.branching_ratio[i]),
            n_struct=float(r.models.feedback[i]),
            vpin=float(r.models.micro.vpin[i]),
            margin_stress_index=float(r.models.liqmap.msi[i]),
        )
        for i in r.ranked()
        if r.keys[i][1] != VENUE_SYMBOL
    ]
