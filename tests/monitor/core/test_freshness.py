"""The learned silence model (monitor/core/freshness.py): the rate and the tail it learns from a
stream's gaps, the return period of a silence and its inverse, nothing judged before enough
history, restarts and outages not learned as behaviour; the stall clock."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitor.core.freshness import MAX_RETURN_PERIOD_S, GapModel, GapParams, StallClock

T0 = 1_700_000_000.0  # a wall time at 22:13 UTC
PARAMS = GapParams(resolution_s=1.0, memory_s=1e9, learn_min_s=600.0)


def feed(model: GapModel, times: np.ndarray, start: float, end: float, step: float) -> None:
    """Observe the events at ``times`` (absolute seconds) every ``step`` from ``start`` to
    ``end``, as the health reporter samples its counters."""
    k = int(np.searchsorted(times, start, side="right"))
    t = start
    while t < end - 1e-9:
        t += step
        j = int(np.searchsorted(times, t, side="right"))
        model.observe(t, j - k)
        k = j


def poisson(rate: float, duration: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return T0 + np.cumsum(rng.exponential(1.0 / rate, size=int(rate * duration * 1.2) + 10))


def test_a_steady_stream_learns_its_rate_and_a_long_silence_is_improbable() -> None:
    times = poisson(0.5, 4000.0, seed=1)
    m = GapModel(PARAMS, T0)
    feed(m, times, T0, T0 + 3600.0, 1.0)
    f = m.read(m.last_event or T0)
    assert f.seen and f.silence_s == 0.0
    assert f.rate == pytest.approx(0.5, rel=0.08)
    snap = m.snapshot()
    assert snap.fit is not None and PARAMS.alpha_min <= snap.fit.alpha <= PARAMS.alpha_max
    last = m.last_event
    assert last is not None
    periods = [m.read(last + s).return_period_s for s in (1.0, 5.0, 20.0, 60.0, 600.0)]
    assert periods == sorted(periods) and periods[0] < 10.0
    assert periods[-1] > 365 * 86400.0  # ten minutes of silence on a 0.5/s stream
    assert m.read(last + 3600.0).return_period_s == MAX_RETURN_PERIOD_S  # capped
    # the inverse: the shortest silence at a level, to the resolution
    for level in (1e3, 30 * 86400.0):
        g = snap.fit.silence_for(level, snap.edge)
        assert snap.fit.return_period(g, snap.edge) >= level * (1 - 1e-9)
        assert snap.fit.return_period(g - 1.0, snap.edge) < level


def test_nothing_is_judged_before_enough_history() -> None:
    times = poisson(2.0, 1000.0, seed=2)
    m = GapModel(PARAMS, T0)
    feed(m, times, T0, T0 + 500.0, 1.0)  # under learn_min_s
    f = m.read(T0 + 10_000.0)
    assert math.isnan(f.rate) and math.isnan(f.return_period_s)
    assert f.silence_s > 9_000.0
    feed(m, times, T0 + 500.0, T0 + 700.0, 1.0)
    assert math.isfinite(m.read(T0 + 700.0).return_period_s)


def test_a_clustered_stream_keeps_a_heavy_tail_and_the_exponent_floor() -> None:
    """Bursts separated by long quiet spells (as liquidations are): the tail is fitted to the
    long gaps, so a quiet spell as long as the usual ones is not improbable, but the exponent
    never goes below ``alpha_min``: a silence ten times the longest seen is."""
    rng = np.random.default_rng(3)
    starts = T0 + np.cumsum(rng.pareto(1.2, size=400) * 30.0 + 10.0)
    times = np.sort(np.concatenate([s + rng.uniform(0, 5, size=10) for s in starts]))
    m = GapModel(PARAMS, T0)
    end = float(times[-1])
    feed(m, times, T0, end, 1.0)
    snap = m.snapshot()
    assert snap.fit is not None and snap.fit.alpha == PARAMS.alpha_min
    longest = float(np.diff(times).max())
    last = m.last_event
    assert last is not None
    assert m.read(last + 60.0).return_period_s < 30 * 86400.0
    assert m.read(last + 10 * longest).return_period_s > m.read(last + longest).return_period_s


def test_restarts_and_outages_are_not_learned_as_gaps() -> None:
    times = poisson(1.0, 3000.0, seed=4)
    m = GapModel(PARAMS, T0)
    feed(m, times, T0, T0 + 1200.0, 1.0)
    before = m.count[-1].copy()
    m.restart(T0 + 5000.0)  # the process restarted: the gap across it is not a silence
    later = times[times > T0 + 5000.0]
    assert m.last_event is None and len(later) == 0
    m.observe(T0 + 5001.0, 1)
    assert m.count[-1].sum() == pytest.approx(before.sum() + 0.0)
    # an outage: silent past outage_s of return period, then events again: not learned
    t = T0 + 5001.0
    for _ in range(2000):
        t += 1.0
        m.observe(t, 0)
    assert m.outage
    counted = m.count[-1].sum()
    m.observe(t + 1.0, 1)
    assert not m.outage and m.count[-1].sum() == pytest.approx(counted)


def test_the_stall_clock() -> None:
    c = StallClock(0.0)
    c.update(1.0, progress=10, waiting=False)
    assert c.stall(5.0) == 0.0  # nothing waits
    c.update(2.0, progress=10, waiting=True)
    # waiting, without progress, since the last sample at which nothing waited (1 s)
    assert c.stall(7.0) == 6.0
    c.update(8.0, progress=12, waiting=True)
    assert c.stall(9.0) == 1.0  # progress at 8 s
    c.update(9.5, progress=12, waiting=False)
    assert c.stall(100.0) == 0.0
