"""Alert rules inside the consumer, against the real broker: a rule fires on event time after its
``for`` duration, resolves with hysteresis, is suppressed while warming up, and every transition
lands on the alerts topic keyed by its fingerprint, in order."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
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
        consumer={"group_prefix": f"g{unique}", "risk_publish_s": 0.0, "alert_eval_s": 0.0,
                  "warmup_s": 0.0},
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
            # warming: nothing is evaluated, and the pending receive time is dropped
            svc._replay_until[TopicPartition(cfg.topic(X), 0)] = 1 << 60
            assert await svc.evaluate_alerts() == []
            del svc._replay_until[TopicPartition(cfg.topic(X), 0)]
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
    # held for 2 s of event time: fired at the first evaluation 2 s or more after the first one
    # that saw it (at t0 or, when the warming window swallowed that one, at t0 + 1 s)
    assert 2.0 <= f.t - T0_MS / 1000 <= 3.01 and f.started_t == f.t
    assert f.value > 5_000.0 and dict(f.labels) == {"team": "risk"}
    # the receive time of the events applied since the previous evaluation: a trade's (its
    # default receive time is its event time); the event clock then ran on with wall time for as
    # long as the evaluation took to come (well under a second on a loaded machine)
    assert f.received_ts in {T0_MS / 1000 + k for k in range(1, 7)}
    assert 0.0 <= f.t - f.received_ts < 0.5
    assert (r.status, r.severity, r.started_t) == ("resolved", "critical", f.t)
    assert 0.0 <= r.t - (T0_MS / 1000 + 300) < 0.5
    assert r.value < 500.0
    assert svc.alerts_sent == 2
    samples = scrape(registry)
    for status in ("firing", "resolved"):
        n = value(samples, "cascade_alerts_emitted_total", exchange=X,
                  rule="long-liquidations", status=status, severity="critical")  # fmt: skip
        assert n == 1.0
