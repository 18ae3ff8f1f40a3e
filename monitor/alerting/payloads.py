"""The body each receiver kind expects for one alert transition, as a JSON-ready dict. Pure module
(the request around it, its headers and signature: ``monitor.alerting.http_policy``).

* ``json``: the whole ``AlertEvent`` as JSON plus ``version``, ``id`` (the event id, stable across
  redeliveries: receivers deduplicate on it) and ISO 8601 ``time``/``started``. Signed, see
  ``monitor.alerting.signing``.
* ``slack``: an incoming-webhook message: ``text`` (the notification fallback) and ``blocks``
  (header; section with the summary and fields exchange, symbol, severity, value, drivers, started;
  context with rule and fingerprint). Slack's limits: header text 150 chars, 10 fields of 2000.
* ``discord``: an execute-webhook message with one embed (title, description, color by severity,
  inline fields, ISO 8601 ``timestamp``, footer) and ``allowed_mentions`` empty so templated text
  cannot ping anyone. Limits: title 256, description 4096, 25 fields, field value 1024.
* ``pagerduty``: Events API v2. ``trigger`` with ``payload`` (summary <= 1024 chars, source,
  severity critical/warning, timestamp, component = symbol, group = exchange, class = metric,
  custom_details) or ``resolve``; ``dedup_key`` is the fingerprint, so an escalation updates the
  same PagerDuty alert and redeliveries are harmless. The routing key is the sink's secret.
* ``alertmanager``: the Alertmanager webhook body, ``version`` "4", one alert per message, grouped
  by (alertname, exchange, symbol), so receivers written for Alertmanager work unchanged.
  ``receiver`` and ``externalURL``/``generatorURL`` come from the sink's settings.

**Health alerts** (category ``health``, ``monitor.alerting.health``) use the same bodies: json
carries ``category``, Slack and Discord a Category field, PagerDuty ``custom_details.category``,
Alertmanager a ``category`` label (risk alerts carry ``risk`` there); their title names the
target (a venue's stream such as ``binance trade``, or a component) and their dashboard link
goes to the pipeline-health dashboard (uid ``PIPELINE_UID``) of the venue.

**Heartbeats** (``heartbeat_payload``, sent by ``monitor.alerting.beacon`` to the sinks that ask
for them): json ``{"version": 1, "type": "heartbeat", "id", "sequence", "t", "time",
"interval_s", "instance", "health": {...}}``, signed like an alert (a receiver pages when they
stop: a dead man's switch); Alertmanager a firing ``Watchdog`` alert (severity ``none``, as the
Prometheus Watchdog rule), so a receiver built for Alertmanager's heartbeat works unchanged.

Texts longer than a receiver's limit are cut, ending in "…". Times are RFC 3339 UTC with
milliseconds; a non-finite time is Alertmanager's "no end", ``0001-01-01T00:00:00Z``.

**Dashboard link.** With a Grafana base URL (``alerts.grafana_url``, or the sink's own
``grafana_url``), every body links to the pair drill-down dashboard (``deploy/grafana``, uid
``DRILLDOWN_UID``) with the alert's exchange and symbol as the dashboard variables and a window from
``LINK_BEFORE_S`` before the alert started to ``LINK_AFTER_S`` after the transition: json
``dashboard_url``; Slack a button in an ``actions`` block; Discord the embed's ``url`` (its title
becomes the link); PagerDuty ``links`` (``href``, ``text``) on trigger and resolve; Alertmanager the
annotation ``dashboard_url`` of the alert (and the common annotations). Without a base URL there is
no link and the bodies are as above.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

import orjson

from monitor.alerting.sinks import Sink
from monitor.core.alertrecord import AlertEvent

ZERO_TIME: Final = "0001-01-01T00:00:00Z"  # Alertmanager's "no end" for a firing alert
DISCORD_COLORS: Final = {"critical": 0xD0021B, "warning": 0xF5A623, "resolved": 0x2EB67D}
# The Grafana dashboard an alert links to: deploy/grafana/generate.py gives the drill-down this uid
# (Grafana redirects a stale slug to the current one, the uid is what identifies it).
DRILLDOWN_UID: Final = "cascade-pair"
DRILLDOWN_SLUG: Final = "cascade-pair-drill-down"
LINK_BEFORE_S: Final = 1800.0  # the linked window starts 30 min before the alert started ...
LINK_AFTER_S: Final = 900.0  # ... and ends 15 min after the transition
LINK_TEXT: Final = "Open the pair in Grafana"
PIPELINE_UID: Final = "cascade-pipeline"  # deploy/grafana: the pipeline-health dashboard
PIPELINE_SLUG: Final = "cascade-pipeline-health"
WATCHDOG: Final = "Watchdog"  # the Alertmanager heartbeat's alertname


def iso(t: float) -> str:
    """RFC 3339 / ISO 8601 UTC with milliseconds: ``2024-05-01T12:00:00.000Z``."""
    if not math.isfinite(t):
        return ZERO_TIME
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_id(alert: AlertEvent) -> str:
    """Stable id of one transition: the dispatcher's deduplication key, hashed."""
    raw = f"{alert.fingerprint}\0{alert.status}\0{alert.severity}\0{alert.started_t!r}"
    return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


