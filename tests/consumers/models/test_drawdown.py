"""consumers/models/drawdown.py against the gap recursion of microstructure_ref.py (hypothesis) plus
hand-computed cases. Tolerance rel 1e-9 / abs 1e-12 (log-price rounding).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from consumers.models import microstructure as m
from consumers.models.screening import LATE_DRAWDOWN
from tests.consumers.models.micro_cases import (
    HS,
    Event,
    close,
    event_lists,
    read_times,
    readout,
    trades_in_two_calls,
)
from tests.consumers.models.microstructure_ref import DrawdownRef


@HS
@given(data=event_lists(), split=st.integers(0, 120), extra_s=st.floats(0.0, 1e5),
       tau_s=st.sampled_from([1.0, 3600.0]))  # fmt: skip
def test_drawdown_matches_gap_recursion(
    data: tuple[int, list[Event]], split: int, extra_s: float, tau_s: float
) -> None:
    n_pairs, evs = data
    s = m.MicroState.allocate(n_pairs, m.MicroParams(drawdown_tau_s=tau_s))
    trades_in_two_calls(s, evs, split)
    refs = [DrawdownRef(tau_s) for _ in range(n_pairs)]
    for p, t_ms, _, _, px in evs:
        refs[p].trade(t_ms / 1000.0, px)
    for now in read_times(evs, extra_s):
        r = readout(s, now, n_pairs)
        for p, ref in enumerate(refs):
            down, up = ref.at(now)
            assert s.late[p, LATE_DRAWDOWN] == ref.late
            assert close(r.drawdown[p], down, abs_=1e-12) and close(r.drawup[p], up, abs_=1e-12)
            assert math.isnan(down) or (0.0 <= r.drawdown[p] <= 1.0 and 0.0 <= r.drawup[p] <= 1.0)


def test_drawdown_hand_computed() -> None:
    s = m.MicroState.allocate(1, m.MicroParams(drawdown_tau_s=100.0))

    def tr(t: float, px: float) -> None:
        s.apply_trades(np.zeros(1, np.int32), np.array([t]), np.zeros(1, np.int8), np.ones(1),
                       np.array([px]))  # fmt: skip

    def dd(now: float) -> tuple[float, float]:
        r = readout(s, now, 1)
        return float(r.drawdown[0]), float(r.drawup[0])

    tr(0.0, 100.0)
    assert dd(0.0) == (0.0, 0.0)
    tr(10.0, 80.0)  # high 100 (relaxation toward 100 does nothing), low 80
    assert math.isclose(dd(10.0)[0], 0.2, rel_tol=1e-12) and dd(10.0)[1] == 0.0
    g = math.log(100.0 / 80.0) * math.exp(-1.0)  # 100 s later the log gap has decayed by e
    assert math.isclose(dd(110.0)[0], 1 - math.exp(-g), rel_tol=1e-12)
    tr(110.0, 90.0)  # high relaxed to 80*e^g, above 90? e^g = 1.0856 -> 86.8 < 90: new high 90
    assert dd(110.0)[0] == 0.0
    assert math.isclose(dd(110.0)[1], 1 - 80.0 / 90.0, rel_tol=1e-12)  # the low stayed at 80
    tr(50.0, 1.0)  # late: ignored, counted
    assert s.late[0, LATE_DRAWDOWN] == 1 and dd(110.0)[0] == 0.0
