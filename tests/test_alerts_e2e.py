"""The whole alert path on a real broker: simulator crash -> producers -> Kafka -> consumers (rules
on event time) -> alerts topic -> dispatcher -> signed JSON webhook at a local receiver."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pytest
from prometheus_client import CollectorRegistry

from monitor.alerting.receiver import WebhookReceiver
from monitor.app.pipeline import Pipeline
from monitor.core.config import load
from monitor.simulator.scenario import crash_scenario
from monitor.simulator.server import ExchangeSimulator

pytestmark = pytest.mark.integration

EXCHANGES = ("binance", "bybit")
KEY_ENV = "E2E_WEBHOOK_KEY"
# what a user writes in the TOML: [[alerts.rules]] and [[alerts.sinks]]
RULE = {
    "name": "long-liquidation-surge", "metric": "liq_rate_long_60s", "exchange": "bybit",
    "warning": 10_000.0, "critical": 30_000.0, "resolve": 5_000.0, "for_s": 2.0,
    "cooldown_s": 600.0, "labels": {"desk": "e2e"},
}  # fmt: skip


def independent_signature(key: bytes, timestamp: str, body: bytes) -> str:
    """The receiver's side of the scheme, written from the README, not from the sink's code."""
    return "sha256=" + hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


async def test_simulated_crash_fires_a_critical_alert_at_a_signed_webhook(
    kafka_bootstrap: str, unique: str
) -> None:
    key = secrets.token_hex(16)
    scenario = crash_scenario(duration_s=60.0, seed=7)
    symbols = sorted({e.venue_symbol for e in scenario.events})
    async with (
        WebhookReceiver(key.encode()) as receiver,
        ExchangeSimulator(scenario, speed=2.0) as sim,
    ):
        cfg = load(environ={}).with_overrides(
            kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"e2e{unique}",
                   "partitions": 2},
            consumer={"group_prefix": f"g{unique}", "risk_publish_s": 0.0},
            exchanges={x: {"ws_url": sim.url(x), "rest_url": sim.rest_url(x),
                           "symbols": symbols} for x in EXCHANGES},
            alerts={"rules": [RULE],
                    "sinks": [{"name": "desk", "kind": "json", "url": receiver.url,
                               "secret_env": KEY_ENV, "backoff_initial_s": 0.1}]},
        )  # fmt: skip
        registry = CollectorRegistry()
        async with Pipeline(cfg, EXCHANGES, registry, environ={KEY_ENV: key}) as pipeline:
            sim.play()
            await sim.wait_finished()
            await pipeline.drain()
            sent = await pipeline.flush_alerts()
            got = await receiver.wait_for(sent, 30.0)
    assert receiver.rejected == 0 and receiver.duplicates == 0
    critical = [g for g in got if g.alert["severity"] == "critical"]
    assert critical, [g.alert["summary"] for g in got]
    for g in got:
        ts = g.headers["X-Cascade-Timestamp"]
        assert g.headers["X-Cascade-Signature"] == independent_signature(key.encode(), ts, g.body)
        a = g.alert
        assert a["rule"] == "long-liquidation-surge" and a["exchange"] == "bybit"
        assert a["labels"] == {"desk": "e2e"} and a["status"] == "firing"
        level = 30_000.0 if a["severity"] == "critical" else 10_000.0
        assert a["value"] >= level
        # the trigger was received before the webhook arrived, and not long before
        assert 0.0 < g.arrived_ts - a["received_ts"] < 5.0
    # one firing per pair and severity: no flood, at most a warning then its escalation
    keys = [(g.alert["symbol"], g.alert["severity"]) for g in got]
    assert len(keys) == len(set(keys))
