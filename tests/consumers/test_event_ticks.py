"""EventTicks: work due at tick closes of each key's own events, the same whatever the batching."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.event_ticks import EventTicks

Log = list[tuple[str, float, int]]  # (key, due time, events of the key applied before it)


def run(
    ticks: EventTicks[str], records: list[tuple[str, list[float]]], *, flush: bool = True
) -> Log:
    """Apply records (key, event times) in order, as a consumer does: cut, apply, then what the
    clock makes due. Returns every due (key, time) with the key's applied count at that moment."""
    applied: dict[str, int] = {}
    log: Log = []
    clock = float("-inf")
    for key, times in records:
        cuts = dict(ticks.cut(key, times))
        for i in range(len(times)):
            for due in cuts.get(i, []):
                log.append((key, due, applied.get(key, 0)))
            applied[key] = applied.get(key, 0) + 1
        clock = max(clock, *times)
        log += [(k, t, applied.get(k, 0)) for t, k in ticks.due(clock)]
    if flush:
        log += [(k, t, applied.get(k, 0)) for t, k in ticks.flush()]
    return log


def test_a_tick_closes_before_the_next_ticks_first_event_or_when_the_clock_passes_it() -> None:
    ticks: EventTicks[str] = EventTicks(period_s=1.0, lateness_s=0.5)
    assert ticks.cut("a", [0.1, 0.4, 1.2, 1.3, 3.5]) == [(2, [1.0]), (4, [2.0])]
    assert ticks.due(3.9) == []  # a's tick 3 closes at 4.0
    assert ticks.due(4.4) == []  # ... and is due once the clock is 0.5 past it
    assert ticks.due(4.5) == [(4.0, "a")]
    assert ticks.cut("a", [4.2]) == []  # its tick was closed: a new one opens
    assert ticks.flush() == [(5.0, "a")]


def test_a_late_event_joins_the_next_tick() -> None:
    ticks: EventTicks[str] = EventTicks(period_s=1.0, lateness_s=0.0)
    ticks.cut("a", [2.5])
    assert ticks.due(3.0) == [(3.0, "a")]
    assert ticks.cut("a", [2.9, 3.1]) == []  # 2.9 is in the closed tick 2: it opens tick 3
    assert ticks.flush() == [(4.0, "a")]


def test_quiet_evaluations_follow_a_marked_keys_last_close_until_unmarked() -> None:
    ticks: EventTicks[str] = EventTicks(period_s=1.0, lateness_s=0.0, quiet_s=5.0)
    ticks.cut("a", [0.5])
    assert ticks.due(1.0) == [(1.0, "a")]
    ticks.quiet("a", True)
    assert ticks.due(10.9) == [(6.0, "a")]
    assert ticks.due(11.0) == [(11.0, "a")]
    # the next event: the quiet time before it is due first
    assert ticks.cut("a", [17.0]) == [(0, [16.0])]
    assert ticks.due(18.0) == [(18.0, "a")]
    ticks.quiet("a", False)
    assert ticks.due(100.0) == []


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="period_s"):
        EventTicks(period_s=0.0, lateness_s=1.0)


def records_of(
    events: dict[str, list[float]], rng: random.Random, max_batch: int
) -> list[tuple[str, list[float]]]:
    """The keys' events in their own order, cut into batches of random sizes spanning at most
    0.2 s (as a producer batches what arrives within its linger), the batches of different keys
    interleaved at random up to 0.4 s out of time order: within the 1 s lateness below."""
    chunks: dict[str, list[list[float]]] = {}
    for key, times in events.items():
        i = 0
        while i < len(times):
            n, limit = 1, rng.randint(1, max_batch)
            while n < limit and i + n < len(times):
                if times[i + n] - times[i] > 0.2:
                    break
                n += 1
            chunks.setdefault(key, []).append(times[i : i + n])
            i += n
    slots = [(c[-1] + rng.uniform(0.0, 0.4), key) for key, cs in chunks.items() for c in cs]
    slots.sort()
    # each key's chunks keep their own order (Kafka keeps a key's records in order)
    return [(key, chunks[key].pop(0)) for _, key in slots]


@given(
    gaps=st.dictionaries(
        st.sampled_from(["a", "b", "c"]),
        st.lists(st.floats(0.0, 3.0), min_size=1, max_size=30),
        min_size=1,
    ),
    seeds=st.tuples(st.integers(0, 2**16), st.integers(0, 2**16)),
)
def test_the_due_work_does_not_depend_on_batching_or_interleaving(
    gaps: dict[str, list[float]], seeds: tuple[int, int]
) -> None:
    events = {}
    for key, g in gaps.items():
        t, times = 0.0, []
        for x in g:
            t += x
            times.append(round(t, 6))
        events[key] = times
    logs = []
    for seed in seeds:
        ticks: EventTicks[str] = EventTicks(period_s=0.5, lateness_s=1.0)
        logs.append(sorted(run(ticks, records_of(events, random.Random(seed), 4))))
    assert logs[0] == logs[1]
    # every key is due once per tick it had events in, after exactly its events up to the close
    for key, times in events.items():
        closes = [(k, t, n) for k, t, n in logs[0] if k == key]
        assert [t for _, t, _ in closes] == sorted({(int(x // 0.5) + 1) * 0.5 for x in times})
        assert all(n == sum(1 for x in times if x < t) for _, t, n in closes)
