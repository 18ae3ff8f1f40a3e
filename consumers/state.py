"""Per-pair risk state: dense pair ids, struct-of-arrays owned here, updated by the numba kernels.

Pure module (no Kafka, no Prometheus). ``RiskState.apply(batch)`` turns one decoded record into
NumPy arrays (``consumers.columns.batch_arrays``), drops rows with unusable values, and runs the
kernels (``consumers.models``). ``read(now_s, rows)`` copies a consistent view under a lock
(scrapes run in another thread); ``snapshot(now_s)`` and ``risk_rows(now_s, limit)`` turn it into
rows (``consumers.readout``). ``read``, ``maintain``, ``risk_rows`` and ``snapshot`` take ``rows``,
the pair ids they cover (None: every pair): an event-time caller reads or maintains the pairs whose
tick closed at a cost proportional to their number, with the same values as a full read.

Pairs are ``(exchange, symbol)`` keys, given dense ids on first sight up to ``capacity``; events of
further pairs are reported through ``on_skip("pair_capacity", n)`` (logged once per pair, for the
first 1000 such pairs) and never applied. Rows with a non-finite time or notional, a negative
notional, a non-positive price or an unknown side string are screened out by a kernel
(``screen_rows``) and reported as ``on_skip("invalid_value", n)``; a column that cannot be converted
at all makes ``batch_arrays`` raise CodecError before anything is applied. Side codes, coverage
codes and the market-context fields are those of ``consumers.columns``; each pair remembers the
coverage of its latest applied liquidation, which decides how the sampling-aware branching ratio
reads its liquidations (``consumers.columns.observed_modes``, docs/risk-models.md §2.5).

Event clock: ``now_s()`` is ``max event time applied + (wall now - wall time when that maximum was
reached)``, so decayed values keep decaying with wall time when the market is quiet. One event
stamped far in the future moves this clock for every pair; the producers stamp venue event time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from consumers.columns import (
    CONTEXT_FIELDS,
    LIQ_SIDES,
    TAKER_SIDES,
    BatchArrays,
    PairKey,
    batch_arrays,
    derived_context,
    observed_modes,
)
from consumers.models.bundle import ModelParams, Models
from consumers.models.flow import flow_rates_at, flow_update
from consumers.models.jit import I64, NO_INTERVAL, pair_rows
from consumers.models.screening import screen_rows
from consumers.models.volatility import price_update, variance_at
from consumers.readout import PairSnapshot, Readout, RiskRow, risk_rows, snapshots
from monitor.core.codec import Batch
from monitor.core.symbols import VENUE_SYMBOL

log = logging.getLogger(__name__)

_NL, _NT = len(LIQ_SIDES), len(TAKER_SIDES)
_NO_PRICE: Final = np.empty(0)
MAX_OVERFLOW_LOGS: Final = 1000  # distinct over-capacity pairs logged (each once)

F64 = npt.NDArray[np.float64]


class Applied(NamedTuple):
    liquidations: int
    trades: int


class RiskState:
    def __init__(
        self,
        capacity: int,
        horizons: Sequence[float] = (10.0, 60.0, 300.0),
        vol_interval_s: float = 1.0,
        vol_lambda: float = 0.94,
        *,
        on_skip: Callable[[str, int], None] | None = None,
        wall_clock: Callable[[], float] = time.time,
        late_tolerance_s: float = 5.0,
        models: ModelParams | None = None,
    ) -> None:
        if not 0.0 <= late_tolerance_s < math.inf:
            raise ValueError("late_tolerance_s must be >= 0 and finite")
        if capacity <= 0 or not horizons or min(horizons) <= 0:
            raise ValueError("capacity and horizons must be positive")
        if vol_interval_s <= 0 or not 0.0 < vol_lambda < 1.0:
            raise ValueError("vol_interval_s must be > 0 and vol_lambda in (0, 1)")
        self.capacity = capacity
        self.horizons_s = tuple(float(h) for h in horizons)
        self.vol_interval_s = float(vol_interval_s)
        self.vol_lambda = float(vol_lambda)
        self.on_skip = on_skip
        self.wall_clock = wall_clock
        self.late_tolerance_s = float(late_tolerance_s)
        self.tau = np.asarray(self.horizons_s, dtype=np.float64)
        c, nh = capacity, len(self.horizons_s)
        nl, nt = len(LIQ_SIDES), len(TAKER_SIDES)
        self.liq_rate = np.zeros((c, nl, nh))
        self.liq_t_last = np.full((c, nl), -np.inf)
        self.liq_notional = np.zeros((c, nl))
        self.liq_count = np.zeros((c, nl), dtype=np.int64)
        self.trd_rate = np.zeros((c, nt, nh))
        self.trd_t_last = np.full((c, nt), -np.inf)
        self.trd_notional = np.zeros((c, nt))
        self.trd_count = np.zeros((c, nt), dtype=np.int64)
        self.last_price = np.zeros(c)
        self.ref_price = np.zeros(c)
        self.vol_s2 = np.zeros(c)
        self.vol_interval = np.full(c, NO_INTERVAL, dtype=np.int64)
        self.vol_n = np.zeros(c, dtype=np.int64)
        # market context, latest value per pair (NaN until the venue sent it)
        self.ctx = np.full((c, len(CONTEXT_FIELDS)), np.nan)
        self.ctx_t = np.full(c, -np.inf)
        self.t_max = np.full(c, -np.inf)  # latest event time applied per pair (late-event floor)
        # coverage code (consumers.columns.COVERAGES) of the pair's latest liquidation; -1: none
        self.liq_coverage = np.full(c, -1, dtype=np.int8)
        self.models = Models(capacity, self.horizons_s, models or ModelParams())
        self._ids: dict[PairKey, int] = {}
        self._keys: list[PairKey] = []
        self._overflow_logged: set[PairKey] = set()
        self._lock = threading.Lock()
        self.event_clock_s = -math.inf
        self.wall_at_clock_s = 0.0

    # ---- sizes ---------------------------------------------------------------------------

    def _arrays(self) -> list[npt.NDArray[Any]]:
        return [self.liq_rate, self.liq_t_last, self.liq_notional, self.liq_count,
                self.trd_rate, self.trd_t_last, self.trd_notional, self.trd_count,
                self.last_price, self.ref_price, self.vol_s2, self.vol_interval, self.vol_n,
                self.ctx, self.ctx_t, self.t_max, self.liq_coverage]  # fmt: skip

    def _counters(self) -> list[npt.NDArray[Any]]:
        """The cumulative arrays (exported as counters): untouched by warm-up replay."""
        return [self.liq_notional, self.liq_count, self.trd_notional, self.trd_count]

    @property
    def bytes_per_pair(self) -> int:
        """State per pair: the flow/price/context arrays plus the models' (docs/risk-models.md)."""
        return sum(a.nbytes for a in self._arrays()) // self.capacity + self.models.bytes_per_pair

    @property
    def n_pairs(self) -> int:
        return len(self._keys)

    def pair_id(self, exchange: str, symbol: str) -> int | None:
        return self._ids.get((exchange, symbol))

    # ---- updates -------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Compile (or load from the numba cache) every kernel, so the first record is fast."""
        empty = Batch("", "", "", liq={}, trd={})
        arrs = batch_arrays(empty)
        screen_rows(arrs.liq_t, arrs.liq_side, arrs.liq_notional, _NO_PRICE, _NL,
                      np.empty(0, np.bool_))  # fmt: skip
        with self._lock:
            self._run_kernels(np.empty(0, np.int32), np.empty(0, np.int32), arrs, force=True)
            self.models.warm_up()
        self.read(0.0)

    def apply(self, batch: Batch) -> int:
        """Apply one decoded record; returns the number of events applied."""
        return sum(self.apply_arrays(batch_arrays(batch)))

    def apply_arrays(self, a: BatchArrays, *, replay: bool = False) -> Applied:
        """Run the kernels on one record's arrays. ``replay``: a warm-up record another process
        already counted: the decayed state is rebuilt, the cumulative counters stay as they are."""
        if a.n_events == 0:
            return Applied(0, 0)
        if a.liq_side.dtype != np.int8 or a.trd_side.dtype != np.int8:
            raise TypeError("side codes must be int8")
        if a.liq_coverage.dtype != np.int8:
            raise TypeError("coverage codes must be int8")
        for arr in (a.liq_t, a.liq_notional, a.trd_t, a.trd_notional, a.trd_price):
            if arr.dtype != np.float64:
                raise TypeError(f"expected float64 arrays, got {arr.dtype}")
        key = (a.exchange, a.symbol)
        pid = self._ids.get(key)
        if pid is None:
            pid = self._register(key, a.n_events)
            if pid is None:
                return Applied(0, 0)
        liq_ok = np.empty(a.liq_t.shape[0], dtype=np.bool_)
        trd_ok = np.empty(a.trd_t.shape[0], dtype=np.bool_)
        bad_liq, t_liq = screen_rows(a.liq_t, a.liq_side, a.liq_notional, _NO_PRICE, _NL, liq_ok)
        bad_trd, t_trd = screen_rows(a.trd_t, a.trd_side, a.trd_notional, a.trd_price, _NT, trd_ok)
        bad = bad_liq + bad_trd
        late = self._late(pid, a.liq_t, liq_ok) + self._late(pid, a.trd_t, trd_ok)
        coverage = a.liq_coverage if a.liq_coverage.shape == a.liq_t.shape else None
        if bad or late:
            a = a._replace(
                liq_t=a.liq_t[liq_ok], liq_side=a.liq_side[liq_ok],
                liq_notional=a.liq_notional[liq_ok], trd_t=a.trd_t[trd_ok],
                trd_side=a.trd_side[trd_ok], trd_notional=a.trd_notional[trd_ok],
                trd_price=a.trd_price[trd_ok],
            )  # fmt: skip
            coverage = coverage[liq_ok] if coverage is not None else None
        n_liq, n_trd = a.liq_t.shape[0], a.trd_t.shape[0]
        t_max = max(t_liq, t_trd)
        with self._lock:
            if replay:
                kept = [c[pid].copy() for c in self._counters()]
            self._run_kernels(
                np.full(n_liq, pid, dtype=np.int32), np.full(n_trd, pid, dtype=np.int32), a
            )
            if replay:
                for c, v in zip(self._counters(), kept, strict=True):
                    c[pid] = v
            self.t_max[pid] = max(self.t_max[pid], t_max)
            if coverage is not None and coverage.size:  # the latest applied liquidation's
                self.liq_coverage[pid] = coverage[-1]
            if t_max > self.event_clock_s:
                self.event_clock_s = t_max
                self.wall_at_clock_s = self.wall_clock()
        if bad:
            self._skip("invalid_value", bad)
        if late:
            self._skip("too_late", late)
        return Applied(n_liq, n_trd)

    def _late(self, pid: int, t: F64, ok: npt.NDArray[np.bool_]) -> int:
        """Unmark rows older than the pair's latest time (so far, this record's earlier rows
        included) by more than the tolerance; return how many. Kernels handle the rest of the
        disorder exactly (see ``consumers.models.flow``)."""
        if not t.size:
            return 0
        running = np.maximum.accumulate(np.where(ok, t, -np.inf))
        floor = np.maximum(running, self.t_max[pid]) - self.late_tolerance_s
        late = ok & (t < floor)
        n = int(late.sum())
        if n:
            ok &= ~late
        return n

    def _run_kernels(
        self,
        liq_pid: npt.NDArray[np.int32],
        trd_pid: npt.NDArray[np.int32],
        a: BatchArrays,
        *,
        force: bool = False,
    ) -> None:
        if liq_pid.size or force:
            flow_update(liq_pid, a.liq_side, a.liq_t, a.liq_notional, self.tau,
                          self.liq_rate, self.liq_t_last, self.liq_notional, self.liq_count)  # fmt: skip
        if trd_pid.size or force:
            flow_update(trd_pid, a.trd_side, a.trd_t, a.trd_notional, self.tau,
                          self.trd_rate, self.trd_t_last, self.trd_notional, self.trd_count)  # fmt: skip
            price_update(trd_pid, a.trd_t, a.trd_price, self.vol_interval_s, self.vol_lambda,
                           self.last_price, self.ref_price, self.vol_interval, self.vol_s2,
                           self.vol_n)  # fmt: skip
        if not force:
            self.models.apply(liq_pid, a.liq_t, a.liq_notional, trd_pid, a.trd_t, a.trd_side,
                              a.trd_notional, a.trd_price)  # fmt: skip

    def apply_context(self, batch: Batch) -> int:
        """Keep the latest market context per pair (low rate: plain Python). A field the message
        does not carry keeps its previous value; an older message than the last one applied
        fills only fields still unknown. Returns the number of context events applied."""
        n = batch.n_contexts
        if not n:
            return 0
        key = (batch.exchange, batch.symbol)
        pid = self._ids.get(key)
        if pid is None:
            pid = self._register(key, n)
            if pid is None:
                return 0
        c = batch.ctx
        cols = [c[name] for name in CONTEXT_FIELDS]
        with self._lock:
            row = self.ctx[pid]
            for i in range(n):
                t = c["ts_ms"][i]
                if not isinstance(t, int) or isinstance(t, bool):
                    self._skip("invalid_value", 1)
                    continue
                newer = t / 1000.0 >= self.ctx_t[pid]
                for j, col in enumerate(cols):
                    v = col[i]
                    usable = isinstance(v, int | float) and not isinstance(v, bool)
                    if usable and math.isfinite(v) and (newer or math.isnan(row[j])):
                        row[j] = float(v)
                if newer:
                    self.ctx_t[pid] = t / 1000.0
                    oi = derived_context(row[None, :])[0, CONTEXT_FIELDS.index("oi_usd")]
                    if math.isfinite(oi):
                        self.models.apply_open_interest(pid, t / 1000.0, float(oi))
        return n

    def _register(self, key: PairKey, n_events: int) -> int | None:
        with self._lock:
            if len(self._keys) < self.capacity:
                pid = len(self._keys)
                self.models.ensure(pid + 1)
                self.models.venue_row[pid] = key[1] == VENUE_SYMBOL
                self._ids[key] = pid
                self._keys.append(key)
                return pid
        if key not in self._overflow_logged and len(self._overflow_logged) < MAX_OVERFLOW_LOGS:
            self._overflow_logged.add(key)
            log.warning(
                "pair capacity %d reached: events of %s/%s are counted as skipped, not applied",
                self.capacity, key[0], key[1],
            )  # fmt: skip
        self._skip("pair_capacity", n_events)
        return None

    def _skip(self, reason: str, n: int) -> None:
        if self.on_skip is not None:
            self.on_skip(reason, n)

    # ---- read-out ------------------------------------------------------------------------

    def now_s(self) -> float:
        """The event-time clock: last event time advanced by the wall time elapsed since."""
        wall = self.wall_clock()
        with self._lock:
            if self.event_clock_s == -math.inf:
                return wall
            return self.event_clock_s + max(0.0, wall - self.wall_at_clock_s)

    def maintain(self, now_s: float, rows: I64 | None = None) -> int:
        """The periodic model work (Hawkes refits, rank histories) of pairs ``rows`` (None: every
        registered pair), other pairs untouched; returns the pairs the exact Hawkes fit refitted.
        Each pair's liquidations are read as its latest coverage says (``observed_modes``).
        ``rows``: distinct pair ids below ``n_pairs`` (``jit.pair_rows``: a repeated id is a
        ValueError)."""
        with self._lock:
            rows = pair_rows(rows, len(self._keys), distinct=True)
            variance = np.empty(rows.shape[0])
            variance_at(now_s, self.vol_interval_s, self.vol_lambda, self.last_price,
                        self.ref_price, self.vol_interval, self.vol_s2, self.vol_n, rows,
                        variance)  # fmt: skip
            observed = observed_modes(self.liq_coverage[rows])
            return self.models.maintain(now_s, rows, variance, observed)

    def read(self, now_s: float, rows: I64 | None = None) -> Readout:
        """Decayed values at ``now_s`` and copies of the counters, all under one lock, of pairs
        ``rows`` (row ``i`` of the read-out is pair ``rows[i]``; None: every registered pair in
        id order). ``rows``: pair ids below ``n_pairs`` in any order (``jit.pair_rows``; a
        repeated id repeats its row). Costs O(len(rows)); each pair's values are bit for bit
        those of the full read."""
        with self._lock:
            n = len(self._keys)
            keys = list(self._keys) if rows is None else None
            rows = pair_rows(rows, n)
            if keys is None:
                keys = [self._keys[p] for p in rows.tolist()]
            k = rows.shape[0]
            liq_rate = np.empty((k, *self.liq_rate.shape[1:]))
            trd_rate = np.empty((k, *self.trd_rate.shape[1:]))
            variance = np.empty(k)
            flow_rates_at(now_s, self.tau, self.liq_rate, self.liq_t_last, rows, liq_rate)
            flow_rates_at(now_s, self.tau, self.trd_rate, self.trd_t_last, rows, trd_rate)
            variance_at(now_s, self.vol_interval_s, self.vol_lambda, self.last_price,
                        self.ref_price, self.vol_interval, self.vol_s2, self.vol_n, rows,
                        variance)  # fmt: skip
            has_price = self.vol_interval[rows] != NO_INTERVAL
            models = self.models.read(now_s, rows, liq_rate, trd_rate, variance,
                                      self.vol_interval_s)  # fmt: skip
            return Readout(
                now_s=now_s,
                horizons_s=self.horizons_s,
                keys=keys,
                pair_ids=rows.copy(),
                liq_rate=liq_rate,
                liq_notional=self.liq_notional[rows],  # fancy indexing: copies
                liq_count=self.liq_count[rows],
                trd_rate=trd_rate,
                trd_notional=self.trd_notional[rows].sum(axis=1),
                trd_count=self.trd_count[rows].sum(axis=1),
                variance=variance,
                last_price=np.where(has_price, self.last_price[rows], np.nan),
                context=derived_context(self.ctx[rows]),
                models=models,
            )

    def risk_rows(self, now_s: float, limit: int, rows: I64 | None = None) -> list[RiskRow]:
        """The ``limit`` most active pairs' risk values, among ``rows`` (None: every pair; see
        ``read``), for the risk topic and the alert rules (``consumers.readout.risk_rows``)."""
        return risk_rows(self.read(now_s, rows), limit, self.models.params.score)

    def snapshot(self, now_s: float, rows: I64 | None = None) -> list[PairSnapshot]:
        """Every pair of ``rows`` (None: every pair; see ``read``) at ``now_s``, most active
        first (see ``Readout.ranked``)."""
        return snapshots(self.read(now_s, rows))
