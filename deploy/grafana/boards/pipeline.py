"""Pipeline health, per exchange: is every stage of exchange -> producer -> Kafka -> consumer ->
metrics -> alerts doing its job?

Variable ``exchange`` (several, or all). Feeds: connected sockets, frames per second, parse errors by
reason, reconnects, sequence gaps. Kafka: send errors, the producer's buffer, consumer lag,
duplicates dropped. Consumers: the event-to-metric latency as a heatmap and its quantiles, events
applied and skipped, state memory. The alert dispatcher: deliveries, dead letters, latency. The
supervisor of `cascade-monitor run`: components up and restarts.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from .common import (
    CONSUMER_LAG_ALERT,
    PIPELINE_UID,
    dashboard,
    datasource_variable,
    heatmap_panel,
    q,
    query_variable,
    row,
    ts,
)

X = 'exchange=~"$exchange"'
RI = "$__rate_interval"


def rate_by(metric: str, by: str, matcher: str = X) -> str:
    """``sum by (<by>) (rate(<metric>{<matcher>}[$__rate_interval]))``."""
    return f"sum by ({by}) (rate({metric}{{{matcher}}}[{RI}]))"


def build() -> db.Dashboard:
    d = dashboard(
        PIPELINE_UID,
        "Cascade pipeline health",
        "Feeds, Kafka, consumers, the alert dispatcher and the supervisor of cascade-monitor run.",
    ).with_variable(datasource_variable())
    d = d.with_variable(
        query_variable(
            "exchange",
            "Exchange",
            "label_values(cascade_frames_received_total, exchange)",
            multi=True,
            include_all=True,
        )
    )

    d = d.with_row(row("Feeds (producers)"))
    d = d.with_panel(
        ts(
            "Connected sockets",
            "Websockets connected and subscribed, per exchange and connection; "
            "0 for a minute fires ExchangeFeedDown.",
            "none",
            [q(f"cascade_ws_connected{{{X}}}", "{{exchange}} {{connection}}")],
            steps=((None, "red"), (1.0, "green")),
            lo=0,
            hi=1,
            decimals=0,
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            "Frames received",
            "Websocket frames per second, per exchange (recording rule "
            "exchange:cascade_frames_received:rate1m).",
            "cps",
            [q(f"exchange:cascade_frames_received:rate1m{{{X}}}", "{{exchange}}")],
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            "Events parsed",
            "Normalized events per second parsed from the frames, by kind.",
            "cps",
            [
                q(
                    rate_by("cascade_events_received_total", "exchange, kind"),
                    "{{exchange}} {{kind}}",
                )
            ],
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            "Parse errors by reason",
            "Frames or items the parsers refused per second (skipped and "
            "counted; unknown_instrument, qty_mismatch, ...).",
            "cps",
            [
                q(
                    rate_by("cascade_parse_errors_total", "exchange, reason"),
                    "{{exchange}} {{reason}}",
                )
            ],
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            "Reconnects by cause",
            "Websocket reconnects per interval by cause (closed, error, stale, rotate, upgrade).",
            "short",
            [
                q(
                    f"sum by (exchange, reason) (increase(cascade_reconnects_total{{{X}}}[{RI}]))",
                    "{{exchange}} {{reason}}",
                )
            ],
            bars=True,
            decimals=0,
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            "Sequence gaps",
            "Messages missing from venues that number them (Kraken seq, Deribit "
            "trade_seq, ...), per interval.",
            "short",
            [
                q(
                    f"sum by (exchange) (increase(cascade_sequence_gaps_total{{{X}}}[{RI}]))",
                    "{{exchange}}",
                )
            ],
            bars=True,
            decimals=0,
            w=8,
        )
    )

    d = d.with_row(row("Kafka"))
    d = d.with_panel(
        ts(
            "Kafka send errors",
            "Failed deliveries to Kafka per second (each retried, none dropped).",
            "cps",
            [q(rate_by("cascade_kafka_send_errors_total", "exchange"), "{{exchange}}")],
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            "Producer buffer",
            "Events accepted but not yet acknowledged by Kafka; new events are "
            "refused past kafka.max_buffered_events.",
            "short",
            [q(f"cascade_producer_buffered_events{{{X}}}", "{{exchange}}")],
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            "Consumer lag",
            "Records behind the high watermark, summed over an exchange's partitions; "
            f"the line is ConsumerLagging's level ({CONSUMER_LAG_ALERT:,} on a partition for 2 min).",
            "short",
            [q(f"sum by (exchange) (cascade_consumer_lag_records{{{X}}})", "{{exchange}}")],
            steps=((None, "green"), (float(CONSUMER_LAG_ALERT), "red")),
            lo=0,
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            "Duplicates dropped",
            "Repeated events dropped per second, by where they were "
            "recognised: producer_memory, venue_snapshot, consumer_window (docs/venues.md §13.3).",
            "cps",
            [
                q(
                    rate_by("cascade_duplicate_events_total", "exchange, reason"),
                    "{{exchange}} {{reason}}",
                )
            ],
            w=12,
        )
    )
    d = d.with_panel(
        ts(
            "Events published and dropped",
            "Events acknowledged by Kafka per second, and events "
            "refused before acceptance (buffer full).",
            "cps",
            [
                q(rate_by("cascade_events_published_total", "exchange"), "{{exchange}} published"),
                q(
                    rate_by("cascade_events_dropped_total", "exchange, reason"),
                    "{{exchange}} dropped ({{reason}})",
                ),
            ],
            w=12,
        )
    )

    d = d.with_row(row("Consumers"))
    d = d.with_panel(
        heatmap_panel(
            "Event-to-metric latency",
            "From the producer receiving a frame to its events being "
            "applied to the risk state: events per second per latency bucket (recording rule "
            "exchange_le:cascade_event_to_metric_latency_seconds_bucket:rate1m).",
            "s",
            [
                q(
                    "sum by (le) (exchange_le:cascade_event_to_metric_latency_seconds_bucket:rate1m"
                    f"{{{X}}})",
                    "{{le}}",
                    heatmap_format=True,
                )
            ],
        )
    )
    d = d.with_panel(
        ts(
            "Event-to-metric latency, median and 99th percentile",
            "Quantiles over 1 min per exchange (recording rules ...:p50_1m and ...:p99_1m).",
            "s",
            [
                q(
                    f"exchange:cascade_event_to_metric_latency_seconds:p50_1m{{{X}}}",
                    "{{exchange}} p50",
                ),
                q(
                    f"exchange:cascade_event_to_metric_latency_seconds:p99_1m{{{X}}}",
                    "{{exchange}} p99",
                ),
            ],
        )
    )
    d = d.with_panel(
        ts(
            "Events applied and skipped",
            "Events applied to the risk state per second by kind, and "
            "valid events not applied by reason (too_late, invalid_value, pair_capacity).",
            "cps",
            [
                q(
                    rate_by("cascade_events_consumed_total", "exchange, kind"),
                    "{{exchange}} {{kind}}",
                ),
                q(
                    rate_by("cascade_events_skipped_total", "exchange, reason"),
                    "{{exchange}} skipped ({{reason}})",
                ),
            ],
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            "State memory per pair",
            "Risk state bytes per pair (flow, price, context and every model's arrays).",
            "bytes",
            [q(f"cascade_state_bytes_per_pair{{{X}}}", "{{exchange}}")],
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            "Pairs held",
            "Pairs in each consumer's risk state (at most consumer.max_pairs).",
            "short",
            [q(f"sum by (exchange) (cascade_consumer_pairs{{{X}}})", "{{exchange}}")],
            w=8,
        )
    )

    d = d.with_row(row("Alert dispatcher"))
    d = d.with_panel(
        ts(
            "Deliveries by sink and outcome",
            "Alert deliveries per minute: ok (2xx), retry, "
            "dead_letter, dropped_by_severity (recording rule sink_outcome:cascade_alert_deliveries"
            ":increase1m).",
            "short",
            [q("sink_outcome:cascade_alert_deliveries:increase1m", "{{sink}} {{outcome}}")],
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            "Dead letters",
            "Alerts written to the dead-letter topic because a sink never took them, per interval.",
            "short",
            [q(f"sum by (sink) (increase(cascade_alert_dead_letters_total[{RI}]))", "{{sink}}")],
            bars=True,
            decimals=0,
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            "Delivery latency, 99th percentile",
            "From the producer receiving the triggering event to "
            "the sink's 2xx, per sink (recording rule sink:cascade_alert_delivery_latency_seconds"
            ":p99_1m).",
            "s",
            [q("sink:cascade_alert_delivery_latency_seconds:p99_1m", "{{sink}} p99")],
            w=8,
        )
    )

    d = d.with_row(row("cascade-monitor run"))
    d = d.with_panel(
        ts(
            "Components up",
            "1 while a component's process runs under `cascade-monitor run`'s supervisor.",
            "none",
            [q("cascade_component_up", "{{component}}")],
            steps=((None, "red"), (1.0, "green")),
            lo=0,
            hi=1,
            decimals=0,
        )
    )
    d = d.with_panel(
        ts(
            "Component restarts",
            "Components restarted by the supervisor after they exited, per interval.",
            "short",
            [
                q(
                    f"sum by (component) (increase(cascade_component_restarts_total[{RI}]))",
                    "{{component}}",
                )
            ],
            bars=True,
            decimals=0,
        )
    )
    return d
