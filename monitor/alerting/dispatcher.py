"""The durable alert dispatcher (``cascade-monitor alerts``): the alerts topic -> webhook sinks.

One consumer group, ``<consumer.group_prefix>.alerts``, reads ``<prefix>.alerts`` (records keyed
by fingerprint, so one alert's transitions share a partition and stay in order) with auto-commit
off, and hands every ``AlertEvent`` to every configured sink (``monitor.alerting.sinks``), through
that sink's courier (``monitor.alerting.courier``: the HTTP requests and their retries). This module
keeps the consuming, the per-fingerprint ordering, the dead letters and the offset commits.

Delivery guarantees (at-least-once):

* An offset is committed only when the record and every record before it on its partition are
  *done*: each sink answered 2xx, or refused the alert for good / ran out of its retry budget and
  the alert was written to ``<prefix>.alerts.deadletter`` (value: sink, kind, last error,
  attempts, the alert; key: the fingerprint), or the sink's ``min_severity`` drops it. A dead
  letter is retried until Kafka takes it, so nothing is committed past an alert that reached
  neither its receiver nor the dead-letter topic.
* A dispatcher killed mid-delivery (SIGKILL, crash, cancelled) loses nothing: its successor in the
  group starts from the last commit and delivers again what was not done, which may repeat
  deliveries that had been answered 2xx after that commit (and, for requests cut off in flight,
  that the receiver had processed). Duplicates are therefore possible across restarts and
  rebalances, never losses; receivers deduplicate on their sink's key: the json event id
  (``X-Cascade-Event-Id``, also in the body), PagerDuty's ``dedup_key`` and Alertmanager's
  ``fingerprint`` (a repeated trigger/resolve is idempotent there). Slack and Discord have no
  such key: a duplicate shows as a second message.
* Within one process, transitions are deduplicated by (fingerprint, status, severity,
  started_t): a redelivered record (a producer retry, a re-read after a rebalance) is skipped when
  that transition is being or has been handled (``dispatcher.dedup_entries`` remembered).
* Ordering: per sink and fingerprint, an alert is sent only after the previous one of that
  fingerprint is done with that sink (a firing is never overtaken by its resolve). Different
  fingerprints proceed concurrently, up to ``concurrency`` requests in flight per sink; a slow or
  failing sink does not hold the others back (but its pending alerts hold the commit).
* Retries: exponential backoff with jitter; a receiver's ``Retry-After`` (seconds or HTTP-date)
  or Discord's JSON ``retry_after`` on a 429 replaces the backoff; 4xx other than 408/429 are
  final. ``retry_budget_s`` / ``max_attempts`` bound one alert's attempts per sink.
* Backpressure: at most ``dispatcher.max_pending`` consumed alerts are not yet done; fetching
  waits beyond that.
* ``stop()`` stops fetching, gives deliveries in flight ``drain_timeout_s``, cancels the rest
  (they are redelivered by the next owner), commits what is done, and leaves the group.
* Categories: a sink takes the alert categories of its ``categories`` (risk, health; both by
  default); the others are counted as ``dropped_by_category``.

Pipeline health (``[health]``, on by default): the dispatcher runs the health watch
(``monitor.alerting.healthwatch``: every component's heartbeat, the health rules), whose alerts
are handed to ``submit`` and delivered to the sinks like the topic's (ordered per fingerprint,
retried, dead-lettered), without passing through Kafka; and it posts heartbeats to the sinks that
ask for them (``monitor.alerting.beacon``). It publishes its own heartbeat too
(``monitor.alerting.heartbeat``, ``healthwatch.DispatcherProbe``): reading it back is how the watch
knows Kafka works.

A new group starts at the earliest retained alert (``auto_offset_reset="earliest"``), so alerts
published before the first dispatcher started are delivered too.

Secrets are read when the dispatcher starts (a missing one is a ConfigError before any I/O) and
are scrubbed from every logged or dead-lettered error text.

Metrics (prometheus-client, on the injected registry; ``monitor.core.metrics.DispatcherMetrics``):
``cascade_alert_transitions_total{rule,status}`` (firing/resolved events consumed, duplicates not
counted), ``cascade_alert_deliveries_total{sink,outcome}`` (ok, retry, dead_letter,
dropped_by_severity), ``cascade_alert_delivery_latency_seconds{sink}`` (the triggering event's
receive time -> 2xx), ``cascade_alert_dispatch_latency_seconds{sink}`` (consumed -> 2xx),
``cascade_alert_dead_letters_total{sink}`` (written to the dead-letter topic),
``cascade_alert_deliveries_in_flight{sink}``, ``cascade_alert_records_skipped_total{reason}``
(undecodable, duplicate) and ``cascade_alert_pending`` (consumed, not yet done).

In-process use (pipeline, demo)::

    dispatcher = AlertDispatcher(cfg, registry)
    async with dispatcher:          # or await run_dispatcher(cfg, registry, stop_event)
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from monitor.alerting.beacon import SinkBeacon
from monitor.alerting.courier import Delivery, SinkCourier, open_session, resolve_sinks
from monitor.alerting.healthwatch import DispatcherProbe, HealthWatch
from monitor.alerting.heartbeat import HealthReporter
from monitor.alerting.sinks import Sink, severity_passes
from monitor.core.alertrecord import AlertEvent, decode_alert
from monitor.core.config import Config
from monitor.core.errors import CodecError
from monitor.core.kafka import GroupConsumer, Sender
from monitor.core.lifecycle import AsyncService, Health, RebalanceListener
from monitor.core.metrics import DispatcherMetrics, for_registry
from monitor.core.offsets import OffsetLedger
from monitor.core.topics import ensure_alerts_topic, ensure_topic

# resolve_sinks (monitor.alerting.courier) stays importable from here: the CLI checks the secrets
# with it before starting the dispatcher.
__all__ = ["AlertDispatcher", "dead_letter_topic", "group_id", "resolve_sinks", "run_dispatcher"]

log = logging.getLogger(__name__)

DEAD_LETTER_RETRY_S: Final = 1.0
FETCH_RETRY_S: Final = 0.5
LOCAL: Final = TopicPartition("<local>", 0)  # the "partition" of alerts made in this process


def group_id(cfg: Config) -> str:
    return f"{cfg.consumer.group_prefix}.alerts"


def dead_letter_topic(cfg: Config) -> str:
    """Alerts a sink never took: JSON {sink, kind, error, status, attempts, ..., alert}."""
    return f"{cfg.kafka.topic_prefix}.alerts.deadletter"


# ---- the dispatcher ---------------------------------------------------------------------------

_Key = tuple[str, str, str, float]  # (fingerprint, status, severity, started_t)
_LaneKey = tuple[str, TopicPartition, str]  # (sink, partition, fingerprint)


@dataclass(eq=False)
class _Entry:
    tp: TopicPartition
    offset: int
    consumed_ts: float
    alert: AlertEvent | None = None
    key: _Key | None = None
    remaining: int = 0


@dataclass
class _Lane:
    queue: deque[_Entry] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class AlertDispatcher(AsyncService):
    """See the module docstring. ``start()``/``stop()`` or ``async with``; no I/O in __init__."""

    stop_if_start_fails = True  # stop() closes what a failed start() opened

    def __init__(
        self,
        cfg: Config,
        registry: CollectorRegistry,
        *,
        environ: Mapping[str, str] | None = None,
        metrics: DispatcherMetrics | None = None,
    ) -> None:
        self.cfg = cfg
        self._registry = registry
        self.metrics = metrics if metrics is not None else for_registry(DispatcherMetrics, registry)
        self._environ = environ
        self.sinks: list[Sink] = []
        self._couriers: dict[str, SinkCourier] = {}
        self._session: aiohttp.ClientSession | None = None
        self._consumer: GroupConsumer | None = None
        self._producer: Sender | None = None
        self._task: asyncio.Task[None] | None = None
        self._commit_task: asyncio.Task[None] | None = None
        self._started = self._stopped = False
        # per partition, the lowest offset not yet done among those consumed (monitor.core.offsets)
        self._offsets: OffsetLedger[TopicPartition] = OffsetLedger()
        self._lanes: dict[_LaneKey, _Lane] = {}
        self._assigned: frozenset[TopicPartition] = frozenset()  # for health(): another thread
        self._in_flight: dict[_Key, _Entry] = {}
        self._done_keys: OrderedDict[_Key, None] = OrderedDict()
        self._pending = 0
        self._room = asyncio.Event()
        self._room.set()
        self._progress = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self.handled = 0  # records done (delivered, dead-lettered, dropped, skipped)
        self.dead_lettered = 0
        self.watch: HealthWatch | None = None  # [health]: the health rules on the heartbeats
        self.reporter: HealthReporter | None = None  # [health]: the dispatcher's own heartbeat
        self.beacon: SinkBeacon | None = None  # heartbeats to the sinks that ask for them

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("AlertDispatcher.start() may be called once")
        self._started = True
        self.sinks = resolve_sinks(self.cfg, self._environ)  # before any I/O
        cfg, k, d = self.cfg, self.cfg.kafka, self.cfg.alerts.dispatcher
        await ensure_alerts_topic(cfg)
        await ensure_topic(cfg, dead_letter_topic(cfg))
        try:
            self._session = open_session()
            self._couriers = {s.name: SinkCourier(s, self._session, self.metrics)
                              for s in self.sinks}  # fmt: skip
            producer = AIOKafkaProducer(
                bootstrap_servers=cfg.bootstrap_servers, client_id=f"{k.client_id}-alerts-dlq",
                acks="all", request_timeout_ms=k.request_timeout_ms,
            )  # fmt: skip
            self._producer = producer
            await producer.start()
            consumer = AIOKafkaConsumer(
                bootstrap_servers=cfg.bootstrap_servers, group_id=group_id(cfg),
                client_id=f"{k.client_id}-alerts", enable_auto_commit=False,
                auto_offset_reset="earliest", request_timeout_ms=k.request_timeout_ms,
                session_timeout_ms=d.session_timeout_ms,
                heartbeat_interval_ms=max(100, d.session_timeout_ms // 3),
            )  # fmt: skip
            consumer.subscribe(
                [cfg.alerts_topic], listener=RebalanceListener(self._on_revoked, self._on_assigned)
            )
            self._consumer = consumer
            await consumer.start()
        except BaseException:
            await self._close()
            raise
        self._task = asyncio.create_task(self._run(), name="alerts-dispatcher")
        self._commit_task = asyncio.create_task(self._commit_loop(), name="alerts-commit")
        for t in (self._task, self._commit_task):
            t.add_done_callback(self._on_task_done)
        if cfg.health.enabled:  # its own heartbeat is what tells the watch that Kafka works
            self.watch = HealthWatch(cfg, self.metrics, self.submit, self.owns_health)
            await self.watch.start()
            probe = DispatcherProbe(self.metrics, lambda: self._pending)
            self.reporter = HealthReporter(cfg, self._registry, probe)
            await self.reporter.start()
        self.beacon = SinkBeacon(self.sinks, self._session, self.metrics,
                                 self.watch.status if self.watch is not None else dict)  # fmt: skip
        await self.beacon.start()
        log.info("alerts dispatcher: %s -> sinks %s", cfg.alerts_topic,
                 [f"{s.name} ({s.kind}, {s.url.hint})" for s in self.sinks])  # fmt: skip

    async def stop(self) -> None:
        """Stop fetching, let deliveries finish for up to ``drain_timeout_s``, cancel the rest,
        commit what is done, leave the group. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for part in (self.beacon, self.reporter, self.watch):
            if part is not None:
                await part.stop()
        for t in (self._task, self._commit_task):
            if t is not None:
                t.cancel()
                await asyncio.wait([t])
        self._task = self._commit_task = None
        if self._pending and self.cfg.alerts.dispatcher.drain_timeout_s > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.cfg.alerts.dispatcher.drain_timeout_s):
                    while self._pending:
                        await self._wait_progress()
        await self._cancel_lanes(lambda _: True)
        try:
            if self._consumer is not None:
                await self._commit()
        finally:
            await self._close()

    async def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        producer, self._producer = self._producer, None
        session, self._session = self._session, None
        try:
            if consumer is not None:
                await consumer.stop()
        finally:
            try:
                if producer is not None:
                    await producer.stop()
            finally:
                if session is not None:
                    await session.close()

    def health(self) -> Health:
        """Live while its fetch and commit loops run (and before ``start()``: starting is not a
        failure); ready once its group assigned it partitions of the alerts topic. A member
        without partitions (more dispatchers than partitions, or a rebalance in progress) is
        live and not ready."""
        if self._stopped:
            return Health(live=False, ready=False, detail="stopped")
        tasks = (self._task, self._commit_task)
        if any(t is None for t in tasks):
            return Health(live=True, ready=False, detail="starting")
        if any(t is not None and t.done() for t in tasks):
            return Health(live=False, ready=False, detail="dispatcher loop ended")
        if not self._assigned:
            return Health(live=True, ready=False, detail="no partitions assigned")
        return Health(live=True, ready=True)

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("alerts dispatcher: %s failed", task.get_name(), exc_info=task.exception())

    # ---- progress, for callers and tests -------------------------------------------------

    async def _wait_progress(self) -> None:
        await self._progress.wait()

    def _notify(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    async def wait_handled(self, n: int, timeout_s: float) -> None:
        """Until ``n`` records are done (delivered, dead-lettered, dropped or skipped)."""
        async with asyncio.timeout(timeout_s):
            while self.handled < n:
                await self._wait_progress()

    async def wait_committed(self, timeout_s: float) -> None:
        """Until every record consumed so far is done and its offset committed."""
        async with asyncio.timeout(timeout_s):
            while self._pending or not self._offsets.settled():
                await self._wait_progress()

    def committed(self) -> dict[TopicPartition, int]:
        """The offsets this process committed, per partition it owns."""
        return self._offsets.committed_offsets()

    @property
    def pending(self) -> int:
        return self._pending

    # ---- consuming -----------------------------------------------------------------------

    async def _run(self) -> None:
        d = self.cfg.alerts.dispatcher
        consumer = self._consumer
        assert consumer is not None  # started before this task
        while True:
            while self._pending >= d.max_pending:
                self._room.clear()
                await self._room.wait()
            try:
                batches = await consumer.getmany(
                    timeout_ms=1000, max_records=max(1, min(500, d.max_pending - self._pending))
                )
            except KafkaError as exc:  # aiokafka retries what it can; anything else: log, go on
                log.warning("alerts dispatcher: fetch failed (%s); retrying", exc)
                await asyncio.sleep(FETCH_RETRY_S)
                continue
            for tp, records in batches.items():
                for r in records:
                    self._accept(tp, r.offset, r.value)
            if batches:
                await asyncio.sleep(0)  # let the lanes start between batches

    def _accept(self, tp: TopicPartition, offset: int, value: bytes | None) -> None:
        entry = _Entry(tp, offset, time.time())
        self._offsets.begin(tp, offset)
        self._pending += 1
        try:
            alert = decode_alert(value or b"")
        except CodecError as exc:
            self.metrics.skipped.labels("undecodable").inc()
            log.warning("alerts topic %s offset %d: skipped, %s", tp, offset, exc)
            self._finish(entry)
            return
        key: _Key = (alert.fingerprint, alert.status, alert.severity, alert.started_t)
        if key in self._done_keys or key in self._in_flight:
            self.metrics.skipped.labels("duplicate").inc()
            log.debug("alert %s %s at offset %d: duplicate, skipped", alert.fingerprint,
                      alert.status, offset)  # fmt: skip
            self._finish(entry)  # the original (earlier offset) holds the commit if still open
            return
        self._route(entry, alert, key)

    def submit(self, alert: AlertEvent) -> None:
        """Deliver an alert made in this process (the health watch's) to the sinks, like one
        read from the topic but with nothing to commit."""
        entry = _Entry(LOCAL, -1, time.time())
        self._pending += 1
        self._route(entry, alert, (alert.fingerprint, alert.status, alert.severity,
                                   alert.started_t))  # fmt: skip

    def owns_health(self) -> bool:
        """Whether this dispatcher sends the health alerts: it owns the alerts topic's
        partition 0 (one dispatcher of the group does)."""
        consumer = self._consumer
        return consumer is not None and TopicPartition(self.cfg.alerts_topic, 0) in (
            consumer.assignment()
        )

    def _route(self, entry: _Entry, alert: AlertEvent, key: _Key) -> None:
        """Queue ``alert`` on every sink that takes it, behind its fingerprint's earlier ones."""
        tp = entry.tp
        self.metrics.transitions.labels(alert.rule, alert.status).inc()
        entry.alert, entry.key = alert, key
        self._in_flight[key] = entry
        for sink in self.sinks:
            if alert.category not in sink.config.categories:
                self.metrics.deliveries.labels(sink.name, "dropped_by_category").inc()
                continue
            if not severity_passes(sink.config, alert.severity):
                self.metrics.deliveries.labels(sink.name, "dropped_by_severity").inc()
                continue
            entry.remaining += 1
            lk: _LaneKey = (sink.name, tp, alert.fingerprint)
            lane = self._lanes.get(lk)
            if lane is None:
                lane = self._lanes[lk] = _Lane()
                lane.task = asyncio.create_task(self._drain(lk, lane), name=f"alert-lane-{lk[0]}")
            lane.queue.append(entry)
        if entry.remaining == 0:
            self._finish(entry)

    async def _drain(self, lk: _LaneKey, lane: _Lane) -> None:
        """One sink, one fingerprint: its alerts in offset order, one at a time."""
        courier = self._couriers[lk[0]]
        try:
            while lane.queue:
                entry = lane.queue[0]
                assert entry.alert is not None
                try:
                    result = await courier.deliver(entry.alert, entry.consumed_ts)
                except Exception as exc:  # a bug, not the receiver: keep the lane alive
                    log.exception("sink %s: delivery failed internally", courier.sink.name)
                    result = Delivery(False, 1, None, courier.scrub(f"internal: {exc!r}"),
                                      time.time())  # fmt: skip
                if not result.ok:
                    await self._dead_letter(courier, entry, result)
                lane.queue.popleft()
                entry.remaining -= 1
                if entry.remaining == 0:
                    self._finish(entry)
        finally:
            if self._lanes.get(lk) is lane:
                del self._lanes[lk]

    async def _dead_letter(self, courier: SinkCourier, entry: _Entry, result: Delivery) -> None:
        assert entry.alert is not None
        sink = courier.sink
        value = orjson.dumps({
            "sink": sink.name, "kind": sink.kind, "error": result.error, "status": result.status,
            "attempts": result.attempts, "first_attempt_ts": result.first_attempt_ts,
            "dead_lettered_ts": time.time(), "topic": entry.tp.topic,
            "partition": entry.tp.partition, "offset": entry.offset,
            "alert": orjson.loads(entry.alert.encode()),
        })  # fmt: skip
        producer = self._producer
        assert producer is not None  # closed only after the lanes are cancelled
        while True:  # until Kafka has it: committing past it would lose the alert
            try:
                await producer.send_and_wait(
                    dead_letter_topic(self.cfg), value, key=entry.alert.fingerprint.encode()
                )
                break
            except KafkaError as exc:
                log.warning("dead letter for sink %s not written (%s); retrying", sink.name, exc)
                await asyncio.sleep(DEAD_LETTER_RETRY_S)
        self.metrics.dead_letters.labels(sink.name).inc()
        self.dead_lettered += 1

    def _finish(self, entry: _Entry) -> None:
        self._pending -= 1
        self.handled += 1
        if entry.key is not None:
            self._in_flight.pop(entry.key, None)
            self._done_keys[entry.key] = None
            if len(self._done_keys) > self.cfg.alerts.dispatcher.dedup_entries:
                self._done_keys.popitem(last=False)
        self._offsets.complete(entry.tp, entry.offset)  # no-op if its partition was revoked
        self.metrics.pending.set(self._pending)
        self._room.set()
        self._notify()

    # ---- offsets, rebalances -------------------------------------------------------------

    async def _commit_loop(self) -> None:
        interval = self.cfg.alerts.dispatcher.commit_interval_s
        while True:
            await asyncio.sleep(interval)
            await self._commit()

    async def _commit(self, only: Iterable[TopicPartition] | None = None) -> None:
        async with self._commit_lock:
            consumer = self._consumer
            if consumer is None:
                return
            wanted = consumer.assignment() if only is None else set(only)
            offsets = self._offsets.to_commit(wanted)
            if not offsets:
                return
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:
                log.warning("alerts dispatcher: commit of %s failed: %s", offsets, exc)
                return
            self._offsets.committed(offsets)
            log.debug("alerts dispatcher: committed %s", offsets)
            self._notify()

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Commit what is done on the revoked partitions, then drop their deliveries: the next
        owner redelivers them from that commit."""
        self._assigned = self._assigned - revoked
        if not revoked:
            return
        await self._commit(revoked)
        await self._cancel_lanes(lambda tp: tp in revoked)
        # what was consumed and not done: every such record is in flight (the others finish
        # as they are accepted)
        self._pending -= self._offsets.forget(revoked)
        for key, e in list(self._in_flight.items()):
            if e.tp in revoked:
                del self._in_flight[key]
        self.metrics.pending.set(self._pending)
        self._room.set()
        self._notify()

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        self._assigned = frozenset(assigned)
        log.info("alerts dispatcher: assigned partitions %s", sorted(t.partition for t in assigned))

    async def _cancel_lanes(self, which: Callable[[TopicPartition], bool]) -> None:
        lanes = [(lk, lane) for lk, lane in self._lanes.items() if which(lk[1])]
        tasks = [lane.task for _, lane in lanes if lane.task is not None]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for lk, lane in lanes:
            if self._lanes.get(lk) is lane:
                del self._lanes[lk]


async def run_dispatcher(
    cfg: Config,
    registry: CollectorRegistry,
    stop: asyncio.Event,
    *,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Run the dispatcher until ``stop`` is set (in-process use: the pipeline, the demo)."""
    async with AlertDispatcher(cfg, registry, environ=environ):
        await stop.wait()