def drivers_text(alert: AlertEvent) -> str:
    return ", ".join(f"{n} {w:.2f}" for n, w in alert.drivers) or "-"


def value_text(alert: AlertEvent) -> str:
    return f"{alert.metric} = {alert.value:.4g}"


def subject(alert: AlertEvent) -> str:
    """What the alert is about: ``exchange symbol`` (a health alert's exchange may be empty)."""
    return " ".join(p for p in (alert.exchange, alert.symbol) if p)


def title(alert: AlertEvent) -> str:
    if alert.status == "resolved":
        return f"RESOLVED {alert.rule} on {subject(alert)} (was {alert.severity})"
    return f"{alert.severity.upper()} {alert.rule} on {subject(alert)}"


def _cut(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def dashboard_url(alert: AlertEvent, grafana_url: str | None) -> str | None:
    """The drill-down dashboard of the alert's pair around the alert, under ``grafana_url`` (None
    without one): ``<grafana_url>/d/<uid>/<slug>?var-exchange=..&var-symbol=..&from=..&to=..``,
    ``from``/``to`` in epoch milliseconds (left out when the alert's times are not finite)."""
    if not grafana_url:
        return None
    base = grafana_url.rstrip("/")
    if alert.category == "health":  # the pipeline dashboard, of the venue when there is one
        params: dict[str, str | int] = {"var-exchange": alert.exchange} if alert.exchange else {}
        params.update(_window(alert))
        return f"{base}/d/{PIPELINE_UID}/{PIPELINE_SLUG}" + (
            f"?{urlencode(params)}" if params else ""
        )
    params = {"var-exchange": alert.exchange, "var-symbol": alert.symbol}
    params.update(_window(alert))
    return f"{base}/d/{DRILLDOWN_UID}/{DRILLDOWN_SLUG}?{urlencode(params)}"


def _window(alert: AlertEvent) -> dict[str, int]:
    """``from``/``to`` in epoch ms around the alert (none when its times are not finite)."""
    start = alert.started_t if math.isfinite(alert.started_t) else alert.t
    if not (math.isfinite(start) and math.isfinite(alert.t)):
        return {}
    return {"from": math.floor((start - LINK_BEFORE_S) * 1000),
            "to": math.ceil((alert.t + LINK_AFTER_S) * 1000)}  # fmt: skip


def json_payload(alert: AlertEvent, link: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"version": 1, "id": event_id(alert)}
    d.update({f: getattr(alert, f) for f in alert.__slots__})
    d["labels"] = dict(alert.labels)
    d["drivers"] = [[n, w] for n, w in alert.drivers]
    d["time"], d["started"] = iso(alert.t), iso(alert.started_t)
    if link is not None:
        d["dashboard_url"] = link
    return d


def _slack_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fields(alert: AlertEvent) -> tuple[tuple[str, str], ...]:
    return (("Exchange", alert.exchange or "-"), ("Symbol", alert.symbol),
            ("Severity", alert.severity), ("Category", alert.category),
            ("Value", value_text(alert)), ("Drivers", drivers_text(alert)),
            ("Started", iso(alert.started_t)))  # fmt: skip


def slack_payload(alert: AlertEvent, link: str | None = None) -> dict[str, Any]:
    fields = _fields(alert)
    summary = _slack_escape(alert.summary)
    body: dict[str, Any] = {
        "text": _cut(f"[{alert.status.upper()}] {alert.summary}", 3000),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _cut(title(alert), 150)}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _cut(summary, 3000)},
                "fields": [
                    {"type": "mrkdwn", "text": _cut(f"*{k}*\n{_slack_escape(v)}", 2000)}
                    for k, v in fields
                ],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"rule {_slack_escape(alert.rule)} · "
                        f"fingerprint {alert.fingerprint}",
                    }
                ],
            },
        ],
    }
    if link is not None:  # a link button (Slack: url up to 3000 characters)
        body["blocks"].append({"type": "actions", "elements": [{
            "type": "button", "text": {"type": "plain_text", "text": LINK_TEXT},
            "url": link, "action_id": "grafana"}]})  # fmt: skip
    return body


def discord_payload(alert: AlertEvent, link: str | None = None) -> dict[str, Any]:
    color = DISCORD_COLORS["resolved" if alert.status == "resolved" else alert.severity]
    fields = _fields(alert)
    embed: dict[str, Any] = {
        "title": _cut(title(alert), 256),
        "description": _cut(alert.summary, 4096),
        "color": color,
        "fields": [{"name": k, "value": _cut(v, 1024), "inline": True} for k, v in fields],
        "timestamp": iso(alert.t),
        "footer": {"text": f"rule {alert.rule} · fingerprint {alert.fingerprint}"},
    }
    if link is not None:
        embed["url"] = link  # the title links there
    return {"allowed_mentions": {"parse": []}, "embeds": [embed]}


