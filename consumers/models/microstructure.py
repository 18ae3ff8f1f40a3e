"""Microstructure risk inputs per pair (docs/risk-models.md §1, §3, §4, §5): the six models' parameters,
per-pair state and read-out. Pure: numpy + numba only.

``MicroState`` owns the struct-of-arrays state (first axis = dense pair id ``p``;
``allocate``/``grow``) of six models and runs their kernels, each in a module of its own:

* ``flow``: the traded-notional rate, the liquidation imbalance and share (s1);
* ``baseline``: the 60 s liquidation rate's slow baseline and its z-score (s1);
* ``saturation``: the decayed fraction of 1 s slots with a liquidation (s1, coverage);
* ``kyle_lambda``: Kyle's lambda and the Amihud ratio (s3);
* ``vpin``: VPIN over equal-volume buckets (s4);
* ``bipower``: bipower variation, realized variance and the jump share (s5);
* ``drawdown``: drawdown and drawup from a decayed high and low (s5).

Kernels follow ``consumers.models.jit`` and cost O(1) per event (VPIN: at most ``n_buckets + 2``
loop turns for one trade); event time ``t`` is float64 seconds. Every kernel skips rows it cannot
use (``consumers.models.screening``), and ``apply_*`` count them in ``rejected[p]``; each model
handles out-of-order events as its module says, and counts those it ignores in ``late[p, LATE_*]``.
``MicroParams`` holds the documented defaults. Slow, obvious references for every kernel are in
``tests/consumers/models/microstructure_ref.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from consumers.models.baseline import baseline_at, baseline_update
from consumers.models.bipower import bipower_at, bipower_update
from consumers.models.drawdown import drawdown_at, drawdown_update
from consumers.models.flow import (
    imbalance_at,
    liq_share_at,
    notional_rate_update,
    notional_rates_at,
)
from consumers.models.jit import F64, I8, I32, I64, NO_INTERVAL, pair_rows
from consumers.models.kyle_lambda import kyle_at, kyle_update
from consumers.models.saturation import saturation_at, saturation_update
from consumers.models.screening import MAX_NOTIONAL_USD, N_LATE, screen_events, start_clocks
from consumers.models.vpin import MIN_BUCKET_USD, vpin_at, vpin_update

MIN_INTERVAL_S: Final = 1e-3  # smallest bucket/slot/sampling interval accepted by MicroParams


@dataclass(frozen=True, slots=True)
class MicroParams:
    """Model constants; times in seconds, sizes in USD. Defaults in brackets.

    horizons_s: traded-notional rate horizons, equal to ``RiskState.horizons_s`` [10, 60, 300].
    baseline_horizon_s: the liquidation rate the baseline follows [60]; baseline_sample_s: its
    sampling interval [10]; baseline_tau_s: EW time constant of mean and variance [86400];
    baseline_warmup_s: sampled time before a z-score is given [3600].
    saturation_slot_s: slot length [1]; saturation_tau_s: EW time constant over slots [60].
    kyle_bucket_s: time bucket [1]; kyle_tau_s: EW time constant [300]; kyle_min_buckets:
    observations before lambda is given [30].
    vpin_n_buckets: ring length [50]; vpin_bucket_usd: default bucket size, 0 = auto [0];
    vpin_auto_span_s: auto mode's rate time constant and span covered by the ring [3600];
    vpin_auto_warmup_s: trading time before auto buckets open [900].
    bv_interval_s: return interval [5]; bv_tau_s: decay time constant [900]; bv_min_returns:
    returns before a jump share is given [30].
    drawdown_tau_s: relaxation time constant of the decayed high and low [3600].
    """

    horizons_s: tuple[float, ...] = (10.0, 60.0, 300.0)
    baseline_horizon_s: float = 60.0
    baseline_sample_s: float = 10.0
    baseline_tau_s: float = 86_400.0
    baseline_warmup_s: float = 3_600.0
    saturation_slot_s: float = 1.0
    saturation_tau_s: float = 60.0
    kyle_bucket_s: float = 1.0
    kyle_tau_s: float = 300.0
    kyle_min_buckets: int = 30
    vpin_n_buckets: int = 50
    vpin_bucket_usd: float = 0.0
    vpin_auto_span_s: float = 3_600.0
    vpin_auto_warmup_s: float = 900.0
    bv_interval_s: float = 5.0
    bv_tau_s: float = 900.0
    bv_min_returns: int = 30
    drawdown_tau_s: float = 3_600.0

    def __post_init__(self) -> None:
        hs = self.horizons_s
        if not hs or not all(isinstance(h, int | float) and math.isfinite(h) and h > 0 for h in hs):
            raise ValueError(
                f"horizons_s must be a non-empty tuple of finite values > 0, got {hs!r}"
            )
        for name in ("baseline_sample_s", "saturation_slot_s", "kyle_bucket_s", "bv_interval_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= MIN_INTERVAL_S):
                raise ValueError(f"{name} must be finite and >= {MIN_INTERVAL_S} s, got {v!r}")
        for name in ("baseline_horizon_s", "baseline_tau_s", "saturation_tau_s", "kyle_tau_s",
                     "vpin_auto_span_s", "bv_tau_s", "drawdown_tau_s"):  # fmt: skip
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be finite and > 0, got {v!r}")
        for name in ("baseline_warmup_s", "vpin_auto_warmup_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {v!r}")
        if not self.baseline_tau_s >= 2 * self.baseline_horizon_s:
            raise ValueError(
                f"baseline_tau_s ({self.baseline_tau_s}) must be >= 2 * baseline_horizon_s "
                f"({self.baseline_horizon_s}): the baseline must be slower than the rate it follows"
            )
        for name, lo in (("kyle_min_buckets", 2), ("vpin_n_buckets", 1), ("bv_min_returns", 2)):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= lo):
                raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
        v = self.vpin_bucket_usd
        if not (v == 0 or (math.isfinite(v) and MIN_BUCKET_USD <= v <= MAX_NOTIONAL_USD)):
            raise ValueError(
                f"vpin_bucket_usd must be 0 (auto) or in [{MIN_BUCKET_USD}, {MAX_NOTIONAL_USD}] "
                f"USD, got {v!r}"
            )


def _empty_i64(n: int) -> I64:
    return np.zeros(n, dtype=np.int64)


@dataclass(slots=True, eq=False)
class MicroState:
    """Per-pair arrays (first axis = pair id), allocated by ``allocate``, enlarged by ``grow``.

    Inputs of ``apply_*`` are any rows; unusable ones are counted in ``rejected[p]`` (or returned,
    for pair ids outside the arrays) and never applied.
    """

    params: MicroParams
    tau: F64 = field(default_factory=lambda: np.empty(0))
    # traded notional (both taker sides)
    trd_rate: F64 = field(default_factory=lambda: np.empty((0, 0)))
    trd_t: F64 = field(default_factory=lambda: np.empty(0))
    # baseline of the 60 s liquidation rate
    bl_rate: F64 = field(default_factory=lambda: np.empty(0))
    bl_t: F64 = field(default_factory=lambda: np.empty(0))
    bl_k: I64 = field(default_factory=lambda: _empty_i64(0))
    bl_w: F64 = field(default_factory=lambda: np.empty(0))
    bl_m1: F64 = field(default_factory=lambda: np.empty(0))
    bl_m2: F64 = field(default_factory=lambda: np.empty(0))
    bl_n: I64 = field(default_factory=lambda: _empty_i64(0))
    # saturation
    sat_f: F64 = field(default_factory=lambda: np.empty(0))
    sat_k_last: I64 = field(default_factory=lambda: _empty_i64(0))
    sat_k_first: I64 = field(default_factory=lambda: _empty_i64(0))
    sat_bits: I64 = field(default_factory=lambda: _empty_i64(0))
    # Kyle
    ky_k: I64 = field(default_factory=lambda: _empty_i64(0))
    ky_l0: F64 = field(default_factory=lambda: np.empty(0))
    ky_l1: F64 = field(default_factory=lambda: np.empty(0))
    ky_t1: F64 = field(default_factory=lambda: np.empty(0))
    ky_s: F64 = field(default_factory=lambda: np.empty(0))
    ky_v: F64 = field(default_factory=lambda: np.empty(0))
    ky_k_obs: I64 = field(default_factory=lambda: _empty_i64(0))
    ky_w: F64 = field(default_factory=lambda: np.empty(0))
    ky_mx: F64 = field(default_factory=lambda: np.empty(0))
    ky_my: F64 = field(default_factory=lambda: np.empty(0))
    ky_cxx: F64 = field(default_factory=lambda: np.empty(0))
    ky_cxy: F64 = field(default_factory=lambda: np.empty(0))
    ky_am: F64 = field(default_factory=lambda: np.empty(0))
    ky_n: I64 = field(default_factory=lambda: _empty_i64(0))
    # VPIN
    vp_size: F64 = field(default_factory=lambda: np.empty(0))
    vp_cur: F64 = field(default_factory=lambda: np.empty(0))
    vp_fill: F64 = field(default_factory=lambda: np.empty(0))
    vp_buy: F64 = field(default_factory=lambda: np.empty(0))
    vp_sell: F64 = field(default_factory=lambda: np.empty(0))
    vp_imb: F64 = field(default_factory=lambda: np.empty((0, 0)))
    vp_vol: F64 = field(default_factory=lambda: np.empty((0, 0)))
    vp_n: I64 = field(default_factory=lambda: _empty_i64(0))
    vp_rate: F64 = field(default_factory=lambda: np.empty(0))
    vp_rt: F64 = field(default_factory=lambda: np.empty(0))
    vp_t0: F64 = field(default_factory=lambda: np.empty(0))
    # bipower / realized variance
    bv_k: I64 = field(default_factory=lambda: _empty_i64(0))
    bv_l0: F64 = field(default_factory=lambda: np.empty(0))
    bv_l1: F64 = field(default_factory=lambda: np.empty(0))
    bv_t1: F64 = field(default_factory=lambda: np.empty(0))
    bv_prev: F64 = field(default_factory=lambda: np.empty(0))
    bv_bv: F64 = field(default_factory=lambda: np.empty(0))
    bv_rv: F64 = field(default_factory=lambda: np.empty(0))
    bv_tref: F64 = field(default_factory=lambda: np.empty(0))
    bv_n: I64 = field(default_factory=lambda: _empty_i64(0))
    # drawdown
    dd_lp: F64 = field(default_factory=lambda: np.empty(0))
    dd_t: F64 = field(default_factory=lambda: np.empty(0))
    dd_lhi: F64 = field(default_factory=lambda: np.empty(0))
    dd_llo: F64 = field(default_factory=lambda: np.empty(0))
    # counters
    rejected: I64 = field(default_factory=lambda: _empty_i64(0))
    late: I64 = field(default_factory=lambda: np.zeros((0, N_LATE), dtype=np.int64))
    # False: the caller keeps the traded notional rate and passes it to read() (trd_rate_at)
    own_traded_rate: bool = True

    def _layout(self) -> dict[str, tuple[tuple[int, ...], Any, float]]:
        """Per-pair array name -> (trailing shape, dtype, initial value)."""
        pr = self.params
        f64, i64 = np.float64, np.int64
        nh, nb = len(pr.horizons_s), pr.vpin_n_buckets
        lay: dict[str, tuple[tuple[int, ...], Any, float]] = {}
        for f in fields(self):
            if f.name in ("params", "tau", "own_traded_rate"):
                continue
            dtype = i64 if f.type == "I64" else f64
            lay[f.name] = ((), dtype, NO_INTERVAL if f.name.endswith("_k") else 0.0)
        lay["trd_rate"] = ((nh,), f64, 0.0)
        lay["vp_imb"] = lay["vp_vol"] = ((nb,), f64, 0.0)
        lay["late"] = ((N_LATE,), i64, 0)
        for name in ("sat_k_last", "sat_k_first", "ky_k_obs"):
            lay[name] = ((), i64, NO_INTERVAL)
        for name in ("trd_t", "bl_t", "ky_t1", "vp_rt", "bv_t1", "bv_tref", "dd_t"):
            lay[name] = ((), f64, -math.inf)
        for name in ("ky_l0", "bv_l0", "bv_prev", "dd_lp"):
            lay[name] = ((), f64, math.nan)
        lay["vp_t0"] = ((), f64, math.inf)
        lay["vp_size"] = ((), f64, pr.vpin_bucket_usd)
        return lay

    @classmethod
    def allocate(cls, n_pairs: int, params: MicroParams) -> MicroState:
        """Arrays for ``n_pairs`` pairs (>= 0), every pair in its initial state."""
        if n_pairs < 0:
            raise ValueError(f"n_pairs must be >= 0, got {n_pairs}")
        st = cls(params=params, tau=np.asarray(params.horizons_s, dtype=np.float64))
        for name, (shape, dtype, init) in st._layout().items():
            setattr(st, name, np.full((n_pairs, *shape), init, dtype=dtype))
        return st

    @property
    def capacity(self) -> int:
        return int(self.rejected.shape[0])

    def grow(self, n_pairs: int) -> None:
        """Enlarge every array to ``n_pairs`` pairs (never shrinks); existing pairs keep state."""
        old = self.capacity
        if n_pairs <= old:
            return
        for name, (shape, dtype, init) in self._layout().items():
            arr = np.full((n_pairs, *shape), init, dtype=dtype)
            arr[:old] = getattr(self, name)
            setattr(self, name, arr)

    def set_bucket_usd(self, pair_id: int, size_usd: float) -> None:
        """VPIN bucket size for one pair from its next bucket on (0 = auto)."""
        if not (
            size_usd == 0
            or (math.isfinite(size_usd) and MIN_BUCKET_USD <= size_usd <= MAX_NOTIONAL_USD)
        ):
            raise ValueError(
                f"bucket size must be 0 (auto) or in [{MIN_BUCKET_USD}, {MAX_NOTIONAL_USD}] USD"
            )
        self.vp_size[pair_id] = size_usd

    @staticmethod
    def _check(pair_id: I32, *cols: npt.NDArray[Any]) -> None:
        if pair_id.dtype != np.int32:
            raise TypeError(f"pair ids must be int32, got {pair_id.dtype}")
        for c in cols:
            if c.shape != pair_id.shape:
                raise ValueError("columns must have the pair ids' shape")

    def apply_liquidations(self, pair_id: I32, t: F64, notional: F64) -> int:
        """Apply liquidations (any side) in arrival order; returns the rows applied."""
        self._check(pair_id, t, notional)
        for c in (t, notional):
            if c.dtype != np.float64:
                raise TypeError(f"expected float64 arrays, got {c.dtype}")
        ok = np.empty(t.shape[0], dtype=np.bool_)
        e8, e = np.empty(0, np.int8), np.empty(0)
        if screen_events(pair_id, t, e8, notional, e, ok, self.rejected):
            pair_id, t, notional = pair_id[ok], t[ok], notional[ok]
        pr = self.params
        start_clocks(
            pair_id, t, pr.baseline_sample_s, self.bl_k, pr.saturation_slot_s, self.sat_k_first
        )
        baseline_update(pair_id, t, notional, pr.baseline_sample_s, pr.baseline_horizon_s,
                        pr.baseline_tau_s, self.bl_rate, self.bl_t, self.bl_k, self.bl_w,
                        self.bl_m1, self.bl_m2, self.bl_n)  # fmt: skip
        saturation_update(pair_id, t, notional, pr.saturation_slot_s, pr.saturation_tau_s,
                          self.sat_f, self.sat_k_last, self.sat_k_first, self.sat_bits,
                          self.late)  # fmt: skip
        return int(t.shape[0])

    def apply_trades(self, pair_id: I32, t: F64, side: I8, notional: F64, price: F64) -> int:
        """Apply trades (taker side buy=0 / sell=1) in arrival order; returns the rows applied."""
        self._check(pair_id, t, side, notional, price)
        if side.dtype != np.int8:
            raise TypeError(f"side codes must be int8, got {side.dtype}")
        for c in (t, notional, price):
            if c.dtype != np.float64:
                raise TypeError(f"expected float64 arrays, got {c.dtype}")
        ok = np.empty(t.shape[0], dtype=np.bool_)
        if screen_events(pair_id, t, side, notional, price, ok, self.rejected):
            pair_id, t, side, notional, price = (
                pair_id[ok],
                t[ok],
                side[ok],
                notional[ok],
                price[ok],
            )
        pr = self.params
        start_clocks(
            pair_id, t, pr.baseline_sample_s, self.bl_k, pr.saturation_slot_s, self.sat_k_first
        )
        if self.own_traded_rate:
            notional_rate_update(pair_id, t, notional, self.tau, self.trd_rate, self.trd_t)
        kyle_update(pair_id, side, t, notional, price, pr.kyle_bucket_s, pr.kyle_tau_s, self.ky_k,
                    self.ky_l0, self.ky_l1, self.ky_t1, self.ky_s, self.ky_v, self.ky_k_obs,
                    self.ky_w, self.ky_mx, self.ky_my, self.ky_cxx, self.ky_cxy, self.ky_am,
                    self.ky_n, self.late)  # fmt: skip
        vpin_update(pair_id, side, t, notional, pr.vpin_auto_span_s, pr.vpin_auto_warmup_s,
                    self.vp_size, self.vp_cur, self.vp_fill, self.vp_buy, self.vp_sell,
                    self.vp_imb, self.vp_vol, self.vp_n, self.vp_rate, self.vp_rt,
                    self.vp_t0)  # fmt: skip
        bipower_update(pair_id, t, price, pr.bv_interval_s, pr.bv_tau_s, self.bv_k, self.bv_l0,
                       self.bv_l1, self.bv_t1, self.bv_prev, self.bv_bv, self.bv_rv,
                       self.bv_tref, self.bv_n, self.late)  # fmt: skip
        drawdown_update(pair_id, t, price, pr.drawdown_tau_s, self.dd_lp, self.dd_t, self.dd_lhi,
                        self.dd_llo, self.late)  # fmt: skip
        return int(t.shape[0])

    def read(
        self, now_s: float, rows: I64 | None, liq_rate_at: F64, trd_rate_at: F64 | None = None
    ) -> MicroReadout:
        """Values at ``now_s`` of pairs ``rows`` (row ``i`` is pair ``rows[i]``; None: every pair
        in order; ``jit.pair_rows``, repeats allowed).

        ``liq_rate_at[i, side, h]``: pair ``rows[i]``'s liquidation rates (long=0, short=1,
        unknown=2) decayed to ``now_s`` over ``params.horizons_s``, as ``flow.flow_rates_at``
        writes them. ``trd_rate_at[i, h]``: its traded notional rates at ``now_s``, when the caller
        keeps them (``own_traded_rate = False``: RiskState already decays traded notional per taker
        side, so the trades need not pay for it twice); by default the state's own.
        """
        pr = self.params
        rows = pair_rows(rows, self.capacity)
        n, nh = rows.shape[0], len(self.tau)
        if liq_rate_at.ndim != 3 or liq_rate_at.shape[0] != n or liq_rate_at.shape[2] != nh:
            raise ValueError("liq_rate_at must be [len(rows), sides, len(horizons_s)]")
        imb, share = np.empty((n, nh)), np.empty((n, nh))
        if trd_rate_at is None:
            if not self.own_traded_rate:
                raise ValueError("own_traded_rate is off: pass trd_rate_at")
            trd = np.empty((n, nh))
            notional_rates_at(now_s, self.tau, self.trd_rate, self.trd_t, rows, trd)
        else:
            if trd_rate_at.shape != (n, nh):
                raise ValueError("trd_rate_at must be [len(rows), len(horizons_s)]")
            trd = trd_rate_at
        imbalance_at(liq_rate_at, rows, imb)
        liq_share_at(liq_rate_at, trd, rows, share)
        x, mean, sd, z, sat = (np.empty(n) for _ in range(5))
        baseline_at(now_s, pr.baseline_sample_s, pr.baseline_horizon_s, pr.baseline_tau_s,
                    pr.baseline_warmup_s, self.bl_rate, self.bl_t, self.bl_k, self.bl_w,
                    self.bl_m1, self.bl_m2, self.bl_n, rows, x, mean, sd, z)  # fmt: skip
        saturation_at(now_s, pr.saturation_slot_s, pr.saturation_tau_s, self.sat_f,
                      self.sat_k_last, self.sat_k_first, rows, sat)  # fmt: skip
        lam, ami, vpin, size = (np.empty(n) for _ in range(4))
        kyle_at(now_s, pr.kyle_bucket_s, pr.kyle_tau_s, pr.kyle_min_buckets, self.ky_k, self.ky_l0,
                self.ky_l1, self.ky_s, self.ky_v, self.ky_k_obs, self.ky_w, self.ky_mx, self.ky_my,
                self.ky_cxx, self.ky_cxy, self.ky_am, self.ky_n, rows, lam, ami)  # fmt: skip
        vpin_at(pr.vpin_auto_span_s, pr.vpin_auto_warmup_s, self.vp_size, self.vp_cur,
                self.vp_imb, self.vp_vol, self.vp_n, self.vp_rate, self.vp_rt, self.vp_t0, rows,
                vpin, size)  # fmt: skip
        bv, rv, jump, down, up = (np.empty(n) for _ in range(5))
        bipower_at(now_s, pr.bv_interval_s, pr.bv_tau_s, pr.bv_min_returns, self.bv_k, self.bv_l0,
                   self.bv_l1, self.bv_prev, self.bv_bv, self.bv_rv, self.bv_tref, self.bv_n, rows,
                   bv, rv, jump)  # fmt: skip
        drawdown_at(now_s, pr.drawdown_tau_s, self.dd_lp, self.dd_t, self.dd_lhi, self.dd_llo,
                    rows, down, up)  # fmt: skip
        return MicroReadout(
            now_s=now_s, horizons_s=pr.horizons_s, trd_rate=trd, imbalance=imb, liq_share=share,
            liq_rate_60s=x, baseline_mean=mean, baseline_sd=sd, liq_rate_z=z, saturation=sat,
            kyle_lambda=lam, amihud=ami, vpin=vpin, vpin_bucket_usd=size, bipower=bv,
            realized_var=rv, jump_share=jump, drawdown=down, drawup=up,
            rejected=self.rejected[rows], late=self.late[rows],
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class MicroReadout:
    """Per-pair values at ``now_s`` (row ``i``: pair ``rows[i]``). NaN where not defined yet."""

    now_s: float
    horizons_s: tuple[float, ...]
    trd_rate: F64  # [n, h] traded notional rate, USD/s
    imbalance: F64  # [n, h] (L_long - L_short)/(L_long + L_short), in [-1, 1]
    liq_share: F64  # [n, h] liquidation rate / traded rate (not clipped)
    liq_rate_60s: F64  # [n] total liquidation rate over baseline_horizon_s, USD/s
    baseline_mean: F64  # [n] USD/s
    baseline_sd: F64  # [n] USD/s
    liq_rate_z: F64  # [n] (liq_rate_60s - mean)/sd
    saturation: F64  # [n] decayed fraction of 1 s slots with a liquidation, [0, 1]
    kyle_lambda: F64  # [n] log-return per sqrt(USD) of signed taker flow
    amihud: F64  # [n] |log-return| per USD traded, per bucket
    vpin: F64  # [n] in [0, 1]
    vpin_bucket_usd: F64  # [n] size of the open (or next) VPIN bucket, USD
    bipower: F64  # [n] decayed BV, variance per second
    realized_var: F64  # [n] decayed RV, variance per second
    jump_share: F64  # [n] max(0, 1 - BV/RV)
    drawdown: F64  # [n] 1 - P/decayed high, [0, 1]
    drawup: F64  # [n] 1 - decayed low/P, [0, 1]
    rejected: I64  # [n] unusable rows seen
    late: I64  # [n, N_LATE] late events ignored per model (LATE_* columns)
