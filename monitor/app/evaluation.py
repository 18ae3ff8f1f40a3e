"""Detection evaluation: seeded reflexive crash scenarios rendered as a venue publishes them, run
through ``backtest``, and scored against their ground truth (used by
``benchmarks/eval_detection.py``, which prints the table and draws the figure).

Scenario ``i`` is family ``FAMILY_ORDER[i % 6]`` with seed ``first_seed + i // 6``, simulated on
every venue (so each venue gets its share of the flow) and rendered as one venue publishes it, the
venues taken in turn per family (by default Binance: sampled, at most one per symbol per second;
OKX: at most one per contract per second; Bybit: 500 ms batches; Deribit: flagged trades,
complete). Scoring (``summarize``):

* detection (cascade families, scenarios whose truth ``is_cascade``): an alert of severity
  warning or critical active at some time between the onset and the end of the peak minute (it
  fired before the peak minute ended and had not resolved before the onset);
* lead time: the start of the peak minute minus the first firing of such an alert (negative: it
  came during the peak minute); "first minute": it fired at most 60 s after the onset;
* false alerts per simulated venue-day: alert episodes (a firing, until resolved) in the calm,
  slow-grind and no-leverage families, per 86,400 s simulated;
* ROC AUC of the score and of the branching ratio: their maximum over the venue's pairs in 10 s
  bins; positives are the bins from 5 minutes before the peak minute to its end in cascade
  scenarios, negatives every bin of the negative families and the bins of cascade scenarios that
  end 15 minutes before their onset. An undefined value ranks lowest.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from consumers.models.score import COMPONENTS
from monitor.app.backtest import COMPONENT_PREFIX, backtest
from monitor.app.calibration import auc as calibration_auc
from monitor.app.calibration import reliability
from monitor.core.alertrecord import AlertEvent
from monitor.core.config import load
from monitor.simulator.reflexive.families import FAMILIES
from monitor.simulator.reflexive.render import render_venue, start_ms_for

CASCADE_FAMILIES = ("jan27", "flash_crash", "short_squeeze")
NEGATIVE_FAMILIES = ("calm", "slow_grind", "no_leverage_news")
FAMILY_ORDER = ("jan27", "flash_crash", "short_squeeze", "calm", "slow_grind", "no_leverage_news")
COVERAGE = {"binance": "sampled 1/symbol/s", "okx": "sampled 1/contract/s",
            "bybit": "aggregated 500 ms", "deribit": "complete (flagged trades)",
            "kraken": "complete (flagged trades)", "bitmex": "complete (order lifecycle)"}  # fmt: skip
DEFAULT_VENUES = ("binance", "okx", "bybit", "deribit")
BIN_S = 10.0
POSITIVE_BEFORE_PEAK_S = 300.0
NEGATIVE_BEFORE_ONSET_S = 900.0


@dataclass
class Job:
    index: int
    family: str
    seed: int
    venue: str


@dataclass
class Outcome:
    family: str
    seed: int
    venue: str
    duration_s: float
    is_cascade: bool
    onset_s: float | None
    peak_minute_s: float | None
    alerts: list[dict[str, Any]]  # firings and resolutions, scenario seconds
    bins: list[tuple[float, float, float]] = field(default_factory=list)  # (t, score, n)
    seconds: float = 0.0  # wall time of the job
    events: int = 0
    # with components: per 10 s bin and pair, the score components at the pair's last
    # evaluation in the bin, (bin start, symbol, COMPONENTS values or None where undefined)
    comps: list[tuple[float, str, list[float | None]]] | None = None


def jobs(n: int, first_seed: int, venues: Sequence[str]) -> list[Job]:
    out = []
    for i in range(n):
        family = FAMILY_ORDER[i % len(FAMILY_ORDER)]
        k = i // len(FAMILY_ORDER)
        out.append(Job(i, family, first_seed + k, venues[k % len(venues)]))
    return out


def _binned(result_series: dict[Any, Any], t0: float) -> list[tuple[float, float, float]]:
    """Per 10 s bin: the maximum score and branching ratio over the venue's pairs."""
    score: dict[int, float] = defaultdict(lambda: -math.inf)
    n: dict[int, float] = defaultdict(lambda: -math.inf)
    for times, values in result_series.values():
        for t, s, b in zip(times, values["score"], values["branching_ratio"], strict=True):
            k = int((t - t0) // BIN_S)
            if not math.isnan(s):
                score[k] = max(score[k], s)
            if not math.isnan(b):
                n[k] = max(n[k], b)
            else:
                n.setdefault(k, -math.inf)
    return [(k * BIN_S, score[k], n[k]) for k in sorted(set(score) | set(n))]


def _component_bins(
    result_series: dict[Any, Any], t0: float
) -> list[tuple[float, str, list[float | None]]]:
    """Per 10 s bin and pair: the components at the pair's last evaluation in the bin."""
    names = [COMPONENT_PREFIX + c for c in COMPONENTS]
    out = []
    for (_, symbol), (times, values) in result_series.items():
        last: dict[int, int] = {}
        for i, t in enumerate(times):
            last[int((t - t0) // BIN_S)] = i
        for k, i in sorted(last.items()):
            row = [values[n][i] for n in names]
            out.append((k * BIN_S, symbol, [v if math.isfinite(v) else None for v in row]))
    return out


def run_job(args: tuple[Job, str | None] | tuple[Job, str | None, bool]) -> Outcome:
    """One scenario through ``backtest``; a third element True also keeps the score components
    per bin and pair (``Outcome.comps``, for ``benchmarks/calibrate_score.py``)."""
    job, config_path = args[0], args[1]
    keep_comps = len(args) > 2 and bool(args[2])
    t_start = time.perf_counter()
    cfg = load(Path(config_path) if config_path else None, environ={})
    scenario = FAMILIES[job.family](job.seed)
    start_ms = start_ms_for(job.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{job.family}-{job.seed}.{job.venue}.jsonl.gz"
        render_venue(scenario, job.venue, path, start_ms=start_ms, name=path.stem)
        series: tuple[str, ...] = ("score", "branching_ratio")
        if keep_comps:
            series += tuple(COMPONENT_PREFIX + c for c in COMPONENTS)
        result = backtest(cfg, [path], series=series)
    t0 = start_ms / 1000.0
    truth = scenario.truth
    alerts = [_alert(e, t0) for e in result.transitions]
    events = sum(v.producer.frames for v in result.venues)
    return Outcome(
        job.family, job.seed, job.venue, truth.duration_s, truth.is_cascade, truth.onset_s,
        truth.peak_minute_s, alerts, _binned(result.series, t0), time.perf_counter() - t_start,
        events, _component_bins(result.series, t0) if keep_comps else None,
    )  # fmt: skip


def _alert(e: AlertEvent, t0: float) -> dict[str, Any]:
    return {"t": e.t - t0, "status": e.status, "severity": e.severity, "rule": e.rule,
            "symbol": e.symbol, "value": e.value, "started": e.started_t - t0}  # fmt: skip


# ---- scoring ------------------------------------------------------------------------------------


def episodes(alerts: list[dict[str, Any]]) -> list[tuple[float, float, str, str]]:
    """(fired, resolved or inf, rule, symbol) per alert episode."""
    open_: dict[tuple[str, str], float] = {}
    out = []
    for a in sorted(alerts, key=lambda a: a["t"]):
        key = (a["rule"], a["symbol"])
        if a["status"] == "firing" and key not in open_:
            open_[key] = a["t"]
        elif a["status"] == "resolved" and key in open_:
            out.append((open_.pop(key), a["t"], *key))
    out += [(t, math.inf, *key) for key, t in open_.items()]
    return sorted(out)


def detection(o: Outcome) -> tuple[bool, float | None, bool]:
    """(detected, lead before the peak minute, warned within the first minute of the onset)."""
    if o.onset_s is None or o.peak_minute_s is None:
        return False, None, False
    end = o.peak_minute_s + 60.0
    active = [f for f, r, _, _ in episodes(o.alerts) if f <= end and r >= o.onset_s]
    if not active:
        return False, None, False
    first = min(active)
    return True, o.peak_minute_s - first, first - o.onset_s <= 60.0


def auc(pos: list[float], neg: list[float]) -> float:
    """P(a positive ranks above a negative), ties half (Mann-Whitney; ``calibration.auc``)."""
    values = np.array(pos + neg, dtype=np.float64)
    return calibration_auc(values, np.arange(values.size) < len(pos))


def label(o: Outcome, t: float) -> bool | None:
    """The class of the 10 s bin starting at ``t`` (the module docstring): True from 5 minutes
    before the peak minute to its end in a cascade, False in a negative family or in a cascade
    scenario's bins ending 15 minutes before its onset, None otherwise (not scored)."""
    if o.family in NEGATIVE_FAMILIES:
        return False
    if o.is_cascade and o.peak_minute_s is not None and o.onset_s is not None:
        if o.peak_minute_s - POSITIVE_BEFORE_PEAK_S <= t < o.peak_minute_s + 60:
            return True
        if t + BIN_S <= o.onset_s - NEGATIVE_BEFORE_ONSET_S:
            return False
    return None


def labelled(outcomes: list[Outcome], which: int) -> tuple[list[float], list[float]]:
    pos: list[float] = []
    neg: list[float] = []
    for o in outcomes:
        for b in o.bins:
            t, v = b[0], b[which]
            v = -1.0 if not math.isfinite(v) else v
            y = label(o, t)
            if y is not None:
                (pos if y else neg).append(v)
    return pos, neg


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    cells: dict[str, dict[str, Any]] = {}
    for family in FAMILY_ORDER:
        for venue in sorted({o.venue for o in outcomes}):
            os_ = [o for o in outcomes if o.family == family and o.venue == venue]
            if os_:
                cells[f"{family}|{venue}"] = _cell(family, os_)
    for family in FAMILY_ORDER:
        os_ = [o for o in outcomes if o.family == family]
        if os_:
            cells[f"{family}|all"] = _cell(family, os_)
    by_cov = {}
    for venue in sorted({o.venue for o in outcomes}):
        os_ = [o for o in outcomes if o.venue == venue]
        by_cov[venue] = {
            "auc_score": auc(*labelled(os_, 1)),
            "auc_branching": auc(*labelled(os_, 2)),
        }
    by_cov["all"] = {"auc_score": auc(*labelled(outcomes, 1)),
                     "auc_branching": auc(*labelled(outcomes, 2))}  # fmt: skip
    return {"cells": cells, "auc": by_cov, "reliability": score_reliability(outcomes)}


def score_reliability(outcomes: list[Outcome], bins: int = 10) -> list[dict[str, float]]:
    """The score read as a probability (docs/detection.md §6): per score decile over the scored
    bins (where a score was computed), how many, the mean score and the share that were
    positive."""
    pos, neg = labelled(outcomes, 1)
    p = np.array(pos + neg, dtype=np.float64)
    y = np.array([True] * len(pos) + [False] * len(neg))
    keep = p >= 0  # -1: no score in the bin
    return reliability(np.clip(p[keep], 0.0, 1.0), y[keep], bins)


def _cell(family: str, os_: list[Outcome]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(os_)}
    if family in CASCADE_FAMILIES:
        casc = [o for o in os_ if o.is_cascade]
        det = [detection(o) for o in casc]
        leads = [lead for ok, lead, _ in det if ok and lead is not None]
        out.update(
            cascades=len(casc), detected=sum(ok for ok, _, _ in det),
            detection_rate=(sum(ok for ok, _, _ in det) / len(casc)) if casc else math.nan,
            first_minute=(sum(fm for _, _, fm in det) / len(casc)) if casc else math.nan,
            lead_median_s=statistics.median(leads) if leads else math.nan,
            lead_p10_s=float(np.percentile(leads, 10)) if leads else math.nan,
            leads_s=leads,
        )  # fmt: skip
    else:
        days = sum(o.duration_s for o in os_) / 86_400.0
        firings = sum(len(episodes(o.alerts)) for o in os_)
        out.update(venue_days=days, false_alerts=firings, false_per_venue_day=firings / days)
    return out
