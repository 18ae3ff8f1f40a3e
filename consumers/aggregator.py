"""The asset view across venues: the risk topic -> latest snapshot per pair -> /metrics per asset.

One process (``cascade-monitor aggregate``, or inside the demo's pipeline) reads every partition of
``<prefix>.risk`` without a consumer group: the view is a function of the latest snapshot of each
(exchange, symbol), so nothing needs committing. On start it seeks each partition to
``offsets_for_times(now - stale_s)``, the snapshots still fresh enough to count, and keeps the
newest record per pair (by publishing wall time). ``views()`` combines them per asset as
``monitor.core.riskrecord.asset_views`` documents; the collector exports them at scrape time:

* ``cascade_asset_venues{asset}``: pairs combined (a venue that stopped publishing drops out
  after ``stale_s``);
* one gauge per field, labelled by asset: ``cascade_asset_<field>`` with the field's unit in its
  name (``..._usd_per_second``, ``..._usd``, ratios unitless), summed across venues for flows and
  notionals and the worst venue for risk levels;
* ``cascade_asset_worst_pair_info{asset,exchange,symbol}`` = 1: where the highest score is.

Undecodable records are counted (``cascade_risk_records_skipped_total``) and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Iterable, Iterator
from typing import Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.core.config import Config
from monitor.core.errors import CodecError
from monitor.core.kafka import Fetcher
from monitor.core.lifecycle import AsyncService, Health, loop_health
from monitor.core.metrics import NAMESPACE
from monitor.core.riskrecord import FIELDS, AssetView, RiskRecord, asset_views, decode_risk
from monitor.core.symbols import VENUE_SYMBOL
from monitor.core.topics import ensure_risk_topic, topic_partitions

log = logging.getLogger(__name__)

# field -> (metric name after "cascade_asset_", help)
ASSET_METRICS: Final = {
    "liq_rate_long_60s": ("long_liquidation_rate_60s_usd_per_second", "Long liquidations, 60 s decayed rate, all venues."),
    "liq_rate_short_60s": ("short_liquidation_rate_60s_usd_per_second", "Short liquidations, 60 s decayed rate, all venues."),
    "liq_rate_unknown_60s": ("unknown_side_liquidation_rate_60s_usd_per_second", "Liquidations of unknown side, 60 s rate, all venues."),
    "trade_rate_60s": ("traded_notional_rate_60s_usd_per_second", "Traded notional, 60 s decayed rate, all venues."),
    "at_risk_long_1pct": ("long_notional_at_risk_1pct_usd", "Estimated long liquidations within 1% below price, all venues."),
    "at_risk_long_2pct": ("long_notional_at_risk_2pct_usd", "Estimated long liquidations within 2% below price, all venues."),
    "at_risk_long_5pct": ("long_notional_at_risk_5pct_usd", "Estimated long liquidations within 5% below price, all venues."),
    "at_risk_short_1pct": ("short_notional_at_risk_1pct_usd", "Estimated short liquidations within 1% above price, all venues."),
    "at_risk_short_2pct": ("short_notional_at_risk_2pct_usd", "Estimated short liquidations within 2% above price, all venues."),
    "at_risk_short_5pct": ("short_notional_at_risk_5pct_usd", "Estimated short liquidations within 5% above price, all venues."),
    "expected_liquidations_usd": ("expected_liquidations_usd", "Probability-weighted expected liquidations over the stress horizon, all venues."),
    "open_interest_usd": ("open_interest_usd", "Open interest, all venues that publish it."),
    "score": ("cascade_score", "Composite cascade score of the worst venue, 0..1."),
    "branching_ratio": ("branching_ratio", "Hawkes branching ratio (sampling-aware) of the worst venue."),
    "branching_ratio_lower": ("branching_ratio_lower", "Lower end of the branching ratio's interval, worst venue."),
    "branching_ratio_upper": ("branching_ratio_upper", "Upper end of the branching ratio's interval, worst venue."),
    "branching_ratio_exact": ("branching_ratio_exact", "Continuous-time MLE of the branching ratio, worst venue."),
    "n_struct": ("feedback_ratio", "Mechanical feedback ratio n_struct of the worst venue."),
    "liq_zscore": ("liquidation_rate_zscore", "Liquidation-rate z-score of the worst venue."),
    "liq_share": ("liquidation_share_of_volume", "Liquidation share of traded notional, worst venue."),
    "vpin": ("vpin", "VPIN of the worst venue."),
    "volatility": ("volatility", "EWMA volatility per sampling interval, worst venue."),
    "margin_stress_index": ("margin_stress_index", "Margin stress index, worst venue."),
    "drawdown": ("drawdown_ratio", "Drawdown from the decayed high, worst venue."),
    "liq_rate_60s": ("liquidation_rate_60s_usd_per_second", "Liquidations of every side, 60 s rate, all venues."),
    "score_coverage": ("cascade_score_coverage", "Score coverage (share of defined weight) of the worst venue."),
    "liq_surge": ("liquidation_surge", "Liquidation-flow surge of the worst venue (rate / max(baseline, floor))."),
}  # fmt: skip
# the pooled views (venue-wide: each exchange's "*" row; per asset: the asset view), one family
# per value with the label scope ("venue" with exchange, or "asset" with asset)
POOLED_METRICS: Final = {
    "score": ("pooled_cascade_score", "Cascade score of a pooled view: a venue's whole liquidation flow (scope=venue) or the worst venue of an asset (scope=asset)."),
    "branching_ratio": ("pooled_branching_ratio", "Branching ratio of a pooled view (scope=venue: the venue's whole liquidation flow; scope=asset: the worst venue)."),
    "branching_ratio_lower": ("pooled_branching_ratio_lower", "Lower end of the pooled branching ratio's interval."),
    "liq_surge": ("pooled_liquidation_surge", "Liquidation-flow surge of a pooled view."),
    "liq_rate_60s": ("pooled_liquidation_rate_60s_usd_per_second", "Liquidations of every side, 60 s rate, of a pooled view."),
    "liq_rate_long_60s": ("pooled_long_liquidation_rate_60s_usd_per_second", "Long liquidations, 60 s rate, of a pooled view."),
    "liq_rate_short_60s": ("pooled_short_liquidation_rate_60s_usd_per_second", "Short liquidations, 60 s rate, of a pooled view."),
}  # fmt: skip
assert set(ASSET_METRICS) == set(FIELDS), "every risk field needs an asset metric"


class AssetCollector(Collector):
    def __init__(self, aggregator: AssetAggregator) -> None:
        self._agg = aggregator

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        views = self._agg.views()
        venues = GaugeMetricFamily(f"{NAMESPACE}_asset_venues", "Pairs combined in the asset view.",
                                   labels=["asset"])  # fmt: skip
        worst = GaugeMetricFamily(f"{NAMESPACE}_asset_worst_pair_info",
                                  "The pair with the asset's highest score.",
                                  labels=["asset", "exchange", "symbol"])  # fmt: skip
        fams = {f: GaugeMetricFamily(f"{NAMESPACE}_asset_{name}", doc, labels=["asset"])
                for f, (name, doc) in ASSET_METRICS.items()}  # fmt: skip
        pooled = {f: GaugeMetricFamily(f"{NAMESPACE}_{name}", doc,
                                       labels=["scope", "exchange", "asset"])
                  for f, (name, doc) in POOLED_METRICS.items()}  # fmt: skip
        for v in views:
            venues.add_metric([v.asset], v.venues)
            worst.add_metric([v.asset, *v.worst], 1.0)
            for f, x in v.values.items():
                if not math.isnan(x):
                    fams[f].add_metric([v.asset], x)
                    if f in pooled:
                        pooled[f].add_metric(["asset", "", v.asset], x)
        for rec in self._agg.venue_rows():
            for f, fam in pooled.items():
                x = rec.values.get(f, math.nan)
                if not math.isnan(x):
                    fam.add_metric(["venue", rec.exchange, ""], x)
        yield venues
        yield worst
        yield from fams.values()
        yield from pooled.values()


class AssetAggregator(AsyncService):
    def __init__(
        self, cfg: Config, registry: CollectorRegistry, *, stale_s: float | None = None
    ) -> None:
        self.cfg = cfg
        publish_s = cfg.consumer.risk_publish_s
        self.stale_s = stale_s if stale_s is not None else max(3 * publish_s, 15.0)
        self.latest: dict[tuple[str, str], RiskRecord] = {}
        self.records = 0
        self._consumer: Fetcher | None = None
        self._task: asyncio.Task[None] | None = None
        self._partitions = 0  # of the risk topic, assigned at start
        self._stopped = False
        self._changed = asyncio.Event()
        self._skipped = Counter(f"{NAMESPACE}_risk_records_skipped", "Undecodable risk records.",
                                registry=registry)  # fmt: skip
        registry.register(AssetCollector(self))

    def views(self, now_ms: int | None = None) -> list[AssetView]:
        """The asset views of the fresh pairs (the venue-wide rows are not pairs)."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        pairs = [r for r in self.latest.values() if r.symbol != VENUE_SYMBOL]
        return asset_views(pairs, now, int(self.stale_s * 1000))

    def venue_rows(self, now_ms: int | None = None) -> list[RiskRecord]:
        """Each exchange's fresh venue-wide row (symbol ``*``: its whole liquidation flow)."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return [r for r in self.latest.values() if r.symbol == VENUE_SYMBOL
                and now - r.published_ms <= self.stale_s * 1000]  # fmt: skip

    async def start(self) -> None:
        k = self.cfg.kafka
        topic = self.cfg.risk_topic
        await ensure_risk_topic(self.cfg)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.cfg.bootstrap_servers, group_id=None,
            client_id=f"{k.client_id}-assets", enable_auto_commit=False,
            auto_offset_reset="latest", request_timeout_ms=k.request_timeout_ms,
        )  # fmt: skip
        await consumer.start()
        try:
            parts = (await topic_partitions(self.cfg.bootstrap_servers, [topic])).get(topic, [])
            tps = [TopicPartition(topic, p) for p in parts]
            consumer.assign(tps)
            since = int((time.time() - self.stale_s) * 1000)
            starts = await consumer.offsets_for_times(dict.fromkeys(tps, since))
            for tp, found in starts.items():
                if found is not None:
                    consumer.seek(tp, found.offset)
                else:
                    await consumer.seek_to_end(tp)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._partitions = len(tps)
        self._task = asyncio.create_task(self._run(), name="asset-aggregator")

    def health(self) -> Health:
        """Live while its fetch loop runs (and before ``start()``: starting is not a failure);
        ready once it reads every partition of the risk topic (it assigns them itself at start,
        positioned at the snapshots still fresh)."""
        if (early := loop_health(self._stopped, self._task)) is not None:
            return early
        if not self._partitions:
            return Health(live=True, ready=False, detail="the risk topic has no partitions")
        return Health(live=True, ready=True)

    async def stop(self) -> None:
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def wait_records(self, n: int, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while self.records < n:
                self._changed.clear()
                await self._changed.wait()

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None  # started before this task
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                log.warning("risk topic fetch failed (%s), retrying", exc)
                await asyncio.sleep(0.5)
                continue
            for records in batches.values():
                for rec in records:
                    self._apply(rec.value)
            if batches:
                self._changed.set()

    def _apply(self, value: bytes | None) -> None:
        self.records += 1
        try:
            r = decode_risk(value or b"")
        except CodecError as exc:
            self._skipped.inc()
            log.debug("skipped a risk record: %s", exc)
            return
        key = (r.exchange, r.symbol)
        old = self.latest.get(key)
        if old is None or r.published_ms >= old.published_ms:
            self.latest[key] = r
