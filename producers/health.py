"""A producer's health figures (``monitor.alerting.heartbeat.HealthProbe``), read from what the
service keeps anyway: its metrics (``monitor.core.metrics.ProducerMetrics``) and its publisher.

* event counts per kind received (``cascade_events_received_total{kind}``): the streams whose
  freshness is learned, stage ``producer``;
* counters for the heartbeat: frames, parse errors (refused frames and items), reconnects
  (unplanned: ``closed`` and ``error``; the stale-socket watchdog's own are counted apart, as a
  silent socket is judged by the streams' freshness, and rotations are planned), Kafka send
  errors, events dropped and published;
* gauges: events waiting for Kafka, sockets connected and planned, and the publish stall: the
  seconds without an acknowledgement while events wait (``cascade_producer_publish_stall_seconds``:
  a broker that stops answering shows here within seconds, before the send errors of its
  request timeout).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from monitor.core.freshness import StallClock
from monitor.core.metrics import NAMESPACE, HealthRow, counter_sums
from producers.service import ProducerService

UNPLANNED: Final = frozenset({"closed", "error"})  # reconnect reasons of a failing connection
STALL: Final = f"{NAMESPACE}_producer_publish_stall_seconds"


class ProducerProbe:
    role = "producer"

    def __init__(self, service: ProducerService, t: float) -> None:
        self.service = service
        self.exchange = service.exchange
        self.component = f"producer {service.exchange}"
        self._stall = StallClock(t)

    def counts(self) -> Mapping[tuple[str, str], float]:
        by_kind = counter_sums(self.service.metrics.events, "kind", exchange=self.exchange)
        return {(kind, "producer"): n for kind, n in by_kind.items()}

    def sample(self, t: float) -> None:
        svc = self.service
        self._stall.update(t, svc.published_events, svc.publisher.buffered > 0)

    def figures(self, t: float) -> tuple[dict[str, float], dict[str, float]]:
        m, x = self.service.metrics, self.exchange
        reconnects = counter_sums(m.reconnects, "reason", exchange=x)
        counters = {
            "frames": sum(counter_sums(m.frames, "exchange", exchange=x).values()),
            "parse_errors": sum(counter_sums(m.parse_errors, "reason", exchange=x).values()),
            "reconnects": sum(v for r, v in reconnects.items() if r in UNPLANNED),
            "reconnects_stale": reconnects.get("stale", 0.0),
            "send_errors": sum(counter_sums(m.kafka_send_errors, "exchange", exchange=x).values()),
            "dropped": sum(counter_sums(m.events_dropped, "reason", exchange=x).values()),
            "published": float(self.service.published_events),
        }
        sessions = self.service.sessions
        gauges = {
            "buffered": float(self.service.publisher.buffered),
            "connected": float(sum(1 for s in sessions if s.connected)),
            "connections": float(len(sessions)),
            "publish_stall_s": self._stall.stall(t),
        }
        return counters, gauges

    def rows(self, t: float) -> Iterable[HealthRow]:
        yield STALL, (self.exchange,), self._stall.stall(t)
