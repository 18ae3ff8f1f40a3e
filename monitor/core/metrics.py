"""Every metric the project exports, defined against an injected CollectorRegistry.

Naming: ``cascade_<thing>_<unit>``, counters end in ``_total``, base units (seconds, USD). Labels are
bounded: exchange, symbol (capped to the most active N by the consumer), side, window, partition,
and short fixed ``reason`` labels.

Pipeline health (every process): ``ProducerMetrics`` and ``ConsumerMetrics``; the scrape-time
health gauges (event freshness, publish and commit stalls) and the heartbeats: ``HealthMetrics``.
Alert delivery (the alert dispatcher, ``monitor.alerting.dispatcher``): ``DispatcherMetrics``.
Risk values (consumer): computed from the kernels' state arrays at scrape time by the consumer's
collector, under the names and help texts in ``RISK_METRICS``.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

NAMESPACE: Final = "cascade"

_T = TypeVar("_T")
_PER_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, dict[Any, Any]] = (
    weakref.WeakKeyDictionary()
)
_PER_REGISTRY_LOCK = threading.RLock()  # a metrics class may take another's share


def for_registry(factory: Callable[[CollectorRegistry], _T], registry: CollectorRegistry) -> _T:
    """The registry's one instance of ``factory`` (a metrics class or collector), made on first use.

    Services of several exchanges in one process share a registry, and a registry refuses a second
    set of the same metric names, so each metric set exists once per registry (labelled by
    exchange)."""
    with _PER_REGISTRY_LOCK:
        made = _PER_REGISTRY.setdefault(registry, {})
        if factory not in made:
            made[factory] = factory(registry)
        return made[factory]  # type: ignore[no-any-return]


# Where a repeated event was recognised and dropped (``cascade_duplicate_events_total{reason}``).
DUPLICATE_REASONS: Final = (
    "producer_memory",  # the producer saw the id already (reconnect overlap, a trade snapshot)
    "venue_snapshot",  # a venue's replay of recent liquidations on subscribe (Bitget snapshot)
    "consumer_window",  # the consumer applied the id already (producer restart, venue replays)
)


class DuplicateMetrics:
    """``cascade_duplicate_events_total{exchange,reason}``: one counter for producers and
    consumers, so both can share a registry (the demo, ``cascade-monitor run``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duplicates = Counter(
            f"{NAMESPACE}_duplicate_events_total",
            "Events dropped as repeats of events already counted (same event id or a venue's "
            "replay), by where they were recognised: " + ", ".join(DUPLICATE_REASONS) + ".",
            ["exchange", "reason"],
            registry=registry,
        )


class ProducerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def c(name: str, doc: str, labels: Sequence[str]) -> Counter:
            return Counter(f"{NAMESPACE}_{name}", doc, labels, registry=registry)

        self.frames = c("frames_received_total", "Websocket frames received.", ["exchange"])
        self.events = c(
            "events_received_total", "Normalized events parsed from frames.", ["exchange", "kind"]
        )
        self.parse_errors = c(
            "parse_errors_total",
            "Frames or items that could not be normalized (skipped).",
            ["exchange", "reason"],
        )
        self.reconnects = c(
            "reconnects_total",
            "Websocket reconnects by cause (closed, error, stale, rotate, upgrade).",
            ["exchange", "reason"],
        )
        self.kafka_send_errors = c(
            "kafka_send_errors_total",
            "Kafka deliveries that failed and were retried.",
            ["exchange"],
        )
        self.kafka_producer_resets = c(
            "kafka_producer_resets_total",
            "Kafka producers replaced after the broker refused their sequence (then resent).",
            ["exchange"],
        )
        self.events_published = c(
            "events_published_total", "Events acknowledged by Kafka.", ["exchange"]
        )
        self.records_published = c(
            "records_published_total", "Kafka records acknowledged (batches).", ["exchange"]
        )
        self.events_dropped = c(
            "events_dropped_total",
            "Events refused before acceptance (buffer full); each is also logged.",
            ["exchange", "reason"],
        )
        self.duplicates = for_registry(DuplicateMetrics, registry).duplicates
        self.sequence_gaps = c(
            "sequence_gaps_total",
            "Messages missing from venues that number them (Kraken seq, Deribit trade_seq, ...).",
            ["exchange"],
        )
        self.events_abandoned = c(
            "events_abandoned_total",
            "Accepted events still unacknowledged by Kafka when shutdown gave up waiting; logged.",
            ["exchange"],
        )
        self.dead_letters = c(
            "dead_letters_total",
            "Refused frames written raw to the dead-letter topic (kafka.dead_letter).",
            ["exchange", "reason"],
        )
        self.dead_letter_errors = c(
            "dead_letter_errors_total",
            "Refused frames not written to the dead-letter topic (overflow, send_failed).",
            ["exchange", "cause"],
        )
        self.rest_polls = c(
            "rest_polls_total",
            "REST polls for data a venue serves only over REST (open interest), by outcome.",
            ["exchange", "outcome"],
        )
        self.instrument_loads = c(
            "instrument_loads_total",
            "Instrument metadata fetches from the venue's REST API by outcome (ok, error).",
            ["exchange", "outcome"],
        )
        self.instruments = Gauge(
            f"{NAMESPACE}_instruments",
            "Instruments known from the venue's metadata (contract multipliers).",
            ["exchange"],
            registry=registry,
        )
        self.connected = Gauge(
            f"{NAMESPACE}_ws_connected",
            "1 while the websocket is connected and subscribed.",
            ["exchange", "connection"],
            registry=registry,
        )
        self.buffered = Gauge(
            f"{NAMESPACE}_producer_buffered_events",
            "Events accepted but not yet acknowledged by Kafka.",
            ["exchange"],
            registry=registry,
        )


# Event-to-metric latency buckets, seconds.
LATENCY_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class BulkHistogram(Collector):
    """A histogram fed with whole NumPy arrays (one call per record, not per event)."""

    def __init__(
        self, name: str, doc: str, label_names: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name, self.doc = name, doc
        self.label_names = tuple(label_names)
        self.bounds = np.asarray(buckets, dtype=np.float64)
        self._series: dict[tuple[str, ...], tuple[npt.NDArray[np.int64], list[float]]] = {}
        self._lock = threading.Lock()

    def observe_many(self, labels: tuple[str, ...], values: npt.NDArray[np.float64]) -> None:
        if values.size == 0:
            return
        idx = np.searchsorted(self.bounds, values, side="left")
        add = np.bincount(idx, minlength=len(self.bounds) + 1)
        total = float(values.sum())
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = (np.zeros(len(self.bounds) + 1, dtype=np.int64), [0.0])
                self._series[labels] = series
            series[0][:] += add
            series[1][0] += total

    def collect(self) -> Iterable[Metric]:
        fam = HistogramMetricFamily(self.name, self.doc, labels=self.label_names)
        with self._lock:
            snapshot = [(k, c.copy(), s[0]) for k, (c, s) in self._series.items()]
        for labels, counts, total in snapshot:
            cum = np.cumsum(counts)
            buckets = [(repr(float(b)), float(cum[i])) for i, b in enumerate(self.bounds)]
            buckets.append(("+Inf", float(cum[-1])))
            fam.add_metric(list(labels), buckets, total)
        yield fam


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def c(name: str, doc: str, labels: Sequence[str]) -> Counter:
            return Counter(f"{NAMESPACE}_{name}", doc, labels, registry=registry)

        self.records = c("records_consumed_total", "Kafka records consumed.", ["exchange"])
        self.events = c(
            "events_consumed_total", "Events applied to the risk state.", ["exchange", "kind"]
        )
        self.decode_errors = c(
            "decode_errors_total", "Records that were not valid event batches (skipped).",
            ["exchange", "reason"],
        )  # fmt: skip
        self.events_skipped = c(
            "events_skipped_total",
            "Valid events not applied (pair capacity reached, ...), counted and logged.",
            ["exchange", "reason"],
        )
        self.rebalances = c("rebalances_total", "Partition assignments received.", ["exchange"])
        self.duplicates = for_registry(DuplicateMetrics, registry).duplicates
        self.alert_transitions = c(
            "alerts_emitted_total",
            "Alert rule transitions a consumer emitted to the alerts topic (firing, resolved).",
            ["exchange", "rule", "status", "severity"],
        )
        self.alerts_unsent = Gauge(
            f"{NAMESPACE}_alerts_unsent",
            "Alert transitions waiting for the alerts topic (sent again at the next evaluation).",
            ["exchange"],
            registry=registry,
        )
        self.replayed = c(
            "events_replayed_total",
            "Events re-read on assignment to rebuild decayed state (warm-up; not counted again).",
            ["exchange"],
        )
        self.warming = Gauge(
            f"{NAMESPACE}_consumer_warming_partitions",
            "Assigned partitions still replaying their warm-up history.",
            ["exchange"],
            registry=registry,
        )
        self.refit_seconds = Histogram(
            f"{NAMESPACE}_model_maintenance_seconds",
            "Wall time of one periodic model update (Hawkes refits of every active pair).",
            ["exchange"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )
        self.state_bytes = Gauge(
            f"{NAMESPACE}_state_bytes_per_pair",
            "Risk state memory per pair (flow, price, context and every model's arrays).",
            ["exchange"],
            registry=registry,
        )
        self.lag = Gauge(
            f"{NAMESPACE}_consumer_lag_records",
            "Records behind the partition's high watermark.",
            ["exchange", "partition"],
            registry=registry,
        )
        self.pairs = Gauge(
            f"{NAMESPACE}_consumer_pairs",
            "Pairs held in the risk state.",
            ["exchange"],
            registry=registry,
        )
        self.latency = BulkHistogram(
            f"{NAMESPACE}_event_to_metric_latency_seconds",
            "From the producer receiving a frame to its events being applied to the risk state.",
            ["exchange"],
            LATENCY_BUCKETS,
        )
        registry.register(self.latency)


# Alert latency buckets, seconds: milliseconds when all is well, minutes when a receiver is down.
ALERT_LATENCY_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
)  # fmt: skip


class DispatcherMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def c(name: str, doc: str, labels: Sequence[str]) -> Counter:
            return Counter(f"{NAMESPACE}_{name}", doc, labels, registry=registry)

        self.transitions = c(
            "alert_transitions_total",
            "Alert transitions consumed from the alerts topic, per rule and status "
            "(firing, resolved); redelivered duplicates are not counted.",
            ["rule", "status"],
        )
        self.deliveries = c(
            "alert_deliveries_total",
            "Alert delivery results per sink: ok (2xx), retry (one failed attempt, retried), "
            "dead_letter (given up), dropped_by_severity (below the sink's min_severity).",
            ["sink", "outcome"],
        )
        self.dead_letters = c(
            "alert_dead_letters_total",
            "Alerts written to the dead-letter topic because a sink never took them.",
            ["sink"],
        )
        self.skipped = c(
            "alert_records_skipped_total",
            "Alerts-topic records not delivered: undecodable, or a duplicate of a transition "
            "already handled.",
            ["reason"],
        )
        self.latency = Histogram(
            f"{NAMESPACE}_alert_delivery_latency_seconds",
            "From the producer receiving the event that triggered the alert to the sink's 2xx.",
            ["sink"],
            buckets=ALERT_LATENCY_BUCKETS,
            registry=registry,
        )
        self.dispatch_latency = Histogram(
            f"{NAMESPACE}_alert_dispatch_latency_seconds",
            "From the dispatcher consuming the alert to the sink's 2xx (retries included).",
            ["sink"],
            buckets=ALERT_LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            f"{NAMESPACE}_alert_deliveries_in_flight",
            "HTTP requests to the sink awaiting an answer.",
            ["sink"],
            registry=registry,
        )
        self.pending = Gauge(
            f"{NAMESPACE}_alert_pending",
            "Alerts consumed but not yet taken (or dead-lettered) by every sink.",
            registry=registry,
        )
        self.sink_heartbeats = c(
            "alert_sink_heartbeats_total",
            "Heartbeats posted to the sinks that ask for them (a sink's heartbeat_s), by "
            "outcome (ok, failed): a receiver pages when they stop.",
            ["sink", "outcome"],
        )
        self.health_records = c(
            "health_heartbeats_read_total",
            "Component heartbeats the health watch read from <prefix>.health, by role "
            "(undecodable ones under role 'invalid').",
            ["role"],
        )
        self.health_components = Gauge(
            f"{NAMESPACE}_health_components",
            "Components the health watch hears from (heartbeat younger than "
            "health.target_gone_s), by role.",
            ["role"],
            registry=registry,
        )
        self.kafka_silence = Gauge(
            f"{NAMESPACE}_health_kafka_silence_seconds",
            "Seconds since the health watch last read any heartbeat from <prefix>.health (the "
            "dispatcher's own among them): grows only while Kafka delivers nothing.",
            registry=registry,
        )


# Scrape-time pipeline-health gauges (``monitor.alerting.heartbeat`` feeds them): name -> (help,
# labels). A value that is not defined yet (NaN) is not exported.
HEALTH_GAUGES: Final = {
    f"{NAMESPACE}_event_age_seconds": (
        "Seconds since the newest event of the kind was received by the producer "
        "(stage=producer) or applied by the consumer (stage=consumer); sampled every "
        "health.sample_s.", ("exchange", "kind", "stage")),
    f"{NAMESPACE}_event_rate_per_second": (
        "Events per second of the kind, learned from the stream's own history (absent until "
        "health.learn_min_s of it).", ("exchange", "kind", "stage")),
    f"{NAMESPACE}_event_silence_return_period_seconds": (
        "Mean seconds between silences as long as the current one, learned from the stream's "
        "own gaps (monitor/core/freshness.py; capped at 1e12); absent until learned.",
        ("exchange", "kind", "stage")),
    f"{NAMESPACE}_producer_publish_stall_seconds": (
        "Seconds without a Kafka acknowledgement while accepted events wait (0 when none "
        "waits).", ("exchange",)),
    f"{NAMESPACE}_consumer_commit_stall_seconds": (
        "Seconds since the consumer's committed offsets last moved while it processed records "
        "(0 when everything processed is committed).", ("exchange",)),
}  # fmt: skip
HealthRow = tuple[str, tuple[str, ...], float]  # (HEALTH_GAUGES name, label values, value)
HealthSource = Callable[[float], Iterable[HealthRow]]  # rows at wall time t


class HealthCollector(Collector):
    """The ``HEALTH_GAUGES`` of every attached source, computed at scrape time."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._sources: list[HealthSource] = []
        self._lock = threading.Lock()
        registry.register(self)

    def attach(self, source: HealthSource) -> None:
        with self._lock:
            self._sources.append(source)

    def detach(self, source: HealthSource) -> None:
        with self._lock:
            if source in self._sources:
                self._sources.remove(source)

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(n, h, labels=ls) for n, (h, ls) in HEALTH_GAUGES.items()]

    def collect(self) -> Iterable[Metric]:
        now = time.time()
        fams = {n: GaugeMetricFamily(n, h, labels=ls) for n, (h, ls) in HEALTH_GAUGES.items()}
        with self._lock:
            sources = list(self._sources)
        for source in sources:
            for name, labels, value in source(now):
                if math.isfinite(value):
                    fams[name].add_metric(list(labels), value)
        yield from fams.values()


class HealthMetrics:
    """Heartbeats published and the scrape-time health gauges (one set per registry)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.heartbeats = Counter(
            f"{NAMESPACE}_health_heartbeats_total",
            "Heartbeats this process's components published to <prefix>.health, by outcome "
            "(sent, failed).",
            ["component", "outcome"],
            registry=registry,
        )
        self.gauges = HealthCollector(registry)


def counter_sums(metric: Any, by: str, **match: str) -> dict[str, float]:
    """The current values of a labelled counter (or gauge), summed by the label ``by`` over the
    series whose labels match ``match``: read from the metric's own ``collect()`` (cheap: one
    metric), for heartbeats and stall figures."""
    out: dict[str, float] = {}
    for fam in metric.collect():
        for sample in fam.samples:
            if sample.name.endswith(("_created", "_bucket", "_count", "_sum")):
                continue
            labels = sample.labels
            if all(labels.get(k) == v for k, v in match.items()):
                key = labels.get(by, "")
                out[key] = out.get(key, 0.0) + float(sample.value)
    return out


# Per-pair model outputs (consumers.models; docs/risk-models.md section in brackets): name after the
# namespace, help, labels besides exchange and symbol. Exported once defined (NaN: not exported).
MODEL_METRICS: Final = (
    ("cascade_score", "Composite cascade score in [0, 1]: calibrated weighted mean of the defined components (s7).", ()),
    ("cascade_score_coverage", "Share of the score's weight carried by defined components, [0, 1] (s7).", ()),
    ("liquidation_surge", "60 s liquidation rate / max(the pair's baseline, the market-wide floor) (s9).", ()),
    ("cascade_score_component", "A score component mapped to [0, 1] (s7).", ("component",)),
    ("branching_ratio", "Hawkes branching ratio n, sampling-aware fit of 1 s bins as the feed's coverage reads them (s2.5).", ()),
    ("branching_ratio_lower", "Lower end of the branching ratio's 90% interval (s2.5).", ()),
    ("branching_ratio_upper", "Upper end of the branching ratio's 90% interval (s2.5).", ()),
    ("branching_ratio_exact", "Hawkes n = alpha*E[g]/beta, continuous-time MLE; low on sampled feeds (s2.2).", ()),
    ("branching_ratio_count_moment", "Count-moment cross-check n = 1 - sqrt(E[N]/Var[N]) (s2).", ()),
    ("hawkes_intensity_per_second", "Hawkes liquidation intensity lambda(now), events/s (s2).", ()),
    ("hawkes_exogenous_rate_per_second", "Hawkes exogenous rate mu, events/s (s2).", ()),
    ("liquidation_imbalance", "(L_long - L_short)/(L_long + L_short) of the decayed rates (s1).", ("window",)),
    ("liquidation_share_of_volume", "Liquidation rate / traded notional rate, same horizon (s1).", ("window",)),
    ("liquidation_rate_zscore", "z-score of the 60 s liquidation rate against a 24 h baseline (s1).", ()),
    ("liquidation_saturation", "Decayed fraction of 1 s slots that carried a liquidation (s1).", ()),
    ("kyle_lambda", "Kyle's lambda: EW Cov(r,S)/Var(S), log-return per sqrt USD of signed flow (s3).", ()),
    ("amihud_ratio", "Amihud illiquidity |r|/notional per 1 s bucket, EW mean (s3).", ()),
    ("feedback_ratio", "n_struct = lambda_K x liquidation density at a 1% move (s3).", ("direction",)),
    ("liquidation_density_usd_per_pct", "Estimated liquidation notional per 1% move near the price (s6).", ("side",)),
    ("vpin", "VPIN over 50 volume buckets with the venue's taker side (s4).", ()),
    ("bipower_variance_per_second", "Decayed bipower variation (pi/2)*sum|r_i||r_i-1| per second (s5).", ()),
    ("realized_variance_per_second", "Decayed realized variance sum r^2 per second, same returns (s5).", ()),
    ("jump_share", "max(0, 1 - bipower/realized variance) (s5).", ()),
    ("drawdown_ratio", "1 - price/decayed high (s5).", ()),
    ("notional_at_risk_usd", "Estimated liquidation notional within a distance of the price (s6).", ("side", "within")),
    ("expected_liquidations_usd", "sum_b l_b*2*Phi(-|ln(P_b/P)|/(sigma*sqrt(h))) over the horizon (s6).", ("side",)),
    ("margin_stress_index", "MSI = expected liquidations / traded notional over the horizon (s6).", ()),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RiskMetric:
    name: str
    kind: str  # "gauge" | "counter"
    doc: str
    labels: tuple[str, ...]


RISK_METRICS: Final = {
    m.name: m
    for m in (
        RiskMetric(
            f"{NAMESPACE}_liquidation_rate_usd_per_second",
            "gauge",
            "Exponentially decayed liquidation notional rate, L = L*exp(-dt/tau) + q/tau "
            "(docs/risk-models.md §1); window is tau. Sampled feeds make this a lower bound.",
            ("exchange", "symbol", "side", "window"),
        ),
        RiskMetric(
            f"{NAMESPACE}_liquidation_notional_usd",
            "counter",
            "Liquidation notional applied to the risk state since the consumer started.",
            ("exchange", "symbol", "side"),
        ),
        RiskMetric(
            f"{NAMESPACE}_liquidations",
            "counter",
            "Liquidation events applied to the risk state since the consumer started.",
            ("exchange", "symbol", "side"),
        ),
        RiskMetric(
            f"{NAMESPACE}_trade_notional_usd",
            "counter",
            "Traded notional applied to the risk state since the consumer started.",
            ("exchange", "symbol"),
        ),
        RiskMetric(
            f"{NAMESPACE}_volatility_ewma",
            "gauge",
            "EWMA standard deviation of log returns per sampling interval "
            "(RiskMetrics, s2 = lambda*s2 + (1-lambda)*r^2; docs/risk-models.md §5).",
            ("exchange", "symbol", "interval"),
        ),
        RiskMetric(
            f"{NAMESPACE}_mark_price",
            "gauge",
            "Mark price published by the venue (market context).",
            ("exchange", "symbol"),
        ),
        RiskMetric(
            f"{NAMESPACE}_funding_rate",
            "gauge",
            "Current funding rate per funding interval, as a fraction (0.0001 = 1 bp).",
            ("exchange", "symbol"),
        ),
        RiskMetric(
            f"{NAMESPACE}_open_interest_usd",
            "gauge",
            "Open interest in USD (the venue's figure, converted with the contract multiplier).",
            ("exchange", "symbol"),
        ),
        RiskMetric(
            f"{NAMESPACE}_last_price",
            "gauge",
            "Last traded price.",
            ("exchange", "symbol"),
        ),
        *(
            RiskMetric(f"{NAMESPACE}_{name}", "gauge", doc, ("exchange", "symbol", *extra))
            for name, doc, extra in MODEL_METRICS
        ),
    )
}