def pagerduty_payload(
    alert: AlertEvent, routing_key: str, source: str | None, link: str | None = None
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "routing_key": routing_key,
        "dedup_key": alert.fingerprint,
    }
    if link is not None:
        base["links"] = [{"href": link, "text": LINK_TEXT}]
    if alert.status == "resolved":
        return {**base, "event_action": "resolve"}
    return {
        **base,
        "event_action": "trigger",
        "client": "cascade-monitor",
        "payload": {
            "summary": _cut(alert.summary, 1024),
            "source": source or ":".join(p for p in (alert.exchange, alert.symbol) if p),
            "severity": alert.severity,  # PagerDuty's scale has both "critical" and "warning"
            "timestamp": iso(alert.t),
            "component": alert.symbol,
            "group": alert.exchange or alert.category,
            "class": alert.metric,
            "custom_details": {
                "category": alert.category,
                "rule": alert.rule,
                "metric": alert.metric,
                "value": alert.value,
                "drivers": dict(alert.drivers),
                "labels": dict(alert.labels),
                "started": iso(alert.started_t),
                "fingerprint": alert.fingerprint,
                "event_id": event_id(alert),
            },
        },
    }


def _label_set(labels: Mapping[str, str]) -> str:
    """Alertmanager's label-set string: ``{a="x", b="y"}``, values quoted and escaped."""
    inner = ", ".join(f"{k}={orjson.dumps(v).decode()}" for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def alertmanager_payload(
    alert: AlertEvent, receiver: str, external_url: str | None, link: str | None = None
) -> dict[str, Any]:
    labels = {**alert.labels, "alertname": alert.rule, "severity": alert.severity,
              "category": alert.category, "exchange": alert.exchange, "symbol": alert.symbol,
              "metric": alert.metric}  # fmt: skip
    annotations = {
        "summary": alert.summary,
        "description": f"{value_text(alert)}; drivers: {drivers_text(alert)}",
        "value": repr(alert.value),
        "drivers": drivers_text(alert),
    }
    if link is not None:
        annotations["dashboard_url"] = link
    group = {k: labels[k] for k in ("alertname", "exchange", "symbol")}
    return {
        "version": "4",
        "groupKey": f"{{}}:{_label_set(group)}",
        "truncatedAlerts": 0,
        "status": alert.status,
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url or "",
        "alerts": [
            {
                "status": alert.status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": iso(alert.started_t),
                "endsAt": iso(alert.t) if alert.status == "resolved" else ZERO_TIME,
                "generatorURL": external_url or "",
                "fingerprint": alert.fingerprint,
            }
        ],
    }


def payload(sink: Sink, alert: AlertEvent) -> dict[str, Any]:
    """The body of ``alert`` for ``sink``'s kind (PagerDuty's carries the sink's routing key),
    linking to the pair's dashboard when the sink has a Grafana URL."""
    c = sink.config
    link = dashboard_url(alert, c.grafana_url)
    if c.kind == "json":
        return json_payload(alert, link)
    if c.kind == "slack":
        return slack_payload(alert, link)
    if c.kind == "discord":
        return discord_payload(alert, link)
    if c.kind == "pagerduty":
        assert sink.key is not None
        return pagerduty_payload(alert, sink.key.reveal(), c.source, link)
    return alertmanager_payload(alert, c.receiver or c.name, c.external_url, link)


def heartbeat_payload(
    sink: Sink, seq: int, t: float, interval_s: float, instance: str, started_t: float,
    health: Mapping[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The body of the ``seq``-th heartbeat to ``sink`` (json or alertmanager) at time ``t``."""
    beat_id = heartbeat_id(instance, seq)
    if sink.kind == "alertmanager":
        c = sink.config
        labels = {"alertname": WATCHDOG, "severity": "none", "category": "health"}
        annotations = {"summary": "cascade-monitor's alert dispatcher is alive",
                       "description": f"heartbeat {seq}, every {interval_s:g} s; page when they "
                       "stop", "health": orjson.dumps(dict(health)).decode()}  # fmt: skip
        return {
            "version": "4", "groupKey": f"{{}}:{_label_set({'alertname': WATCHDOG})}",
            "truncatedAlerts": 0, "status": "firing", "receiver": c.receiver or c.name,
            "groupLabels": {"alertname": WATCHDOG}, "commonLabels": labels,
            "commonAnnotations": annotations, "externalURL": c.external_url or "",
            "alerts": [{"status": "firing", "labels": labels, "annotations": annotations,
                        "startsAt": iso(started_t), "endsAt": ZERO_TIME,
                        "generatorURL": c.external_url or "", "fingerprint": beat_id[:16]}],
        }  # fmt: skip
    return {"version": 1, "type": "heartbeat", "id": beat_id, "sequence": seq, "t": t,
            "time": iso(t), "interval_s": interval_s, "instance": instance,
            "health": dict(health)}  # fmt: skip


def heartbeat_id(instance: str, seq: int) -> str:
    """A heartbeat's id (the ``X-Cascade-Event-Id``): unique per dispatcher run and sequence."""
    return hashlib.blake2b(f"heartbeat\0{instance}\0{seq}".encode(), digest_size=16).hexdigest()
