"""Strategies and helpers shared by the microstructure models' tests (tests/consumers/models/):
event lists with random, sorted and jittered times, the columns the kernels take, and read-out
helpers.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

from consumers.models import microstructure as m
from consumers.models.jit import F64, I8, I32

BASE_MS = 1_700_000_000_000
RTOL, ATOL = 1e-9, 1e-290
HS = settings(deadline=None, max_examples=80)

Event = tuple[int, int, int, float, float]  # (pair, t_ms, side, notional, price)


def close(a: float, b: float, rel: float = RTOL, abs_: float = ATOL) -> bool:
    if math.isnan(b):
        return math.isnan(a)
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


notionals = st.one_of(
    st.just(0.0),
    st.floats(0.0, 1e9, allow_nan=False, allow_infinity=False),
    st.sampled_from([1.0, 1e-6, 5e8, 1e15]),
)
prices = st.one_of(
    st.floats(1e-3, 1e6, allow_nan=False),
    st.sampled_from([100.0, 100.5, 99.5, 1e-300, 1e300]),
)


@st.composite
def event_lists(
    draw: st.DrawFn, notional: st.SearchStrategy[float] = notionals, span_ms: int = 2_000_000
) -> tuple[int, list[Event]]:
    n_pairs = draw(st.integers(1, 5))
    n = draw(st.integers(0, 120))
    offsets = st.one_of(
        st.integers(0, 5_000), st.integers(0, span_ms), st.sampled_from([0, 1_000, 1_000, 60_000])
    )
    ts = draw(st.lists(offsets, min_size=n, max_size=n))
    order = draw(st.sampled_from(["random", "sorted", "jitter"]))
    if order != "random":
        ts.sort()
    if order == "jitter":  # mostly in order, some up to 3 s late (crosses buckets and intervals)
        ts = [
            max(0, t - draw(st.integers(0, 3_000))) if i % 3 == 0 else t for i, t in enumerate(ts)
        ]
    evs = [
        (draw(st.integers(0, n_pairs - 1)), BASE_MS + t, draw(st.integers(0, 1)), draw(notional),
         draw(prices))
        for t in ts
    ]  # fmt: skip
    return n_pairs, evs


def cols(evs: list[Event]) -> tuple[I32, F64, I8, F64, F64]:
    return (
        np.array([e[0] for e in evs], dtype=np.int32),
        np.array([e[1] for e in evs], dtype=np.int64) / 1000.0,
        np.array([e[2] for e in evs], dtype=np.int8),
        np.array([e[3] for e in evs], dtype=np.float64),
        np.array([e[4] for e in evs], dtype=np.float64),
    )


def trades_in_two_calls(s: m.MicroState, evs: list[Event], split: int) -> None:
    for chunk in (evs[:split], evs[split:]):
        assert s.apply_trades(*cols(chunk)) == len(chunk)


def read_times(evs: list[Event], extra_s: float) -> list[float]:
    t_max = max((e[1] for e in evs), default=BASE_MS) / 1000.0
    return [t_max, t_max + extra_s, t_max - 5.0]


def readout(s: m.MicroState, now: float, n_pairs: int) -> m.MicroReadout:
    rows = np.arange(n_pairs, dtype=np.int64)
    return s.read(now, rows, np.zeros((n_pairs, 3, len(s.params.horizons_s))))


@st.composite
def mixed_events(draw: st.DrawFn) -> tuple[int, list[tuple[str, int, float, float]]]:
    """(kind, pair, t, q): liquidations and trades (trades only start the clocks)."""
    n_pairs, evs = draw(event_lists(span_ms=1_500_000))
    kinds = draw(st.lists(st.sampled_from(["liq", "liq", "trd"]), min_size=len(evs),
                          max_size=len(evs)))  # fmt: skip
    return n_pairs, [(kd, e[0], e[1] / 1000.0, e[3]) for kd, e in zip(kinds, evs, strict=True)]


def apply_mixed(s: m.MicroState, evs: list[tuple[str, int, float, float]]) -> None:
    """Runs of the same kind through the wrapper, in arrival order."""
    i = 0
    while i < len(evs):
        j = i
        while j < len(evs) and evs[j][0] == evs[i][0]:
            j += 1
        run = evs[i:j]
        pid = np.array([e[1] for e in run], dtype=np.int32)
        t = np.array([e[2] for e in run])
        q = np.array([e[3] for e in run])
        if evs[i][0] == "liq":
            s.apply_liquidations(pid, t, q)
        else:
            s.apply_trades(pid, t, np.zeros(len(run), np.int8), q, np.ones(len(run)))
        i = j
