"""Each receiver kind's body (monitor.alerting.payloads), field by field, as a real local
receiver gets it from the courier: json (every alert field, the event id), Slack blocks (escaped),
Discord embeds (colour by severity), PagerDuty Events API v2 (trigger, resolve, the default
endpoint) and the Alertmanager webhook, version 4."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from monitor.alerting.sinks import resolve_sink
from monitor.core.alertrecord import fingerprint
from monitor.core.sink_settings import sink_from_dict
from tests.monitor.alerting.helpers import (
    ROUTING,
    T0,
    T0_ISO,
    TOKEN_PATH,
    Receiver,
    courier,
    event_id_ref,
    mk,
    sink_cfg,
)


async def test_json_payload_has_every_alert_field(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    c = courier(session, sink_cfg("json", receiver.url()))
    a = mk(received_ts=T0 + 0.25)
    got = await c.deliver(a)
    assert (got.ok, got.attempts, got.status) == (True, 1, 200)
    (hit,) = receiver.hits
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["X-Cascade-Event-Id"] == event_id_ref(a)
    assert hit.json == {
        "version": 1, "id": event_id_ref(a), "fingerprint": fingerprint("cascade-risk", "bybit",
        "BTC-USDT-PERP"), "rule": "cascade-risk", "status": "firing", "severity": "critical",
        "exchange": "bybit", "symbol": "BTC-USDT-PERP", "metric": "score", "value": 0.8734,
        "t": T0, "started_t": T0, "summary": "critical: cascade risk 0.87 on bybit BTC-USDT-PERP",
        "labels": {"team": "risk"}, "drivers": [["branching", 0.42], ["vpin", 0.3]],
        "received_ts": T0 + 0.25, "category": "risk", "time": T0_ISO, "started": T0_ISO,
    }  # fmt: skip
    await c.deliver(mk())  # NaN (no receive time) travels as null
    assert receiver.hits[1].json["received_ts"] is None


async def test_slack_payload(receiver: Receiver, session: aiohttp.ClientSession) -> None:
    c = courier(session, sink_cfg("slack", receiver.url(TOKEN_PATH)))
    a = mk(symbol="BTC<&>-PERP")
    assert (await c.deliver(a)).ok
    body = receiver.hits[0].json
    assert receiver.hits[0].path == TOKEN_PATH
    assert "X-Cascade-Signature" not in receiver.hits[0].headers
    assert body["text"] == "[FIRING] critical: cascade risk 0.87 on bybit BTC<&>-PERP"
    header, section, context = body["blocks"]
    assert header == {"type": "header", "text": {
        "type": "plain_text", "text": "CRITICAL cascade-risk on bybit BTC<&>-PERP"}}  # fmt: skip
    assert section["type"] == "section"
    assert section["text"] == {"type": "mrkdwn",
                               "text": "critical: cascade risk 0.87 on bybit BTC&lt;&amp;&gt;-PERP"}  # fmt: skip
    assert section["fields"] == [
        {"type": "mrkdwn", "text": "*Exchange*\nbybit"},
        {"type": "mrkdwn", "text": "*Symbol*\nBTC&lt;&amp;&gt;-PERP"},
        {"type": "mrkdwn", "text": "*Severity*\ncritical"},
        {"type": "mrkdwn", "text": "*Category*\nrisk"},
        {"type": "mrkdwn", "text": "*Value*\nscore = 0.8734"},
        {"type": "mrkdwn", "text": "*Drivers*\nbranching 0.42, vpin 0.30"},
        {"type": "mrkdwn", "text": f"*Started*\n{T0_ISO}"},
    ]
    assert context == {"type": "context", "elements": [{"type": "mrkdwn",
        "text": f"rule cascade-risk · fingerprint {a.fingerprint}"}]}  # fmt: skip
    assert (await c.deliver(mk(status="resolved", t=T0 + 60))).ok
    resolved = receiver.hits[1].json
    assert resolved["blocks"][0]["text"]["text"] == (
        "RESOLVED cascade-risk on bybit BTC-USDT-PERP (was critical)"
    )
    assert resolved["text"].startswith("[RESOLVED] ")


async def test_discord_payload(receiver: Receiver, session: aiohttp.ClientSession) -> None:
    c = courier(session, sink_cfg("discord", receiver.url("/api/webhooks/1/tok")))
    a = mk(severity="warning", value=0.65)
    assert (await c.deliver(a)).ok
    assert (await c.deliver(mk(status="resolved", severity="warning", t=T0 + 90))).ok
    assert (await c.deliver(mk())).ok
    first, resolved, critical = (h.json for h in receiver.hits)
    assert first["allowed_mentions"] == {"parse": []}
    (embed,) = first["embeds"]
    assert embed == {
        "title": "WARNING cascade-risk on bybit BTC-USDT-PERP",
        "description": "warning: cascade risk 0.65 on bybit BTC-USDT-PERP",
        "color": 0xF5A623,
        "fields": [
            {"name": "Exchange", "value": "bybit", "inline": True},
            {"name": "Symbol", "value": "BTC-USDT-PERP", "inline": True},
            {"name": "Severity", "value": "warning", "inline": True},
            {"name": "Category", "value": "risk", "inline": True},
            {"name": "Value", "value": "score = 0.65", "inline": True},
            {"name": "Drivers", "value": "branching 0.42, vpin 0.30", "inline": True},
            {"name": "Started", "value": T0_ISO, "inline": True},
        ],
        "timestamp": T0_ISO,
        "footer": {"text": f"rule cascade-risk · fingerprint {a.fingerprint}"},
    }
    assert resolved["embeds"][0]["color"] == 0x2EB67D
    assert resolved["embeds"][0]["timestamp"] == "2023-11-14T22:16:30.000Z"
    assert critical["embeds"][0]["color"] == 0xD0021B


async def test_pagerduty_payload_trigger_and_resolve(
    receiver: Receiver, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    key_file = tmp_path / "routing"
    key_file.write_text(ROUTING + "\n")
    c = courier(session, sink_cfg("pagerduty", receiver.url("/v2/enqueue"),
                                  secret_file=str(key_file)))  # fmt: skip
    a = mk()
    assert (await c.deliver(a)).ok
    assert (await c.deliver(mk(status="resolved", t=T0 + 60))).ok
    trigger, resolve = (h.json for h in receiver.hits)
    assert trigger == {
        "routing_key": ROUTING, "event_action": "trigger", "dedup_key": a.fingerprint,
        "client": "cascade-monitor",
        "payload": {
            "summary": "critical: cascade risk 0.87 on bybit BTC-USDT-PERP",
            "source": "bybit:BTC-USDT-PERP", "severity": "critical", "timestamp": T0_ISO,
            "component": "BTC-USDT-PERP", "group": "bybit", "class": "score",
            "custom_details": {
                "category": "risk", "rule": "cascade-risk", "metric": "score", "value": 0.8734,
                "drivers": {"branching": 0.42, "vpin": 0.3}, "labels": {"team": "risk"},
                "started": T0_ISO, "fingerprint": a.fingerprint, "event_id": event_id_ref(a),
            },
        },
    }  # fmt: skip
    assert resolve == {"routing_key": ROUTING, "event_action": "resolve",
                       "dedup_key": a.fingerprint}  # fmt: skip
    # the default endpoint is PagerDuty's; ``source`` overrides
    pd = sink_from_dict({"name": "pd", "kind": "pagerduty", "secret_env": "K", "source": "h"}, "x")
    assert (
        resolve_sink(pd, {"K": ROUTING}).url.reveal() == "https://events.pagerduty.com/v2/enqueue"
    )


async def test_alertmanager_webhook_v4(receiver: Receiver, session: aiohttp.ClientSession) -> None:
    c = courier(session, sink_cfg("alertmanager", receiver.url("/am"), name="am",
                                  receiver="ops", external_url="http://grafana.local"))  # fmt: skip
    a = mk()
    assert (await c.deliver(a)).ok
    assert (await c.deliver(mk(status="resolved", t=T0 + 60))).ok
    firing, resolved = (h.json for h in receiver.hits)
    labels = {"alertname": "cascade-risk", "severity": "critical", "category": "risk",
              "exchange": "bybit", "symbol": "BTC-USDT-PERP", "metric": "score",
              "team": "risk"}  # fmt: skip
    annotations = {
        "summary": "critical: cascade risk 0.87 on bybit BTC-USDT-PERP",
        "description": "score = 0.8734; drivers: branching 0.42, vpin 0.30",
        "value": "0.8734",
        "drivers": "branching 0.42, vpin 0.30",
    }
    assert firing == {
        "version": "4",
        "groupKey": '{}:{alertname="cascade-risk", exchange="bybit", symbol="BTC-USDT-PERP"}',
        "truncatedAlerts": 0, "status": "firing", "receiver": "ops",
        "groupLabels": {"alertname": "cascade-risk", "exchange": "bybit",
                        "symbol": "BTC-USDT-PERP"},
        "commonLabels": labels, "commonAnnotations": annotations,
        "externalURL": "http://grafana.local",
        "alerts": [{"status": "firing", "labels": labels, "annotations": annotations,
                    "startsAt": T0_ISO, "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://grafana.local", "fingerprint": a.fingerprint}],
    }  # fmt: skip
    assert resolved["status"] == resolved["alerts"][0]["status"] == "resolved"
    assert resolved["alerts"][0]["startsAt"] == T0_ISO
    assert resolved["alerts"][0]["endsAt"] == "2023-11-14T22:16:00.000Z"
    assert resolved["groupKey"] == firing["groupKey"]
