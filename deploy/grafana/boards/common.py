"""What every dashboard shares: the Prometheus data source variable, query and panel helpers, the
alert levels the thresholds mark, the table of metrics that are still being added, and the last
pass over a built dashboard (panel ids, annotation fields the SDK does not model, stable JSON).

Panels are built with grafana-foundation-sdk (the Grafana 11.6 schema variant) so that a panel's
JSON is typed at build time; the helpers here only fix the choices every panel makes the same way:
a description, a unit, readable series names (every target has a legend format) and, where an alert
rule applies, thresholds at its levels.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Sequence
from typing import Any, Final

from grafana_foundation_sdk.builders import bargauge, heatmap, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import heatmap as hm
from grafana_foundation_sdk.models import prometheus as pm

from monitor.alerting.payloads import DRILLDOWN_SLUG, DRILLDOWN_UID
from monitor.core.alert_rules import DEFAULT_RULES

# ---- metrics another change is adding: the ONE place their names are written ------------------
# Panels may query names that monitor/core/metrics.py and consumers/exporter.py do not export yet.
# Until they do, those panels show "No data" and the live test (tests/grafana/test_live.py) lists
# them as pending with the reason given here. None is pending now.
PENDING_METRICS: Final[dict[str, str]] = {}

# ---- names that were pending and are exported now (consumers/exporter.py, consumers/aggregator.py)
BRANCHING_LOWER: Final = "cascade_branching_ratio_lower"  # {exchange,symbol}
BRANCHING_UPPER: Final = "cascade_branching_ratio_upper"  # {exchange,symbol}
SCORE_COVERAGE: Final = "cascade_cascade_score_coverage"  # {exchange,symbol}, in [0, 1]
POOLED_SCORE: Final = (
    "cascade_pooled_cascade_score"  # {scope="venue",exchange} / {scope="asset",asset}
)
POOLED_BRANCHING: Final = "cascade_pooled_branching_ratio"  # the same scopes

# ---- the dashboards' identities (the alert links point at the drill-down: monitor.alerting) ------
OVERVIEW_UID: Final = "cascade-overview"
PAIR_UID: Final = DRILLDOWN_UID
PIPELINE_UID: Final = "cascade-pipeline"
ALERTS_UID: Final = "cascade-alerts"
TAG: Final = "cascade-monitor"


def pair_url(exchange: str, symbol: str) -> str:
    """The drill-down of one pair, keeping the dashboard's time range (Grafana interpolates)."""
    return (
        f"/d/{PAIR_UID}/{DRILLDOWN_SLUG}?var-exchange={exchange}&var-symbol={symbol}"
        "&${__url_time_range}&${datasource:queryparam}"
    )


# ---- alert levels (consumer defaults, monitor.core.alert_rules; the same as cascade.yml's) ------
_RULES: Final = {r.name: r for r in DEFAULT_RULES}
SCORE_WARNING: Final = _RULES["cascade-risk"].warning or 0.6
SCORE_CRITICAL: Final = _RULES["cascade-risk"].critical or 0.8
BRANCHING_WARNING: Final = _RULES["self-exciting-liquidations"].warning or 0.5
BRANCHING_NOTE: Final = (
    f"Orange at {BRANCHING_WARNING:g} (the self-exciting-liquidations rule's warning, which the "
    "rule applies to the interval's lower end), red at 1 (a self-sustaining cascade)."
)
CONSUMER_LAG_ALERT: Final = 10_000  # ConsumerLagging in deploy/prometheus/rules/cascade.yml

Level = tuple[float | None, str]  # (from this value up, colour); the first has None


def levels(*steps: Level) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in steps])
    )


SCORE_LEVELS: Final = ((None, "green"), (SCORE_WARNING, "orange"), (SCORE_CRITICAL, "red"))
BRANCHING_LEVELS: Final = ((None, "green"), (BRANCHING_WARNING, "orange"), (1.0, "red"))
NEUTRAL: Final = ((None, "text"),)

