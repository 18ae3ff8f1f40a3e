"""Webhook sinks: configuration, the payload of each receiver kind, request signing and the reading
of a receiver's answer. Pure module: the HTTP delivery loop is in ``monitor.alerting.courier``.

Configuration, one ``[[alerts.sinks]]`` table per receiver::

    [[alerts.sinks]]
    name = "ops-slack"               # [A-Za-z0-9_.-]+, unique; the ``sink`` metric label
    kind = "slack"                   # json | slack | discord | pagerduty | alertmanager
    url_env = "SLACK_WEBHOOK_URL"    # or url_file = "/run/secrets/slack", or url = "http://..."
    min_severity = "critical"        # warning (default) | critical
    timeout_s = 10.0                 # per request
    concurrency = 4                  # requests in flight to this sink
    retry_budget_s = 900.0           # keep retrying one alert this long, then dead-letter it
    max_attempts = 0                 # 0: no cap besides the budget
    backoff_initial_s = 1.0          # exponential backoff, doubled per failure ...
    backoff_max_s = 60.0             # ... up to this,
    jitter = 0.5                     # ... each delay reduced by a random fraction up to this

    [[alerts.sinks]]
    name = "audit"
    kind = "json"
    url = "https://alerts.example.com/cascade"
    secret_env = "CASCADE_WEBHOOK_KEY"   # signing key (json) / routing key (pagerduty)

Secrets (webhook URLs with tokens, signing keys, routing keys) never go in the file: ``secret``,
``routing_key`` and the like are refused; ``secret_env``/``secret_file`` and ``url_env``/``url_file``
name where they are, read when the dispatcher starts (``resolve_sink``). A literal ``url`` is for
endpoints without a token; it is still shown only as ``scheme://host/***``.

Kinds and their extra keys:

* ``json``: the whole ``AlertEvent`` as JSON plus ``version``, ``id`` (the event id, stable across
  redeliveries: receivers deduplicate on it) and ISO 8601 ``time``/``started``. Signed, see
  ``sign``. Requires ``secret_env``/``secret_file`` (the signing key).
* ``slack``: an incoming-webhook message: ``text`` (the notification fallback) and ``blocks``
  (header; section with the summary and fields exchange, symbol, severity, value, drivers, started;
  context with rule and fingerprint). Slack's limits: header text 150 chars, 10 fields of 2000.
* ``discord``: an execute-webhook message with one embed (title, description, color by severity,
  inline fields, ISO 8601 ``timestamp``, footer) and ``allowed_mentions`` empty so templated text
  cannot ping anyone. Limits: title 256, description 4096, 25 fields, field value 1024.
* ``pagerduty``: Events API v2. ``trigger`` with ``payload`` (summary <= 1024 chars, source,
  severity critical/warning, timestamp, component = symbol, group = exchange, class = metric,
  custom_details) or ``resolve``; ``dedup_key`` is the fingerprint, so an escalation updates the
  same PagerDuty alert and redeliveries are harmless. Requires ``secret_env``/``secret_file`` (the
  routing key). ``url`` defaults to https://events.pagerduty.com/v2/enqueue; optional ``source``
  (default ``<exchange>:<symbol>``).
* ``alertmanager``: the Alertmanager webhook body, ``version`` "4", one alert per message, grouped
  by (alertname, exchange, symbol), so receivers written for Alertmanager work unchanged. Optional
  ``receiver`` (default: the sink name) and ``external_url`` (``externalURL`` and
  ``generatorURL``).

Signature of ``json`` requests (receivers verify it and reject replays)::

    X-Cascade-Timestamp: <unix seconds, the time of this attempt>
    X-Cascade-Signature: sha256=<hex HMAC-SHA256(key, "<timestamp>.<raw body>")>
    X-Cascade-Event-Id:  <the event id, also in the body>

A receiver recomputes the HMAC over the timestamp header, a ".", and the raw body bytes exactly as
received, compares in constant time, and rejects a timestamp older than its tolerance (say 300 s;
each retry is signed afresh). Deduplicate on the event id: delivery is at-least-once.

Answers: 2xx is taken; 408, 429 and 5xx (and network errors, timeouts) are retried after
``Retry-After`` (seconds or an HTTP-date) or, on a 429 whose JSON body has ``retry_after``
(Discord, in seconds), after that; else after the backoff. Any other status is final: the alert
is dead-lettered at once.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import orjson

from monitor.alerting.secrets import Secret, read_secret, url_secret
from monitor.core.alert_rules import SEVERITIES
from monitor.core.alertrecord import AlertEvent
from monitor.core.errors import ConfigError
from monitor.core.sink_settings import SECRET_KINDS, SinkConfig

SEVERITY_RANK: Final = {s: i for i, s in enumerate(SEVERITIES)}  # warning < critical
PAGERDUTY_URL: Final = "https://events.pagerduty.com/v2/enqueue"
USER_AGENT: Final = "cascade-monitor/0.1"
ZERO_TIME: Final = "0001-01-01T00:00:00Z"  # Alertmanager's "no end" for a firing alert
SIGNATURE_HEADER: Final = "X-Cascade-Signature"
TIMESTAMP_HEADER: Final = "X-Cascade-Timestamp"
EVENT_ID_HEADER: Final = "X-Cascade-Event-Id"

# ---- resolved sinks ---------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Sink:
    """A sink with its secrets read: what the dispatcher delivers to."""

    config: SinkConfig
    url: Secret
    key: Secret | None = None  # json: signing key; pagerduty: routing key

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def kind(self) -> str:
        return self.config.kind

    def secrets(self) -> tuple[Secret, ...]:
        return (self.url,) if self.key is None else (self.url, self.key)

    def __repr__(self) -> str:
        return f"Sink({self.name!r}, kind={self.kind!r}, url={self.url!r}, key={self.key!r})"

    __str__ = __repr__


def resolve_sink(cfg: SinkConfig, environ: Mapping[str, str]) -> Sink:
    """Read the sink's URL and key from the environment / files (ConfigError naming the key)."""
    where = f"alerts.sinks[{cfg.name}]"
    if cfg.url is not None:
        url = cfg.url
    elif cfg.url_env is not None or cfg.url_file is not None:
        url = read_secret(f"{where}.url", cfg.url_env, cfg.url_file, environ, "webhook URL")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.url: the webhook URL must be http:// or https://")
    else:
        url = PAGERDUTY_URL
    key = None
    if cfg.kind in SECRET_KINDS:
        what = SECRET_KINDS[cfg.kind]
        key = Secret(read_secret(f"{where}.secret", cfg.secret_env, cfg.secret_file, environ, what))
    return Sink(cfg, url_secret(url), key)


