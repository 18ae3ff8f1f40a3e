"""The health rules, evaluated on the components' heartbeats. Pure module.

``HealthEvaluator.offer(heartbeat, t)`` takes each heartbeat read from ``<prefix>.health``;
``evaluate(t)`` turns what it has into values per target and runs the health rules on them
(``monitor.alerting.rules.RuleEngine`` with category ``health``: the same hysteresis, ``for_s``
and cooldown as the risk rules, on wall time), returning the transitions. The value names are
``monitor.core.health_settings.HEALTH_METRICS``; the targets:

* a venue's stream, ``(venue, kind)``: ``silence_s`` and ``silence_return_period_s`` from the
  producer's heartbeat, ``consumer_silence_s`` and ``consumer_silence_return_period_s`` from the
  consumer's (the freshest instance when several consume the venue), and ``feed_ok`` (1 while
  the producer's own silence is below the warning level: a starved consumer is reported only
  when the producer is not silent itself);
* a component, ``(venue or "", role)``: ``heartbeat_age_s``, and what its role reports:
  increases over ``health.window_s`` of the cumulative counters (``reconnects``, ``frames``,
  ``refused_share`` = parse errors / frames, ``send_errors``, ``dropped``, ``dead_letters``,
  ``delivery_retries``; a counter smaller than before is a restart, counted from 0) and gauges
  (``publish_stall_s``, ``lag_records`` and ``lag_growth`` over the window, ``commit_stall_s``);
* the broker, ``("", "kafka")``: ``kafka_silence_s``, the seconds since any heartbeat was read
  (the dispatcher's own are among them, so this grows only when Kafka does not deliver).

A component's figures are taken from its last heartbeat as reported, not extended: a component
that stops heartbeating is ``target-gone``, its streams are not also called silent (their values
become unknown, which neither fires nor resolves). While Kafka is unreachable nobody's heartbeat
can arrive, so once no heartbeat at all was read for ``KAFKA_QUIET`` heartbeat intervals (the
dispatcher's own arrives every interval while Kafka works) ``heartbeat_age_s`` is unknown too:
one ``kafka-unreachable`` alert instead of one ``target-gone`` per component; once heartbeats
are read again, a component's age counts from that moment, not from its last heartbeat before
the outage (each component's heartbeat producer reconnects on its own, so the first heartbeat
read after an outage is not the last to arrive). A component whose last heartbeat said ``stopping`` left on
purpose: its alerts (and, for a producer, its streams') are resolved and it is forgotten. An
instance not heard of for ``FORGET_AFTER`` times ``target_gone_s`` while a newer instance of the
same component heartbeats (a restarted process) is dropped.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from monitor.alerting.rules import RuleEngine
from monitor.core.alert_rules import Rule
from monitor.core.alertrecord import AlertEvent
from monitor.core.health_settings import HealthConfig
from monitor.core.healthrecord import Heartbeat, StreamFigures

FORGET_AFTER: Final = 20.0  # x target_gone_s: an instance not heard of since is dropped
KAFKA_QUIET: Final = 2.0  # x heartbeat_s without reading any heartbeat: ages are unknown
Target = tuple[str, str]  # (exchange, symbol) of AlertEvent


@dataclass
class _Instance:
    """One process of a component: its heartbeats within the window."""

    last: Heartbeat
    heard: float  # wall time the last heartbeat was read
    history: deque[tuple[float, Mapping[str, float], Mapping[str, float]]] = field(
        default_factory=deque
    )


def increase(history: Iterable[tuple[float, Mapping[str, float], Mapping[str, float]]],
             name: str) -> float:  # fmt: skip
    """How much a cumulative counter grew over the samples (a drop is a restart from 0)."""
    total, prev = 0.0, math.nan
    for _, counters, _ in history:
        v = counters.get(name, math.nan)
        if math.isnan(v):
            continue
        if not math.isnan(prev):
            total += v - prev if v >= prev else v
        prev = v
    return total


class HealthEvaluator:
    def __init__(self, health: HealthConfig, rules: Iterable[Rule], t: float) -> None:
        self.health = health
        self.engine = RuleEngine(rules, category="health")
        self._components: dict[str, dict[str, _Instance]] = {}  # component -> instance -> ...
        self._last_read = t  # the watch starts as if it had just read one
        self._resumed = -math.inf  # when Kafka delivered again after a kafka_down silence
        self._targets: set[Target] = set()  # targets evaluated (resolved when they retire)
        # values at every rule's resolve level: a retired target's firing alerts resolve
        self._resolving = {r.metric: r.resolve for r in self.engine.rules}
        self.read = 0

    def kafka_silence(self, t: float) -> float:
        """Seconds since any heartbeat was read (the value of ``kafka-unreachable``)."""
        return t - self._last_read

    def offer(self, hb: Heartbeat, t: float) -> None:
        """A heartbeat read at wall time ``t``."""
        if self.kafka_silence(t) >= KAFKA_QUIET * self.health.heartbeat_s:
            self._resumed = t  # Kafka is back: ages restart from here (module docstring)
        self._last_read = t
        self.read += 1
        instances = self._components.setdefault(hb.component, {})
        inst = instances.get(hb.instance)
        if inst is None:
            inst = instances[hb.instance] = _Instance(hb, t)
        elif hb.seq <= inst.last.seq:
            return  # a repeat, or older than what was read
        inst.last, inst.heard = hb, t
        inst.history.append((t, hb.counters, hb.gauges))
        cut = t - self.health.window_s
        while len(inst.history) > 2 and inst.history[1][0] <= cut:  # keep one before the window
            inst.history.popleft()

    def components(self, t: float) -> dict[str, int]:
        """role -> components heard of within ``target_gone_s``."""
        out: dict[str, int] = {}
        for instances in self._components.values():
            live = [i for i in instances.values() if t - i.heard < self.health.target_gone_s]
            if live and not all(i.last.stopping for i in live):
                role = live[0].last.role
                out[role] = out.get(role, 0) + 1
        return out

    # ---- evaluation --------------------------------------------------------------------------

    def evaluate(self, t: float) -> list[AlertEvent]:
        values: dict[Target, dict[str, float]] = {}
        drivers: dict[Target, list[tuple[str, float]]] = {}
        kafka_silence = self.kafka_silence(t)
        # nothing read for two heartbeat intervals (the dispatcher's own heartbeat among them):
        # Kafka delivers nothing, so nobody's age says anything about that component
        kafka_down = kafka_silence >= KAFKA_QUIET * self.health.heartbeat_s
        values[("", "kafka")] = {"kafka_silence_s": kafka_silence}
        streams: dict[tuple[str, str, str], StreamFigures] = {}
        retired: set[Target] = set()
        for name, instances in list(self._components.items()):
            self._forget(instances, t)
            newest = max(instances.values(), key=lambda i: i.heard)
            hb = newest.last
            target = (hb.exchange, hb.role)
            if all(i.last.stopping for i in instances.values()):  # left on purpose
                del self._components[name]
                retired.add(target)
                if hb.role == "producer":
                    retired |= {(hb.exchange, s.kind) for s in hb.streams}
                continue
            v = values.setdefault(target, {})
            age = t - newest.heard
            # silence while Kafka was down says nothing about the component: counted from the
            # moment Kafka delivered again (its first heartbeat after an outage may come later)
            v["heartbeat_age_s"] = math.nan if kafka_down else t - max(newest.heard, self._resumed)
            if age >= self.health.target_gone_s:
                continue  # its figures are stale: unknown
            self._figures(v, drivers.setdefault(target, []), instances, t)
            for inst in instances.values():
                if t - inst.heard >= self.health.target_gone_s:
                    continue
                for s in inst.last.streams:
                    key = (hb.exchange, s.kind, s.stage)
                    old = streams.get(key)
                    if old is None or _fresher(s, old):
                        streams[key] = s
        self._streams(values, drivers, streams)
        out: list[AlertEvent] = []
        for target in sorted(values.keys() - retired):
            self._targets.add(target)
            out += self.engine.observe(t, *target, values[target], tuple(drivers.get(target, ())))
        for target in sorted(retired & self._targets):
            self._targets.discard(target)
            out += self.engine.observe(t, *target, self._resolving)
        return out

    def _forget(self, instances: dict[str, _Instance], t: float) -> None:
        """Drop instances not heard of for long when another one of the component is newer (a
        restarted process replaced them)."""
        limit = FORGET_AFTER * self.health.target_gone_s
        newest = max(i.heard for i in instances.values())
        for key, inst in list(instances.items()):
            if t - inst.heard >= limit and inst.heard < newest:
                del instances[key]

    def _figures(
        self, v: dict[str, float], drv: list[tuple[str, float]],
        instances: Mapping[str, _Instance], t: float,
    ) -> None:  # fmt: skip
        """Window increases summed over the component's live instances, gauges at their worst."""
        live = [i for i in instances.values() if t - i.heard < self.health.target_gone_s]
        role = live[0].last.role

        def inc(name: str) -> float:
            return sum(increase(i.history, name) for i in live)

        def gauge(name: str) -> float:
            return max((i.last.gauges.get(name, math.nan) for i in live), default=math.nan)

        if role == "producer":
            frames, refused = inc("frames"), inc("parse_errors")
            v.update(reconnects=inc("reconnects"), frames=frames,
                     refused_share=min(1.0, refused / frames) if frames else 0.0,
                     send_errors=inc("send_errors"), dropped=inc("dropped"),
                     publish_stall_s=gauge("publish_stall_s"))  # fmt: skip
            drv += [("frames", frames), ("refused", refused), ("stale", inc("reconnects_stale")),
                    ("waiting", gauge("buffered"))]  # fmt: skip
        elif role == "consumer":
            lag = gauge("lag_records")
            first = min((i.history[0][2].get("lag_records", math.nan) for i in live),
                        default=math.nan)  # fmt: skip
            v.update(lag_records=lag, lag_growth=lag - first,
                     commit_stall_s=gauge("commit_stall_s"))  # fmt: skip
            drv += [("lag", lag), ("lag_growth", lag - first)]
        elif role == "dispatcher":
            v.update(dead_letters=inc("dead_letters"), delivery_retries=inc("delivery_retries"))

    def _streams(
        self, values: dict[Target, dict[str, float]], drivers: dict[Target, list[tuple[str, float]]],
        streams: Mapping[tuple[str, str, str], StreamFigures],
    ) -> None:  # fmt: skip
        warning = self.health.silence_warning_s
        for (x, kind, stage), s in streams.items():
            v = values.setdefault((x, kind), {})
            d = drivers.setdefault((x, kind), [])
            if stage == "producer":
                v.update(silence_s=s.silence_s, silence_return_period_s=s.return_period_s)
                v["feed_ok"] = 1.0 if not s.return_period_s >= warning else 0.0
                d += [("silence_s", s.silence_s), ("rate_per_s", s.rate)]
            else:
                v.update(consumer_silence_s=s.silence_s,
                         consumer_silence_return_period_s=s.return_period_s)  # fmt: skip
                d.append(("consumer_silence_s", s.silence_s))


def _fresher(a: StreamFigures, b: StreamFigures) -> bool:
    return a.silence_s < b.silence_s
