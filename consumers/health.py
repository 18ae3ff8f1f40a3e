"""A consumer's health figures (``monitor.alerting.heartbeat.HealthProbe``), read from what the
service keeps anyway: its metrics (``monitor.core.metrics.ConsumerMetrics``) and its offsets.

* event counts per kind applied (``cascade_events_consumed_total{kind}``): the streams whose
  freshness is learned, stage ``consumer`` (replayed warm-up events are not counted there);
* counters for the heartbeat: records and events consumed, decode errors;
* gauges: the largest partition lag, partitions warming up, and the commit stall: the seconds
  since the committed offsets last moved while records were processed
  (``cascade_consumer_commit_stall_seconds``: 0 when everything processed is committed; a
  commit that keeps failing, or a loop that stopped committing, grows it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Final

from consumers.service import ConsumerService
from monitor.core.freshness import StallClock
from monitor.core.metrics import NAMESPACE, HealthRow, counter_sums

STALL: Final = f"{NAMESPACE}_consumer_commit_stall_seconds"


class ConsumerProbe:
    role = "consumer"

    def __init__(self, service: ConsumerService, t: float) -> None:
        self.service = service
        self.exchange = service.exchange
        self.component = f"consumer {service.exchange}"
        self._stall = StallClock(t)
        self._committed = -1
        self._processed_at_commit = service.processed_records

    def counts(self) -> Mapping[tuple[str, str], float]:
        by_kind = counter_sums(self.service.metrics.events, "kind", exchange=self.exchange)
        return {(kind, "consumer"): n for kind, n in by_kind.items()}

    def sample(self, t: float) -> None:
        svc = self.service
        committed = sum(svc.committed_offsets().values())
        if committed != self._committed:
            self._committed, self._processed_at_commit = committed, svc.processed_records
        self._stall.update(t, committed, svc.processed_records > self._processed_at_commit)

    def figures(self, t: float) -> tuple[dict[str, float], dict[str, float]]:
        m, x = self.service.metrics, self.exchange
        counters = {
            "records": float(self.service.processed_records),
            "events": float(self.service.processed_events),
            "decode_errors": sum(counter_sums(m.decode_errors, "reason", exchange=x).values()),
        }
        lag = counter_sums(m.lag, "partition", exchange=x)
        gauges = {
            "lag_records": max(lag.values(), default=0.0),
            "warming": sum(counter_sums(m.warming, "exchange", exchange=x).values()),
            "commit_stall_s": self._stall.stall(t),
        }
        return counters, gauges

    def rows(self, t: float) -> Iterable[HealthRow]:
        yield STALL, (self.exchange,), self._stall.stall(t)


class AggregatorProbe:
    """The asset aggregator's health figures: its heartbeat says it is alive; it counts the
    risk records it read."""

    role = "aggregator"
    exchange = ""
    component = "aggregator"

    def __init__(self, records: Callable[[], int]) -> None:
        self._records = records

    def counts(self) -> Mapping[tuple[str, str], float]:
        return {}

    def sample(self, t: float) -> None:
        """Nothing measured over time."""

    def figures(self, t: float) -> tuple[dict[str, float], dict[str, float]]:
        return {"records": float(self._records())}, {}

    def rows(self, t: float) -> Iterable[HealthRow]:
        return ()