# Extra fields of a Prometheus annotation query that the SDK's AnnotationQuery does not model,
# added in finalize(): annotation name -> {field: value} (filled by annotations.annotation()).
ANNOTATION_FIELDS: dict[str, dict[str, Any]] = {}

# ---- data source and variables -------------------------------------------------------------------
DATASOURCE: Final = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")


def datasource_variable() -> db.DatasourceVariable:
    return db.DatasourceVariable("datasource").label("Data source").type("prometheus")


def query_variable(
    name: str, label: str, query: str, *, multi: bool = False, include_all: bool = False
) -> db.QueryVariable:
    v = (
        db.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(include_all)
    )
    return v.all_value(".*") if include_all else v


# ---- queries and panels ----------------------------------------------------------------------------


def q(
    expr: str,
    legend: str,
    *,
    instant: bool = False,
    table_format: bool = False,
    heatmap_format: bool = False,
) -> prometheus.Dataquery:
    """One target. ``legend`` names each series (``{{label}}`` interpolated)."""
    t = prometheus.Dataquery().expr(expr).legend_format(legend).datasource(DATASOURCE)
    t = t.instant() if instant else t.range()
    if table_format:
        t = t.format(pm.PromQueryFormat.TABLE)
    if heatmap_format:
        t = t.format(pm.PromQueryFormat.HEATMAP)
    return t


def _targets(panel: Any, targets: Sequence[prometheus.Dataquery]) -> None:
    for letter, t in zip(string.ascii_uppercase, targets, strict=False):
        panel.with_target(t.ref_id(letter))


def _common(panel: Any, title: str, description: str, unit: str, w: int, h: int) -> Any:
    return (
        panel.title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .span(w)
        .height(h)
    )


def color(name: str) -> dm.DynamicConfigValue:
    return dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": name})


SIDE_COLORS: Final = (
    ("(?i).*\\blongs?\\b.*", "red"),
    ("(?i).*\\bshorts?\\b.*", "green"),
    ("(?i).*unknown.*", "gray"),
)


def ts(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    w: int = 12,
    h: int = 8,
    steps: Sequence[Level] | None = None,
    lo: float | None = None,
    hi: float | None = None,
    decimals: int | None = None,
    stack: bool = False,
    shorts_down: bool = False,
    side_colors: bool = False,
    bars: bool = False,
    overrides: Iterable[tuple[str, list[dm.DynamicConfigValue]]] = (),
) -> timeseries.Panel:
    """A time series. ``steps``: thresholds drawn as dashed lines (the alert levels);
    ``shorts_down``: series named "... shorts" drawn below zero (longs against shorts);
    ``side_colors``: longs red, shorts green; ``overrides``: (series-name regex, properties)."""
    p = _common(timeseries.Panel(), title, description, unit, w, h)
    p = p.legend(
        common_builders.VizLegendOptions()
        .show_legend(True)
        .display_mode(cm.LegendDisplayMode.LIST)
        .placement(cm.LegendPlacement.BOTTOM)
    )
    p = p.tooltip(
        common_builders.VizTooltipOptions()
        .mode(cm.TooltipDisplayMode.MULTI)
        .sort(cm.SortOrder.DESCENDING)
    )
    if steps is not None:
        p = p.thresholds(levels(*steps)).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)
        )
    if lo is not None:
        p = p.min(lo)
    if hi is not None:
        p = p.max(hi)
    if decimals is not None:
        p = p.decimals(decimals)
    if stack:
        p = p.stacking(common_builders.StackingConfig().mode(cm.StackingMode.NORMAL)).fill_opacity(
            60
        )
    if bars:
        p = p.draw_style(cm.GraphDrawStyle.BARS).fill_opacity(80)
    if side_colors:
        for rx, c in SIDE_COLORS:
            p = p.override_by_regexp(rx, [color(c)])
    if shorts_down:
        p = p.override_by_regexp(
            "(?i).*\\bshorts\\b.*",
            [dm.DynamicConfigValue(id_val="custom.transform", value="negative-Y")],
        )
    for rx, props in overrides:
        p = p.override_by_regexp(rx, props)
    _targets(p, targets)
    return p


