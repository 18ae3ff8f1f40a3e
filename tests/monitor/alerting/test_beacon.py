"""The dispatcher's heartbeats to the sinks that ask for them (monitor/alerting/beacon.py), the
dead man's switch: the generic JSON sink gets signed heartbeats the reference receiver verifies
and keeps apart from alerts, numbered, with what the health watch hears; an Alertmanager sink
gets a firing Watchdog; sinks without ``heartbeat_s`` get none; a heartbeat the receiver refuses
is counted as failed and the next one follows."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.alerting.beacon import SinkBeacon
from monitor.alerting.receiver import WebhookReceiver
from monitor.alerting.sinks import resolve_sink
from monitor.core.errors import ConfigError
from monitor.core.metrics import DispatcherMetrics, counter_sums, for_registry
from monitor.core.sink_settings import sink_from_dict
from tests.monitor.alerting.helpers import KEY, Hit, Receiver

STATUS = {"components": {"producer": 2, "consumer": 2}, "health_alerts_firing": 1}


def _metrics() -> DispatcherMetrics:
    return for_registry(DispatcherMetrics, CollectorRegistry())


async def test_the_json_sink_gets_signed_numbered_heartbeats(
    session: aiohttp.ClientSession,
) -> None:
    async with WebhookReceiver(KEY.encode()) as rx:
        sinks = [resolve_sink(sink_from_dict(
            {"name": "hb", "kind": "json", "url": rx.url, "secret_env": "K", "heartbeat_s": 0.1},
            "s"), {"K": KEY})]  # fmt: skip
        metrics = _metrics()
        beacon = SinkBeacon(sinks, session, metrics, lambda: STATUS)
        async with beacon:
            got = await rx.wait_heartbeats(3, timeout_s=10)
        assert rx.rejected == 0 and rx.received == []  # verified, and not taken for alerts
        bodies = [g.alert for g in got]
        assert [b["sequence"] for b in bodies] == [1, 2, 3]
        for b, g in zip(bodies, got, strict=True):
            assert b["type"] == "heartbeat" and b["version"] == 1 and b["interval_s"] == 0.1
            assert b["health"] == STATUS and b["instance"] == beacon.instance
            assert g.event_id == b["id"] and g.headers["X-Cascade-Signature"].startswith("sha256=")
        assert len({b["id"] for b in bodies}) == 3
        # 10 heartbeats a second: they are due 0.1 s apart (a fixed schedule, not after each post)
        assert bodies[2]["t"] - bodies[0]["t"] == pytest.approx(0.2, abs=0.08)
        assert rx.heartbeat_silence_s(got[-1].arrived_ts) == pytest.approx(
            got[-1].arrived_ts - rx.last_heartbeat_ts
        )
        sent = counter_sums(metrics.sink_heartbeats, "outcome", sink="hb")
        assert sent["ok"] >= 3 and sent.get("failed", 0.0) == 0.0
        assert beacon.sent["hb"] >= 3


async def test_alertmanager_gets_a_watchdog_and_refusals_are_counted(
    session: aiohttp.ClientSession,
) -> None:
    async def refuse_first(r: Receiver, hit: Hit) -> web.StreamResponse:
        return web.Response(status=503 if len(r.hits) == 1 else 200)

    rx = await Receiver(respond=refuse_first).start()
    try:
        am = sink_from_dict({"name": "am", "kind": "alertmanager", "url": rx.url("/am"),
                             "receiver": "ops", "heartbeat_s": 0.1}, "s")  # fmt: skip
        quiet = sink_from_dict({"name": "q", "kind": "json", "url": rx.url("/q"),
                                "secret_env": "K"}, "s")  # fmt: skip
        metrics = _metrics()
        beacon = SinkBeacon([resolve_sink(am, {}), resolve_sink(quiet, {"K": KEY})], session,
                            metrics)  # fmt: skip
        assert [s.name for s in beacon.sinks] == ["am"]
        async with beacon:
            # one sink's heartbeats go one after another: when the third arrives, the first two
            # were answered and counted
            await rx.wait_for(lambda: len(rx.hits) >= 3)
        assert {h.path for h in rx.hits} == {"/am"}
        body = rx.answered("/am")[0].json
        (alert,) = body["alerts"]
        assert body["status"] == alert["status"] == "firing" and body["receiver"] == "ops"
        assert alert["labels"] == {"alertname": "Watchdog", "severity": "none",
                                   "category": "health"}  # fmt: skip
        assert alert["endsAt"] == "0001-01-01T00:00:00Z"
        sent = counter_sums(metrics.sink_heartbeats, "outcome", sink="am")
        assert sent["failed"] == 1.0 and sent["ok"] >= 1
    finally:
        await rx.stop()


def test_only_json_and_alertmanager_sinks_take_heartbeats() -> None:
    with pytest.raises(ConfigError, match="take heartbeats"):
        sink_from_dict({"name": "s", "kind": "slack", "url": "https://h/x", "heartbeat_s": 5}, "s")
    with pytest.raises(ConfigError, match=">= 0"):
        sink_from_dict(
            {
                "name": "j",
                "kind": "json",
                "url": "http://h/x",
                "secret_env": "K",
                "heartbeat_s": -1,
            },
            "s",
        )
    with pytest.raises(ConfigError, match="categories"):
        sink_from_dict(
            {"name": "j", "kind": "json", "url": "http://h/x", "secret_env": "K", "categories": []},
            "s",
        )
    assert sink_from_dict({"name": "j", "kind": "json", "url": "http://h/x", "secret_env": "K",
                           "categories": ["health"]}, "s").categories == ("health",)  # fmt: skip
