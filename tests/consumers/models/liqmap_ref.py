"""Slow, obvious pure-Python reference for consumers/models/liquidation_map*.py.

Every deposit part is kept as a position (lattice bin, deposit time, notional at that time); masses
are closed-form decays ``q*exp(-k*(T - t))``; crossing, re-centring and read-outs scan every
position. No lazy scale, no bin arrays, no invariants: the same rules stated the obvious way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from scipy.special import ndtr  # type: ignore[import-untyped]

from consumers.models.liquidation_map import LiqMapParams

LONG, SHORT = 0, 1


def ref_tier_cum(prm: LiqMapParams) -> list[float]:
    cum = [0.0]
    for k in range(1, len(prm.tier_floors_usd)):
        cum.append(cum[k - 1] + prm.tier_floors_usd[k] * (prm.tier_mmr[k] - prm.tier_mmr[k - 1]))
    return cum


def ref_liq_price(prm: LiqMapParams, side: int, ep: float, lev: float, notional: float) -> float:
    k = max(i for i, f in enumerate(prm.tier_floors_usd) if notional >= f)
    mmr = prm.tier_mmr[k]
    cum = ref_tier_cum(prm)[k] if prm.use_maintenance_amount else 0.0
    lev = min(lev, prm.tier_max_leverage[k])
    c = cum / notional if cum > 0.0 else 0.0
    if side == LONG:
        return ep * (1.0 - 1.0 / lev - c) / (1.0 - mmr)
    return ep * (1.0 + 1.0 / lev + c) / (1.0 + mmr)


@dataclass
class Pos:
    kb: int  # lattice bin: floor(ln(LP)*bins_per_unit)
    t: float  # deposit time
    q: float  # notional at time t


@dataclass
class PairRef:
    clock: float = -math.inf
    price: float = math.nan
    pk: int = 0  # lattice bin of the current price
    k0: int = 0  # lattice bin of grid bin 0
    oi_fed: bool = False
    rejected: int = 0
    alive: tuple[list[Pos], list[Pos]] = field(default_factory=lambda: ([], []))
    deposited: list[float] = field(default_factory=lambda: [0.0, 0.0])
    liquidated: list[float] = field(default_factory=lambda: [0.0, 0.0])
    dropped: list[float] = field(default_factory=lambda: [0.0, 0.0])
    decayed_removed: list[float] = field(default_factory=lambda: [0.0, 0.0])
    taker: list[tuple[int, float, float]] = field(default_factory=list)  # (side, t, q)


@dataclass
class Readout:
    held: list[float]
    decayed: list[float]
    bins: list[list[float]]  # [side][grid bin]
    at_risk: list[list[float]]  # [side][level]
    expected: list[float]
    density: list[float]
    msi: float


@dataclass
class LiqMapRef:
    prm: LiqMapParams
    n_pairs: int
    pairs: list[PairRef] = field(default_factory=list)
    n_rejected: int = 0

    def __post_init__(self) -> None:
        self.pairs = [PairRef() for _ in range(self.n_pairs)]
        self.k = math.log(2.0) / self.prm.half_life_s
        self.S = 100.0 * self.prm.bins_per_pct
        self.n = self.prm.n_bins
        w = self.prm.leverage_weights
        self.w = [x / sum(w) for x in w]

    # ---- removal ------------------------------------------------------------------------------

    def _remove(self, st: PairRef, side: int, pos: Pos, into: list[float]) -> None:
        """Remove a position at the pair's clock, its decay so far counted as decayed."""
        into[side] += pos.q * math.exp(-self.k * (st.clock - pos.t))
        st.decayed_removed[side] += pos.q * -math.expm1(-self.k * (st.clock - pos.t))

    def _liquidate_if(self, st: PairRef, side: int, crossed: Callable[[int], bool]) -> None:
        keep = []
        for pos in st.alive[side]:
            if crossed(pos.kb):
                self._remove(st, side, pos, st.liquidated)
            else:
                keep.append(pos)
        st.alive[side][:] = keep

    def _deposit(
        self, st: PairRef, side: int, q: float, t: float, ep: float, ev_k: int, n_usd: float
    ) -> None:
        st.deposited[side] += q
        for lev, w in zip(self.prm.leverages, self.w, strict=True):
            pos = Pos(0, t, q * w)
            lp = ref_liq_price(self.prm, side, ep, lev, n_usd)
            if not (math.isfinite(lp) and lp > 0.0):
                self._remove(st, side, pos, st.dropped)
                continue
            pos.kb = math.floor(math.log(lp) * self.S)
            if (side == LONG and pos.kb >= min(st.pk, ev_k)) or (
                side == SHORT and pos.kb <= max(st.pk, ev_k)
            ):
                self._remove(st, side, pos, st.liquidated)
            elif not st.k0 <= pos.kb < st.k0 + self.n:
                self._remove(st, side, pos, st.dropped)
            else:
                st.alive[side].append(pos)

    # ---- events -------------------------------------------------------------------------------

    def trade(self, p: int, side: int, t: float, q: float, px: float) -> None:
        if not 0 <= p < self.n_pairs:
            self.n_rejected += 1
            return
        st = self.pairs[p]
        ok = (math.isfinite(t) and side in (0, 1) and math.isfinite(q)
              and 0.0 <= q <= self.prm.max_event_usd and math.isfinite(px) and px > 0.0)  # fmt: skip
        if not ok:
            self.n_rejected += 1
            st.rejected += 1
            return
        kp = math.floor(math.log(px) * self.S)
        if st.clock == -math.inf:
            st.clock, st.price, st.pk, st.k0 = t, px, kp, kp - self.n // 2
        else:
            in_order = t >= st.clock
            st.clock = max(st.clock, t)
            self._liquidate_if(st, LONG, lambda kb: kb >= kp)
            self._liquidate_if(st, SHORT, lambda kb: kb <= kp)
            if in_order:
                st.price, st.pk = px, kp
                if abs(st.pk - (st.k0 + self.n // 2)) > self.prm.recentre_bins:
                    st.k0 = st.pk - self.n // 2
                    for s in (LONG, SHORT):
                        keep = []
                        for pos in st.alive[s]:
                            if st.k0 <= pos.kb < st.k0 + self.n:
                                keep.append(pos)
                            else:
                                self._remove(st, s, pos, st.dropped)
                        st.alive[s][:] = keep
        st.taker.append((side, t, q))
        if not st.oi_fed:
            self._deposit(st, side, q, t, px, kp, q)

    def oi(self, p: int, t: float, d: float) -> None:
        if not 0 <= p < self.n_pairs:
            self.n_rejected += 1
            return
        st = self.pairs[p]
        if not (math.isfinite(t) and math.isfinite(d) and abs(d) <= self.prm.max_event_usd) or (
            st.clock == -math.inf
        ):
            self.n_rejected += 1
            st.rejected += 1
            return
        st.oi_fed = True
        st.clock = max(st.clock, t)
        if d <= 0.0:
            return
        tau = self.prm.imbalance_tau_s
        flow = [0.0, 0.0]
        for s, ts, q in st.taker:
            flow[s] += q * math.exp(-(st.clock - ts) / tau)
        share = flow[0] / (flow[0] + flow[1]) if flow[0] + flow[1] > 1e-200 else 0.5
        self._deposit(st, LONG, d * share, t, st.price, st.pk, self.prm.oi_position_usd)
        self._deposit(st, SHORT, d - d * share, t, st.price, st.pk, self.prm.oi_position_usd)

    # ---- read-out -----------------------------------------------------------------------------

    def read(self, p: int, now: float, sigma: float, h: float, traded: float) -> Readout:
        st = self.pairs[p]
        at = max(now, st.clock)
        lv = self.prm.at_risk_levels_pct
        dw = self.prm.density_window_pct
        usable = math.isfinite(sigma) and sigma >= 0.0 and math.isfinite(h) and h >= 0.0
        sd = sigma * math.sqrt(h) if usable else 0.0
        out = Readout([0.0, 0.0], list(st.decayed_removed), [[0.0] * self.n, [0.0] * self.n],
                      [[0.0] * len(lv), [0.0] * len(lv)], [0.0, 0.0], [0.0, 0.0], math.nan)  # fmt: skip
        x = math.log(st.price) * self.S if st.clock > -math.inf else math.nan
        for s in (LONG, SHORT):
            near = 0.0
            for pos in st.alive[s]:
                amt = pos.q * math.exp(-self.k * (at - pos.t))
                out.held[s] += amt
                out.decayed[s] += pos.q * -math.expm1(-self.k * (at - pos.t))
                out.bins[s][pos.kb - st.k0] += amt
                d = (x - (float(pos.kb) + 0.5)) / self.S
                d = d if s == LONG else -d
                assert d > 0.0
                for j, level in enumerate(lv):
                    if d <= level / 100.0:
                        out.at_risk[s][j] += amt
                if d <= dw / 100.0:
                    near += amt
                if sd > 0.0:
                    out.expected[s] += amt * 2.0 * float(ndtr(-d / sd))
            out.density[s] = near / (dw / 100.0)
            if not usable:
                out.expected[s] = math.nan
        e = out.expected[0] + out.expected[1]
        out.msi = e / traded if math.isfinite(traded) and traded > 0.0 else math.nan
        return out