def stat_panel(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    w: int = 6,
    h: int = 4,
    steps: Sequence[Level] = NEUTRAL,
    decimals: int | None = None,
) -> stat.Panel:
    p = _common(stat.Panel(), title, description, unit, w, h).thresholds(levels(*steps))
    p = p.reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    p = p.color_mode(
        cm.BigValueColorMode.BACKGROUND if steps is not NEUTRAL else cm.BigValueColorMode.NONE
    )
    if decimals is not None:
        p = p.decimals(decimals)
    _targets(p, targets)
    return p


def bar_gauge(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    w: int = 12,
    h: int = 8,
    side_colors: bool = False,
) -> bargauge.Panel:
    p = _common(bargauge.Panel(), title, description, unit, w, h).thresholds(levels(*NEUTRAL))
    p = p.reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    p = p.display_mode(cm.BarGaugeDisplayMode.BASIC).orientation(cm.VizOrientation.HORIZONTAL)
    if side_colors:
        for rx, c in SIDE_COLORS:
            p = p.override_by_regexp(rx, [color(c)])
    _targets(p, targets)
    return p


def heatmap_panel(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    w: int = 12,
    h: int = 8,
) -> heatmap.Panel:
    """Pre-bucketed Prometheus histogram (``le`` buckets, heatmap format): no recalculation."""
    p = _common(heatmap.Panel(), title, description, unit, w, h).calculate(False)
    p = p.y_axis(heatmap.YAxisConfig().unit(unit)).color(
        heatmap.HeatmapColorOptions().mode(hm.HeatmapColorMode.SCHEME).scheme("Oranges")
    )
    p = p.cell_values(heatmap.CellValues().unit("cps"))
    _targets(p, targets)
    return p


def table_panel(
    title: str,
    description: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    columns: dict[str, tuple[str, str, Sequence[Level] | None]],
    link: tuple[str, str] | None = None,
    w: int = 24,
    h: int = 9,
    sort_by: str | None = None,
) -> table.Panel:
    """A table of instant queries merged on their labels. ``columns``: the field each query's
    value becomes (``Value #A``) -> (shown name, unit, thresholds colouring the cell or None);
    ``link``: (column, URL) for a data link."""
    p = _common(table.Panel(), title, description, "none", w, h)
    p = p.with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
    rename = {f: name for f, (name, _, _) in columns.items()}
    p = p.with_transformation(
        dm.DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": {"Time": True, "job": True, "instance": True},
                "renameByName": rename,
            },
        )
    )
    for name, unit, steps in columns.values():  # overrides match the names after the renaming
        props = [dm.DynamicConfigValue(id_val="unit", value=unit)]
        if steps is not None:
            props.append(dm.DynamicConfigValue(id_val="thresholds", value=levels(*steps).build()))
            props.append(
                dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"})
            )
        p = p.override_by_name(name, props)
    if link is not None:
        col, url = link
        p = p.override_by_name(
            col,
            [
                dm.DynamicConfigValue(
                    id_val="links", value=[{"title": "Open the pair's drill-down", "url": url}]
                )
            ],
        )
    if sort_by is not None:
        p = p.sort_by([common_builders.TableSortByFieldState().display_name(sort_by).desc(True)])
    _targets(p, targets)
    return p


def row(title: str) -> db.Row:
    return db.Row(title)


def dashboard(uid: str, title: str, description: str) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .editable()
        .time("now-1h", "now")
        .refresh("30s")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .link(
            db.DashboardLink("cascade-monitor")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
        )
    )


def finalize(board: db.Dashboard) -> str:
    """The dashboard as stable JSON: panel ids 1.. in layout order, the annotation fields the SDK
    does not model, keys sorted, two-space indent, a final newline."""
    d: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    for i, panel in enumerate(d.get("panels", []), start=1):
        panel["id"] = i
    for a in d.get("annotations", {}).get("list", []):
        a.update(ANNOTATION_FIELDS.get(a["name"], {}))  # see annotations.py
    return json.dumps(d, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
