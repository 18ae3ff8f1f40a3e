"""Webhook sinks, resolved: a sink's settings (``monitor.core.sink_settings.SinkConfig``) with its
secrets read, which is what the dispatcher delivers to. Pure module: the body of each kind is built
in ``monitor.alerting.payloads``, the json signature in ``monitor.alerting.signing``, the requests
and the reading of the answers in ``monitor.alerting.http_policy``, the HTTP delivery loop in
``monitor.alerting.courier``.

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
    grafana_url = "https://grafana.example.com"  # optional: link alerts to the dashboards
                                     # (default: alerts.grafana_url; empty: no link)

    [[alerts.sinks]]
    name = "audit"
    kind = "json"
    url = "https://alerts.example.com/cascade"
    secret_env = "CASCADE_WEBHOOK_KEY"   # signing key (json) / routing key (pagerduty)

Secrets (webhook URLs with tokens, signing keys, routing keys) never go in the file: ``secret``,
``routing_key`` and the like are refused; ``secret_env``/``secret_file`` and ``url_env``/``url_file``
name where they are, read when the dispatcher starts (``resolve_sink``). A literal ``url`` is for
endpoints without a token; it is still shown only as ``scheme://host/***``.

Kinds and their extra keys (what each body contains: ``monitor.alerting.payloads``):

* ``json``: requires ``secret_env``/``secret_file``, the key that signs each request
  (``monitor.alerting.signing``).
* ``slack``, ``discord``: no extra key; the webhook URL usually carries the token, so it is best
  read from ``url_env``/``url_file``.
* ``pagerduty``: requires ``secret_env``/``secret_file`` (the routing key). ``url`` defaults to
  https://events.pagerduty.com/v2/enqueue; optional ``source`` (default ``<exchange>:<symbol>``).
* ``alertmanager``: optional ``receiver`` (default: the sink name) and ``external_url``
  (``externalURL`` and ``generatorURL``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from monitor.alerting.secrets import Secret, read_secret, url_secret
from monitor.core.alert_rules import SEVERITIES
from monitor.core.errors import ConfigError
from monitor.core.sink_settings import SECRET_KINDS, SinkConfig

SEVERITY_RANK: Final = {s: i for i, s in enumerate(SEVERITIES)}  # warning < critical
PAGERDUTY_URL: Final = "https://events.pagerduty.com/v2/enqueue"


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
    """Whether an alert of ``severity`` reaches a sink with this ``min_severity`` (an unknown
    severity ranks lowest)."""
    return SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK[sink.min_severity]
