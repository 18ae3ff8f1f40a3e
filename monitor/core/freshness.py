"""How improbable the current silence of one event stream is, learned from the stream's own gaps.
Pure module (numpy).

A stream is one venue's events of one kind (liquidation, trade, context) at one stage (received
by the producer, applied by the consumer). ``GapModel.observe(t, n)`` is called every sampling
period with the events counted since the last call; each call with ``n > 0`` ends a gap (the
time since the previous event, resolved to the sampling period) and adds ``n - 1`` gaps shorter
than the resolution. ``GapModel.read(t)`` says how long the stream has been silent, its learned
event rate and the **return period** of a silence that long: how often, under the learned
history, the stream goes silent at least that long (mean seconds between such silences):

    R(g) = 1 / (r * S(g))

with ``r`` the learned rate of gaps (events per second) and ``S(g)`` the share of gaps at least
``g`` long. A silence whose return period is a year is one the stream shows about once a year: an
alert there has that false-alarm rate by construction, whatever the stream's pace (a busy trade
feed crosses a year within seconds of silence, Binance's all-market liquidation stream only after
tens of minutes, a quiet pair after hours).

Why not a Poisson rate: liquidations cluster, so quiet spells are far longer than an exponential
with the mean rate allows (the four real Binance recordings in ``../shared/data/binance-real``
have a mean gap of 4-13 s and silences of 260, 380, 766 and 1059 s; a Poisson model fitted to
the first hour calls the 1059 s silence a once-in-10^30-years event). ``S`` is therefore the
empirical share of gaps below a threshold ``u`` and, above it, a power-law (Pareto) tail fitted to
the longest gaps (peaks over threshold, Hill's estimator):

    S(g) = S(u) * (g / u) ** -alpha,   alpha = m / sum(ln(g_i / u)) over the m gaps >= u

``u`` is the highest histogram edge with at least ``max(tail_gaps, 5 %)`` of the gaps above it;
``alpha`` is kept within ``[alpha_min, alpha_max]``: above ``alpha_max`` the tail is as good as
exponential and the return period is astronomically long anyway; below ``alpha_min`` the data
would say "any silence is ordinary" (Hill's estimate on the real recordings is 0.7-1.6) and a
dead feed would go unnoticed for days, so ``alpha_min`` (2) is the heaviest tail the model
accepts: with it, replayed with the default settings, the real recordings' longest silence
(1,059 s) reaches a return period of about 6 days, under the 30-day warning level
(``tests/health/test_real_recordings.py``).

What is learned: a histogram of gap lengths (log-spaced edges from the resolution up to ten
days, per bin the weighted count and the sum of the log lengths, so Hill's estimate is exact for
gaps at or above an edge), one for all hours and one per UTC hour of the day, all forgetting
with the half-life ``memory_s`` (wall time). The hour's histogram is used once it has seen
``HOUR_MATURITY`` (4) times ``learn_min_s`` of time and ``min_gaps`` gaps ("improbable at that
hour": a busy hour is judged by its own habits, a quiet one by its own), else the all-hours one;
before the all-hours one has, nothing is judged (the read-out is NaN). A silence whose return
period passed ``outage_s`` is an outage, not behaviour: neither its time nor its gap is learned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

HOURS: Final = 24
ALL: Final = HOURS  # the index of the all-hours histogram
EDGE_RATIO: Final = 1.25  # consecutive histogram edges
MAX_GAP_S: Final = 10 * 86400.0
TAIL_SHARE: Final = 0.05  # at least this share of the gaps is fitted as the tail
MAX_RETURN_PERIOD_S: Final = 1e12  # reported cap (about 31,700 years): "never"
HOUR_MATURITY: Final = 4.0  # an hour's histogram needs this many times the all-hours minimums


@dataclass(frozen=True, slots=True)
class GapParams:
    resolution_s: float = 1.0  # the sampling period: shorter gaps are not resolved
    memory_s: float = 3 * 86400.0  # half-life of what was learned (wall time)
    learn_min_s: float = 1800.0  # observed time before a histogram is used
    min_gaps: int = 30  # ... and gaps
    tail_gaps: int = 20  # gaps the tail is fitted on, at least
    alpha_min: float = 2.0  # the heaviest tail accepted
    alpha_max: float = 8.0
    outage_s: float = 30 * 86400.0  # a silence past this return period is not learned

    def __post_init__(self) -> None:
        for name in ("resolution_s", "memory_s", "outage_s", "alpha_min"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        if self.learn_min_s < 0 or self.min_gaps < 1 or self.tail_gaps < 2:
            raise ValueError("learn_min_s >= 0, min_gaps >= 1 and tail_gaps >= 2 are required")
        if self.alpha_max < self.alpha_min:
            raise ValueError("alpha_max must be >= alpha_min")


@dataclass(frozen=True, slots=True)
class Freshness:
    """A stream's read-out at one time. ``silence_s``: since the last event (since the model
    started when there was none: a lower bound, ``seen`` False). ``rate`` (events/s) and
    ``return_period_s`` are NaN until enough history is learned."""

    silence_s: float
    rate: float
    return_period_s: float
    seen: bool


@dataclass(frozen=True, slots=True)
class SilenceFit:
    """One histogram's fitted silence model: gap rate, threshold ``u``, ``S(u)``, the tail
    exponent, and the empirical shares of gaps at or above each edge up to ``u``."""

    rate: float
    u: float
    s_u: float
    alpha: float
    cum: tuple[float, ...]

    def return_period(self, silence: float, edge: npt.NDArray[np.float64]) -> float:
        """R(silence) = 1 / (rate * S(silence)), capped at ``MAX_RETURN_PERIOD_S``."""
        if silence >= self.u:
            log_s = math.log(self.s_u) - self.alpha * math.log(silence / self.u)
        else:  # the empirical share at the bin's lower edge (silences below u are ordinary)
            i = max(0, int(np.searchsorted(edge, silence, side="right")) - 1)
            log_s = math.log(max(self.cum[min(i, len(self.cum) - 1)], 1e-300))
        log_r = -math.log(self.rate) - log_s
        return MAX_RETURN_PERIOD_S if log_r >= math.log(MAX_RETURN_PERIOD_S) else math.exp(log_r)

    def silence_for(self, return_period_s: float, edge: npt.NDArray[np.float64]) -> float:
        """The shortest silence whose return period is at least ``return_period_s`` (the
        inverse of ``return_period``, to the histogram's resolution below ``u``): how long the
        stream must be silent before a rule at that level fires."""
        if self.return_period(self.u, edge) < return_period_s:  # in the tail: R = (g/u)^a / (r S_u)
            return float(self.u * (return_period_s * self.rate * self.s_u) ** (1.0 / self.alpha))
        for e in edge[1:]:
            if e >= self.u or self.return_period(float(e), edge) >= return_period_s:
                return float(min(e, self.u))
        return self.u


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a stream's model says, frozen at its last update: read by other threads (the
    metrics endpoint) while the model learns on. ``read(t)`` extends the silence to ``t``."""

    fit: SilenceFit | None
    last_event: float | None
    started: float
    edge: npt.NDArray[np.float64]

    def read(self, t: float) -> Freshness:
        silence = max(0.0, t - (self.last_event if self.last_event is not None else self.started))
        seen = self.last_event is not None
        if self.fit is None:
            return Freshness(silence, math.nan, math.nan, seen)
        return Freshness(silence, self.fit.rate, self.fit.return_period(silence, self.edge), seen)


def edges(resolution_s: float) -> npt.NDArray[np.float64]:
    """Lower edges of the histogram's bins: 0 (unresolved gaps), then the resolution times
    powers of ``EDGE_RATIO`` up to ``MAX_GAP_S``."""
    n = math.ceil(math.log(MAX_GAP_S / resolution_s) / math.log(EDGE_RATIO)) + 1
    return np.concatenate(([0.0], resolution_s * EDGE_RATIO ** np.arange(n)))


class GapModel:
    """One stream's learned gaps and its current silence (see the module docstring)."""

    def __init__(self, params: GapParams, now: float) -> None:
        self.params = params
        self.edges = edges(params.resolution_s)
        nb = len(self.edges)
        self.count = np.zeros((HOURS + 1, nb))  # weighted gaps per bin
        self.logsum = np.zeros((HOURS + 1, nb))  # weighted sum of ln(gap) per bin
        self.observed = np.zeros(HOURS + 1)  # weighted seconds observed
        self.started = now
        self.last_event: float | None = None
        self.outage = False  # the current silence passed ``outage_s``
        self._updated = now
        self._fits: dict[int, SilenceFit | None] = {}
        self._snapshot: Snapshot | None = None

    # ---- learning ----------------------------------------------------------------------------

    def observe(self, t: float, n: int) -> None:
        """``n`` events counted since the previous call, at wall time ``t`` (seconds)."""
        dt = t - self._updated
        if dt < 0:
            return  # the clock stepped back: wait for it
        decay = 0.5 ** (dt / self.params.memory_s)
        self.count *= decay
        self.logsum *= decay
        self.observed *= decay
        hour = _hour(t)
        if not self.outage:
            self.observed[ALL] += dt
            self.observed[hour] += dt
        self._updated = t
        self._fits.clear()
        self._snapshot = None
        if n <= 0:
            if not self.outage:
                self.outage = self.read(t).return_period_s >= self.params.outage_s
            return
        if self.last_event is not None and not self.outage:
            self._add(hour, t - self.last_event, 1.0)
        if n > 1:
            self._add(hour, 0.0, n - 1.0)
        self.last_event = t
        self.outage = False
        self._fits.clear()
        self._snapshot = None

    def restart(self, t: float) -> None:
        """Keep what was learned, forget the last event: the gap across a restart (of the
        process, or between recordings) is not a silence of the stream."""
        self.last_event, self.started, self._updated, self.outage = None, t, t, False
        self._fits.clear()
        self._snapshot = None

    def _add(self, hour: int, gap: float, weight: float) -> None:
        i = max(0, int(np.searchsorted(self.edges, gap, side="right")) - 1)
        lg = math.log(gap) * weight if gap > 0 else 0.0
        for h in (ALL, hour):
            self.count[h, i] += weight
            self.logsum[h, i] += lg

    # ---- reading -----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The model as of its last update (cached until the next ``observe``)."""
        if self._snapshot is None:
            fit = self._fit_for(_hour(self._updated))
            self._snapshot = Snapshot(fit, self.last_event, self.started, self.edges)
        return self._snapshot

    def read(self, t: float) -> Freshness:
        return self.snapshot().read(t)

    def _fit_for(self, hour: int) -> SilenceFit | None:
        """The hour's fit when that histogram is mature, else the all-hours one, else None."""
        for h in (hour, ALL):
            if h not in self._fits:
                self._fits[h] = self._fit(h, 1.0 if h == ALL else HOUR_MATURITY)
            fit = self._fits[h]
            if fit is not None:
                return fit
        return None

    def _fit(self, h: int, maturity: float) -> SilenceFit | None:
        p = self.params
        c = self.count[h]
        total = float(c.sum())
        observed = float(self.observed[h])
        if observed <= 0 or observed < maturity * p.learn_min_s or total < maturity * p.min_gaps:
            return None
        above = np.cumsum(c[::-1])[::-1]  # weighted gaps at or above each edge
        want = max(float(p.tail_gaps), TAIL_SHARE * total)
        # the highest edge (from the resolution up) with at least ``want`` gaps at or above it
        j = max(1, int(np.count_nonzero(above >= want)) - 1)
        m = float(above[j])
        u = float(self.edges[j])
        if m <= 0:  # no gap as long as the resolution: as steady as it gets
            alpha, s_u = p.alpha_max, 1.0 / (total + 1.0)
        else:
            excess = float(self.logsum[h, j:].sum()) - m * math.log(u)
            alpha = m / excess if excess > 0 else p.alpha_max
            s_u = m / total
        alpha = min(max(alpha, p.alpha_min), p.alpha_max)
        cum = tuple(float(x) / total for x in above[: j + 1])
        return SilenceFit(total / observed, u, s_u, alpha, cum)


def _hour(t: float) -> int:
    return int(t // 3600) % HOURS


class StallClock:
    """How long work has waited without progress (a producer's unacknowledged events, a
    consumer's uncommitted records). ``update(t, progress, waiting)`` every sample: ``progress``
    is any number that changes when the work moves (events acknowledged, offsets committed),
    ``waiting`` whether anything waits; ``stall(t)`` is the seconds since the last progress while
    something waits, else 0. The two attributes it reads are replaced whole, so another thread
    may call ``stall`` at any time."""

    def __init__(self, t: float) -> None:
        self._progress: float | None = None
        self._since: float | None = None  # None: nothing waits
        self._last = t

    def update(self, t: float, progress: float, waiting: bool) -> None:
        if progress != self._progress:
            self._progress, self._last = progress, t
        self._since = self._last if waiting else None
        if not waiting:
            self._last = t

    def stall(self, t: float) -> float:
        since = self._since
        return 0.0 if since is None else max(0.0, t - since)
