"""What a consumer sends to Kafka besides its metrics: risk snapshots and alert transitions.

* Risk snapshots (``publish_risk``, every ``consumer.risk_publish_s``): one record per exported
  pair to ``<prefix>.risk``, keyed by asset, for the asset view across venues
  (``consumers.aggregator``).
* Alerts (``emit``): the transitions of the alert rules, which the event-time engine
  (``consumers.engine``) evaluates at each pair's tick closes, go to ``<prefix>.alerts`` keyed by
  fingerprint, one acknowledged before the next (a later transition of a fingerprint never
  overtakes an earlier one). A transition the broker does not take stays in the unsent queue
  (``cascade_alerts_unsent``) and is sent again next time, and once more when the service stops.

No risk snapshot is sent while a partition replays its warm-up (``consumers.warmup``): a
half-rebuilt state would mislead the asset view; the engine does not emit transitions within
replayed history. The producer is the service's (``consumers.service`` starts and stops it); it
is None when neither output is on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka.errors import KafkaError

from consumers.state import RiskState
from monitor.alerting.rules import RuleEngine
from monitor.core.alertrecord import AlertEvent
from monitor.core.config import Config
from monitor.core.kafka import BatchSender
from monitor.core.metrics import ConsumerMetrics
from monitor.core.riskrecord import asset_of, encode_risk
from monitor.core.symbols import VENUE_SYMBOL

log = logging.getLogger(__name__)


class Outputs:
    """The risk snapshots and alert transitions of one exchange's consumer."""

    def __init__(
        self,
        cfg: Config,
        exchange: str,
        state: RiskState,
        metrics: ConsumerMetrics,
        warming: Callable[[], bool],
    ) -> None:
        self.cfg = cfg
        self.exchange = exchange
        self.state = state
        self.metrics = metrics
        self._warming = warming
        self.producer: BatchSender | None = None  # set by the service once started
        rules = cfg.alerts.rules if cfg.alerts.enabled else ()
        self.rules = RuleEngine(rules) if rules else None
        self.risk_published = 0  # risk snapshot records sent
        self.alerts_sent = 0  # alert transitions sent to the alerts topic
        self.unsent: list[AlertEvent] = []
        self._sending = asyncio.Lock()

    @property
    def needs_producer(self) -> bool:
        return self.cfg.consumer.risk_publish_s > 0 or self.rules is not None

    async def publish_risk(self) -> int:
        """Send one risk snapshot per exported pair to the risk topic (not while warming up: a
        half-rebuilt state would mislead the asset view). Returns the records sent."""
        producer = self.producer
        if producer is None or self._warming():
            return 0
        t, now_ms = self.state.now_s(), int(time.time() * 1000)
        rows = self.state.risk_rows(t, self.cfg.consumer.max_exported_symbols + 1)
        pairs = [r for r in rows if r.symbol != VENUE_SYMBOL]
        rows = pairs[: self.cfg.consumer.max_exported_symbols] + [
            r for r in rows if r.symbol == VENUE_SYMBOL
        ]  # the venue-wide row always goes: the aggregator's venue view
        try:
            for row in rows:
                value = encode_risk(row.exchange, row.symbol, t, now_ms, row.values)
                await producer.send(self.cfg.risk_topic, value, key=asset_of(row.symbol).encode())
            await producer.flush()
        except KafkaError as exc:
            log.warning("%s: risk snapshot not published (%s)", self.exchange, exc)
            return 0
        self.risk_published += len(rows)
        return len(rows)

    async def emit(self, events: list[AlertEvent]) -> None:
        """Count and log the engine's transitions, then send them (with any still unsent)."""
        for ev in events:
            self.metrics.alert_transitions.labels(
                self.exchange, ev.rule, ev.status, ev.severity
            ).inc()
            log.info("%s: alert %s %s: %s", self.exchange, ev.status, ev.severity, ev.summary)
        self.unsent += events
        if self.unsent:
            await self.send_alerts()

    async def send_alerts(self) -> None:
        """Send the unsent transitions in order, each acknowledged before the next (a later
        transition of a fingerprint never overtakes an earlier one); stop at the first failure."""
        async with self._sending:  # one sender at a time: the loop, a flush, the stop
            producer = self.producer
            while self.unsent and producer is not None:
                ev = self.unsent[0]
                try:
                    await producer.send_and_wait(
                        self.cfg.alerts_topic, ev.encode(), key=ev.fingerprint.encode()
                    )
                except KafkaError as exc:
                    log.warning("%s: alerts topic unavailable (%s), will resend", self.exchange,
                                exc)  # fmt: skip
                    break
                del self.unsent[0]
                self.alerts_sent += 1
            self.metrics.alerts_unsent.labels(self.exchange).set(len(self.unsent))

    async def flush_alerts(self) -> None:
        """On stop: one last attempt at the unsent transitions; what remains is logged."""
        if not self.unsent:
            return
        await self.send_alerts()
        if self.unsent:
            log.error("%s: %d alert transitions could not be sent before stopping: %s",
                      self.exchange, len(self.unsent), self.unsent)  # fmt: skip
