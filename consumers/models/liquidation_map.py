"""The estimated liquidation map (docs/risk-models.md §6): its parameters, per-pair state and read-out.
Pure module (numpy + numba).

The map is an ESTIMATE, built the way Coinglass, Hyblock and Kingfisher build their heatmaps: nobody
outside the exchange sees positions, so positions are inferred from flow and placed at the
liquidation price they would have. Read it as "where leveraged notional probably sits", not a count.

``LiqMapState`` owns the struct-of-arrays state (first axis = dense pair id; ``allocate``/``grow``),
checks dtypes and runs the kernels of three modules:

* ``liquidation_price``: where a position of a given entry price, leverage and notional is
  liquidated (tiered isolated margin), and the lattice bin of that level;
* ``liquidation_map_update``: per event, deposits from taker flow or open-interest increases,
  removal of the levels a trade crosses, decay, re-centring of the grid;
* ``margin_stress``: the read-outs (notional at risk, expected liquidations, MSI, density).

Memory per pair: ``16*n_bins + 145`` bytes, 9,745 B with the default grid (600 bins per side).
Slow reference: ``tests/consumers/models/liqmap_ref.py``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
import numpy.typing as npt

from consumers.models.jit import F64, I8, I32, I64, pair_rows
from consumers.models.liquidation_map_update import ACC_FIELDS, liqmap_oi, liqmap_trades
from consumers.models.margin_stress import liqmap_read


@dataclass(frozen=True, slots=True)
class LiqMapParams:
    """Liquidation-map configuration. Percent means 0.01 of natural log-price.

    Defaults: BTCUSDT notional tiers seen in 2021 (floors USD, MMR, max leverage); leverage buckets
    5/10/25/50/100x with equal weights (uncalibrated: Cheng et al. 2021 report ~60x average among
    *liquidated* BitMEX traders, which over-represents high leverage); 10 bins per % over +-30% with
    re-centring after a 5% move (so the 5x levels, ~22% away, stay on the grid); a 12 h half-life.
    """

    tier_floors_usd: tuple[float, ...] = (0.0, 50_000.0, 250_000.0, 1_000_000.0)
    tier_mmr: tuple[float, ...] = (0.004, 0.005, 0.01, 0.025)
    tier_max_leverage: tuple[float, ...] = (125.0, 100.0, 50.0, 20.0)
    use_maintenance_amount: bool = True  # False: cum = 0, the doc's short form
    leverages: tuple[float, ...] = (5.0, 10.0, 25.0, 50.0, 100.0)
    leverage_weights: tuple[float, ...] = (0.2, 0.2, 0.2, 0.2, 0.2)  # normalised to sum 1
    bins_per_pct: int = 10
    half_range_pct: float = 30.0  # grid half-width around its centre
    recentre_pct: float = 5.0  # re-centre once the price is further than this from the centre
    half_life_s: float = 43_200.0  # decay of all mass (positions get closed); inf: no decay
    imbalance_tau_s: float = 60.0  # taker buy/sell memory for splitting OI increases
    oi_position_usd: float = 10_000.0  # position notional that picks the tier of OI deposits
    max_event_usd: float = 1e13  # rows above this are rejected as corrupt
    at_risk_levels_pct: tuple[float, ...] = (1.0, 2.0, 5.0)
    density_window_pct: float = 1.0

    def __post_init__(self) -> None:
        for name in ("tier_floors_usd", "tier_mmr", "tier_max_leverage", "leverages",
                     "leverage_weights", "at_risk_levels_pct"):  # fmt: skip
            v = tuple(float(x) for x in getattr(self, name))
            if not v or not all(math.isfinite(x) for x in v):
                raise ValueError(f"{name} must be a non-empty sequence of finite numbers")
            object.__setattr__(self, name, v)
        fl, mmr, mx = self.tier_floors_usd, self.tier_mmr, self.tier_max_leverage
        if not len(fl) == len(mmr) == len(mx):
            raise ValueError("tier_floors_usd, tier_mmr and tier_max_leverage differ in length")
        if fl[0] != 0.0 or any(b <= a for a, b in itertools.pairwise(fl)):
            raise ValueError("tier_floors_usd must start at 0 and increase strictly")
        if any(not 0.0 < m < 1.0 for m in mmr) or any(b < a for a, b in itertools.pairwise(mmr)):
            raise ValueError("tier_mmr must be in (0, 1) and non-decreasing")
        if any(not (x >= 1.0 and x * m < 1.0) for x, m in zip(mx, mmr, strict=True)):
            raise ValueError("tier_max_leverage must be >= 1 with max_leverage*MMR < 1")
        if len(self.leverages) != len(self.leverage_weights):
            raise ValueError("leverages and leverage_weights differ in length")
        if any(x < 1.0 for x in self.leverages):
            raise ValueError("leverages must be >= 1")
        if any(w < 0.0 for w in self.leverage_weights) or sum(self.leverage_weights) <= 0.0:
            raise ValueError("leverage_weights must be >= 0 with a positive sum")
        if isinstance(self.bins_per_pct, bool) or not isinstance(self.bins_per_pct, int):
            raise ValueError("bins_per_pct must be an int")
        if not 1 <= self.bins_per_pct <= 1000:
            raise ValueError("bins_per_pct must be in [1, 1000]")
        if not (math.isfinite(self.half_range_pct) and 0.0 < self.half_range_pct <= 500.0):
            raise ValueError("half_range_pct must be in (0, 500]")
        if not (self.recentre_pct >= 0.0 and self.recentre_bins < self.n_bins // 2):
            raise ValueError("recentre_pct must be >= 0 and below half_range_pct")
        if not self.half_life_s > 0.0:  # inf allowed
            raise ValueError("half_life_s must be > 0 (inf: no decay)")
        for name in ("imbalance_tau_s", "oi_position_usd", "max_event_usd", "density_window_pct"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0.0):
                raise ValueError(f"{name} must be finite and > 0")
        if any(x <= 0.0 for x in self.at_risk_levels_pct):
            raise ValueError("at_risk_levels_pct must be > 0")

    @property
    def n_bins(self) -> int:
        """Bins per side: ``2*ceil(half_range_pct*bins_per_pct)``."""
        return 2 * math.ceil(self.half_range_pct * self.bins_per_pct)

    @property
    def bins_per_unit(self) -> float:
        """Bins per unit of ln P."""
        return 100.0 * self.bins_per_pct

    @property
    def recentre_bins(self) -> int:
        return round(self.recentre_pct * self.bins_per_pct)

    @property
    def decay_per_s(self) -> float:
        return math.log(2.0) / self.half_life_s

    @property
    def tier_cum_usd(self) -> tuple[float, ...]:
        """``cum_k = cum_{k-1} + floor_k*(MMR_k - MMR_{k-1})``, ``cum_0 = 0`` (USD)."""
        cum = [0.0]
        for k in range(1, len(self.tier_floors_usd)):
            cum.append(
                cum[-1] + self.tier_floors_usd[k] * (self.tier_mmr[k] - self.tier_mmr[k - 1])
            )
        return tuple(cum)

    def tiers(self) -> F64:
        """Kernel rows: floor USD, MMR, cum USD (0 without the maintenance amount), max leverage."""
        cum = self.tier_cum_usd if self.use_maintenance_amount else (0.0,) * len(self.tier_mmr)
        return np.array([self.tier_floors_usd, self.tier_mmr, cum, self.tier_max_leverage])

    def buckets(self) -> F64:
        """Kernel rows: leverage, weight (normalised)."""
        w = np.asarray(self.leverage_weights)
        return np.array([np.asarray(self.leverages), w / w.sum()])


class LiqMapReadout(NamedTuple):
    """Read-outs (row ``i``: pair ``rows[i]`` of the read); side LONG=0 / SHORT=1; USD unless
    stated."""

    now_s: float
    levels_pct: tuple[float, ...]
    price: F64  # [n], NaN before the first trade
    at_risk_usd: F64  # [n, 2, levels]
    expected_usd: F64  # [n, 2], E over the horizon
    density_usd_per_log: F64  # [n, 2], USD per unit ln P near the price
    msi: F64  # [n]
    totals_usd: F64  # [n, 2, ACC_FIELDS]


def _check(arr: npt.NDArray[np.generic], dtype: type[np.generic], name: str) -> None:
    if arr.dtype != dtype or arr.ndim != 1:
        raise TypeError(f"{name} must be a 1-d {np.dtype(dtype).name} array, got {arr.dtype}")


@dataclass(slots=True)
class LiqMapState:
    """Per-pair map state (struct of arrays, first axis = pair id), grown by copying."""

    params: LiqMapParams
    tiers: F64  # [4, tiers]
    buckets: F64  # [2, buckets]
    mass: F64  # [pairs, 2, n_bins], true mass = mass*scale
    scale: F64  # [pairs]
    anchor_k: I64  # [pairs], lattice index of bin 0
    price_k: I64  # [pairs], lattice index of the current price
    last_price: F64  # [pairs], NaN before the first trade
    t_last: F64  # [pairs], -inf before the first trade
    acc: F64  # [pairs, 2, ACC_FIELDS], as of t_last
    imb: F64  # [pairs, 2], decayed taker buy / sell notional
    oi_fed: I8  # [pairs], 1 once open interest was applied
    rejected: I64  # [pairs], screened-out rows

    PER_PAIR: ClassVar[tuple[str, ...]] = (
        "mass", "scale", "anchor_k", "price_k", "last_price", "t_last", "acc", "imb", "oi_fed",
        "rejected",
    )  # fmt: skip

    @classmethod
    def allocate(cls, n_pairs: int, params: LiqMapParams | None = None) -> LiqMapState:
        if n_pairs <= 0:
            raise ValueError("n_pairs must be positive")
        prm = params if params is not None else LiqMapParams()
        c, nb = n_pairs, prm.n_bins
        return cls(
            params=prm, tiers=prm.tiers(), buckets=prm.buckets(),
            mass=np.zeros((c, 2, nb)), scale=np.ones(c), anchor_k=np.zeros(c, np.int64),
            price_k=np.zeros(c, np.int64), last_price=np.full(c, np.nan),
            t_last=np.full(c, -np.inf), acc=np.zeros((c, 2, len(ACC_FIELDS))),
            imb=np.zeros((c, 2)), oi_fed=np.zeros(c, np.int8), rejected=np.zeros(c, np.int64),
        )  # fmt: skip

    @property
    def capacity(self) -> int:
        return int(self.mass.shape[0])

    @property
    def bytes_per_pair(self) -> int:
        return sum(int(getattr(self, f).nbytes) for f in self.PER_PAIR) // self.capacity

    def grow(self, n_pairs: int) -> None:
        """Grow to ``n_pairs`` (never shrinks); existing pairs keep their state."""
        old = self.capacity
        if n_pairs < old:
            raise ValueError(f"cannot shrink from {old} to {n_pairs} pairs")
        new = LiqMapState.allocate(n_pairs, self.params)
        for f in self.PER_PAIR:
            arr = getattr(new, f)
            arr[:old] = getattr(self, f)
            setattr(self, f, arr)

    def apply_trades(self, pair_id: I32, side: I8, t: F64, notional: F64, price: F64) -> int:
        """Trades (taker buy=0 / sell=1, time s, notional USD, price); returns rows rejected."""
        for a, d, nm in ((pair_id, np.int32, "pair_id"), (side, np.int8, "side"),
                         (t, np.float64, "t"), (notional, np.float64, "notional"),
                         (price, np.float64, "price")):  # fmt: skip
            _check(a, d, nm)
        prm = self.params
        return liqmap_trades(pair_id, side, t, notional, price, self.tiers, self.buckets,
                             prm.bins_per_unit, prm.recentre_bins, prm.decay_per_s,
                             prm.imbalance_tau_s, prm.max_event_usd, self.mass, self.scale,
                             self.anchor_k, self.price_k, self.last_price, self.t_last, self.acc,
                             self.imb, self.oi_fed, self.rejected)  # fmt: skip

    def apply_oi(self, pair_id: I32, t: F64, d_oi_usd: F64) -> int:
        """Open-interest changes in USD; returns rows rejected."""
        _check(pair_id, np.int32, "pair_id")
        _check(t, np.float64, "t")
        _check(d_oi_usd, np.float64, "d_oi_usd")
        prm = self.params
        return liqmap_oi(pair_id, t, d_oi_usd, self.tiers, self.buckets, prm.bins_per_unit,
                         prm.decay_per_s, prm.imbalance_tau_s, prm.max_event_usd,
                         prm.oi_position_usd, self.mass, self.scale, self.anchor_k, self.price_k,
                         self.last_price, self.t_last, self.acc, self.imb, self.oi_fed,
                         self.rejected)  # fmt: skip

    def read(
        self,
        now_s: float,
        sigma: F64,
        horizon_s: float,
        traded_usd: F64,
        rows: I64 | None = None,
    ) -> LiqMapReadout:
        """Read-outs at ``now_s`` of pairs ``rows`` (row ``i`` is pair ``rows[i]``; None: every
        pair in order; ``jit.pair_rows``, repeats allowed). ``sigma[i]`` per sqrt-second and
        ``traded_usd[i]`` over ``horizon_s`` are pair ``rows[i]``'s."""
        rows = pair_rows(rows, self.capacity)
        n = rows.shape[0]
        _check(sigma, np.float64, "sigma")
        _check(traded_usd, np.float64, "traded_usd")
        if sigma.shape[0] != n or traded_usd.shape[0] != n:
            raise ValueError("sigma and traded_usd need one value per pair of rows")
        prm = self.params
        lv = np.asarray(prm.at_risk_levels_pct)
        t_last = self.t_last[rows]
        out = LiqMapReadout(
            now_s, prm.at_risk_levels_pct, np.where(np.isfinite(t_last), self.last_price[rows],
            np.nan), np.empty((n, 2, lv.shape[0])), np.empty((n, 2)), np.empty((n, 2)),
            np.empty(n), np.empty((n, 2, len(ACC_FIELDS))),
        )  # fmt: skip
        liqmap_read(float(now_s), sigma, float(horizon_s), traded_usd, lv,
                    prm.density_window_pct, prm.bins_per_unit, prm.decay_per_s, self.mass,
                    self.scale, self.anchor_k, self.price_k, self.last_price, self.t_last,
                    self.acc, rows, out.at_risk_usd, out.expected_usd, out.density_usd_per_log,
                    out.msi, out.totals_usd)  # fmt: skip
        return out
