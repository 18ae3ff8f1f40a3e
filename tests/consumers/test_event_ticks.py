"""EventTicks: a key's events are held per tick and applied at the tick's close, once the clock is
``lateness_s`` past it; what each close sees is the same whatever the interleaving."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.event_ticks import Due, EventTicks

Event = tuple[str, float, int]  # (key, event time, id)
Log = list[tuple[str, float, bool, frozenset[int]]]  # (key, due time, quiet?, ids applied)


def due_all(ticks: EventTicks[str], horizon: float | None = None) -> list[Due[str]]:
    """Every group due now, in order."""
    out: list[Due[str]] = []
    while dues := ticks.due(horizon):
        out += dues
    return out


def run(ticks: EventTicks[str], arrivals: list[Event], quiet_rule: bool = False) -> Log:
    """Feed events in arrival order as a consumer does (assign, then take what is due, then at
    the end flush). Every due time is logged with the ids applied to its key by then.
    ``quiet_rule``: after each evaluation a key is marked quiet while it has an odd number of
    events applied (a stand-in for "an alert is firing", a function of what was applied)."""
    held: dict[tuple[str, int], list[int]] = {}
    applied: dict[str, set[int]] = {}
    log: Log = []

    def take(horizon: float | None = None) -> None:
        while dues := ticks.due(horizon):
            for d in dues:
                if d.tick is not None:
                    applied.setdefault(d.key, set()).update(held.pop((d.key, d.tick), []))
                ids = frozenset(applied.get(d.key, set()))
                log.append((d.key, d.t, d.tick is None, ids))
                if quiet_rule:
                    ticks.quiet(d.key, len(ids) % 2 == 1)

    for key, t, i in arrivals:
        held.setdefault((key, ticks.assign(key, t)), []).append(i)
        take()
    take(ticks.last_close())
    assert not held, "every held event is applied by a close"
    return log


def test_a_tick_closes_once_the_clock_is_lateness_past_its_end() -> None:
    ticks: EventTicks[str] = EventTicks(period_s=1.0, lateness_s=0.5)
    assert [ticks.assign("a", t) for t in (0.1, 0.4, 1.2)] == [0, 0, 1]
    assert due_all(ticks) == []  # clock 1.2: tick 0 ends at 1.0, due at 1.5
    ticks.assign("b", 1.5)
    assert due_all(ticks) == [Due(1.0, "a", 0)]
    ticks.advance(2.6)  # an idle input whose time goes on
    assert due_all(ticks) == [Due(2.0, "a", 1), Due(2.0, "b", 1)]
    assert due_all(ticks, ticks.last_close()) == []


def test_a_late_event_joins_the_first_tick_not_closed() -> None:
    ticks: EventTicks[str] = EventTicks(period_s=1.0, lateness_s=0.0)
    ticks.assign("a", 2.5)
    ticks.advance(3.0)
    assert due_all(ticks) == [Due(3.0, "a", 2)]
    assert ticks.assign("a", 2.9) == 3  # its own tick 2 closed
    assert ticks.assign("a", 3.1) == 3
    assert due_all(ticks, ticks.last_close()) == [Due(4.0, "a", 3)]


def test_quiet_evaluations_follow_a_marked_keys_closes_until_unmarked() -> None:
    ticks: EventTicks[str] = EventTicks(period_s=1.0, lateness_s=0.0, quiet_s=5.0)
    ticks.assign("a", 0.5)
    ticks.advance(1.0)
    assert due_all(ticks) == [Due(1.0, "a", 0)]
    ticks.quiet("a", True)
    ticks.advance(10.9)
    assert due_all(ticks) == [Due(6.0, "a", None)]
    ticks.assign("a", 12.2)  # tick 12 ends at 13: the quiet evaluation at 11 comes first
    assert due_all(ticks) == [Due(11.0, "a", None)]
    ticks.advance(13.0)
    assert due_all(ticks) == [Due(13.0, "a", 12)]
    ticks.quiet("a", False)
    ticks.advance(100.0)
    assert due_all(ticks) == []


def test_a_quiet_evaluation_after_held_events_waits_for_their_close() -> None:
    ticks: EventTicks[str] = EventTicks(period_s=1.0, lateness_s=2.0, quiet_s=3.0)
    ticks.assign("a", 0.5)
    ticks.advance(3.0)
    assert due_all(ticks) == [Due(1.0, "a", 0)]
    ticks.quiet("a", True)  # quiet at 4.0
    ticks.assign("a", 2.5)  # tick 2 ends at 3.0 < 4.0: its close evaluates, quiet moves to 6.0
    ticks.advance(8.0)
    assert due_all(ticks) == [Due(3.0, "a", 2), Due(6.0, "a", None)]


def test_a_forgotten_key_is_never_due() -> None:
    ticks: EventTicks[str] = EventTicks(period_s=1.0, lateness_s=0.0)
    ticks.assign("a", 0.5)
    ticks.assign("a", 1.5)
    assert ticks.forget("a") == [0, 1]
    ticks.advance(5.0)
    assert due_all(ticks) == [] and due_all(ticks, ticks.last_close()) == []


@pytest.mark.parametrize(
    ("period", "lateness", "quiet"),
    [(0.0, 1.0, None), (1.0, -1.0, None), (1.0, 1.0, 0.0), (math.inf, 0.0, None)],
)
def test_bad_parameters_are_refused(period: float, lateness: float, quiet: float | None) -> None:
    with pytest.raises(ValueError):
        EventTicks(period_s=period, lateness_s=lateness, quiet_s=quiet)


# Several keys, each with two streams (say liquidations and trades) of events in time order.
# Each event arrives ``delay`` after its time, with delay < lateness, so no event is late; the
# interleaving of keys and streams, and so the arrival order, depends on the delays.
_streams = st.lists(
    st.lists(st.floats(0.0, 30.0, allow_nan=False), min_size=1, max_size=15),
    min_size=1,
    max_size=6,
)


def _arrivals(streams: list[list[float]], delays: list[float]) -> list[Event]:
    events: list[tuple[float, int, Event]] = []
    i = 0
    for s, times in enumerate(streams):
        key = f"k{s // 2}"  # two streams per key
        for t in sorted(times):
            d = delays[i % len(delays)]
            events.append((t + d, i, (key, t, i)))
            i += 1
    return [ev for _, _, ev in sorted(events)]


@given(
    streams=_streams,
    delays_a=st.lists(st.floats(0.0, 0.999), min_size=1, max_size=20),
    delays_b=st.lists(st.floats(0.0, 0.999), min_size=1, max_size=20),
    period=st.sampled_from([0.1, 0.5, 1.0, 2.5]),
    quiet=st.sampled_from([None, 0.7, 3.0]),
)
def test_every_close_sees_the_same_events_whatever_the_interleaving(
    streams: list[list[float]],
    delays_a: list[float],
    delays_b: list[float],
    period: float,
    quiet: float | None,
) -> None:
    logs = []
    for delays in (delays_a, delays_b):
        ticks: EventTicks[str] = EventTicks(period_s=period, lateness_s=1.0, quiet_s=quiet)
        logs.append(run(ticks, _arrivals(streams, delays), quiet_rule=quiet is not None))
    a, b = (sorted(log, key=lambda x: (x[0], x[1], x[2])) for log in logs)
    assert a == b
    for log in logs:  # per key, evaluation times only increase, and each is a tick end or quiet
        last: dict[str, float] = {}
        for key, t, is_quiet, _ in log:
            assert t > last.get(key, -math.inf)
            last[key] = t
            if not is_quiet:
                assert math.isclose(t / period, round(t / period), abs_tol=1e-9)


def test_without_lateness_a_late_event_changes_only_which_close_sees_it() -> None:
    """An event later than ``lateness_s`` is not lost: it is applied at the next close."""
    ticks: EventTicks[str] = EventTicks(period_s=1.0, lateness_s=0.0)
    log = run(ticks, [("a", 0.2, 1), ("b", 3.0, 2), ("a", 0.4, 3)])
    assert log == [
        ("a", 1.0, False, frozenset({1})),
        ("a", 2.0, False, frozenset({1, 3})),  # joined a's first tick not closed (1)
        ("b", 4.0, False, frozenset({2})),
    ]
