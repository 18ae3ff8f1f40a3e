"""The count-moment cross-check of the Hawkes refit (consumers/models/hawkes_fit.py) against the
reference of hawkes_ref.py (exact arithmetic, rel 1e-12) and hand-computed bins. The refit itself
is tested through the state in test_hawkes.py.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.models import hawkes_fit as hk
from tests.consumers.models.hawkes_ref import count_moment_ref


@settings(deadline=None, max_examples=300)
@given(
    s=st.lists(
        st.one_of(st.floats(0.0, 1000.0), st.sampled_from([0.0, 10.0, 500.0, 1000.0])), max_size=300
    ),
    T=st.one_of(st.floats(0.0, 1000.0), st.just(1000.0)),
    bin_s=st.one_of(st.floats(0.5, 600.0), st.sampled_from([10.0, 250.0, 500.0])),
)
def test_count_moment_matches_reference(s: list[float], T: float, bin_s: float) -> None:
    s = sorted(x for x in s if x <= T)
    got = hk.count_moment_n(np.array(s), len(s), T, bin_s)
    want = count_moment_ref(s, T, bin_s)
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12)
        assert 0.0 <= got < 1.0


def test_count_moment_hand_computed() -> None:
    cm = hk.count_moment_n
    assert math.isnan(cm(np.empty(0), 0, 100.0, 10.0))  # no event
    assert math.isnan(cm(np.array([1.0]), 1, 15.0, 10.0))  # one bin
    regular = np.arange(0.5, 100.0, 1.0)  # 10 per bin: Var = 0, underdispersed, clipped to 0
    assert cm(regular, regular.size, 100.0, 10.0) == 0.0
    # T = 25: bins [5, 15), [15, 25] hold 0 and 4 events (mean 2, var 8): n = 1 - sqrt(1/4);
    # the partial bin [0, 5) is left out, with the event in it
    s = np.array([1.0, 16.0, 17.0, 18.0, 25.0])
    assert cm(s, s.size, 25.0, 10.0) == 0.5
