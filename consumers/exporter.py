"""Prometheus collector for the risk state: values are computed at scrape time.

One ``RiskCollector`` per registry (``RiskCollector.for_registry``); every consumer attaches its
exchange's ``RiskState``. On each scrape, per attached state, the collector takes the state's
event-time clock (``now = last event time + wall time elapsed since it was seen``, so a quiet market
decays with wall time), reads every pair's decayed values at ``now`` under the state's lock (one
consistent copy), and yields the ``monitor.core.metrics.RISK_METRICS`` families for the
``max_exported_symbols`` most active pairs of each exchange.

Ranking ("most active"): liquidation notional rate (all sides) plus traded notional rate (both taker
sides) over the longest horizon (300 s by default), decayed to ``now``, in USD/s; ties by cumulative
notional, then by first seen. A pair that drops out of the top N stops being exported (its counters
reappear, with their full totals, when it comes back).

Series per exported pair: rates per side and window (``window="10s"`` ...); liquidation counters per
side; traded notional; ``volatility_ewma`` (the square root of the EWMA variance per sampling interval,
``interval="1s"``) once a first interval has closed; ``last_price`` once a trade was seen. The
``unknown`` liquidated side is exported only for pairs that had such liquidations. Market context
(mark price, funding rate, open interest in USD) once the venue has sent it. The model outputs
(``monitor.core.metrics.MODEL_METRICS``: score and components, the branching ratio with its
interval and the exact fit's, Hawkes, flow extras, Kyle's lambda and feedback ratio, VPIN, bipower
and drawdown, the liquidation map's stress figures) once defined: a value that is NaN (too little
data yet) is left out rather than exported as a guess.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from consumers.columns import CONTEXT_FIELDS, LIQ_SIDES
from consumers.models.score import COMPONENTS
from consumers.readout import Readout
from consumers.state import RiskState
from monitor.core.metrics import NAMESPACE, RISK_METRICS, RiskMetric, for_registry
from monitor.core.symbols import VENUE_SYMBOL

RATE = f"{NAMESPACE}_liquidation_rate_usd_per_second"
LIQ_NOTIONAL = f"{NAMESPACE}_liquidation_notional_usd"
LIQ_COUNT = f"{NAMESPACE}_liquidations"
TRADE_NOTIONAL = f"{NAMESPACE}_trade_notional_usd"
VOLATILITY = f"{NAMESPACE}_volatility_ewma"
LAST_PRICE = f"{NAMESPACE}_last_price"
UNKNOWN_SIDE = LIQ_SIDES.index("unknown")
# market context exported per pair once the venue sent it: (family, CONTEXT_FIELDS column)
CONTEXT = (
    (f"{NAMESPACE}_mark_price", CONTEXT_FIELDS.index("mark")),
    (f"{NAMESPACE}_funding_rate", CONTEXT_FIELDS.index("funding")),
    (f"{NAMESPACE}_open_interest_usd", CONTEXT_FIELDS.index("oi_usd")),
)


def _family(name: str) -> GaugeMetricFamily | CounterMetricFamily:
    m: RiskMetric = RISK_METRICS[name]
    cls = CounterMetricFamily if m.kind == "counter" else GaugeMetricFamily
    return cls(m.name, m.doc, labels=list(m.labels))


def seconds_label(s: float) -> str:
    """``10.0`` -> ``"10s"``, ``0.5`` -> ``"0.5s"``."""
    return f"{s:g}s"


class RiskCollector(Collector):
    """One collector per registry; each consumer attaches its exchange's state to it.

    Several consumers (one per exchange) may share a registry, as the CLI and demo do; the cap of
    ``max_exported_symbols`` applies per exchange. Attaching a state for an exchange that already
    has one replaces it (a restarted consumer takes over the series).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._states: dict[str, tuple[RiskState, int]] = {}
        self._lock = threading.Lock()
        registry.register(self)

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> RiskCollector:
        """The registry's collector, created and registered on first use."""
        return for_registry(cls, registry)

    def attach(self, exchange: str, state: RiskState, max_exported_symbols: int) -> None:
        if max_exported_symbols <= 0:
            raise ValueError("max_exported_symbols must be > 0")
        with self._lock:
            self._states[exchange] = (state, max_exported_symbols)

    def describe(self) -> Iterable[Metric]:
        return [_family(name) for name in RISK_METRICS]

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            states = list(self._states.values())
        fam = {name: _family(name) for name in RISK_METRICS}
        for state, cap in states:
            add_pairs(fam, state.read(state.now_s()), cap, state.vol_interval_s)
        yield from fam.values()


