"""consumers/models/saturation.py against the slot-set reference of microstructure_ref.py
(hypothesis) plus hand-computed and late-event cases. Tolerance rel 1e-9.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from consumers.models import microstructure as m
from consumers.models.screening import LATE_SATURATION
from tests.consumers.models.micro_cases import (
    BASE_MS,
    HS,
    apply_mixed,
    close,
    mixed_events,
    readout,
)
from tests.consumers.models.microstructure_ref import SaturationRef


@HS
@given(
    data=mixed_events(),
    slot_s=st.sampled_from([0.5, 1.0]),
    tau_s=st.sampled_from([5.0, 60.0]),
    extra_s=st.floats(0.0, 100.0),
)
def test_saturation_matches_slot_set(
    data: tuple[int, list[tuple[str, int, float, float]]], slot_s: float, tau_s: float,
    extra_s: float,
) -> None:  # fmt: skip
    n_pairs, evs = data
    s = m.MicroState.allocate(
        n_pairs, m.MicroParams(saturation_slot_s=slot_s, saturation_tau_s=tau_s)
    )
    apply_mixed(s, evs)
    refs = [SaturationRef(slot_s, tau_s) for _ in range(n_pairs)]
    for kind, p, t, _ in evs:
        refs[p].start(t)
        if kind == "liq":
            refs[p].liquidation(t)
    t_max = max((e[2] for e in evs), default=BASE_MS / 1000.0)
    for now in (t_max, t_max + extra_s, t_max - 5.0):
        r = readout(s, now, n_pairs)
        for p, ref in enumerate(refs):
            assert close(r.saturation[p], ref.at(now)), (p, now)
            assert s.late[p, LATE_SATURATION] == ref.late


def test_saturation_full_empty_and_alternating() -> None:
    t0 = BASE_MS / 1000.0
    s = m.MicroState.allocate(3, m.MicroParams())  # 1 s slots, tau 60 s
    secs = np.arange(600.0)
    # pair 0: two liquidations in every second (a sampled feed counts each second once)
    t = np.sort(np.concatenate([t0 + secs + 0.1, t0 + secs + 0.7]))
    s.apply_liquidations(np.zeros(118, np.int32), t[:118], np.full(118, 10.0))  # seconds 0..58
    assert math.isnan(readout(s, t0 + 58.9, 3).saturation[0])  # 59 slots < tau/slot = 60
    s.apply_liquidations(np.zeros(1082, np.int32), t[118:], np.full(1082, 10.0))
    # pair 1: trades only; pair 2: a liquidation every other second
    s.apply_trades(np.ones(600, np.int32), t0 + secs, np.zeros(600, np.int8), np.ones(600),
                   np.ones(600))  # fmt: skip
    s.apply_liquidations(np.full(300, 2, np.int32), t0 + secs[::2] + 0.5, np.ones(300))
    r = readout(s, t0 + 599.5, 3)  # slot 599 (pair 0: occupied) counts; pair 2: 598 is the last
    assert math.isclose(r.saturation[0], 1.0, rel_tol=1e-12)
    assert r.saturation[1] == 0.0
    beta = math.exp(-1.0 / 60.0)
    n = 599  # completed slots 0..598, occupied 0, 2, ..., 598
    want = sum(beta**j for j in range(0, n, 2)) / sum(beta**j for j in range(n))
    assert math.isclose(r.saturation[2], want, rel_tol=1e-9) and 0.5 < want < 0.51


def test_saturation_late_events() -> None:
    t0 = 1_000_000.0
    s = m.MicroState.allocate(1, m.MicroParams(saturation_tau_s=10.0))
    pid = np.zeros(1, np.int32)
    s.apply_liquidations(pid, np.array([t0]), np.ones(1))
    s.apply_liquidations(pid, np.array([t0 + 100.0]), np.ones(1))
    before = readout(s, t0 + 100.5, 1).saturation[0]
    s.apply_liquidations(pid, np.array([t0 + 95.5]), np.ones(1))  # 5 slots late: counted
    after = readout(s, t0 + 100.5, 1).saturation[0]
    alpha = 1 - math.exp(-0.1)
    assert math.isclose(
        after - before, alpha * math.exp(-0.5) / (1 - math.exp(-10.1)), rel_tol=1e-9
    )
    s.apply_liquidations(pid, np.array([t0 + 95.9]), np.ones(1))  # same slot again: no change
    assert readout(s, t0 + 100.5, 1).saturation[0] == after
    s.apply_liquidations(pid, np.array([t0 + 30.0]), np.ones(1))  # 70 slots late: ignored
    assert readout(s, t0 + 100.5, 1).saturation[0] == after
    assert s.late[0, LATE_SATURATION] == 1
