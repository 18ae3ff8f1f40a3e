"""Cascade overview: is a liquidation cascade building anywhere, and where?

Market-wide and per-asset levels of the composite score and of the Hawkes branching ratio across
venues, the liquidation flow (longs against shorts, stacked per venue and per asset), the pairs with
the highest score (each linking to its drill-down) and the estimated notional at risk within 1, 2
and 5 % of the price; alert transitions are marked on every panel.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from .annotations import alert_annotations
from .common import (
    BRANCHING_LEVELS,
    BRANCHING_NOTE,
    OVERVIEW_UID,
    POOLED_BRANCHING,
    POOLED_SCORE,
    SCORE_CRITICAL,
    SCORE_LEVELS,
    SCORE_WARNING,
    bar_gauge,
    dashboard,
    datasource_variable,
    pair_url,
    q,
    row,
    stat_panel,
    table_panel,
    ts,
)

TOP_PAIRS = 10
LEVELS_TEXT = (
    f"warning at {SCORE_WARNING:g}, critical at {SCORE_CRITICAL:g} (the default alert rules)"
)


def build() -> db.Dashboard:
    d = dashboard(
        OVERVIEW_UID,
        "Cascade overview",
        "Is a liquidation cascade building anywhere? Composite score and branching ratio across "
        "venues and assets, liquidation flow, the riskiest pairs and notional at risk.",
    ).with_variable(datasource_variable())
    for a in alert_annotations():
        d = d.annotation(a)

    d = d.with_row(row("Now"))
    d = d.with_panel(
        stat_panel(
            "Highest cascade score",
            f"The highest composite cascade score of any exported pair, in [0, 1]; {LEVELS_TEXT}.",
            "none",
            [q("max(cascade_cascade_score)", "highest score", instant=True)],
            steps=SCORE_LEVELS,
            decimals=2,
        )
    )
    d = d.with_panel(
        stat_panel(
            "Highest branching ratio",
            "The highest Hawkes branching ratio n of any pair: the mean "
            "number of liquidations each liquidation triggers. " + BRANCHING_NOTE,
            "none",
            [q("max(cascade_branching_ratio)", "highest n", instant=True)],
            steps=BRANCHING_LEVELS,
            decimals=2,
        )
    )
    d = d.with_panel(
        stat_panel(
            "Liquidated, last 5 min",
            "Liquidation notional applied by the consumers over the last "
            "5 minutes, every venue and pair (exact counters; sampled feeds such as Binance's make it a "
            "lower bound).",
            "currencyUSD",
            [
                q(
                    "sum(increase(cascade_liquidation_notional_usd_total[5m]))",
                    "liquidated",
                    instant=True,
                )
            ],
        )
    )
    d = d.with_panel(
        stat_panel(
            "Pairs with a score",
            "Pairs whose composite score is defined (exported by the consumers).",
            "none",
            [q("count(cascade_cascade_score)", "pairs", instant=True)],
        )
    )

    d = d.with_row(row("Score and branching ratio"))
    d = d.with_panel(
        ts(
            "Cascade score per asset",
            "Per asset, the score of its riskiest venue "
            "(cascade_asset_cascade_score, from `cascade-monitor aggregate`); the market line is the "
            f"highest score of any pair. {LEVELS_TEXT}.",
            "none",
            [
                q("cascade_asset_cascade_score", "{{asset}}"),
                q("max(cascade_cascade_score)", "market (highest pair)"),
            ],
            steps=SCORE_LEVELS,
            lo=0,
            hi=1,
            decimals=2,
        )
    )
    d = d.with_panel(
        ts(
            "Cascade score per venue",
            "The highest score among each venue's pairs (recording rule "
            f"exchange:cascade_cascade_score:max). {LEVELS_TEXT}.",
            "none",
            [q("exchange:cascade_cascade_score:max", "{{exchange}}")],
            steps=SCORE_LEVELS,
            lo=0,
            hi=1,
            decimals=2,
        )
    )
    d = d.with_panel(
        ts(
            "Pooled score, venue-wide and per asset",
            "The score computed on the pooled liquidations "
            "of a whole venue (scope venue) or of an asset across venues (scope asset), rather than "
            f"the worst single pair. {LEVELS_TEXT}.",
            "none",
            [
                q(POOLED_SCORE + '{scope="venue"}', "{{exchange}} (venue)"),
                q(POOLED_SCORE + '{scope="asset"}', "{{asset}} (asset)"),
            ],
            steps=SCORE_LEVELS,
            lo=0,
            hi=1,
            decimals=2,
        )
    )
    d = d.with_panel(
        ts(
            "Branching ratio per asset",
            "Per asset, the Hawkes branching ratio of its riskiest venue "
            "(cascade_asset_branching_ratio); the market line is the highest of any pair. "
            + BRANCHING_NOTE,
            "none",
            [
                q("cascade_asset_branching_ratio", "{{asset}}"),
                q("max(cascade_branching_ratio)", "market (highest pair)"),
            ],
            steps=BRANCHING_LEVELS,
            lo=0,
            decimals=2,
        )
    )
    d = d.with_panel(
        ts(
            "Pooled branching ratio, venue-wide and per asset",
            "The branching ratio fitted on the "
            "pooled liquidations of a venue (scope venue) or of an asset across venues (scope asset). "
            + BRANCHING_NOTE,
            "none",
            [
                q(POOLED_BRANCHING + '{scope="venue"}', "{{exchange}} (venue)"),
                q(POOLED_BRANCHING + '{scope="asset"}', "{{asset}} (asset)"),
            ],
            steps=BRANCHING_LEVELS,
            lo=0,
            decimals=2,
        )
    )
    d = d.with_panel(
        ts(
            "Pairs at or above the warning score",
            "How widespread the stress is: the number of "
            f"pairs per venue whose score is at or above the warning level ({SCORE_WARNING:g}).",
            "none",
            [
                q(
                    f"count by (exchange) (cascade_cascade_score >= {SCORE_WARNING:g})",
                    "{{exchange}} pairs >= warning",
                )
            ],
            bars=True,
            lo=0,
            decimals=0,
        )
    )

    d = d.with_row(row("Liquidation flow"))
    d = d.with_panel(
        ts(
            "Liquidations per venue, longs up, shorts down",
            "Liquidation notional per second from the "
            "exact counters over 1 min (recording rule exchange_side:cascade_liquidation_notional_usd"
            ":rate1m), stacked per venue: longs liquidated above zero, shorts below.",
            "currencyUSD",
            [
                q(
                    'exchange_side:cascade_liquidation_notional_usd:rate1m{side="long"}',
                    "{{exchange}} longs",
                ),
                q(
                    'exchange_side:cascade_liquidation_notional_usd:rate1m{side="short"}',
                    "{{exchange}} shorts",
                ),
            ],
            stack=True,
            shorts_down=True,
        )
    )
    d = d.with_panel(
        ts(
            "Liquidations per asset, longs up, shorts down",
            "The same per asset (the canonical "
            "symbol's base, all venues; recording rule asset_side:cascade_liquidation_notional_usd"
            ":rate1m).",
            "currencyUSD",
            [
                q(
                    'asset_side:cascade_liquidation_notional_usd:rate1m{side="long"}',
                    "{{asset}} longs",
                ),
                q(
                    'asset_side:cascade_liquidation_notional_usd:rate1m{side="short"}',
                    "{{asset}} shorts",
                ),
            ],
            stack=True,
            shorts_down=True,
        )
    )

    d = d.with_row(row("Where"))
    topk = f"topk({TOP_PAIRS}, max by (exchange, symbol) (cascade_cascade_score))"
    d = d.with_panel(
        table_panel(
            f"Top {TOP_PAIRS} pairs by cascade score",
            "The pairs with the highest composite score now, "
            "with their branching ratio and 60 s liquidation rate; click a symbol for its drill-down.",
            [
                q(topk, "score", instant=True, table_format=True),
                q(
                    f"max by (exchange, symbol) (cascade_branching_ratio) and on (exchange, symbol) {topk}",
                    "n",
                    instant=True,
                    table_format=True,
                ),
                q(
                    'sum by (exchange, symbol) (cascade_liquidation_rate_usd_per_second{window="60s"}) '
                    f"and on (exchange, symbol) {topk}",
                    "liquidations",
                    instant=True,
                    table_format=True,
                ),
            ],
            columns={
                "Value #A": ("score", "none", SCORE_LEVELS),
                "Value #B": ("branching ratio", "none", BRANCHING_LEVELS),
                "Value #C": ("liquidations, USD/s (60 s)", "currencyUSD", None),
            },
            link=("symbol", pair_url("${__data.fields.exchange}", "${__data.fields.symbol}")),
            sort_by="score",
            w=14,
        )
    )
    d = d.with_panel(
        bar_gauge(
            "Notional at risk within 1, 2 and 5 %",
            "The estimated liquidation map summed over every "
            "exported pair: long positions whose liquidation price is within 1/2/5 % below the price, "
            "short positions within 1/2/5 % above (recording rule side_within:cascade_notional_at_risk"
            "_usd:sum). An estimate (docs/risk-models.md §6).",
            "currencyUSD",
            [
                q(
                    "side_within:cascade_notional_at_risk_usd:sum",
                    "{{side}}s within {{within}}",
                    instant=True,
                )
            ],
            side_colors=True,
            w=10,
            h=9,
        )
    )
    d = d.with_panel(
        ts(
            "Notional at risk within 1, 2 and 5 %, over time",
            "The same map summed over every pair, by side and distance from the price.",
            "currencyUSD",
            [q("side_within:cascade_notional_at_risk_usd:sum", "{{side}}s within {{within}}")],
            side_colors=True,
            w=24,
        )
    )
    return d
