"""When work is due on event time, per pair, from the pair's own events. Pure module.

Alert rules and model refits run on event time, so that what a consumer emits is a function of
the events it applied, not of when Kafka happened to deliver them: the live consumer and a
backtest of the same events emit the same alert transitions. The unit is a *tick* of
``period_s`` of event time. A key (a pair) is due at the close of every tick in which it had
events, at the close's time ``(k + 1) * period_s``, and nowhere else (plus the optional quiet
ticks below). The close of a key's tick is taken:

* before the key's first event of a later tick is applied (``cut`` splits a record there), so the
  state read at the close holds exactly the key's events up to it; or
* once the consumer's event clock (the latest event time it has seen on that input) is
  ``lateness_s`` past the close (``due``): a key with no later event (a quiet pair) is not
  waited for forever. ``lateness_s`` bounds how far behind time order the key's events may
  arrive relative to other keys' on the same input (Kafka keeps a key's events in order; the
  producer interleaves keys by arrival); a larger value trades alert latency for that margin.

A key's events with a time in an already closed tick (late, within the state's late tolerance)
fall in its next tick. With ``quiet_s`` set, a key marked ``quiet(key, True)`` (an alert firing
or pending on it) is also due every ``quiet_s`` of event time after its last close, until
unmarked: values decay while a market is quiet, and a firing alert must be able to resolve
without a new event. Every due time is a multiple of ``period_s`` or of ``quiet_s`` counted from
a close: the same on every path that applies the same events per key in the same order.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class _Key:
    open_tick: int | None = None  # a tick with events not yet closed
    last_closed: int = -(2**62)  # the latest tick closed
    next_quiet: float = math.inf  # the next quiet evaluation, when marked quiet
    quiet: bool = False


class EventTicks(Generic[K]):
    """The due times of many keys (see the module docstring)."""

    def __init__(self, period_s: float, lateness_s: float, quiet_s: float | None = None) -> None:
        if not (period_s > 0 and lateness_s >= 0) or (quiet_s is not None and not quiet_s > 0):
            raise ValueError("period_s and quiet_s must be > 0, lateness_s >= 0")
        self.period_s = period_s
        self.lateness_s = lateness_s
        self.quiet_s = quiet_s
        self._keys: dict[K, _Key] = {}
        self._closes: list[tuple[float, int, K]] = []  # (close time, seq, key): open ticks
        self._quiets: list[tuple[float, int, K]] = []  # (time, seq, key): quiet evaluations
        self._seq = 0  # tie-break: keys in the order they first became due

    def tick_of(self, t: float) -> int:
        return math.floor(t / self.period_s)

    def cut(self, key: K, times: Sequence[float]) -> list[tuple[int, list[float]]]:
        """Split a key's events (their times, in the order they will be applied) where work is
        due: ``[(i, [t1, t2, ...]), ...]`` means "run the work at t1, t2, ... before applying
        events ``i:``". Also marks the key's ticks that the events open."""
        st = self._keys.get(key)
        if st is None:
            st = self._keys[key] = _Key()
        out: list[tuple[int, list[float]]] = []
        for i, t in enumerate(times):
            k = max(self.tick_of(t), st.last_closed + 1)  # a late event joins the next tick
            if st.open_tick is not None and k > st.open_tick:
                due = [self._close(st, key)]
                due += self._quiet_before(st, t)
                out.append((i, due))
            elif st.open_tick is None:
                due = self._quiet_before(st, t)
                if due:
                    out.append((i, due))
            if st.open_tick is None:
                st.open_tick = k
                heapq.heappush(self._closes, ((k + 1) * self.period_s, self._next_seq(), key))
        return out

    def due(self, clock: float) -> list[tuple[float, K]]:
        """The work due once the input's event clock is at ``clock``: closes and quiet times at
        least ``lateness_s`` behind it, in time order (ties by key)."""
        out: list[tuple[float, K]] = []
        horizon = clock - self.lateness_s
        while self._closes and self._closes[0][0] <= horizon:
            t, _, key = heapq.heappop(self._closes)
            st = self._keys[key]
            if st.open_tick is not None and (st.open_tick + 1) * self.period_s == t:
                out.append((self._close(st, key), key))
        while self._quiets and self._quiets[0][0] <= horizon:
            t, _, key = heapq.heappop(self._quiets)
            st = self._keys[key]
            if st.quiet and st.open_tick is None and st.next_quiet == t:
                out.append((t, key))
                self._schedule_quiet(st, key, t + self._quiet_step())
        out.sort(key=lambda x: (x[0], str(x[1])))
        return out

    def flush(self) -> list[tuple[float, K]]:
        """At the end of the input: every open tick's close, in time order (ties by key)."""
        out = []
        while self._closes:
            t, _, key = heapq.heappop(self._closes)
            st = self._keys[key]
            if st.open_tick is not None and (st.open_tick + 1) * self.period_s == t:
                out.append((self._close(st, key), key))
        out.sort(key=lambda x: (x[0], str(x[1])))
        return out

    def quiet(self, key: K, on: bool) -> None:
        """Ask for (``on``) or stop quiet evaluations of ``key`` after its last close (no-op
        without ``quiet_s``)."""
        st = self._keys.get(key)
        if self.quiet_s is None or st is None or st.quiet == on:
            return
        st.quiet = on
        if not on:
            st.next_quiet = math.inf
        elif st.open_tick is None:  # closed: the first quiet time after the last close
            self._schedule_quiet(st, key, (st.last_closed + 1) * self.period_s + self.quiet_s)

    # ---- internals ------------------------------------------------------------------------

    def _quiet_step(self) -> float:
        return self.quiet_s if self.quiet_s is not None else math.inf

    def _close(self, st: _Key, key: K) -> float:
        assert st.open_tick is not None
        k, st.open_tick = st.open_tick, None
        st.last_closed = k
        t = (k + 1) * self.period_s
        if st.quiet:
            self._schedule_quiet(st, key, t + self._quiet_step())
        return t

    def _quiet_before(self, st: _Key, t: float) -> list[float]:
        """The quiet evaluations of a marked key that fall before its next event at ``t``."""
        out = []
        while st.quiet and st.next_quiet < t:
            out.append(st.next_quiet)
            st.next_quiet += self._quiet_step()
        return out

    def _schedule_quiet(self, st: _Key, key: K, t: float) -> None:
        st.next_quiet = t
        heapq.heappush(self._quiets, (t, self._next_seq(), key))

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq
