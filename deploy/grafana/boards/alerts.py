"""Alerts: what fired, and did it reach people?

Transitions the consumers emitted by rule and severity, the transitions the dispatcher consumed,
deliveries by sink and outcome, alerts pending in the dispatcher and waiting in the consumers, and
the Prometheus-side rules (ALERTS) by state.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from .annotations import alert_annotations
from .common import (
    ALERTS_UID,
    color,
    dashboard,
    datasource_variable,
    q,
    row,
    ts,
)

SEVERITY_COLORS = ((".* critical .*", [color("red")]), (".* warning .*", [color("orange")]))
OUTCOME_COLORS = (
    (".* ok", [color("green")]),
    (".* retry", [color("orange")]),
    (".* dead_letter", [color("red")]),
    (".* dropped_by_severity", [color("gray")]),
)


def build() -> db.Dashboard:
    d = dashboard(
        ALERTS_UID,
        "Cascade alerts",
        "Alert transitions by rule and severity, deliveries by sink and outcome, pending alerts.",
    ).with_variable(datasource_variable())
    for a in alert_annotations():
        d = d.annotation(a)

    d = d.with_row(row("Transitions"))
    d = d.with_panel(
        ts(
            "Transitions emitted by rule and severity",
            "Alert transitions the consumers' rules "
            "emitted in the last minute (firing, resolved), by rule and severity (recording rule "
            "rule_severity_status:cascade_alerts_emitted:increase1m, which also counts a transition "
            "that created its counter).",
            "short",
            [
                q(
                    "rule_severity_status:cascade_alerts_emitted:increase1m",
                    "{{rule}} {{severity}} {{status}}",
                )
            ],
            overrides=SEVERITY_COLORS,
            decimals=0,
            w=12,
        )
    )
    d = d.with_panel(
        ts(
            "Transitions consumed by the dispatcher",
            "Transitions the dispatcher read from the alerts "
            "topic in the last minute, by rule and status; redelivered duplicates are not counted "
            "(recording rule rule_status:cascade_alert_transitions:increase1m).",
            "short",
            [q("rule_status:cascade_alert_transitions:increase1m", "{{rule}} {{status}}")],
            decimals=0,
            w=12,
        )
    )
    d = d.with_panel(
        ts(
            "Prometheus-side alerts",
            "The alerting rules of deploy/prometheus/rules/cascade.yml by "
            "state: pending (the condition holds, its for: not yet elapsed) and firing.",
            "short",
            [
                q(
                    "count by (alertname, severity, alertstate) (ALERTS)",
                    "{{alertname}} ({{severity}}) {{alertstate}}",
                )
            ],
            decimals=0,
            w=24,
        )
    )

    d = d.with_row(row("Delivery"))
    d = d.with_panel(
        ts(
            "Deliveries by sink and outcome",
            "Alert deliveries in the last minute: ok (2xx), retry "
            "(one failed attempt), dead_letter (given up), dropped_by_severity (below the sink's "
            "min_severity).",
            "short",
            [q("sink_outcome:cascade_alert_deliveries:increase1m", "{{sink}} {{outcome}}")],
            overrides=OUTCOME_COLORS,
            decimals=0,
            w=12,
        )
    )
    d = d.with_panel(
        ts(
            "Pending",
            "Alerts the dispatcher consumed but not every sink took yet, and transitions "
            "the consumers still wait to write to the alerts topic.",
            "short",
            [
                q("cascade_alert_pending", "dispatcher: pending"),
                q("sum by (exchange) (cascade_alerts_unsent)", "{{exchange}} consumer: unsent"),
            ],
            lo=0,
            decimals=0,
            w=12,
        )
    )
    d = d.with_panel(
        ts(
            "Requests in flight",
            "HTTP requests to each sink awaiting an answer.",
            "short",
            [q("cascade_alert_deliveries_in_flight", "{{sink}}")],
            lo=0,
            decimals=0,
            w=12,
        )
    )
    d = d.with_panel(
        ts(
            "Delivery latency, 99th percentile",
            "From the producer receiving the triggering event to "
            "the sink's 2xx (recording rule sink:cascade_alert_delivery_latency_seconds:p99_1m).",
            "s",
            [q("sink:cascade_alert_delivery_latency_seconds:p99_1m", "{{sink}} p99")],
            w=12,
        )
    )
    return d
