"""One exchange's consumer on event time: records held by tick, applied at the tick's close, each
closed pair's models maintained and its alert rules evaluated at the close. Pure module (no
Kafka, no Prometheus): the consumer service feeds it fetched records, ``cascade-monitor
backtest`` feeds it recorded frames, and both get the same alert transitions.

``offer(batch, token)`` splits a decoded record into its pair's ticks (``consumers.event_ticks``:
a tick of ``consumer.alert_eval_s``; an event whose tick already closed joins the next) and holds
the parts. ``step()`` takes the work the event clock makes due, one due time at a time, in time
order; for each pair due at ``t``:

1. the pair's held parts of the closing tick are merged into one batch per kind and applied
   (``consumers.ingest.RecordIngest``): liquidations and trades first, then market context, so
   the state does not depend on how the pair's streams interleaved within the tick;
2. if ``risk.refit_interval_s`` of event time passed since the pair's last maintenance, its
   Hawkes refit and rank histories run at ``t`` (``RiskState.maintain(t, rows)``);
3. the pair's risk values at ``t`` (``RiskState.read(t, rows)``) go through the alert rules.
   Pairs with an alert firing or pending are marked quiet in the ticks, so they are evaluated
   every ``consumer.alert_quiet_s`` of event time while no events come (a firing alert resolves
   as values decay).

A transition at an event time that warm-up replay covered (``replay=True`` parts: history another
consumer already evaluated) rebuilds the rule state but is not emitted. Tokens (the service's
``(partition, offset)``) are returned once every part of their record was applied, so offsets are
committed only for records the state holds. ``drop(keys)`` discards the held parts of pairs whose
partition moved away, and stops their ticks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from consumers.event_ticks import Due, EventTicks
from consumers.ingest import Ingested, RecordIngest
from consumers.readout import RiskRow, risk_rows
from monitor.alerting.rules import RuleEngine
from monitor.core.alertrecord import AlertEvent
from monitor.core.codec import Batch
from monitor.core.errors import CodecError

T = TypeVar("T", bound=Hashable)  # a record's token (the service: its partition and offset)
_KINDS = ("liq", "trd", "ctx")


@dataclass(slots=True)
class _Part:
    """The rows of one record that fall in one tick of its pair."""

    batch: Batch
    token: Any
    replay: bool


@dataclass(slots=True)
class Step(Generic[T]):
    """What one ``step`` (or ``release``) did, in order."""

    ingested: list[tuple[Ingested, bool]] = field(default_factory=list)  # (result, replay)
    done: list[T] = field(default_factory=list)  # tokens whose record is fully applied
    transitions: list[AlertEvent] = field(default_factory=list)
    suppressed: int = 0  # transitions within replayed history (rule state rebuilt, not emitted)
    evaluated: int = 0  # pair evaluations
    maintained: int = 0  # pair maintenances (Hawkes refit, rank histories)
    maintain_s: float = 0.0  # wall time spent maintaining


class EventEngine(Generic[T]):
    """See the module docstring. ``on_row(t, row)`` sees every evaluated pair's values."""

    def __init__(
        self,
        ingest: RecordIngest,
        rules: RuleEngine | None,
        *,
        period_s: float,
        lateness_s: float,
        quiet_s: float,
        refit_interval_s: float,
        on_row: Callable[[float, RiskRow], None] | None = None,
    ) -> None:
        if not (refit_interval_s > 0 and math.isfinite(refit_interval_s)):
            raise ValueError("refit_interval_s must be > 0 and finite")
        self.ingest = ingest
        self.state = ingest.state
        self.exchange = ingest.exchange
        self.rules = rules
        self.ticks: EventTicks[str] = EventTicks(period_s, lateness_s, quiet_s)
        self.refit_interval_s = refit_interval_s
        self.on_row = on_row
        self._held: dict[tuple[str, int], list[_Part]] = {}
        self._n_held = 0
        self._event_clock = -math.inf
        self._parts_left: dict[Any, int] = {}  # token -> parts not applied yet
        self._partial: set[Any] = set()  # tokens with parts applied and parts held
        self._next_maintain: dict[str, float] = {}  # symbol -> event time of its next one
        self._replayed_until: dict[str, float] = {}  # symbol -> latest replayed event time
        self._recv_ns: dict[str, int] = {}  # symbol -> earliest receipt applied since evaluated
        self._last_recv_ns: dict[str, int] = {}  # symbol -> that of its last close with events

    # ---- input ---------------------------------------------------------------------------

    @property
    def clock(self) -> float:
        """The event clock: the latest event time offered, or later if ``advance`` moved it
        (-inf before the first)."""
        return self.ticks.clock

    @property
    def event_clock(self) -> float:
        """The latest event time offered (-inf before the first), whatever ``advance`` did."""
        return self._event_clock

    @property
    def held(self) -> int:
        """Record parts held, waiting for their tick to close."""
        return self._n_held

    def offer(self, batch: Batch, token: T | None = None, *, replay: bool = False) -> int:
        """Hold a decoded record of this exchange until its pair's ticks close; returns the
        number of parts it was split into (0 for a record without events: done at once).
        CodecError (nothing held) when its times are not numbers."""
        key = batch.symbol
        first = self.ticks.floor(key)
        period = self.ticks.period_s
        rows: dict[int, dict[str, list[int]]] = {}
        t_max = -math.inf
        for kind in _KINDS:
            cols = getattr(batch, kind)
            if not cols or not cols["ts_ms"]:
                continue
            ticks: list[int] = []
            for ms in cols["ts_ms"]:
                try:
                    t = float(ms) / 1000.0  # as numpy would: float64, then IEEE division
                except (TypeError, ValueError) as exc:
                    raise CodecError(f"{kind}.ts_ms: not a number ({exc})") from None
                if math.isfinite(t):
                    t_max = max(t, t_max)
                    ticks.append(max(math.floor(t / period), first))
                else:  # goes with the first open tick: the state screens it out
                    ticks.append(first)
            lo = ticks[0]
            if all(k == lo for k in ticks):
                rows.setdefault(lo, {})[kind] = list(range(len(ticks)))
            else:
                for i, k in enumerate(ticks):
                    rows.setdefault(k, {}).setdefault(kind, []).append(i)
        if replay and t_max > self._replayed_until.get(key, -math.inf):
            self._replayed_until[key] = t_max
        if not rows:
            return 0
        whole = len(rows) == 1
        for k, kinds in rows.items():
            part = batch if whole else _select(batch, kinds)
            self._held.setdefault((key, k), []).append(_Part(part, token, replay))
            self.ticks.hold(key, k)
        self._n_held += len(rows)
        self.ticks.advance(t_max)
        self._event_clock = max(self._event_clock, t_max)
        if token is not None:
            self._parts_left[token] = self._parts_left.get(token, 0) + len(rows)
        return len(rows)

    def advance(self, clock: float) -> None:
        """The input is idle and its event time is ``clock``: closes before it may be due."""
        self.ticks.advance(clock)

    # ---- work ----------------------------------------------------------------------------

    def step(self, *, final: bool = False) -> Step[T]:
        """Apply and evaluate everything due at the clock (``final``: at the end of the input,
        every held tick, and the quiet evaluations before the last close)."""
        out: Step[T] = Step()
        horizon = self.ticks.last_close() if final else None
        while dues := self.ticks.due(horizon):
            self._run(dues, out)
        return out

    def release_partial(self, keys: Iterable[str] | None = None) -> Step[T]:
        """Apply now, without evaluating, the held parts of records of which another part was
        applied already (of ``keys``' pairs; None: every pair), so those records are whole and
        their offsets can be committed. Before a stop or a revoke: the next owner re-reads what
        was not committed, and must not apply a record's first part a second time."""
        out: Step[T] = Step()
        wanted = None if keys is None else set(keys)
        for (key, tick), parts in list(self._held.items()):
            if wanted is not None and key not in wanted:
                continue
            now = [p for p in parts if p.token in self._partial]
            if not now:
                continue
            rest = [p for p in parts if p.token not in self._partial]
            if rest:
                self._held[(key, tick)] = rest
            else:
                del self._held[(key, tick)]
            self._n_held -= len(now)
            self._apply_parts(key, now, out)
        return out

    def drop(self, keys: Iterable[str]) -> list[T]:
        """Discard the held parts of ``keys`` and stop their ticks (their partition moved to
        another consumer, which reads those records again). Returns the tokens of the records
        they came from (call ``release_partial`` first: a record of which a part was applied
        already would otherwise be applied again by whoever reads it next)."""
        tokens: list[T] = []
        for key in keys:
            for tick in self.ticks.forget(key):
                parts = self._held.pop((key, tick), [])
                self._n_held -= len(parts)
                for p in parts:
                    if p.token is not None and self._parts_left.pop(p.token, None) is not None:
                        self._partial.discard(p.token)
                        tokens.append(p.token)
            self._recv_ns.pop(key, None)
            self._last_recv_ns.pop(key, None)
        return tokens

    def _run(self, dues: list[Due[str]], out: Step[T]) -> None:
        t = dues[0].t
        keys: list[str] = []
        for d in dues:
            if d.tick is not None:
                self._apply(d.key, d.tick, out)
            keys.append(d.key)
        pids = [self.state.pair_id(self.exchange, k) for k in keys]
        ids = np.array([p for p in pids if p is not None], dtype=np.int64)
        if not ids.size:
            return
        due = [(k, p) for k, p in zip(keys, pids, strict=True)
               if p is not None and t >= self._next_maintain.get(k, -math.inf)]  # fmt: skip
        if due:
            t0 = time.perf_counter()
            self.state.maintain(t, np.array([p for _, p in due], dtype=np.int64))
            out.maintain_s += time.perf_counter() - t0
            out.maintained += len(due)
            for k, _ in due:
                self._next_maintain[k] = t + self.refit_interval_s
        rows = risk_rows(self.state.read(t, ids), len(ids), self.state.models.params.score)
        out.evaluated += len(rows)
        for row in rows:
            if self.on_row is not None:
                self.on_row(t, row)
            if self.rules is None:
                continue
            # the earliest receipt among the events applied at this close; at a quiet
            # evaluation, that of the pair's last close with events (what its values stem from)
            recv = self._recv_ns.pop(row.symbol, None)
            if recv is None:
                recv = self._last_recv_ns.get(row.symbol)
            else:
                self._last_recv_ns[row.symbol] = recv
            received_ts = recv * 1e-9 if recv is not None else math.nan
            events = self.rules.observe(
                t, row.exchange, row.symbol, row.values, row.drivers, received_ts
            )
            if events:
                if t <= self._replayed_until.get(row.symbol, -math.inf):
                    out.suppressed += len(events)
                else:
                    out.transitions += events
            self.ticks.quiet(row.symbol, self.rules.active(row.exchange, row.symbol))

    def _apply(self, key: str, tick: int, out: Step[T]) -> None:
        parts = self._held.pop((key, tick), None)
        if not parts:
            return
        self._n_held -= len(parts)
        self._apply_parts(key, parts, out)

    def _apply_parts(self, key: str, parts: list[_Part], out: Step[T]) -> None:
        for replay in (True, False):
            chosen = [p for p in parts if p.replay == replay]
            if not chosen:
                continue
            batch = chosen[0].batch if len(chosen) == 1 else _merge([p.batch for p in chosen])
            done = self.ingest.apply_batch(batch, replay=replay)
            out.ingested.append((done, replay))
            if not replay and done.recv_ns.size:
                first = int(done.recv_ns.min())
                prev = self._recv_ns.get(key)
                self._recv_ns[key] = first if prev is None else min(prev, first)
        for p in parts:
            if p.token is None:
                continue
            left = self._parts_left[p.token] - 1
            if left:
                self._parts_left[p.token] = left
                self._partial.add(p.token)
            else:
                del self._parts_left[p.token]
                self._partial.discard(p.token)
                out.done.append(p.token)