def _model_series(r: Readout, i: int) -> Iterator[tuple[str, tuple[str, ...], float]]:
    """Pair ``i``'s model outputs as (family, extra label values, value); NaN values included
    (the caller drops them)."""
    m = r.models
    mi, hk, lm = m.micro, m.hawkes, m.liqmap
    ns = NAMESPACE
    yield f"{ns}_cascade_score", (), m.score[i]
    yield f"{ns}_cascade_score_coverage", (), m.score_coverage[i]
    yield f"{ns}_liquidation_surge", (), m.surge[i]
    for j, c in enumerate(COMPONENTS):
        yield f"{ns}_cascade_score_component", (c,), m.components[i, j]
    yield f"{ns}_branching_ratio", (), m.branching_ratio[i]
    yield f"{ns}_branching_ratio_lower", (), m.branching_ratio_lower[i]
    yield f"{ns}_branching_ratio_upper", (), m.branching_ratio_upper[i]
    yield f"{ns}_branching_ratio_exact", (), m.branching_ratio_exact[i]
    yield f"{ns}_branching_ratio_count_moment", (), hk.n_count_moment[i]
    yield f"{ns}_hawkes_intensity_per_second", (), hk.intensity_per_s[i]
    yield f"{ns}_hawkes_exogenous_rate_per_second", (), hk.mu_per_s[i]
    for h, w in enumerate(mi.horizons_s):
        yield f"{ns}_liquidation_imbalance", (seconds_label(w),), mi.imbalance[i, h]
        yield f"{ns}_liquidation_share_of_volume", (seconds_label(w),), mi.liq_share[i, h]
    yield f"{ns}_liquidation_rate_zscore", (), mi.liq_rate_z[i]
    yield f"{ns}_liquidation_saturation", (), mi.saturation[i]
    yield f"{ns}_kyle_lambda", (), mi.kyle_lambda[i]
    yield f"{ns}_amihud_ratio", (), mi.amihud[i]
    yield f"{ns}_feedback_ratio", ("down",), m.n_struct[i, 0]
    yield f"{ns}_feedback_ratio", ("up",), m.n_struct[i, 1]
    yield f"{ns}_vpin", (), mi.vpin[i]
    yield f"{ns}_bipower_variance_per_second", (), mi.bipower[i]
    yield f"{ns}_realized_variance_per_second", (), mi.realized_var[i]
    yield f"{ns}_jump_share", (), mi.jump_share[i]
    yield f"{ns}_drawdown_ratio", (), mi.drawdown[i]
    for s, side in ((0, "long"), (1, "short")):
        yield f"{ns}_liquidation_density_usd_per_pct", (side,), lm.density_usd_per_log[i, s] / 100
        yield f"{ns}_expected_liquidations_usd", (side,), lm.expected_usd[i, s]
        for j, pct in enumerate(lm.levels_pct):
            yield f"{ns}_notional_at_risk_usd", (side, f"{pct:g}pct"), lm.at_risk_usd[i, s, j]
    yield f"{ns}_margin_stress_index", (), lm.msi[i]


def add_pairs(
    fam: dict[str, GaugeMetricFamily | CounterMetricFamily],
    r: Readout,
    max_pairs: int,
    vol_interval_s: float,
) -> None:
    """Add the ``max_pairs`` most active pairs of ``r`` to the families."""
    windows = [seconds_label(h) for h in r.horizons_s]
    interval = seconds_label(vol_interval_s)
    ranked = [i for i in r.ranked() if r.keys[i][1] != VENUE_SYMBOL]  # the venue row: pooled
    for i in ranked[:max_pairs]:
        exchange, symbol = r.keys[i]
        for j, side in enumerate(LIQ_SIDES):
            if j == UNKNOWN_SIDE and r.liq_count[i, j] == 0:
                continue
            for h, window in enumerate(windows):
                fam[RATE].add_metric([exchange, symbol, side, window], float(r.liq_rate[i, j, h]))
            labels = [exchange, symbol, side]
            fam[LIQ_NOTIONAL].add_metric(labels, float(r.liq_notional[i, j]))
            fam[LIQ_COUNT].add_metric(labels, float(r.liq_count[i, j]))
        fam[TRADE_NOTIONAL].add_metric([exchange, symbol], float(r.trd_notional[i]))
        var = float(r.variance[i])
        if math.isfinite(var):
            fam[VOLATILITY].add_metric([exchange, symbol, interval], math.sqrt(var))
        px = float(r.last_price[i])
        if math.isfinite(px):
            fam[LAST_PRICE].add_metric([exchange, symbol], px)
        for name, col in CONTEXT:
            v = float(r.context[i, col])
            if math.isfinite(v):
                fam[name].add_metric([exchange, symbol], v)
        for name, extra, value in _model_series(r, i):
            v = float(value)
            if math.isfinite(v):
                fam[name].add_metric([exchange, symbol, *extra], v)
