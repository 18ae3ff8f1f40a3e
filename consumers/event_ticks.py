"""When each key's events are applied and its work is due, on event time. Pure module.

Alert rules and model refits run on event time, so that what a consumer emits is a function of
the events it received, not of how Kafka batched or interleaved them: the live consumer and a
backtest of the same events emit the same alert transitions. This is a watermark scheme:

* Event time is cut into *ticks* of ``period_s``. An event of a key goes to the tick of its time,
  or to the key's first tick not yet closed if its own tick already closed (a late event is
  never lost: it joins the next close).
* A key's tick ``k`` *closes* once the input's event clock (the latest event time received on
  it) is ``lateness_s`` past the tick's end ``(k + 1) * period_s``. The events of the tick are
  held until then; at the close they are applied and the key's work runs at the close time.
  A close therefore sees exactly the key's events of every tick up to ``k`` that arrived before
  the clock passed ``(k + 1) * period_s + lateness_s``: whatever the record boundaries, the
  interleaving of keys, or the interleaving of one key's streams (liquidations, trades, market
  context), as long as they are less than ``lateness_s`` out of time order with each other.
  ``lateness_s`` trades latency (a tick's work waits up to ``period_s + lateness_s``) for that
  margin.
* With ``quiet_s`` set, a key marked ``quiet(key, True)`` (an alert firing or pending on it) is
  also due every ``quiet_s`` of event time after its last close, up to its next close: values
  decay while a market is quiet, and a firing alert must resolve without a new event. A quiet
  evaluation sees the events of the closed ticks only (later ones are still held), and closes
  the key's ticks ending at or before it, so evaluation times of a key only increase.

Every due time is a tick end, or a multiple of ``quiet_s`` after one: the same on every path that
receives the same events. ``due`` hands them out in time order, one due time at a time (ties
by key), so that marking a key quiet after an evaluation takes effect from the next.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

K = TypeVar("K", bound=Hashable)
_NEVER = -(2**62)  # "no tick closed yet"


class Due(NamedTuple, Generic[K]):
    """Work due for ``key`` at event time ``t``: the close of ``tick``, or (``tick`` None) a quiet
    evaluation."""

    t: float
    key: K
    tick: int | None


@dataclass(slots=True)
class _Key:
    pending: set[int] = field(default_factory=set)  # ticks holding events, not closed
    last_closed: int = _NEVER  # every tick up to this one is closed
    quiet: bool = False
    next_quiet: float = math.inf


class EventTicks(Generic[K]):
    """The ticks and due times of many keys (see the module docstring)."""

    def __init__(self, period_s: float, lateness_s: float, quiet_s: float | None = None) -> None:
        if not (period_s > 0 and math.isfinite(period_s)):
            raise ValueError(f"period_s must be > 0 and finite, got {period_s}")
        if not (lateness_s >= 0 and math.isfinite(lateness_s)):
            raise ValueError(f"lateness_s must be >= 0 and finite, got {lateness_s}")
        if quiet_s is not None and not (quiet_s > 0 and math.isfinite(quiet_s)):
            raise ValueError(f"quiet_s must be > 0 and finite, got {quiet_s}")
        self.period_s = period_s
        self.lateness_s = lateness_s
        self.quiet_s = quiet_s
        self.clock = -math.inf  # the latest event time received
        self._keys: dict[K, _Key] = {}
        self._heap: list[tuple[float, int, K, int | None]] = []  # (time, seq, key, tick | None)
        self._seq = 0

    def tick_of(self, t: float) -> int:
        return math.floor(t / self.period_s)

    def end_of(self, tick: int) -> float:
        return (tick + 1) * self.period_s

    def floor(self, key: K) -> int:
        """The first tick of ``key`` not closed: an event of an earlier tick joins this one."""
        st = self._keys.get(key)
        return st.last_closed + 1 if st is not None else _NEVER + 1

    def hold(self, key: K, tick: int) -> None:
        """Events of ``key`` are held in ``tick`` (at least ``floor(key)``): it closes once the
        clock is ``lateness_s`` past its end."""
        st = self._keys.get(key)
        if st is None:
            st = self._keys[key] = _Key()
        if tick <= st.last_closed:
            raise ValueError(f"tick {tick} of {key!r} is closed (floor {st.last_closed + 1})")
        if tick not in st.pending:
            st.pending.add(tick)
            self._push(self.end_of(tick), key, tick)

    def assign(self, key: K, t: float) -> int:
        """Hold one event of ``key`` at ``t``: its tick (its own, or ``floor(key)`` if that
        closed) is returned, and the clock moves to ``t`` if later."""
        tick = max(self.tick_of(t), self.floor(key))
        self.hold(key, tick)
        self.advance(t)
        return tick

    def advance(self, clock: float) -> None:
        """Move the clock without an event (an idle input whose time goes on)."""
        self.clock = max(self.clock, clock)

    def due(self, horizon: float | None = None) -> list[Due[K]]:
        """The next work due: every close or quiet evaluation at the earliest due time, if that
        time is at least ``lateness_s`` behind the clock (or at most ``horizon``); [] when
        nothing is due. Take them one group at a time, and mark keys quiet or not before asking
        for the next group: a mark applies from the next group on."""
        if horizon is None:
            horizon = self.clock - self.lateness_s
        out: list[Due[K]] = []
        heap = self._heap
        while heap and heap[0][0] <= horizon and not (out and heap[0][0] != out[0].t):
            t, _, key, tick = heapq.heappop(heap)
            if tick is not None:
                if self._take_close(key, tick):
                    out.append(Due(t, key, tick))
            elif self._take_quiet(key, t):
                out.append(Due(t, key, None))
        out.sort(key=lambda d: str(d.key))
        return out

    def last_close(self) -> float:
        """The latest pending close (-inf if none): at the end of the input, ``due(horizon=...)``
        up to it takes every close and the quiet evaluations before it (none after)."""
        return max((t for t, _, _, tick in self._heap if tick is not None), default=-math.inf)

    def quiet(self, key: K, on: bool) -> None:
        """Ask for (``on``) or stop the quiet evaluations of ``key`` (no-op without ``quiet_s``
        or for a key never seen)."""
        st = self._keys.get(key)
        if self.quiet_s is None or st is None or st.quiet == on:
            return
        st.quiet = on
        st.next_quiet = math.inf
        if on:
            self._schedule_quiet(st, key, self.end_of(st.last_closed) + self.quiet_s)

    def forget(self, key: K) -> list[int]:
        """Drop ``key`` (its partition moved to another consumer): returns its pending ticks,
        whose events the caller still holds."""
        st = self._keys.pop(key, None)
        return sorted(st.pending) if st is not None else []

    def pending(self, key: K) -> bool:
        st = self._keys.get(key)
        return bool(st and st.pending)

    # ---- internals ------------------------------------------------------------------------

    def _take_quiet(self, key: K, t: float) -> bool:
        st = self._keys.get(key)
        if st is None or not st.quiet or st.next_quiet != t:
            return False  # stale: unmarked, or rescheduled by a close
        if st.pending and self.end_of(min(st.pending)) <= t:
            return False  # events arrived before it: their close evaluates, and reschedules
        # the quiet evaluation closes every tick ending at or before it
        st.last_closed = max(st.last_closed, math.floor(t / self.period_s) - 1)
        assert self.quiet_s is not None
        self._schedule_quiet(st, key, t + self.quiet_s)
        return True

    def _take_close(self, key: K, tick: int) -> bool:
        st = self._keys.get(key)
        if st is None or tick not in st.pending:
            return False
        st.pending.discard(tick)
        st.last_closed = max(st.last_closed, tick)
        if st.quiet and self.quiet_s is not None:
            self._schedule_quiet(st, key, self.end_of(tick) + self.quiet_s)
        return True

    def _schedule_quiet(self, st: _Key, key: K, t: float) -> None:
        st.next_quiet = t
        self._push(t, key, None)

    def _push(self, t: float, key: K, tick: int | None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, key, tick))