def _select(batch: Batch, rows: dict[str, list[int]]) -> Batch:
    """The rows ``rows[kind]`` of each kind of ``batch`` (kinds not listed: none)."""
    parts: dict[str, dict[str, list[Any]]] = {}
    for kind in _KINDS:
        idx = rows.get(kind)
        cols: dict[str, list[Any]] = getattr(batch, kind)
        if idx is None or not cols:
            parts[kind] = {}
            continue
        parts[kind] = {name: [col[i] for i in idx] for name, col in cols.items()}
    return Batch(batch.exchange, batch.symbol, batch.venue_symbol,
                 liq=parts["liq"], trd=parts["trd"], ctx=parts["ctx"])  # fmt: skip


def _merge(batches: list[Batch]) -> Batch:
    """One batch holding the rows of ``batches`` in order, kind by kind."""
    first = batches[0]
    merged: dict[str, dict[str, list[Any]]] = {}
    for kind in _KINDS:
        cols: dict[str, list[Any]] = {}
        for b in batches:
            src: dict[str, list[Any]] = getattr(b, kind)
            if not src or not next(iter(src.values())):
                continue
            if not cols:
                cols = {name: list(col) for name, col in src.items()}
            else:
                for name, col in src.items():
                    cols[name].extend(col)
        merged[kind] = cols
    return Batch(first.exchange, first.symbol, first.venue_symbol,
                 liq=merged["liq"], trd=merged["trd"], ctx=merged["ctx"])  # fmt: skip
