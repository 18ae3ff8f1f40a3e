"""consumers/models/screening.py: the row screens against their rules on arbitrary floats and codes
(NaN, infinities, out-of-range sides), exactly.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.models.screening import screen_events, screen_rows


@settings(deadline=None, max_examples=200)
@given(
    rows=st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-128, 127),
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(allow_nan=True, allow_infinity=True),
        ),
        max_size=50,
    ),
    with_price=st.booleans(),
)
def test_screen_rows_matches_the_rule(
    rows: list[tuple[float, int, float, float]], with_price: bool
) -> None:
    t = np.array([r[0] for r in rows], dtype=np.float64)
    side = np.array([r[1] for r in rows], dtype=np.int8)
    q = np.array([r[2] for r in rows], dtype=np.float64)
    px = np.array([r[3] for r in rows], dtype=np.float64) if with_price else np.empty(0)
    ok = np.empty(len(rows), dtype=np.bool_)
    n_bad, t_max = screen_rows(t, side, q, px, 3, ok)
    want = [
        math.isfinite(ti) and 0 <= si < 3 and math.isfinite(qi) and qi >= 0
        and (not with_price or (math.isfinite(pi) and pi > 0))
        for ti, si, qi, pi in rows
    ]  # fmt: skip
    assert ok.tolist() == want and n_bad == want.count(False)
    assert t_max == max((r[0] for r, w in zip(rows, want, strict=True) if w), default=-math.inf)


bad_floats = st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -1e-300, 1e300, 0.0, 1.0])


@settings(deadline=None, max_examples=150)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(-2, 4), bad_floats | st.floats(), st.integers(-3, 3), bad_floats, bad_floats
        ),
        max_size=40,
    ),
    with_price=st.booleans(),
    with_side=st.booleans(),
)
def test_screen_events_matches_the_rule(
    rows: list[tuple[int, float, int, float, float]], with_price: bool, with_side: bool
) -> None:
    pid = np.array([r[0] for r in rows], dtype=np.int32)
    t = np.array([r[1] for r in rows], dtype=np.float64)
    side = np.array([r[2] for r in rows], dtype=np.int8) if with_side else np.empty(0, np.int8)
    q = np.array([r[3] for r in rows], dtype=np.float64)
    px = np.array([r[4] for r in rows], dtype=np.float64) if with_price else np.empty(0)
    ok = np.empty(len(rows), dtype=np.bool_)
    rejected = np.zeros(3, dtype=np.int64)
    n_bad = screen_events(pid, t, side, q, px, ok, rejected)
    want = [
        0 <= p < 3 and math.isfinite(ti) and abs(ti) <= 1e12 and 0 <= qi <= 1e15
        and (not with_side or 0 <= si < 2) and (not with_price or (math.isfinite(pi) and pi > 0))
        for p, ti, si, qi, pi in rows
    ]  # fmt: skip
    assert ok.tolist() == want and n_bad == want.count(False)
    for p in range(3):
        assert rejected[p] == sum(1 for r, w in zip(rows, want, strict=True) if r[0] == p and not w)
