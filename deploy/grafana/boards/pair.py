"""Pair drill-down: everything the monitor knows about one (exchange, symbol).

Variables ``exchange`` and ``symbol`` (the alert links and the overview's table fill them in). Price
and mark; liquidation rates by side and window with the flow ratios; the composite score, every
component and the score's coverage; the Hawkes branching ratio with its interval and the fitted
intensity; the liquidation map (notional at risk by distance, expected liquidations, feedback);
funding, open interest, VPIN and volatility.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from .annotations import alert_annotations
from .common import (
    BRANCHING_LEVELS,
    BRANCHING_LOWER,
    BRANCHING_NOTE,
    BRANCHING_UPPER,
    OVERVIEW_UID,
    PAIR_UID,
    SCORE_COVERAGE,
    SCORE_LEVELS,
    bar_gauge,
    color,
    dashboard,
    datasource_variable,
    q,
    query_variable,
    row,
    ts,
)

PAIR = 'exchange="$exchange", symbol="$symbol"'


def m(name: str, extra: str = "") -> str:
    """``name{exchange="$exchange", symbol="$symbol"[, extra]}``."""
    return f"{name}{{{PAIR}{', ' + extra if extra else ''}}}"


def build() -> db.Dashboard:
    d = dashboard(
        PAIR_UID,
        "Cascade pair drill-down",
        "One pair: price, liquidations, the composite score and its components, the branching "
        "ratio, the liquidation map and market context.",
    ).link(
        db.DashboardLink("Overview")
        .type(dm.DashboardLinkType.LINK)
        .url(f"/d/{OVERVIEW_UID}")
        .keep_time(True)
        .include_vars(False)
    )
    d = d.with_variable(datasource_variable())
    d = d.with_variable(
        query_variable(
            "exchange",
            "Exchange",
            "label_values(cascade_liquidation_rate_usd_per_second, exchange)",
        )
    )
    d = d.with_variable(
        query_variable(
            "symbol",
            "Symbol",
            'label_values(cascade_liquidation_rate_usd_per_second{exchange="$exchange"}, symbol)',
        )
    )
    for a in alert_annotations():
        d = d.annotation(a)

    d = d.with_row(row("Price"))
    d = d.with_panel(
        ts(
            "Price and mark",
            "Last traded price and the venue's mark price (the price liquidations "
            "are triggered on at most venues).",
            "currencyUSD",
            [q(m("cascade_last_price"), "last trade"), q(m("cascade_mark_price"), "mark")],
            w=16,
        )
    )
    d = d.with_panel(
        ts(
            "Drawdown from the decayed high",
            "1 - price / H, H a high relaxing toward the price with "
            "a 1 h time constant (docs/risk-models.md §5).",
            "percentunit",
            [q(m("cascade_drawdown_ratio"), "drawdown")],
            w=8,
            lo=0,
        )
    )

    d = d.with_row(row("Liquidations"))
    d = d.with_panel(
        ts(
            "Liquidation rate by side and window",
            "Exponentially decayed liquidation notional per "
            "second, tau = 10 s, 60 s and 300 s (docs/risk-models.md §1); longs red, shorts green. "
            "Sampled feeds (Binance: the latest order per symbol per second) make it a lower bound.",
            "currencyUSD",
            [q(m("cascade_liquidation_rate_usd_per_second"), "{{side}}s, {{window}}")],
            side_colors=True,
            w=12,
        )
    )
    d = d.with_panel(
        ts(
            "Liquidation imbalance",
            "(L_long - L_short) / (L_long + L_short) of the decayed rates per "
            "window: +1 only longs liquidated, -1 only shorts.",
            "none",
            [q(m("cascade_liquidation_imbalance"), "imbalance, {{window}}")],
            w=6,
            lo=-1,
            hi=1,
            decimals=2,
        )
    )
    d = d.with_panel(
        ts(
            "Liquidations as a share of volume",
            "Liquidation rate / traded notional rate over the same "
            "horizon (docs/risk-models.md §1).",
            "percentunit",
            [q(m("cascade_liquidation_share_of_volume"), "share, {{window}}")],
            w=6,
            lo=0,
        )
    )
    d = d.with_panel(
        ts(
            "Liquidation-rate z-score",
            "z-score of the 60 s liquidation rate against a 24 h exponentially weighted "
            "baseline sampled every 10 s (docs/risk-models.md §1).",
            "none",
            [q(m("cascade_liquidation_rate_zscore"), "z-score")],
            w=12,
            decimals=1,
        )
    )
    d = d.with_panel(
        ts(
            "Feed saturation",
            "Decayed fraction of 1 s slots that carried a liquidation: near 1 on a "
            "sampled feed means the venue is dropping liquidations and the sums are lower bounds.",
            "percentunit",
            [q(m("cascade_liquidation_saturation"), "saturation")],
            w=12,
            lo=0,
            hi=1,
        )
    )

    d = d.with_row(row("Composite score"))
    d = d.with_panel(
        ts(
            "Cascade score",
            "Composite score in [0, 1]: weighted mean of the components "
            "(docs/risk-models.md §7). Warning and critical lines at the default alert levels.",
            "none",
            [q(m("cascade_cascade_score"), "score")],
            steps=SCORE_LEVELS,
            lo=0,
            hi=1,
            decimals=2,
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            "Score components",
            "Every component mapped to [0, 1]: branching, feedback, liq_zscore, "
            "liq_share, vpin, volatility, margin_stress; an undefined component counts as 0 and is not "
            "drawn.",
            "none",
            [q(m("cascade_cascade_score_component"), "{{component}}")],
            lo=0,
            hi=1,
            decimals=2,
            w=10,
        )
    )
    d = d.with_panel(
        ts(
            "Score coverage",
            "The share of the score's weight carried by components that are defined "
            "(1: every component has data; lower: the score leans on fewer models).",
            "percentunit",
            [q(m(SCORE_COVERAGE), "coverage")],
            lo=0,
            hi=1,
            w=6,
        )
    )

    d = d.with_row(row("Self-excitation"))
    d = d.with_panel(
        ts(
            "Branching ratio with its interval",
            "Hawkes branching ratio n over the last 15 min of liquidations, fitted to 1 s bins "
            "as the feed's coverage reveals them (present/absent on sampled feeds, counts on "
            "complete ones; docs/risk-models.md §2.5), with its 90% interval; the continuous-time "
            "MLE (right on complete feeds, low on sampled ones) and the count-moment cross-check "
            "1 - sqrt(E[N]/Var[N]) (§2.2, §2.4). " + BRANCHING_NOTE,
            "none",
            [
                q(m("cascade_branching_ratio"), "n (fit)"),
                q(m(BRANCHING_LOWER), "n lower bound"),
                q(m(BRANCHING_UPPER), "n upper bound"),
                q(m("cascade_branching_ratio_exact"), "n (continuous-time MLE)"),
                q(m("cascade_branching_ratio_count_moment"), "n (count-moment)"),
            ],
            steps=BRANCHING_LEVELS,
            lo=0,
            decimals=2,
            w=14,
            overrides=[
                (
                    "n upper bound",
                    [
                        dm.DynamicConfigValue(id_val="custom.fillBelowTo", value="n lower bound"),
                        color("blue"),
                    ],
                ),
                ("n lower bound", [color("blue")]),
            ],
        )
    )
    d = d.with_panel(
        ts(
            "Hawkes intensity and baseline",
            "The fitted liquidation intensity lambda(now) and the "
            "exogenous rate mu, liquidations per second: the gap is what self-excitation adds.",
            "cps",
            [
                q(m("cascade_hawkes_intensity_per_second"), "intensity"),
                q(m("cascade_hawkes_exogenous_rate_per_second"), "exogenous baseline"),
            ],
            w=10,
        )
    )

    d = d.with_row(row("Liquidation map"))
    d = d.with_panel(
        bar_gauge(
            "Notional at risk by distance",
            "The estimated liquidation map: long positions whose "
            "liquidation price lies within 1/2/5 % below the price, shorts within 1/2/5 % above "
            "(docs/risk-models.md §6). An estimate, as every published heatmap is.",
            "currencyUSD",
            [q(m("cascade_notional_at_risk_usd"), "{{side}}s within {{within}}", instant=True)],
            side_colors=True,
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            "Notional at risk by distance, over time",
            "The same estimated liquidation map over time: how the notional within "
            "1/2/5 % of the price builds up or is liquidated.",
            "currencyUSD",
            [q(m("cascade_notional_at_risk_usd"), "{{side}}s within {{within}}")],
            side_colors=True,
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            "Expected liquidations over the stress horizon",
            "sum over the map of notional x the "
            "probability the price reaches it within the horizon (300 s) at the EWMA volatility "
            "(docs/risk-models.md §6).",
            "currencyUSD",
            [q(m("cascade_expected_liquidations_usd"), "{{side}}s")],
            side_colors=True,
            w=8,
        )
    )
    d = d.with_panel(
        ts(
            "Feedback ratio n_struct",
            "The further move the liquidations triggered by a 1 % move "
            "would cause (docs/risk-models.md §3); 1 or more is a self-sustaining spiral.",
            "none",
            [q(m("cascade_feedback_ratio"), "{{direction}}")],
            steps=((None, "green"), (1.0, "red")),
            lo=0,
            decimals=2,
            w=12,
        )
    )
    d = d.with_panel(
        ts(
            "Margin stress index",
            "Expected liquidations / traded notional over the same horizon "
            "(docs/risk-models.md §6).",
            "none",
            [q(m("cascade_margin_stress_index"), "MSI")],
            lo=0,
            decimals=2,
            w=12,
        )
    )

    d = d.with_row(row("Market"))
    d = d.with_panel(
        ts(
            "Funding rate",
            "Current funding rate per funding interval, as a fraction.",
            "percentunit",
            [q(m("cascade_funding_rate"), "funding")],
            decimals=4,
            w=6,
        )
    )
    d = d.with_panel(
        ts(
            "Open interest",
            "Open interest in USD as the venue reports it.",
            "currencyUSD",
            [q(m("cascade_open_interest_usd"), "open interest")],
            w=6,
        )
    )
    d = d.with_panel(
        ts(
            "VPIN",
            "Order-flow toxicity over 50 equal-volume buckets (docs/risk-models.md §4); the "
            "first value comes after about an hour of volume.",
            "none",
            [q(m("cascade_vpin"), "VPIN")],
            lo=0,
            hi=1,
            decimals=2,
            w=6,
        )
    )
    d = d.with_panel(
        ts(
            "Volatility",
            "EWMA standard deviation of 1 s log returns (RiskMetrics), and the share of "
            "realized variance that bipower variation attributes to jumps (docs/risk-models.md §5).",
            "percentunit",
            [
                q(m("cascade_volatility_ewma"), "EWMA volatility per {{interval}}"),
                q(m("cascade_jump_share"), "jump share"),
            ],
            w=6,
            overrides=[
                (
                    "jump share",
                    [dm.DynamicConfigValue(id_val="custom.axisPlacement", value="right")],
                )
            ],
        )
    )
    return d
