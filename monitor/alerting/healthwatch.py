"""The health watch: the alert dispatcher reads every component's heartbeat from
``<prefix>.health`` and evaluates the health rules on them (``monitor.alerting.health``), every
``health.eval_s``; what fires goes straight to the dispatcher's sinks, with the category
``health``, without a round trip through Kafka (so ``kafka-unreachable`` still reaches them when
the broker is down). A component that is alive reports the others' deaths; the dispatcher's own
death is what the sinks' heartbeats (``monitor.alerting.beacon``) and the Prometheus Watchdog
rule are for.

Several dispatchers in one group: only the one that owns partition 0 of the alerts topic sends
health alerts (all of them evaluate, so a new owner takes over with the rule state built).

On start the watch reads the heartbeats of the last ``2 * target_gone_s`` (the components alive
now are known at once), then follows the topic. It is also where the dispatcher's own health
figures are read (``DispatcherProbe``, for the dispatcher's heartbeat).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from monitor.alerting.health import HealthEvaluator
from monitor.core.alertrecord import AlertEvent
from monitor.core.config import Config
from monitor.core.errors import CodecError
from monitor.core.healthrecord import ROLES, decode_heartbeat
from monitor.core.lifecycle import AsyncService
from monitor.core.metrics import DispatcherMetrics, HealthRow, counter_sums
from monitor.core.topics import ensure_topics, topic_partitions

log = logging.getLogger(__name__)

LOOKBACK: Final = 2.0  # x target_gone_s of heartbeats read on start


class HealthWatch(AsyncService):
    """See the module docstring. ``emit`` delivers one health alert; ``active`` says whether
    this dispatcher is the one that sends them."""

    stop_if_start_fails = True

    def __init__(
        self, cfg: Config, metrics: DispatcherMetrics, emit: Callable[[AlertEvent], None],
        active: Callable[[], bool],
    ) -> None:  # fmt: skip
        self.cfg = cfg
        self.metrics = metrics
        self._emit = emit
        self._active = active
        self.evaluator = HealthEvaluator(cfg.health, cfg.health.active_rules, time.time())
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.emitted: list[AlertEvent] = []  # health transitions sent (newest last)

    async def start(self) -> None:
        cfg, k = self.cfg, self.cfg.kafka
        topic = cfg.health_topic
        await ensure_topics(cfg.bootstrap_servers, [topic], 1, k.replication_factor,
                            k.retention_s)  # fmt: skip
        consumer = AIOKafkaConsumer(
            bootstrap_servers=cfg.bootstrap_servers, group_id=None,
            client_id=f"{k.client_id}-health-watch", enable_auto_commit=False,
            auto_offset_reset="latest", request_timeout_ms=k.request_timeout_ms,
        )  # fmt: skip
        self._consumer = consumer
        await consumer.start()
        parts = (await topic_partitions(cfg.bootstrap_servers, [topic])).get(topic, [0])
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        since = int((time.time() - LOOKBACK * cfg.health.target_gone_s) * 1000)
        for tp, found in (await consumer.offsets_for_times(dict.fromkeys(tps, since))).items():
            if found is not None:
                consumer.seek(tp, found.offset)
            else:
                await consumer.seek_to_end(tp)
        evaluator = self.evaluator  # exported at scrape time (KafkaUnreachable, Prometheus)
        self.metrics.kafka_silence.set_function(lambda: evaluator.kafka_silence(time.time()))
        self._task = asyncio.create_task(self._run(), name="health-watch")

    async def stop(self) -> None:
        self.metrics.kafka_silence.set_function(lambda: math.nan)  # not watching: unknown
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    def status(self) -> dict[str, object]:
        """What the sinks' heartbeats say about the pipeline: components heard of, by role, and
        the health alerts firing."""
        return {"components": self.evaluator.components(time.time()),
                "health_alerts_firing": len(self.evaluator.engine.firing())}  # fmt: skip

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None  # started before this task
        eval_s = self.cfg.health.eval_s
        next_eval = time.time()
        while True:
            wait_ms = max(1, int((next_eval - time.time()) * 1000))
            try:
                batches = await consumer.getmany(timeout_ms=wait_ms, max_records=1000)
            except KafkaError as exc:  # the broker is away: evaluate on (kafka-unreachable)
                log.debug("health watch: fetch failed (%s)", exc)
                batches = {}
                await asyncio.sleep(min(eval_s, 0.5))
            now = time.time()
            for records in batches.values():
                for rec in records:
                    self._read(rec.value, now)
            if now >= next_eval:
                next_eval = now + eval_s
                self.tick(now)

    def _read(self, value: bytes | None, now: float) -> None:
        try:
            hb = decode_heartbeat(value or b"")
        except CodecError as exc:
            self.metrics.health_records.labels("invalid").inc()
            log.warning("health topic: skipped a record (%s)", exc)
            return
        self.metrics.health_records.labels(hb.role).inc()
        self.evaluator.offer(hb, now)

    def tick(self, now: float) -> list[AlertEvent]:
        """Evaluate the health rules now; send the transitions when this dispatcher is the one
        that sends them."""
        events = self.evaluator.evaluate(now)
        counts = self.evaluator.components(now)
        for role in ROLES:
            self.metrics.health_components.labels(role).set(counts.get(role, 0))
        if events and self._active():
            for ev in events:
                log.info("health: %s %s %s", ev.status, ev.severity, ev.summary)
                self.emitted.append(ev)
                self._emit(ev)
        return events


class DispatcherProbe:
    """The dispatcher's health figures (``monitor.alerting.heartbeat.HealthProbe``): alerts
    dead-lettered and delivery attempts retried (cumulative), alerts pending."""

    role = "dispatcher"
    exchange = ""
    component = "dispatcher"

    def __init__(self, metrics: DispatcherMetrics, pending: Callable[[], int]) -> None:
        self.metrics = metrics
        self._pending = pending

    def counts(self) -> Mapping[tuple[str, str], float]:
        return {}

    def sample(self, t: float) -> None:
        """Nothing measured over time."""

    def figures(self, t: float) -> tuple[dict[str, float], dict[str, float]]:
        m = self.metrics
        outcomes = counter_sums(m.deliveries, "outcome")
        counters = {"dead_letters": sum(counter_sums(m.dead_letters, "sink").values()),
                    "delivery_retries": outcomes.get("retry", 0.0),
                    "delivered": outcomes.get("ok", 0.0)}  # fmt: skip
        return counters, {"pending": float(self._pending())}

    def rows(self, t: float) -> Iterable[HealthRow]:
        return ()
