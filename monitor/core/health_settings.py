"""Pipeline-health settings: the ``[health]`` table, the values health rules watch, and the
default health rules. Pure module (the shared contracts layer).

Every component (producer, consumer, aggregator, dispatcher) samples its own figures every
``sample_s`` and publishes a heartbeat with them to ``<prefix>.health`` every ``heartbeat_s``
(``monitor.alerting.heartbeat``); the alert dispatcher reads every heartbeat and evaluates the
health rules on them (``monitor.alerting.health``), sending what fires to the sinks with the
category ``health``. The Prometheus rules of ``deploy/prometheus/rules/cascade.yml`` watch the
same figures on ``/metrics``; docs/operations.md §9 is the runbook.

Health rules are ``[[health.rules]]`` tables with the keys of ``[[alerts.rules]]``
(``monitor.alerting.rules``), whose ``metric`` and ``require`` name the values of
``HEALTH_METRICS``; a rule watches targets matching its ``exchange`` and ``symbol`` globs, where a
target is a venue's stream (``exchange`` = the venue, ``symbol`` = liquidation, trade or
context), a component (``exchange`` = its venue or "", ``symbol`` = producer, consumer,
aggregator or dispatcher) or the broker (``exchange`` "", ``symbol`` kafka). Without
``[[health.rules]]`` the defaults below apply, built from this table's levels.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from monitor.core.alert_rules import Rule, require_unique_names, rule_from_dict, rule_to_dict
from monitor.core.errors import ConfigError

DAY_S: Final = 86400.0
STARVED_GRACE_S: Final = 5.0  # a consumer applies events this much after the producer, at most

# value -> what it is (per target). Windows are ``health.window_s`` long.
HEALTH_METRICS: Final = {
    "silence_s": "seconds since the producer last received an event of the kind",
    "silence_return_period_s": "mean seconds between silences this long, learned from the "
    "stream's own gaps (monitor/core/freshness.py)",
    "consumer_silence_s": "seconds since the consumer last applied an event of the kind",
    "consumer_silence_return_period_s": "the same, for the events the consumer applied",
    "feed_ok": "1 while the producer's own silence of the kind is not improbable",
    "reconnects": "websocket reconnects in the window, except stale-socket, rotation and "
    "upgrade ones (those are the watchdog's and the schedule's)",
    "refused_share": "frames refused by the parser / frames received, in the window",
    "frames": "frames received in the window",
    "send_errors": "Kafka deliveries that failed (and were retried) in the window",
    "dropped": "events refused in the window (buffer full)",
    "publish_stall_s": "seconds without a Kafka acknowledgement while events wait",
    "lag_records": "the consumer's largest partition lag",
    "lag_growth": "growth of that lag over the window",
    "commit_stall_s": "seconds since the consumer last committed, while it processed records",
    "dead_letters": "alerts the dispatcher dead-lettered in the window",
    "delivery_retries": "failed delivery attempts (retried) in the window",
    "heartbeat_age_s": "seconds since the component's last heartbeat",
    "kafka_silence_s": "seconds since the health watch last read any heartbeat from Kafka",
}


@dataclass(frozen=True)
class HealthConfig:
    """``[health]``. Times in seconds."""

    enabled: bool = True
    heartbeat_s: float = 5.0  # each component's heartbeat to <prefix>.health
    sample_s: float = 1.0  # figures and event counts sampled this often (freshness resolution)
    eval_s: float = 1.0  # the health rules are evaluated this often (the dispatcher)
    window_s: float = 300.0  # counters (reconnects, errors, refused frames) over this window
    target_gone_s: float = 30.0  # no heartbeat for this long: the component is gone
    kafka_timeout_s: float = 30.0  # no heartbeat read at all for this long: Kafka unreachable
    min_silence_s: float = 60.0  # a stream silent for less is never judged
    silence_warning_s: float = 30 * DAY_S  # return period of the silence: warning ...
    silence_critical_s: float = 365 * DAY_S  # ... and critical
    learn_min_s: float = 1800.0  # history a stream needs before its silences are judged
    memory_s: float = 3 * DAY_S  # half-life of the learned gaps
    rules: tuple[Rule, ...] | None = None  # [[health.rules]]; None: default_health_rules(self)

    def validate(self) -> None:
        for name in ("heartbeat_s", "sample_s", "eval_s", "window_s", "target_gone_s",
                     "kafka_timeout_s", "silence_warning_s", "memory_s"):  # fmt: skip
            v = getattr(self, name)
            if not 0 < v < math.inf:
                raise ConfigError(f"health.{name} {v!r}: must be > 0 and finite")
        for name in ("min_silence_s", "learn_min_s"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ConfigError(f"health.{name}: must be >= 0 and finite")
        if self.silence_critical_s < self.silence_warning_s:
            raise ConfigError("health.silence_critical_s must be >= health.silence_warning_s")
        if self.target_gone_s <= self.heartbeat_s or self.kafka_timeout_s <= self.heartbeat_s:
            raise ConfigError("health.target_gone_s and kafka_timeout_s must exceed heartbeat_s")

    @property
    def active_rules(self) -> tuple[Rule, ...]:
        return self.rules if self.rules is not None else default_health_rules(self)


def default_health_rules(h: HealthConfig) -> tuple[Rule, ...]:
    """The default health rules, with ``h``'s levels (Prometheus counterparts in brackets, in
    deploy/prometheus/rules/cascade.yml)."""
    silent = "{severity}: {exchange} {symbol} silent ({drivers}); about once in {value:,.0f} s"
    return (
        Rule("feed-silent", "silence_return_period_s",  # [FeedSilent]
             warning=h.silence_warning_s, critical=h.silence_critical_s, resolve=DAY_S,
             require={"silence_s": h.min_silence_s}, summary=silent),
        # held for two heartbeats and the consumer's tick delay: when a silent feed resumes,
        # the consumer applies its first events a few seconds after the producer got them
        Rule("consumer-starved", "consumer_silence_return_period_s",  # [EventsNotReachingConsumer]
             warning=h.silence_warning_s, critical=h.silence_critical_s, resolve=DAY_S,
             require={"consumer_silence_s": h.min_silence_s, "feed_ok": 1.0},
             for_s=2 * h.heartbeat_s + STARVED_GRACE_S,
             summary="{severity}: {exchange} {symbol} events not reaching the consumer "
                     "({drivers}); about once in {value:,.0f} s"),
        Rule("reconnect-storm", "reconnects", warning=3.0, critical=10.0, resolve=0.5,  # [ReconnectStorm]
             summary="{severity}: {exchange} websockets reconnected {value:.0f} times ({drivers})"),
        Rule("frames-refused", "refused_share", warning=0.5, critical=0.9, resolve=0.1,  # [FramesRefused]
             require={"frames": 10.0},
             summary="{severity}: {exchange} parser refuses {value:.0%} of frames ({drivers})"),
        Rule("kafka-send-errors", "send_errors", warning=3.0, critical=None, resolve=0.5,  # [KafkaSendErrors]
             summary="{severity}: {exchange} producer: {value:.0f} Kafka deliveries failed"),
        Rule("events-dropped", "dropped", warning=None, critical=1.0, resolve=0.5,  # [EventsDropped]
             summary="{severity}: {exchange} producer dropped {value:.0f} events (buffer full)"),
        Rule("publish-stalled", "publish_stall_s", warning=15.0, critical=60.0, resolve=1.0,  # [KafkaPublishStalled]
             summary="{severity}: {exchange} producer: no Kafka acknowledgement for "
                     "{value:.0f} s ({drivers})"),
        Rule("consumer-lag-growing", "lag_records", warning=10_000.0, critical=None,  # [ConsumerLagGrowing]
             resolve=1000.0, require={"lag_growth": 1.0},
             summary="{severity}: {exchange} consumer {value:,.0f} records behind and falling "
                     "further ({drivers})"),
        Rule("commits-stopped", "commit_stall_s", warning=60.0, critical=300.0, resolve=5.0,  # [ConsumerCommitsStopped]
             summary="{severity}: {exchange} consumer has not committed for {value:.0f} s"),
        Rule("alert-dead-letters", "dead_letters", warning=1.0, critical=None, resolve=0.5,  # [AlertDeadLetters]
             summary="{severity}: {value:.0f} alerts dead-lettered (a sink refuses them)"),
        Rule("alert-delivery-failing", "delivery_retries", warning=5.0, critical=None,  # [AlertDeliveryFailing]
             resolve=0.5, summary="{severity}: {value:.0f} alert deliveries failed and retried"),
        Rule("target-gone", "heartbeat_age_s", warning=None, critical=h.target_gone_s,  # [TargetGone]
             resolve=h.target_gone_s / 2,
             summary="{severity}: {exchange} {symbol} gone: no heartbeat for {value:.0f} s"),
        Rule("kafka-unreachable", "kafka_silence_s", warning=None,  # [KafkaUnreachable]
             critical=h.kafka_timeout_s, resolve=h.kafka_timeout_s / 2,
             summary="{severity}: Kafka unreachable: no heartbeat read for {value:.0f} s"),
    )  # fmt: skip


def health_rule_from_dict(d: Mapping[str, Any], where: str) -> Rule:
    """One ``[[health.rules]]`` table: the keys and checks of an ``[[alerts.rules]]`` table,
    with ``metric`` and ``require`` naming ``HEALTH_METRICS``."""
    metric = d.get("metric")
    if metric not in HEALTH_METRICS:
        raise ConfigError(f"{where}.metric {metric!r}: one of {sorted(HEALTH_METRICS)}")
    require = d.get("require", {})
    if not isinstance(require, Mapping):
        raise ConfigError(f"{where}.require: a table of value = minimum is required")
    for k, v in require.items():
        if k not in HEALTH_METRICS:
            raise ConfigError(f"{where}.require.{k}: one of {sorted(HEALTH_METRICS)}")
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ConfigError(f"{where}.require.{k} {v!r}: a finite number is required")
    # the shared checks run on a risk-rule stand-in, then the health names are put back
    rule = rule_from_dict({**d, "metric": "score", "require": {}}, where)
    return dataclasses.replace(
        rule, metric=metric, require={k: float(v) for k, v in require.items()}
    )


def health_from_dict(data: Any) -> HealthConfig:
    """The ``[health]`` table; ConfigError naming the key for anything wrong."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"[health] must be a table, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(HealthConfig)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"[health] unknown key(s): {unknown} (known: {sorted(fields)})")
    kw: dict[str, Any] = {}
    for k, v in data.items():
        if k == "rules":
            if not isinstance(v, list | tuple) or not all(isinstance(t, Mapping) for t in v):
                raise ConfigError("health.rules: an array of tables ([[health.rules]]) is required")
            rules = [health_rule_from_dict(t, f"health.rules[{i}]") for i, t in enumerate(v)]
            require_unique_names((r.name for r in rules), "health.rules")
            kw[k] = tuple(rules)
        elif k == "enabled":
            if not isinstance(v, bool):
                raise ConfigError(f"health.enabled: expected true/false, got {v!r}")
            kw[k] = v
        else:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ConfigError(f"health.{k}: expected a number, got {v!r}")
            kw[k] = float(v)
    cfg = HealthConfig(**kw)
    cfg.validate()
    return cfg


def health_to_dict(h: HealthConfig) -> dict[str, Any]:
    """The ``[health]`` table ``health_from_dict`` reads back."""
    d = {f.name: getattr(h, f.name) for f in dataclasses.fields(h) if f.name != "rules"}
    if h.rules is not None:
        d["rules"] = [rule_to_dict(r) for r in h.rules]
    return d
