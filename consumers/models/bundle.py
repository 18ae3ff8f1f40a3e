"""The risk models of docs/risk-models.md §1-§7 per pair, behind one small interface for ``RiskState``.

``Models`` owns the model states (struct-of-arrays indexed by the dense pair id that
``RiskState`` assigns), grown on demand (doubling, up to the state's capacity) so memory follows the
pairs actually seen:

* ``consumers.models.microstructure`` (s1 flow extras, s3 Kyle's lambda, s4 VPIN, s5
  bipower/drawdown);
* ``consumers.models.hawkes`` (s2: online intensity per event, a rolling-window MLE refit per tick)
  and ``consumers.models.sampled_series`` (s2.5: the sampling-aware branching ratio with its
  interval, refit per tick from the same event buffer, each pair read as its coverage says);
* ``consumers.models.liquidation_map`` (s6: the estimated liquidation map, deposits from taker flow
  or, once a venue publishes open interest, from its increases);
* ``consumers.models.score`` (s7: the composite score, with ranks of VPIN and volatility kept per
  tick).

Per event (``apply``): liquidations go to the Hawkes buffer and the flow extras; trades go to the
flow extras, Kyle, VPIN, bipower, drawdown and the map. Per tick (``maintain``, every
``refit_interval_s`` of the consumer): Hawkes refits (exact and sampling-aware) and the rank
histories. Read-out (``read``): every model at one ``now``, plus

* the branching ratio (s2): ``branching_ratio`` with ``branching_ratio_lower``/``_upper`` is the
  sampling-aware estimate (NaN below its 20 non-empty seconds), what the score and the risk record
  use; ``branching_ratio_exact`` the continuous-time MLE (NaN below ``min_events``), right on a
  complete feed and biased low on a sampled one;
* ``n_struct`` (s3) = ``feedback_ratio(lambda_K, l, 1%)``: Kyle's lambda (log-return per sqrt USD
  of signed taker flow) times the map's liquidation density (USD per unit log move) in the
  direction of the move, at a 1% move (``consumers.models.feedback``); ``down`` uses the long
  levels below the price, ``up`` the short levels above; the score takes the larger;
* the margin stress expectation and MSI over ``stress_horizon_s`` (300 s by default), with the
  EWMA volatility per sqrt-second and the traded notional over the same horizon (the 300 s decayed
  rate x 300 s);
* the score components and the score.

Both ``maintain`` and ``read`` take ``rows``, the pair ids they cover (``jit.pair_rows``; None:
every pair given), at a cost proportional to ``len(rows)``: an event-time caller reads or maintains
one pair at its own tick. A pair's values never depend on which other pairs are read with it.

Not thread-safe: ``RiskState`` calls everything under its lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np
import numpy.typing as npt

from consumers.models.feedback import structural_feedback
from consumers.models.hawkes import HawkesParams, HawkesReadout, HawkesState
from consumers.models.jit import I64, pair_rows
from consumers.models.liquidation_map import LiqMapParams, LiqMapReadout, LiqMapState
from consumers.models.microstructure import MicroParams, MicroReadout, MicroState
from consumers.models.sampled_hawkes import OBS_COUNTS, SampledParams
from consumers.models.sampled_series import SampledHawkesState, SampledReadout
from consumers.models.score import RankState, ScoreParams, components, score
from consumers.models.surge import SurgeParams, surge
from monitor.core.config import RiskConfig

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]

INITIAL_PAIRS: Final = 16
SAMPLING_S: Final = 1.0  # the sampled venues' window, the sampling-aware fit's bin


@dataclass(frozen=True)
class ModelParams:
    hawkes: HawkesParams = field(default_factory=HawkesParams)
    micro: MicroParams = field(default_factory=MicroParams)
    liqmap: LiqMapParams = field(default_factory=LiqMapParams)
    score: ScoreParams = field(default_factory=ScoreParams)
    stress_horizon_s: float = 300.0
    sampled: SampledParams = field(default_factory=SampledParams)  # its window: hawkes.window_s
    surge: SurgeParams = field(default_factory=SurgeParams)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.stress_horizon_s) and self.stress_horizon_s > 0):
            raise ValueError("stress_horizon_s must be finite and > 0")

    @classmethod
    def from_config(cls, r: RiskConfig) -> ModelParams:
        """The parameters a ``[risk]`` config section sets; ValueError names a bad one."""
        w = r.score_weights  # in COMPONENTS order
        return cls(
            hawkes=HawkesParams(window_s=r.hawkes_window_s, min_events=r.hawkes_min_events,
                                baseline_step=r.hawkes_baseline_step),
            micro=MicroParams(vpin_bucket_usd=r.vpin_bucket_usd,
                              vpin_auto_warmup_s=r.vpin_warmup_s,
                              baseline_warmup_s=r.baseline_warmup_s),
            liqmap=LiqMapParams(leverages=r.map_leverages,
                                leverage_weights=r.map_leverage_weights,
                                half_life_s=r.map_half_life_s),
            score=replace(ScoreParams(), w_branching=w[0], w_feedback=w[1], w_liq_zscore=w[2],
                          w_liq_share=w[3], w_vpin=w[4], w_volatility=w[5],
                          w_margin_stress=w[6], w_surge=w[7],
                          calib_intercept=r.score_calibration[0],
                          calib_slope=r.score_calibration[1], warning=r.score_warning,
                          critical=r.score_critical),
            stress_horizon_s=r.stress_horizon_s,
            sampled=SampledParams(baseline_step=r.hawkes_baseline_step),
            surge=SurgeParams(floor_usd_s=r.surge_floor_usd_s,
                              floor_venue_usd_s=r.surge_floor_venue_usd_s),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ModelReadout:
    """Row ``i`` of every array is pair ``rows[i]`` of the read."""

    hawkes: HawkesReadout  # the exact fit (its branching_ratio is branching_ratio_exact)
    sampled: SampledReadout  # the sampling-aware fit (branching_ratio and its interval)
    micro: MicroReadout
    liqmap: LiqMapReadout
    n_struct: F64  # [n, 2]: down (long levels below), up (short levels above)
    feedback: F64  # [n]: the larger of the two, what the score and the risk record use
    liq_share_60s: F64  # [n]: the liquidation share over 60 s (the score's horizon)
    vpin_rank: F64  # [n]
    vol_rank: F64  # [n]
    components: F64  # [n, len(COMPONENTS)] in [0, 1], NaN where undefined
    score: F64  # [n] in [0, 1]
    score_coverage: F64  # [n] in [0, 1]: the share of the score's weight that is defined
    surge: F64  # [n]: the liquidation-flow surge (docs/risk-models.md §9)

    @property
    def branching_ratio(self) -> F64:
        """[n]: the sampling-aware branching ratio (docs/risk-models.md §2.5), NaN if undefined."""
        return self.sampled.branching_ratio

    @property
    def branching_ratio_lower(self) -> F64:
        """[n]: the lower end of its 90 % interval."""
        return self.sampled.branching_ratio_lower

    @property
    def branching_ratio_upper(self) -> F64:
        """[n]: the upper end of its 90 % interval."""
        return self.sampled.branching_ratio_upper

    @property
    def branching_ratio_exact(self) -> F64:
        """[n]: the continuous-time MLE's (docs/risk-models.md §2.2), NaN if undefined."""
        return self.hawkes.branching_ratio


