"""Alert rules inside the consumer, against the real broker: a rule fires on event time after its
``for`` duration, at tick closes (``consumers.engine``), resolves with hysteresis while the pair
is quiet, and every transition lands on the alerts topic keyed by its fingerprint, in order."""

from __future__ import annotations

import math

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry

from consumers.service import ConsumerService
from monitor.core.alertrecord import AlertEvent, decode_alert, fingerprint
from monitor.core.codec import encode_batch
from monitor.core.config import Config, load
from monitor.core.schema import Event
from tests.consumers.consumer_refs import liq, scrape, trade, value

pytestmark = pytest.mark.integration

X = "binance"
T0_MS = 1_700_000_000_000
RULE = {
    "name": "long-liquidations", "metric": "liq_rate_long_60s", "symbol": "BTC-*",
    "warning": 1_000.0, "critical": 5_000.0, "resolve": 500.0, "for_s": 2.0, "cooldown_s": 60.0,
    "labels": {"team": "risk"},
}  # fmt: skip


def _cfg(bootstrap: str, unique: str) -> Config:
    return load(environ={}).with_overrides(
        kafka={"bootstrap_servers": bootstrap, "topic_prefix": f"t{unique}", "partitions": 1},
        consumer={"group_prefix": f"g{unique}", "risk_publish_s": 0.0, "alert_eval_s": 0.1,
                  "alert_lateness_s": 0.2, "alert_quiet_s": 1.0, "warmup_s": 0.0},
        alerts={"rules": [RULE]},
    )  # fmt: skip


async def test_rule_fires_after_for_duration_resolves_and_is_keyed_by_fingerprint(
    kafka_bootstrap: str, unique: str
) -> None:
    cfg = _cfg(kafka_bootstrap, unique)
    registry = CollectorRegistry()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    alerts = AIOKafkaConsumer(
        cfg.alerts_topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    sent = 0

    async def send(svc: ConsumerService, events: list[Event]) -> None:
        nonlocal sent
        await producer.send_and_wait(
            cfg.topic(X), encode_batch(events), key=events[0].symbol.encode()
        )
        sent += len(events)
        await svc.wait_processed(sent, 30.0)

    async with ConsumerService(cfg, X, registry) as svc:
        await producer.start()
        await alerts.start()
        try:
            await svc.wait_live(30.0)
            # $600k of longs on BTC (60 s rate ~ $10k/s, past critical); ETH is out of scope
            await send(svc, [liq("BTC-USDT-PERP", "long", 600_000.0, T0_MS)])
            await send(svc, [liq("ETH-USDT-PERP", "long", 900_000.0, T0_MS)])
            for k in range(1, 7):  # event time moves on with trades, 1 s apart
                await send(svc, [trade("BTC-USDT-PERP", "sell", 100.0, 10.0, T0_MS + 1000 * k)])
            fired = await alerts.getone()
            # five minutes later the decayed rate is below the resolve level
            await send(svc, [trade("BTC-USDT-PERP", "sell", 100.0, 10.0, T0_MS + 300_000)])
            resolved = await alerts.getone()
        finally:
            await alerts.stop()
            await producer.stop()
    fp = fingerprint("long-liquidations", X, "BTC-USDT-PERP")
    assert fired.key == resolved.key == fp.encode()
    f, r = decode_alert(fired.value), decode_alert(resolved.value)
    assert isinstance(f, AlertEvent)
    assert (f.status, f.severity, f.rule, f.symbol, f.fingerprint) == (
        "firing", "critical", "long-liquidations", "BTC-USDT-PERP", fp,
    )  # fmt: skip
    # first seen at the close of its tick (t0 + 0.1 s), held for 2 s of event time: fired at the
    # close of the trade tick that ends at t0 + 2.1 s (event time, whatever the wall clock did)
    t0 = T0_MS / 1000
    assert f.t == pytest.approx(t0 + 2.1) and f.started_t == f.t
    assert f.value > 5_000.0 and dict(f.labels) == {"team": "risk"}
    # the earliest receive time of the events applied at that close: the trade at t0 + 2 s (its
    # default receive time is its event time)
    assert f.received_ts == pytest.approx(t0 + 2.0)
    # the 60 s rate of $600k falls below 500 USD/s 60 ln(20) = 179.7 s after t0; the pair is
    # evaluated every 1 s of event time from its last close (t0 + 6.1 s) while the alert fires
    assert (r.status, r.severity, r.started_t) == ("resolved", "critical", f.t)
    assert r.t == pytest.approx(t0 + 6.1 + math.ceil(60 * math.log(20) - 6.1))
    assert r.value < 500.0
    assert svc.alerts_sent == 2
    samples = scrape(registry)
    for status in ("firing", "resolved"):
        n = value(samples, "cascade_alerts_emitted_total", exchange=X,
                  rule="long-liquidations", status=status, severity="critical")  # fmt: skip
        assert n == 1.0
