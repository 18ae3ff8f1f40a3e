"""The consumer service of one exchange: Kafka group member -> RiskState -> Prometheus.

Loop: ``getmany`` -> per record: ``RecordIngest`` (``consumers.ingest``: decode, drop repeats,
apply; a ``CodecError`` is counted in ``decode_errors{reason}``, logged, and the record skipped) ->
event-to-metric latency (``now - recv_ns`` per event) -> commit every ``commit_interval_s`` -> lag
per partition every ``lag_refresh_s``; on their own intervals, the models' periodic work
(``maintain``), the alert rules and the risk snapshots (``consumers.outputs``). A partition newly
assigned first replays its warm-up window (``consumers.warmup``).

Offsets and exactly-once counting (the ledger is ``monitor.core.offsets.OffsetLedger``):

* The ledger's commit point of ``tp`` is the offset after the last record *processed* on ``tp``;
  it moves after each record is applied, and only these offsets are ever committed (auto-commit is
  off). Processing a fetched batch has no ``await`` in it, so a rebalance, a cancellation or
  ``stop()`` never sees half a batch.
* Records below the commit point are dropped before processing. The ledger lives as long as the
  service (revoked partitions are not forgotten), so a partition that comes back after a failed
  commit, or a retried fetch, can never be counted twice within one process.
* On revoke, the revoked partitions' processed offsets are committed before the group rebalances;
  ``stop()`` cancels the loop (which can only be waiting), commits, then leaves the group. A second
  instance of the same group therefore starts exactly where this one stopped. A commit that fails
  (the group already moved on) is logged; the next owner then re-reads from the previous commit
  (at-least-once across processes).

Embedded broker caveat: noida-db 0.2.3 answers an OffsetCommit sent while the group prepares a
rebalance with IllegalGeneration (Kafka accepts it from the current generation), and aiokafka then
rejoins under a new member id, after which the group can fail to settle. A single member per group
(the normal set-up: one consumer per exchange) never meets this; with several live members on the
embedded broker, a revoke that still has offsets to commit loses that commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from consumers.exporter import RiskCollector
from consumers.ingest import RecordIngest
from consumers.outputs import Outputs
from consumers.readout import PairSnapshot
from consumers.warmup import WarmUp
from monitor.alerting.rules import RuleEngine
from monitor.core.alertrecord import AlertEvent
from monitor.core.config import Config
from monitor.core.kafka import BatchSender, Record, RiskConsumer, TopicPartition
from monitor.core.lifecycle import AsyncService, RebalanceListener
from monitor.core.metrics import ConsumerMetrics, for_registry
from monitor.core.offsets import OffsetLedger
from monitor.core.topics import ensure_alerts_topic, ensure_exchange_topics, ensure_risk_topic

log = logging.getLogger(__name__)

RETRY_BACKOFF_S = 0.5  # after a retriable fetch error


class ConsumerService(AsyncService):
    stop_if_start_fails = False  # start() stops its consumer and producer if joining fails

    def __init__(
        self,
        cfg: Config,
        exchange: str,
        registry: CollectorRegistry,
        *,
        metrics: ConsumerMetrics | None = None,
    ) -> None:
        self.cfg = cfg
        self.exchange = exchange
        self.metrics = metrics if metrics is not None else for_registry(ConsumerMetrics, registry)
        c = cfg.consumer
        self.ingest = RecordIngest.from_config(cfg, exchange, on_skip=self._on_skip)
        self.state = self.ingest.state
        self.dedup = self.ingest.dedup
        self.duplicates = 0  # events dropped as already applied (live records)
        self.collector = RiskCollector.for_registry(registry)
        self.collector.attach(exchange, self.state, c.max_exported_symbols)
        self.processed_events = 0  # events of decoded records (applied or counted as skipped)
        self.processed_records = 0  # records handled, undecodable ones included
        self._consumer: RiskConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._offsets: OffsetLedger[TopicPartition] = OffsetLedger()  # what was processed
        self.replayed_events = 0
        self.warmup = WarmUp(exchange, c.warmup_s, self.metrics.warming.labels(exchange))
        self.outputs = Outputs(cfg, exchange, self.state, self.metrics, self.warmup.warming)
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._error_counts: dict[str, int] = {}
        m, x = self.metrics, exchange
        self._m_records = m.records.labels(x)
        self._m_liq = m.events.labels(x, "liquidation")
        self._m_trd = m.events.labels(x, "trade")
        self._m_ctx = m.events.labels(x, "context")
        self._m_pairs = m.pairs.labels(x)
        self._m_state_bytes = m.state_bytes.labels(x)
        self._m_replayed = m.replayed.labels(x)
        self._m_duplicates = m.duplicates.labels(x, "consumer_window")

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._consumer is not None or self._stopped:
            raise RuntimeError("ConsumerService.start() may be called once")
        c = self.cfg.consumer
        await ensure_exchange_topics(self.cfg, [self.exchange])
        if c.risk_publish_s > 0:
            await ensure_risk_topic(self.cfg)
        if self.rules is not None:
            await ensure_alerts_topic(self.cfg)
        if self.outputs.needs_producer:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.cfg.bootstrap_servers,
                client_id=f"{self.cfg.kafka.client_id}-risk-{self.exchange}",
                linger_ms=0, request_timeout_ms=self.cfg.kafka.request_timeout_ms,
                enable_idempotence=True,  # a retried alert send is not a duplicate
            )  # fmt: skip
            await producer.start()
            self.outputs.producer = producer
        self.state.warm_up()  # compile/load kernels before joining: no stall inside the group
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.cfg.bootstrap_servers,
            group_id=self.cfg.group_id(self.exchange),
            client_id=f"{self.cfg.kafka.client_id}-consumer-{self.exchange}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=self.cfg.kafka.request_timeout_ms,
        )
        listener = RebalanceListener(self._on_revoked, self._on_assigned)
        consumer.subscribe([self.cfg.topic(self.exchange)], listener=listener)
        self._consumer = consumer  # the first assignment arrives inside start()
        try:
            await consumer.start()
        except BaseException:
            self._consumer = None
            await consumer.stop()
            producer, self.outputs.producer = self.outputs.producer, None
            if producer is not None:
                await producer.stop()
            raise
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.exchange}")
        self._task.add_done_callback(self._on_task_done)

    async def stop(self) -> None:
        """Finish the batch in hand, commit the processed offsets, leave the group. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])  # a failure was logged by _on_task_done
        consumer = self._consumer
        if consumer is not None:
            try:
                await self._commit()
            finally:
                await consumer.stop()
        await self.outputs.flush_alerts()
        producer, self.outputs.producer = self.outputs.producer, None
        if producer is not None:
            await producer.stop()
        self._fail_waiters(RuntimeError("consumer service stopped"))

    async def commit(self) -> None:
        """Commit the processed offsets of the assigned partitions now (also done periodically)."""
        if self._consumer is not None and not self._stopped:
            await self._commit()

    # ---- queries -------------------------------------------------------------------------

    async def wait_live(self, timeout_s: float) -> None:
        """Resolve once partitions are assigned and none is replaying its warm-up."""
        await asyncio.wait_for(self.warmup.live.wait(), timeout_s)

    def warming(self, tp: TopicPartition | None = None) -> bool:
        """Whether ``tp`` (default: any assigned partition) is still replaying its warm-up."""
        return self.warmup.warming(tp)

    @property
    def _replay_until(self) -> dict[TopicPartition, int]:
        """The warm-up marks (``consumers.warmup``): partition -> replay below this offset."""
        return self.warmup.until

    @property
    def _producer(self) -> BatchSender | None:
        """The outputs' producer (risk snapshots, alert transitions); None when both are off."""
        return self.outputs.producer

    @property
    def rules(self) -> RuleEngine | None:
        return self.outputs.rules

    @property
    def alerts_sent(self) -> int:
        """Alert transitions sent to the alerts topic."""
        return self.outputs.alerts_sent

    @property
    def risk_published(self) -> int:
        """Risk snapshot records sent."""
        return self.outputs.risk_published

    def snapshot(self) -> list[PairSnapshot]:
        return self.state.snapshot(self.state.now_s())

    async def wait_processed(self, n_events: int, timeout_s: float) -> None:
        """Resolve once ``processed_events >= n_events``; TimeoutError after ``timeout_s``."""
        if self.processed_events >= n_events:
            return
        if self._task is None or self._task.done():
            raise RuntimeError("consumer service is not running")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (n_events, fut)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            raise TimeoutError(
                f"{self.processed_events} of {n_events} events processed after {timeout_s} s"
            ) from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    # ---- the loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        consumer, out = self._consumer, self.outputs
        assert consumer is not None  # started before this task
        c = self.cfg.consumer
        poll_ms = int(1000 * min(c.commit_interval_s, c.lag_refresh_s))
        next_lag = time.monotonic()
        next_commit = next_lag + c.commit_interval_s
        next_risk = next_lag + c.risk_publish_s
        next_refit = next_lag + self.cfg.risk.refit_interval_s
        next_eval = next_lag
        while True:
            try:
                batches = await consumer.getmany(
                    timeout_ms=poll_ms, max_records=c.fetch_max_records
                )
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                log.warning("%s: fetch failed (%s), retrying", self.exchange, exc)
                await asyncio.sleep(RETRY_BACKOFF_S)
                continue
            if batches:
                self._process(batches)
                # getmany returns buffered records without suspending: yield once per batch so
                # a consumer catching up never starves the other tasks of its event loop
                await asyncio.sleep(0)
            now = time.monotonic()
            if now >= next_commit:
                next_commit = now + c.commit_interval_s
                await self._commit()
            if now >= next_lag:
                next_lag = now + c.lag_refresh_s
                await self._refresh_lag()
            if now >= next_refit:
                next_refit = now + self.cfg.risk.refit_interval_s
                self.maintain()
            if out.rules is not None and out.eval_recv_ns is not None and now >= next_eval:
                next_eval = now + c.alert_eval_s
                await out.evaluate_alerts()
            if out.producer is not None and c.risk_publish_s > 0 and now >= next_risk:
                next_risk = now + c.risk_publish_s
                await out.publish_risk()

    def maintain(self) -> int:
        """The models' periodic work (Hawkes refits, rank histories) at the event clock."""
        t0 = time.perf_counter()
        n = self.state.maintain(self.state.now_s())
        self.metrics.refit_seconds.labels(self.exchange).observe(time.perf_counter() - t0)
        self._m_state_bytes.set(self.state.bytes_per_pair)
        return n

    async def publish_risk(self) -> int:
        """Send the exported pairs' risk snapshots now (``consumers.outputs``)."""
        return await self.outputs.publish_risk()

    async def evaluate_alerts(self) -> list[AlertEvent]:
        """Run the alert rules now and send their transitions (``consumers.outputs``)."""
        return await self.outputs.evaluate_alerts()

    def _process(self, batches: Mapping[TopicPartition, Sequence[Record]]) -> None:
        """Apply fetched records (synchronous: nothing else runs in the middle of a batch)."""
        latencies: list[npt.NDArray[np.float64]] = []
        offsets = self._offsets
        for tp, records in batches.items():
            until = self.warmup.replay_until(tp)
            for rec in records:
                if offsets.is_done(tp, rec.offset):
                    continue  # processed already by this process
                replay = rec.offset < until
                recv_ns = self._handle(rec.value, tp, rec.offset, replay=replay)
                if not replay and recv_ns is not None and recv_ns.size:
                    lag_s = (time.time_ns() - recv_ns) * 1e-9
                    latencies.append(np.asarray(lag_s, dtype=np.float64))
                    self.outputs.received(int(recv_ns.min()))
                offsets.done(tp, rec.offset)
            if until >= 0:
                self.warmup.passed(tp, offsets.position(tp))
        if latencies:
            self.metrics.latency.observe_many((self.exchange,), np.concatenate(latencies))
        self._m_pairs.set(self.state.n_pairs)
        self._wake_waiters()

    def _handle(
        self, value: bytes | None, tp: TopicPartition, offset: int, *, replay: bool = False
    ) -> npt.NDArray[np.int64] | None:
        if not replay:
            self.processed_records += 1
            self._m_records.inc()
        done = self.ingest.apply(value, replay=replay)
        if done.error is not None:
            self._decode_error(replay, done.error, tp, offset, done.detail)
            return None
        if replay:
            self.replayed_events += done.events
            self._m_replayed.inc(done.events)
            return done.recv_ns
        if done.duplicates:
            self.duplicates += done.duplicates
            self._m_duplicates.inc(done.duplicates)
        if done.liquidations:
            self._m_liq.inc(done.liquidations)
        if done.trades:
            self._m_trd.inc(done.trades)
        if done.contexts:
            self._m_ctx.inc(done.contexts)
        self.processed_events += done.events
        return done.recv_ns

    def _decode_error(
        self, replay: bool, reason: str, tp: TopicPartition, offset: int, detail: str
    ) -> None:
        if replay:  # counted and logged by the process that first read it
            return
        self.metrics.decode_errors.labels(self.exchange, reason).inc()
        n = self._error_counts.get(reason, 0) + 1
        self._error_counts[reason] = n
        if n == 1 or n % 1000 == 0:  # bounded logging under a flood of bad records
            log.warning(
                "%s: skipped record %s[%d]@%d (%s, %d so far): %s",
                self.exchange, tp.topic, tp.partition, offset, reason, n, detail[:200],
            )  # fmt: skip

    def _on_skip(self, reason: str, n: int) -> None:
        self.metrics.events_skipped.labels(self.exchange, reason).inc(n)

    # ---- offsets, lag, rebalances --------------------------------------------------------

    async def _commit(self, only: Iterable[TopicPartition] | None = None) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        assigned = consumer.assignment()
        wanted = assigned if only is None else set(only) & assigned
        offsets = self._offsets.to_commit(wanted)
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            log.warning("%s: commit of %s failed: %s", self.exchange, offsets, exc)
            return
        self._offsets.committed(offsets)

    async def _refresh_lag(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            pos = self._offsets.position(tp)
            if pos is None:
                pos = await consumer.position(tp)
            self.metrics.lag.labels(self.exchange, str(tp.partition)).set(max(0, high - pos))

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        if self._consumer is not None and revoked:
            await self._commit(revoked)
        for tp in revoked:
            with contextlib.suppress(KeyError):
                self.metrics.lag.remove(self.exchange, str(tp.partition))

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        self.metrics.rebalances.labels(self.exchange).inc()
        log.info("%s: assigned %s", self.exchange, sorted(tp.partition for tp in assigned))
        consumer = self._consumer
        assert consumer is not None  # the hook runs inside start() or the loop
        position = self._offsets.position
        await self.warmup.on_assigned(consumer, assigned, lambda tp: position(tp) is not None)

    # ---- waiters -------------------------------------------------------------------------

    def _wake_waiters(self) -> None:
        for n, fut in self._waiters:
            if not fut.done() and self.processed_events >= n:
                fut.set_result(None)

    def _fail_waiters(self, exc: BaseException) -> None:
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_exception(exc)

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s: consumer loop failed", self.exchange, exc_info=exc)
            self._fail_waiters(exc)
