"""The consumer service of one exchange: Kafka group member -> RiskState -> Prometheus.

Loop: ``getmany`` -> per record: decode (a ``CodecError`` is counted in ``decode_errors{reason}``,
logged, and the record skipped) -> ``RiskState.apply_arrays`` -> event-to-metric latency
(``now - recv_ns`` per event) -> commit every ``commit_interval_s`` -> lag per partition every
``lag_refresh_s``.

Offsets and exactly-once counting:

* ``_next[tp]`` is the offset after the last record *processed* on ``tp``; it moves after each record
  is applied, and only these offsets are ever committed (auto-commit is off). Processing a fetched
  batch has no ``await`` in it, so a rebalance, a cancellation or ``stop()`` never sees half a batch.
* Records below ``_next[tp]`` are dropped before processing. ``_next`` lives as long as the service,
  so a partition that comes back after a failed commit, or a retried fetch, can never be counted
  twice within one process.
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

Warm-up replay (rebalances and restarts): a consumer that is assigned a partition it has not
processed before rebuilds that partition's pairs before going live. In the assignment hook (inside
the rebalance, before the first fetch) it looks up the group's committed offset ``c`` and
``offsets_for_times(now - consumer.warmup_s)``, the first record produced within the warm-up
window, at offset ``w``; if ``w < c`` it seeks to ``w`` and marks ``c`` as the partition's "replay
until". Records below the mark rebuild the decayed state (rates, volatility, market context) with
the cumulative counters left untouched (the previous owner counted them) and are counted in
``events_replayed_total``, not in ``processed_events``; from ``c`` on the partition is live.
``warming(tp)`` says whether a partition is still replaying (alerts are suppressed meanwhile), and
``consumer_warming_partitions`` exports how many are. Record timestamps are the producer's send
time (CreateTime), so the window is wall time, as the decay is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from consumers.exporter import RiskCollector
from consumers.ingest import RecordIngest
from consumers.state import PairSnapshot
from monitor.alerting.rules import RuleEngine
from monitor.core.alertrecord import AlertEvent
from monitor.core.config import Config
from monitor.core.lifecycle import AsyncService, RebalanceListener
from monitor.core.metrics import ConsumerMetrics, for_registry
from monitor.core.riskrecord import asset_of, encode_risk
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
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._replay_until: dict[TopicPartition, int] = {}  # warm-up: replay below this offset
        self.replayed_events = 0
        self._live = asyncio.Event()  # assigned, and no partition replaying
        self._producer: Any = None  # risk snapshots and alert transitions
        self.risk_published = 0  # risk snapshot records sent
        rules = cfg.alerts.rules if cfg.alerts.enabled else ()
        self.rules = RuleEngine(rules) if rules else None
        self.alerts_sent = 0  # alert transitions sent to the alerts topic
        self._unsent_alerts: list[AlertEvent] = []
        self._eval_recv_ns: int | None = None  # earliest receipt among events since evaluation
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
        self._m_warming = m.warming.labels(x)
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
        if c.risk_publish_s > 0 or self.rules is not None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.cfg.bootstrap_servers,
                client_id=f"{self.cfg.kafka.client_id}-risk-{self.exchange}",
                linger_ms=0, request_timeout_ms=self.cfg.kafka.request_timeout_ms,
                enable_idempotence=True,  # a retried alert send is not a duplicate
            )  # fmt: skip
            await producer.start()
            self._producer = producer
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
            if self._producer is not None:
                await self._producer.stop()
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
        if self._unsent_alerts:
            await self._send_alerts()
            if self._unsent_alerts:
                log.error("%s: %d alert transitions could not be sent before stopping: %s",
                          self.exchange, len(self._unsent_alerts), self._unsent_alerts)  # fmt: skip
        producer, self._producer = self._producer, None
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
        await asyncio.wait_for(self._live.wait(), timeout_s)

    def warming(self, tp: TopicPartition | None = None) -> bool:
        """Whether ``tp`` (default: any assigned partition) is still replaying its warm-up."""
        return bool(self._replay_until) if tp is None else tp in self._replay_until

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
        c = self.cfg.consumer
        poll_ms = int(1000 * min(c.commit_interval_s, c.lag_refresh_s))
        next_lag = time.monotonic()
        next_commit = next_lag + c.commit_interval_s
        next_risk = next_lag + c.risk_publish_s
        next_refit = next_lag + self.cfg.risk.refit_interval_s
        next_eval = next_lag
        while True:
            try:
                batches = await self._consumer.getmany(
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
            if self.rules is not None and self._eval_recv_ns is not None and now >= next_eval:
                next_eval = now + c.alert_eval_s
                await self.evaluate_alerts()
            if self._producer is not None and c.risk_publish_s > 0 and now >= next_risk:
                next_risk = now + c.risk_publish_s
                await self.publish_risk()

    def maintain(self) -> int:
        """The models' periodic work (Hawkes refits, rank histories) at the event clock."""
        t0 = time.perf_counter()
        n = self.state.maintain(self.state.now_s())
        self.metrics.refit_seconds.labels(self.exchange).observe(time.perf_counter() - t0)
        self._m_state_bytes.set(self.state.bytes_per_pair)
        return n

    async def publish_risk(self) -> int:
        """Send one risk snapshot per exported pair to the risk topic (not while warming up: a
        half-rebuilt state would mislead the asset view). Returns the records sent."""
        if self._producer is None or self.warming():
            return 0
        t, now_ms = self.state.now_s(), int(time.time() * 1000)
        rows = self.state.risk_rows(t, self.cfg.consumer.max_exported_symbols)
        try:
            for row in rows:
                value = encode_risk(row.exchange, row.symbol, t, now_ms, row.values)
                await self._producer.send(
                    self.cfg.risk_topic, value, key=asset_of(row.symbol).encode()
                )
            await self._producer.flush()
        except KafkaError as exc:
            log.warning("%s: risk snapshot not published (%s)", self.exchange, exc)
            return 0
        self.risk_published += len(rows)
        return len(rows)

    async def evaluate_alerts(self) -> list[AlertEvent]:
        """Run the alert rules on the exported pairs' values at the event clock and send the
        transitions to the alerts topic, keyed by fingerprint. Nothing is evaluated while a
        partition is warming up (a half-rebuilt state would fire or resolve on replayed history).
        Each transition carries the earliest receive time among the events applied since the
        previous evaluation: the trigger is one of them, so latency measured from it is an upper
        bound. A transition the broker does not take is kept and sent again next time."""
        if self.rules is None:
            return []
        recv_ns, self._eval_recv_ns = self._eval_recv_ns, None
        if self.warming():
            return []
        t = self.state.now_s()
        received_ts = recv_ns * 1e-9 if recv_ns is not None else math.nan
        events: list[AlertEvent] = []
        for row in self.state.risk_rows(t, self.cfg.consumer.max_exported_symbols):
            events += self.rules.observe(
                t, row.exchange, row.symbol, row.values, row.drivers, received_ts
            )
        for ev in events:
            self.metrics.alert_transitions.labels(
                self.exchange, ev.rule, ev.status, ev.severity
            ).inc()
            log.info("%s: alert %s %s: %s", self.exchange, ev.status, ev.severity, ev.summary)
        self._unsent_alerts += events
        if self._unsent_alerts:
            await self._send_alerts()
        return events

    async def _send_alerts(self) -> None:
        """Send the unsent transitions in order, each acknowledged before the next (a later
        transition of a fingerprint never overtakes an earlier one); stop at the first failure."""
        while self._unsent_alerts:
            ev = self._unsent_alerts[0]
            try:
                await self._producer.send_and_wait(
                    self.cfg.alerts_topic, ev.encode(), key=ev.fingerprint.encode()
                )
            except KafkaError as exc:
                log.warning("%s: alerts topic unavailable (%s), will resend", self.exchange, exc)
                break
            del self._unsent_alerts[0]
            self.alerts_sent += 1
        self.metrics.alerts_unsent.labels(self.exchange).set(len(self._unsent_alerts))

    def _process(self, batches: dict[TopicPartition, list[Any]]) -> None:
        """Apply fetched records (synchronous: nothing else runs in the middle of a batch)."""
        latencies: list[npt.NDArray[np.float64]] = []
        for tp, records in batches.items():
            mark = self._next.get(tp, -1)
            until = self._replay_until.get(tp, -1)
            for rec in records:
                if rec.offset < mark:
                    continue  # processed already by this process
                replay = rec.offset < until
                recv_ns = self._handle(rec.value, tp, rec.offset, replay=replay)
                if not replay and recv_ns is not None and recv_ns.size:
                    lag_s = (time.time_ns() - recv_ns) * 1e-9
                    latencies.append(np.asarray(lag_s, dtype=np.float64))
                    first = int(recv_ns.min())
                    if self._eval_recv_ns is None or first < self._eval_recv_ns:
                        self._eval_recv_ns = first
                mark = rec.offset + 1
                self._next[tp] = mark
            if until >= 0 and mark >= until:
                del self._replay_until[tp]
                self._m_warming.set(len(self._replay_until))
                if not self._replay_until:
                    self._live.set()
                log.info("%s: partition %d warmed up, live from offset %d",
                         self.exchange, tp.partition, until)  # fmt: skip
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
        assigned = consumer.assignment()
        wanted = assigned if only is None else set(only) & assigned
        offsets = {
            tp: off
            for tp, off in self._next.items()
            if tp in wanted and self._committed.get(tp) != off
        }
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            log.warning("%s: commit of %s failed: %s", self.exchange, offsets, exc)
            return
        self._committed.update(offsets)

    async def _refresh_lag(self) -> None:
        consumer = self._consumer
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            pos = self._next.get(tp)
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
        for tp in list(self._replay_until):
            if tp not in assigned:  # revoked while warming: whoever owns it now replays it
                del self._replay_until[tp]
        warmup_s = self.cfg.consumer.warmup_s
        fresh = [tp for tp in assigned if tp not in self._next and tp not in self._replay_until]
        if warmup_s > 0 and fresh:
            await self._seek_warmup(fresh, warmup_s)
        self._m_warming.set(len(self._replay_until))
        if self._replay_until:
            self._live.clear()
        else:
            self._live.set()

    async def _seek_warmup(self, tps: list[TopicPartition], warmup_s: float) -> None:
        """Seek each partition with a committed offset back to the first record of the warm-up
        window (see the module docstring); a lookup that fails leaves the partition live."""
        consumer = self._consumer
        since_ms = int((time.time() - warmup_s) * 1000)
        try:
            committed = {tp: await consumer.committed(tp) for tp in tps}
            starts = await consumer.offsets_for_times(
                {tp: since_ms for tp, c in committed.items() if c}
            )
        except KafkaError as exc:
            log.warning("%s: warm-up lookup failed (%s); starting live", self.exchange, exc)
            return
        for tp, found in starts.items():
            c = committed[tp]
            if found is None or c is None or found.offset >= c:
                continue  # nothing within the window before the committed offset
            consumer.seek(tp, found.offset)
            self._replay_until[tp] = c
            log.info("%s: partition %d replays offsets %d..%d (warm-up %.0f s)",
                     self.exchange, tp.partition, found.offset, c - 1, warmup_s)  # fmt: skip

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
