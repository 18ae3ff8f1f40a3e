"""The consumer service of one exchange: Kafka group member -> RiskState -> Prometheus.

Loop: ``getmany`` -> per record: decode (``consumers.ingest``; a ``CodecError`` is counted in
``decode_errors{reason}``, logged, and the record skipped) -> ``EventEngine.offer``
(``consumers.engine``: held per pair and tick of event time) -> ``EventEngine.step``: the ticks the
event clock closed are applied (repeats dropped, events counted, event-to-metric latency
``now - recv_ns`` per event), each closed pair's models maintained and its alert rules evaluated,
the transitions sent (``consumers.outputs``) -> commit every ``commit_interval_s`` -> lag per
partition every ``lag_refresh_s``; risk snapshots every ``risk_publish_s``. When no record moves
the event clock, it moves on with the wall time since it last moved (``_idle``), so the last ticks
close and quiet pairs with a firing alert are still evaluated. A partition newly assigned first replays its
warm-up window (``consumers.warmup``).

Offsets and exactly-once counting (the ledger is ``monitor.core.offsets.OffsetLedger``):

* A record is *begun* when offered and *done* once the engine applied every part of it (a
  record is held until its ticks close). The ledger's commit point of ``tp`` is the offset after
  the done prefix, and only these offsets are ever committed (auto-commit is off): a held record
  is re-read by the next owner, never lost. Offering a fetched batch has no ``await`` in it, so a
  rebalance, a cancellation or ``stop()`` never sees half a batch.
* Records below the commit point are dropped before processing. The ledger lives as long as the
  service (revoked partitions are not forgotten), so a partition that comes back after a failed
  commit, or a retried fetch, can never be counted twice within one process.
* On revoke, the records held for the revoked partitions' pairs are dropped (the next owner reads
  them) and the processed offsets are committed before the group rebalances;
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
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from consumers.engine import EventEngine, Step
from consumers.exporter import RiskCollector
from consumers.ingest import Ingested, RecordIngest
from consumers.outputs import Outputs
from consumers.readout import PairSnapshot
from consumers.warmup import WarmUp
from monitor.alerting.rules import RuleEngine
from monitor.core.config import Config
from monitor.core.errors import CodecError
from monitor.core.kafka import BatchSender, Record, RiskConsumer, TopicPartition
from monitor.core.lifecycle import AsyncService, Health, RebalanceListener, loop_health
from monitor.core.metrics import ConsumerMetrics, for_registry
from monitor.core.offsets import OffsetLedger
from monitor.core.topics import ensure_alerts_topic, ensure_exchange_topics, ensure_risk_topic

log = logging.getLogger(__name__)

RETRY_BACKOFF_S = 0.5  # after a retriable fetch error
# A folder: when set, stop() writes the state there (``state_dump``), <exchange>-<pid>.json
STATE_DUMP_ENV: Final = "CASCADE_CONSUMER_STATE_DUMP"


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
        self.engine: EventEngine[tuple[TopicPartition, int]] = EventEngine(
            self.ingest, self.outputs.rules, period_s=c.alert_eval_s,
            lateness_s=c.alert_lateness_s, quiet_s=c.alert_quiet_s,
            refit_interval_s=cfg.risk.refit_interval_s,
        )  # fmt: skip
        self._symbol_tp: dict[str, TopicPartition] = {}  # the partition each pair came from
        self._assigned: frozenset[TopicPartition] = frozenset()  # for health(): another thread
        # partitions whose assignment hook is running, and the first offset fetched of each
        # meanwhile (not processed: read again once the hook has positioned the partition)
        self._assigning: frozenset[TopicPartition] = frozenset()
        self._held_back: dict[TopicPartition, int] = {}
        self._clock_wall = time.monotonic()  # when the engine's clock last moved with an event
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
                # a record split across ticks is applied whole before the last commit: the
                # next owner re-reads only records this process applied nothing of
                await self._after(self.engine.release_partial())
                await self._commit()
                if folder := os.environ.get(STATE_DUMP_ENV):
                    self.write_state_dump(Path(folder))
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

    def health(self) -> Health:
        """Live while the fetch loop runs (before ``start()`` too: starting is not a failure);
        ready once the group assigned partitions to this member and none is replaying its warm-up
        (``WarmUp.live``). A member without partitions (more replicas than partitions, or a
        rebalance in progress) is live and not ready."""
        if (early := loop_health(self._stopped, self._task)) is not None:
            return early
        if not self._assigned:
            return Health(live=True, ready=False, detail="no partitions assigned")
        if not self.warmup.live.is_set():
            n = len(self.warmup.until)
            return Health(live=True, ready=False, detail=f"{n} partition(s) warming up")
        return Health(live=True, ready=True)

    def committed_offsets(self) -> dict[TopicPartition, int]:
        """The offsets this process committed, per partition (health: are commits stalled?)."""
        return self._offsets.committed_offsets()

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

    def state_dump(self) -> dict[str, Any]:
        """This process's view of every pair in its state, to compare consumers across processes
        (``tests/scaling``, docs/operations.md §8): what it counted live (the cumulative counters)
        and the decayed state (liquidation and traded-notional rates per side and horizon, EWMA
        variance, last price) read at the pair's latest applied event time ``t``, so that two
        processes that applied the same events of a pair give the same values whatever their wall
        clocks; the pair's partition when it is assigned here now. Also the assigned partitions and
        the offsets this process committed."""
        st = self.state
        pairs: dict[str, dict[str, Any]] = {}
        for pid in range(st.n_pairs):
            t = float(st.t_max[pid])
            r = st.read(t if math.isfinite(t) else 0.0, np.array([pid], dtype=np.int64))
            symbol = r.keys[0][1]
            tp = self._symbol_tp.get(symbol)
            pairs[symbol] = {
                "partition": tp.partition if tp is not None and tp in self._assigned else None,
                "t": t if math.isfinite(t) else None,
                "liq_notional": r.liq_notional[0].tolist(),
                "liq_count": r.liq_count[0].tolist(),
                "trd_notional": float(r.trd_notional[0]),
                "trd_count": int(r.trd_count[0]),
                "liq_rate": r.liq_rate[0].tolist(),
                "trd_rate": r.trd_rate[0].tolist(),
                "variance": float(r.variance[0]),
                "last_price": float(r.last_price[0]),
            }
        return {
            "exchange": self.exchange,
            "pid": os.getpid(),
            "processed_events": self.processed_events,
            "replayed_events": self.replayed_events,
            "assigned": sorted(tp.partition for tp in self._assigned),
            "committed": {
                tp.partition: off for tp, off in self._offsets.committed_offsets().items()
            },
            "pairs": pairs,
        }

    def write_state_dump(self, folder: Path) -> Path:
        """Write ``state_dump()`` as JSON (NaN as null) to ``folder/<exchange>-<pid>.json``."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.exchange}-{os.getpid()}.json"
        path.write_bytes(orjson.dumps(self.state_dump(), option=orjson.OPT_NON_STR_KEYS))
        log.info("%s: state of %d pairs written to %s", self.exchange, self.state.n_pairs, path)
        return path

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
        tick_ms = max(1, int(1000 * c.alert_eval_s))
        next_lag = time.monotonic()
        next_commit = next_lag + c.commit_interval_s
        next_risk = next_lag + c.risk_publish_s
        while True:
            try:
                # while ticks are held, an idle input must still move the event clock on
                timeout = tick_ms if self.engine.held else poll_ms
                batches = await consumer.getmany(
                    timeout_ms=timeout, max_records=c.fetch_max_records
                )
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                log.warning("%s: fetch failed (%s), retrying", self.exchange, exc)
                await asyncio.sleep(RETRY_BACKOFF_S)
                continue
            if batches:
                self._process(batches)
            self._idle()
            await self._after(self.engine.step())
            if batches:
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
            if out.producer is not None and c.risk_publish_s > 0 and now >= next_risk:
                next_risk = now + c.risk_publish_s
                await out.publish_risk()

    def _idle(self) -> None:
        """The event clock moves on with the wall time elapsed since it last moved with an
        event: an input that goes quiet (or brings only records no newer than the clock) still
        closes its held ticks and evaluates quiet pairs with a firing alert. A consumer catching
        up on a backlog moves its clock with events at every poll, so this adds no more than the
        milliseconds between two polls."""
        clock = self.engine.event_clock
        if clock > -math.inf:
            self.engine.advance(clock + (time.monotonic() - self._clock_wall))

    async def publish_risk(self) -> int:
        """Send the exported pairs' risk snapshots now (``consumers.outputs``)."""
        return await self.outputs.publish_risk()

    async def send_alerts(self) -> None:
        """Send the transitions not sent yet (``consumers.outputs``); the loop sends each step's
        transitions itself, this waits for a send in progress."""
        await self.outputs.send_alerts()

    def _process(self, batches: Mapping[TopicPartition, Sequence[Record]]) -> None:
        """Offer fetched records to the engine (synchronous: nothing else runs in the middle of
        a batch). Their events are applied when their ticks close (``_after``)."""
        offsets, engine = self._offsets, self.engine
        clock = engine.event_clock
        for tp, records in batches.items():
            if tp in self._assigning:  # the hook may still seek it back for a warm-up replay
                if records:
                    self._held_back.setdefault(tp, records[0].offset)
                continue
            until = self.warmup.replay_until(tp)
            for rec in records:
                if offsets.is_done(tp, rec.offset) or offsets.is_begun(tp, rec.offset):
                    continue  # processed already by this process
                replay = rec.offset < until
                if not replay:
                    self.processed_records += 1
                    self._m_records.inc()
                batch, error, detail = self.ingest.decode(rec.value)
                if batch is None:
                    assert error is not None
                    self._decode_error(replay, error, tp, rec.offset, detail)
                    offsets.done(tp, rec.offset)
                    continue
                self._symbol_tp[batch.symbol] = tp
                offsets.begin(tp, rec.offset)
                try:
                    parts = engine.offer(batch, (tp, rec.offset), replay=replay)
                except CodecError as exc:
                    parts = 0
                    self._decode_error(replay, "bad_column", tp, rec.offset, str(exc))
                if not parts:
                    offsets.complete(tp, rec.offset)  # no events: nothing to hold
        if engine.event_clock > clock:
            self._clock_wall = time.monotonic()

    async def _after(self, step: Step[tuple[TopicPartition, int]]) -> None:
        """Account for what the engine applied and evaluated, then send its transitions."""
        latencies: list[npt.NDArray[np.float64]] = []
        for done, replay in step.ingested:
            self._count(done, replay)
            if not replay and done.recv_ns.size:
                lag_s = (time.time_ns() - done.recv_ns) * 1e-9
                latencies.append(np.asarray(lag_s, dtype=np.float64))
        if latencies:
            self.metrics.latency.observe_many((self.exchange,), np.concatenate(latencies))
        moved: set[TopicPartition] = set()
        for tp, offset in step.done:
            self._offsets.complete(tp, offset)
            moved.add(tp)
        for tp in moved:
            if self.warmup.replay_until(tp) >= 0:
                self.warmup.passed(tp, self._offsets.position(tp))
        if step.maintained:
            self.metrics.refit_seconds.labels(self.exchange).observe(step.maintain_s)
            self._m_state_bytes.set(self.state.bytes_per_pair)
        self._m_pairs.set(self.state.n_pairs)
        self._wake_waiters()
        if step.transitions or self.outputs.unsent:
            await self.outputs.emit(step.transitions)

    def _count(self, done: Ingested, replay: bool) -> None:
        if done.error is not None:  # columns the state could not convert (rare)
            self._decode_error(replay, done.error, None, -1, done.detail)
            return
        if replay:
            self.replayed_events += done.events
            self._m_replayed.inc(done.events)
            return
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

    def _decode_error(
        self, replay: bool, reason: str, tp: TopicPartition | None, offset: int, detail: str
    ) -> None:
        if replay:  # counted and logged by the process that first read it
            return
        self.metrics.decode_errors.labels(self.exchange, reason).inc()
        n = self._error_counts.get(reason, 0) + 1
        self._error_counts[reason] = n
        if n == 1 or n % 1000 == 0:  # bounded logging under a flood of bad records
            where = f"{tp.topic}[{tp.partition}]@{offset}" if tp is not None else "(merged tick)"
            log.warning("%s: skipped record %s (%s, %d so far): %s",
                        self.exchange, where, reason, n, detail[:200])  # fmt: skip

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
        self._assigned = self._assigned - revoked
        keys = [k for k, tp in self._symbol_tp.items() if tp in revoked]
        await self._after(self.engine.release_partial(keys))  # records split across ticks
        for tp, offset in self.engine.drop(keys):  # held records: the next owner reads them
            self._offsets.abandon(tp, offset)
        for k in keys:
            del self._symbol_tp[k]
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
        self._assigning, self._held_back = frozenset(assigned), {}
        position = self._offsets.position
        # A partition this process had before is up to date only if no other member moved its
        # commit since; if one did, its pairs here miss those records: it warms up like a fresh
        # one (the records this process applied already are skipped as done, so the replay
        # applies exactly the records the other member applied, uncounted).
        moved: set[TopicPartition] = set()
        try:
            for tp in assigned:
                if (own := position(tp)) is None:
                    continue
                try:
                    group = await consumer.committed(tp)
                except KafkaError as exc:
                    log.warning("%s: committed offset of %s: %s", self.exchange, tp, exc)
                    continue
                if group is not None and group > own:
                    moved.add(tp)
            await self.warmup.on_assigned(
                consumer, assigned, lambda tp: position(tp) is not None and tp not in moved
            )
        finally:
            # the fetch loop runs during the lookups above: what it got of a partition that
            # replays now is read again from the seek; of the others, from where it began
            for tp, first in self._held_back.items():
                if self.warmup.replay_until(tp) < 0:
                    consumer.seek(tp, first)
            self._assigning, self._held_back = frozenset(), {}
        self._assigned = frozenset(assigned)  # after the warm-up marks: health() reads both

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