class Models:
    def __init__(self, capacity: int, horizons_s: tuple[float, ...], params: ModelParams) -> None:
        if params.micro.horizons_s != horizons_s:
            params = replace(params, micro=_with_horizons(params.micro, horizons_s))
        self.params = params
        self.capacity = capacity
        self.horizons_s = horizons_s
        n = min(capacity, INITIAL_PAIRS)
        self.hawkes = HawkesState.allocate(n, params.hawkes)
        n_bins = max(2, round(params.hawkes.window_s / SAMPLING_S))
        self.sampled = SampledHawkesState.allocate(n, params.sampled, n_bins, SAMPLING_S)
        self.micro = MicroState.allocate(n, params.micro)
        self.micro.own_traded_rate = False  # RiskState keeps the traded rates (trd_rate)
        self.liqmap = LiqMapState.allocate(n, params.liqmap)
        sp = params.score
        self.vpin_hist = RankState(n, sp.rank_tau_s, sp.rank_min_samples)
        self.vol_hist = RankState(n, sp.rank_tau_s, sp.rank_min_samples)
        self.oi_usd = np.full(n, np.nan)  # last open interest applied to the map, per pair
        self.venue_row = np.zeros(n, np.bool_)  # the venue-wide row (symbol "*"), not a pair
        self.allocated = n
        self._h_long = horizons_s.index(max(horizons_s))
        self.h60 = horizons_s.index(60.0) if 60.0 in horizons_s else self._h_long

    # ---- sizes -------------------------------------------------------------------------------

    def ensure(self, n_pairs: int) -> None:
        """Room for pair ids below ``n_pairs`` (doubling, capped at the capacity)."""
        if n_pairs <= self.allocated:
            return
        n = self.allocated
        while n < n_pairs:
            n *= 2
        n = min(n, self.capacity)
        self.hawkes.grow(n)
        self.sampled.grow(n)
        self.micro.grow(n)
        self.liqmap.grow(n)
        self.vpin_hist.grow(n)
        self.vol_hist.grow(n)
        self.oi_usd = np.concatenate((self.oi_usd, np.full(n - self.allocated, np.nan)))
        self.venue_row = np.concatenate((self.venue_row, np.zeros(n - self.allocated, np.bool_)))
        self.allocated = n

    @property
    def bytes_per_pair(self) -> int:
        """Model state per pair (every per-pair array, over the pairs allocated)."""
        total = 0
        for obj in (self.hawkes, self.micro, self.liqmap, self.vpin_hist, self.vol_hist):
            for name in dir(obj):
                a = getattr(obj, name, None)
                if isinstance(a, np.ndarray) and a.ndim and a.shape[0] == self.allocated:
                    total += a.nbytes
        total += self.oi_usd.nbytes + self.venue_row.nbytes
        return total // self.allocated + self.sampled.bytes_per_pair

    # ---- updates -----------------------------------------------------------------------------

    def apply(
        self, liq_pid: I32, liq_t: F64, liq_q: F64,
        trd_pid: I32, trd_t: F64, trd_side: I8, trd_q: F64, trd_px: F64,
    ) -> None:  # fmt: skip
        """Screened, in-tolerance rows of one record (``RiskState`` screens them first)."""
        if liq_pid.size:
            self.hawkes.update(liq_pid, liq_t, liq_q)
            self.micro.apply_liquidations(liq_pid, liq_t, liq_q)
        if trd_pid.size:
            self.micro.apply_trades(trd_pid, trd_t, trd_side, trd_q, trd_px)
            self.liqmap.apply_trades(trd_pid, trd_side, trd_t, trd_q, trd_px)

    def apply_open_interest(self, pid: int, t: float, oi_usd: float) -> None:
        """A new open interest (USD) of a pair: its increase deposits on the map (s6)."""
        if not (math.isfinite(oi_usd) and oi_usd >= 0):
            return
        prev = self.oi_usd[pid]
        self.oi_usd[pid] = oi_usd
        if math.isnan(prev):
            prev = oi_usd  # the first figure is the level, not an increase
        self.liqmap.apply_oi(np.array([pid], np.int32), np.array([t]), np.array([oi_usd - prev]))

    def maintain(
        self, now_s: float, rows: I64 | None, variance: F64, observed: I8 | None = None
    ) -> int:
        """The per-tick work of pairs ``rows`` (None: pairs ``0..len(variance)-1``;
        ``jit.pair_rows``, no repeated id): both Hawkes refits of those with liquidations in their
        buffer, and their rank histories of VPIN and volatility (``variance[i]``: pair
        ``rows[i]``'s EWMA variance at ``now_s``; ``observed[i]``: how the sampling-aware fit
        reads its liquidations, ``OBS_BINARY`` or ``OBS_COUNTS``, None: every pair as counts).
        The sampling-aware fit covers the bins closed by ``now_s - end_lag_s``. Other pairs are
        untouched: a pair's refits and history depend on its own state only. Returns the pairs
        the exact fit refitted."""
        n = variance.shape[0]
        rows = pair_rows(rows, n if rows is None else self.allocated, distinct=True)
        if observed is None:
            observed = np.full(n, OBS_COUNTS, np.int8)
        if not rows.shape[0] == n == observed.shape[0]:
            raise ValueError("variance and observed need one value per pair of rows")
        if n == 0:
            return 0
        has = self.hawkes.buf_len[rows] > 0
        pairs = rows[has].astype(np.int32)
        refitted = 0
        if pairs.size:
            hk = self.hawkes
            refitted = hk.refit(pairs, now_s)
            t_first = np.maximum(hk.t_obs_start[pairs], hk.t_evicted[pairs])
            self.sampled.refit(pairs, now_s - self.params.sampled.end_lag_s, hk.buf_t,
                               hk.buf_start, hk.buf_len, t_first, observed[has])  # fmt: skip
        h = len(self.horizons_s)
        micro = self.micro.read(now_s, rows, np.zeros((n, 3, h)),
                                np.zeros((n, h)))  # only VPIN is used here  # fmt: skip
        self.vpin_hist.update(now_s, micro.vpin, rows)
        self.vol_hist.update(now_s, np.sqrt(variance), rows)
        return refitted

    # ---- read-out ----------------------------------------------------------------------------

    def read(
        self, now_s: float, rows: I64 | None, liq_rate: F64, trd_rate: F64, variance: F64,
        vol_interval_s: float,
    ) -> ModelReadout:  # fmt: skip
        """Every model at ``now_s`` for pairs ``rows`` (row ``i`` is pair ``rows[i]``; None: pairs
        ``0..len(variance)-1``; ``jit.pair_rows``, repeats allowed). ``liq_rate``/``trd_rate``/
        ``variance`` are ``RiskState``'s decayed read-outs of the same rows at the same time."""
        p = self.params
        n = variance.shape[0]
        rows = pair_rows(rows, n if rows is None else self.allocated)
        if not rows.shape[0] == n == liq_rate.shape[0] == trd_rate.shape[0]:
            raise ValueError("liq_rate, trd_rate and variance need one row per pair of rows")
        hk = self.hawkes.read(now_s, rows)
        sampled = self.sampled.read(rows)
        micro = self.micro.read(now_s, rows, liq_rate, trd_rate.sum(axis=1))
        sigma = np.sqrt(np.maximum(variance, 0.0) / vol_interval_s)  # per sqrt-second
        sigma = np.where(np.isfinite(sigma), sigma, np.nan)
        traded = trd_rate[:, :, self._h_long].sum(axis=1) * p.stress_horizon_s
        lm = self.liqmap.read(now_s, sigma, p.stress_horizon_s, traded, rows)
        # down move: the long levels below the price; up: the short levels above
        n_struct = structural_feedback(micro.kyle_lambda, lm.density_usd_per_log)
        vpin_rank = self.vpin_hist.rank(micro.vpin, rows)
        vol_rank = self.vol_hist.rank(np.sqrt(variance), rows)
        worst_n = np.fmax(n_struct[:, 0], n_struct[:, 1])  # the direction of the larger spiral
        # the surge's baseline is the pair's own once it has its warm-up (its z-score is defined)
        base = np.where(np.isfinite(micro.liq_rate_z), micro.baseline_mean, np.nan)
        floor = np.where(self.venue_row[rows], p.surge.floor_venue_usd_s, p.surge.floor_usd_s)
        flow_surge = surge(micro.liq_rate_60s, base, floor)
        comps = components(
            p.score, sampled.branching_ratio, worst_n, micro.liq_rate_z,
            micro.liq_share[:, self.h60], vpin_rank, vol_rank, lm.msi, flow_surge,
        )  # fmt: skip
        sc, coverage = score(p.score, comps)
        return ModelReadout(hk, sampled, micro, lm, n_struct, worst_n, micro.liq_share[:, self.h60],
                            vpin_rank, vol_rank, comps, sc, coverage, flow_surge)  # fmt: skip

    def warm_up(self) -> None:
        """Compile (or load from the numba cache) every model kernel."""
        self.hawkes.warm_up()
        self.sampled.warm_up()
        e_f, e_i, e_s = np.empty(0), np.empty(0, np.int32), np.empty(0, np.int8)
        self.apply(e_i, e_f, e_f, e_i, e_f, e_s, e_f, e_f)
        self.liqmap.apply_oi(e_i, e_f, e_f)
        h = len(self.horizons_s)
        self.read(0.0, None, np.empty((0, 3, h)), np.empty((0, 2, h)), np.empty(0), 1.0)


def _with_horizons(m: MicroParams, horizons_s: tuple[float, ...]) -> MicroParams:
    return replace(m, horizons_s=horizons_s)


__all__ = ["ModelParams", "ModelReadout", "Models"]
