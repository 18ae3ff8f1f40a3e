"""Alert marks on the dashboards: Prometheus annotation queries for the consumers' alert
transitions and the Prometheus-side alerts."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from .common import ANNOTATION_FIELDS, DATASOURCE


def annotation(
    name: str, expr: str, colour: str, title: str, text: str, tags: str
) -> db.AnnotationQuery:
    ANNOTATION_FIELDS[name] = {
        "titleFormat": title,
        "textFormat": text,
        "tagKeys": tags,
        "step": "$__interval",
        "useValueForTime": False,
    }
    return (
        db.AnnotationQuery()
        .name(name)
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color(colour)
        .expr(expr)
    )


def alert_annotations() -> list[db.AnnotationQuery]:
    """Alert marks: each transition the consumers emitted (a change of
    ``cascade_alerts_emitted_total``, or its first appearance: the counter is created at its first
    transition), and the Prometheus-side rules while firing (``ALERTS``)."""
    emitted = (
        "changes(cascade_alerts_emitted_total[$__interval]) > 0 or (cascade_alerts_emitted_total"
        " unless cascade_alerts_emitted_total offset $__interval)"
    )
    return [
        annotation(
            "Alert transitions (consumers)",
            emitted,
            "orange",
            "{{rule}} {{status}} ({{severity}})",
            "{{exchange}}",
            "exchange,rule,severity,status",
        ),
        annotation(
            "Prometheus alerts firing",
            'ALERTS{alertstate="firing"}',
            "red",
            "{{alertname}} ({{severity}})",
            "{{exchange}} {{symbol}}",
            "alertname,severity,exchange,symbol",
        ),
    ]