def severity_passes(sink: SinkConfig, severity: str) -> bool:
    return SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK[sink.min_severity]


# ---- payloads ---------------------------------------------------------------------------------


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


def title(alert: AlertEvent) -> str:
    if alert.status == "resolved":
        return f"RESOLVED {alert.rule} on {alert.exchange} {alert.symbol} (was {alert.severity})"
    return f"{alert.severity.upper()} {alert.rule} on {alert.exchange} {alert.symbol}"


def _cut(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def json_payload(alert: AlertEvent) -> dict[str, Any]:
    d: dict[str, Any] = {"version": 1, "id": event_id(alert)}
    d.update({f: getattr(alert, f) for f in alert.__slots__})
    d["labels"] = dict(alert.labels)
    d["drivers"] = [[n, w] for n, w in alert.drivers]
    d["time"], d["started"] = iso(alert.t), iso(alert.started_t)
    return d


def _slack_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: AlertEvent) -> dict[str, Any]:
    fields = (("Exchange", alert.exchange), ("Symbol", alert.symbol),
              ("Severity", alert.severity), ("Value", value_text(alert)),
              ("Drivers", drivers_text(alert)), ("Started", iso(alert.started_t)))  # fmt: skip
    summary = _slack_escape(alert.summary)
    return {
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


DISCORD_COLORS: Final = {"critical": 0xD0021B, "warning": 0xF5A623, "resolved": 0x2EB67D}


def discord_payload(alert: AlertEvent) -> dict[str, Any]:
    color = DISCORD_COLORS["resolved" if alert.status == "resolved" else alert.severity]
    fields = (("Exchange", alert.exchange), ("Symbol", alert.symbol),
              ("Severity", alert.severity), ("Value", value_text(alert)),
              ("Drivers", drivers_text(alert)), ("Started", iso(alert.started_t)))  # fmt: skip
    return {
        "allowed_mentions": {"parse": []},
        "embeds": [
            {
                "title": _cut(title(alert), 256),
                "description": _cut(alert.summary, 4096),
                "color": color,
                "fields": [{"name": k, "value": _cut(v, 1024), "inline": True} for k, v in fields],
                "timestamp": iso(alert.t),
                "footer": {"text": f"rule {alert.rule} · fingerprint {alert.fingerprint}"},
            }
        ],
    }


def pagerduty_payload(alert: AlertEvent, routing_key: str, source: str | None) -> dict[str, Any]:
    base: dict[str, Any] = {
        "routing_key": routing_key,
        "dedup_key": alert.fingerprint,
    }
    if alert.status == "resolved":
        return {**base, "event_action": "resolve"}
    return {
        **base,
        "event_action": "trigger",
        "client": "cascade-monitor",
        "payload": {
            "summary": _cut(alert.summary, 1024),
            "source": source or f"{alert.exchange}:{alert.symbol}",
            "severity": alert.severity,  # PagerDuty's scale has both "critical" and "warning"
            "timestamp": iso(alert.t),
            "component": alert.symbol,
            "group": alert.exchange,
            "class": alert.metric,
            "custom_details": {
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
    alert: AlertEvent, receiver: str, external_url: str | None
) -> dict[str, Any]:
    labels = {**alert.labels, "alertname": alert.rule, "severity": alert.severity,
              "exchange": alert.exchange, "symbol": alert.symbol, "metric": alert.metric}  # fmt: skip
    annotations = {
        "summary": alert.summary,
        "description": f"{value_text(alert)}; drivers: {drivers_text(alert)}",
        "value": repr(alert.value),
        "drivers": drivers_text(alert),
    }
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
    c = sink.config
    if c.kind == "json":
        return json_payload(alert)
    if c.kind == "slack":
        return slack_payload(alert)
    if c.kind == "discord":
        return discord_payload(alert)
    if c.kind == "pagerduty":
        assert sink.key is not None
        return pagerduty_payload(alert, sink.key.reveal(), c.source)
    return alertmanager_payload(alert, c.receiver or c.name, c.external_url)


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(key, timestamp + "." + body)>``."""
    mac = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify(
    key: bytes, timestamp: str, body: bytes, signature: str, now: float, tolerance_s: float = 300.0
) -> bool:
    """A receiver's check (for Python receivers): signature matches and the timestamp is fresh."""
    try:
        age = now - int(timestamp)
    except ValueError:
        return False
    return abs(age) <= tolerance_s and hmac.compare_digest(sign(key, timestamp, body), signature)


@dataclass(frozen=True)
class Request:
    """One alert's request to one sink; ``headers(now)`` signs it for this attempt (json)."""

    body: bytes
    event_id: str
    sign_key: Secret | None = None

    def headers(self, now: float) -> dict[str, str]:
        h = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
             EVENT_ID_HEADER: self.event_id}  # fmt: skip
        if self.sign_key is not None:
            ts = str(int(now))
            h[TIMESTAMP_HEADER] = ts
            h[SIGNATURE_HEADER] = sign(self.sign_key.reveal().encode(), ts, self.body)
        return h


def build_request(sink: Sink, alert: AlertEvent) -> Request:
    body = orjson.dumps(payload(sink, alert))
    return Request(body, event_id(alert), sink.key if sink.kind == "json" else None)


# ---- answers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    ok: bool
    retriable: bool
    retry_after_s: float | None  # the receiver's own wait, when it said one
    reason: str  # short, no secrets: "HTTP 503", "ConnectionRefusedError: ..."


def _header(headers: Mapping[str, str], name: str) -> str | None:
    low = name.lower()
    for k, v in headers.items():
        if k.lower() == low:
            return v
    return None


def parse_retry_after(value: str, now: float) -> float | None:
    """``Retry-After`` as delta seconds (``"120"``, also ``"1.5"``) or an HTTP-date; None if it is
    neither. A date in the past means now (0)."""
    v = value.strip()
    try:
        s = float(v)
    except ValueError:
        pass
    else:
        return s if math.isfinite(s) and s >= 0 else None
    try:
        when = parsedate_to_datetime(v)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def body_retry_after(body: bytes) -> float | None:
    """Discord's 429 body: ``{"message": ..., "retry_after": 0.5, "global": false}`` (seconds)."""
    if not body or body[:1] != b"{":
        return None
    try:
        d = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    v = d.get("retry_after") if isinstance(d, dict) else None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        return None
    return float(v)


def judge(status: int, headers: Mapping[str, str], body: bytes, now: float) -> Verdict:
    """What a receiver's answer means for the delivery."""
    if 200 <= status < 300:
        return Verdict(True, False, None, f"HTTP {status}")
    retriable = status in (408, 429) or status >= 500
    after = body_retry_after(body) if status == 429 else None
    if after is None:
        raw = _header(headers, "Retry-After")
        after = parse_retry_after(raw, now) if raw is not None else None
    return Verdict(False, retriable, after if retriable else None, f"HTTP {status}")


def backoff_s(attempt: int, initial_s: float, max_s: float, jitter: float, u: float) -> float:
    """Delay after the ``attempt``-th failure (1-based): ``min(max, initial * 2**(attempt-1))``,
    reduced by ``jitter * u`` of itself (``u`` uniform in [0, 1))."""
    base = min(max_s, initial_s * 2.0 ** min(attempt - 1, 60))
    return base * (1.0 - jitter * u)
