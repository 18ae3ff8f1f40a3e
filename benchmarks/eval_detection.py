"""Detection evaluation: seeded reflexive crash scenarios through ``backtest``, scored against
their ground truth, plus every alert of the shared real recordings.

    .venv/bin/python benchmarks/eval_detection.py [--scenarios 102] [--workers 2]
        [--json FILE] [--png FILE] [--compare BASELINE.json] [--config FILE]

Scenario ``i`` is family ``FAMILIES[i % 6]`` with seed ``first_seed + i // 6``, simulated on every
venue (so each venue gets its share of the flow) and rendered as one venue publishes it, the
venues taken in turn per family (``--venues``: by default Binance: sampled, at most one per symbol
per second; OKX: at most one per contract per second; Bybit: 500 ms batches; Deribit: flagged
trades, complete). The recording then goes through ``monitor.app.backtest.backtest`` with the
configuration (default rules unless ``--config``), and its alert transitions are scored:

* detection (cascade families, scenarios whose truth ``is_cascade``): an alert of severity
  warning or critical active at some time between the onset and the end of the peak minute (it
  fired before the peak minute ended and had not resolved before the onset);
* lead time: the start of the peak minute minus the first firing of such an alert (negative: it
  came during the peak minute); "first minute": fired at most 60 s after the onset;
* false alerts per simulated venue-day: alert firings (new episodes) in the calm, slow-grind and
  no-leverage families, per 86,400 s simulated;
* ROC AUC of the score and of the branching ratio: the maximum over the venue's pairs in 10 s
  bins; positives are the bins from 5 minutes before the peak minute to its end in cascade
  scenarios, negatives every bin of the negative families and the bins of cascade scenarios
  ending 15 minutes before their onset. An undefined value ranks lowest.

Prints the table per family x coverage, writes the figures as JSON (``--json``) and a PNG
(``--png``): the distribution of lead times, and the score against time for three example
scenarios with their alerts, onset and peak minute. ``--compare`` prints each figure beside the
same figure of an earlier JSON (the baseline).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import producers.registry  # noqa: F401  (registers the venues before a configuration is built)
from monitor.app.backtest import backtest
from monitor.app.evaluation import (
    CASCADE_FAMILIES,
    COVERAGE,
    DEFAULT_VENUES,
    Outcome,
    detection,
    jobs,
    run_job,
    summarize,
)
from monitor.core.config import Config, load

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance-real"

# ---- output -------------------------------------------------------------------------------------


def _finite(x: float | None) -> float:
    """A plotted value: NaN for an undefined one (None once read back from JSON, or +-inf)."""
    return float(x) if x is not None and math.isfinite(x) else math.nan


def table(summary: dict[str, Any], baseline: dict[str, Any] | None = None) -> str:
    def fmt(v: Any, spec: str) -> str:
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)

    def pair(key: str, name: str, spec: str) -> str:
        now = fmt(summary["cells"].get(key, {}).get(name), spec)
        if baseline is None:
            return now
        was = fmt(baseline["cells"].get(key, {}).get(name), spec)
        return f"{now} (was {was})"

    rows = [f"{'family':<17} {'coverage':<28} {'n':>3}  {'detected':>16} {'first min':>16} "
            f"{'lead median':>20} {'lead p10':>20} {'false/venue-day':>20}"]  # fmt: skip
    for key, cell in summary["cells"].items():
        family, venue = key.split("|")
        cov = COVERAGE.get(venue, venue)
        if family in CASCADE_FAMILIES:
            det = f"{cell['detected']}/{cell['cascades']}"
            rows.append(
                f"{family:<17} {cov:<28} {cell['n']:>3}  {det + ' ' + pair(key, 'detection_rate', '.0%'):>16} "
                f"{pair(key, 'first_minute', '.0%'):>16} {pair(key, 'lead_median_s', '.0f'):>20} "
                f"{pair(key, 'lead_p10_s', '.0f'):>20} {'':>20}"
            )  # fmt: skip
        else:
            rows.append(
                f"{family:<17} {cov:<28} {cell['n']:>3}  {'':>16} {'':>16} {'':>20} {'':>20} "
                f"{pair(key, 'false_per_venue_day', '.2f'):>20}"
            )  # fmt: skip
    rows.append("")
    rows.append(f"{'ROC AUC':<17} {'coverage':<28} {'score':>16} {'branching ratio':>20}")
    for venue, a in summary["auc"].items():
        was = (baseline or {}).get("auc", {}).get(venue, {})
        s = fmt(a["auc_score"], ".3f") + (
            f" (was {fmt(was.get('auc_score'), '.3f')})" if baseline else ""
        )
        b = fmt(a["auc_branching"], ".3f") + (
            f" (was {fmt(was.get('auc_branching'), '.3f')})" if baseline else ""
        )
        rows.append(f"{'':<17} {COVERAGE.get(venue, venue):<28} {s:>16} {b:>20}")
    rel = summary.get("reliability") or []
    if rel:
        rows.append("")
        rows.append("score as a probability (bins by score decile: scored bins, mean score -> "
                    "share positive)")  # fmt: skip
        rows += [f"  [{r['lo']:.1f}, {r['hi']:.1f}) {r['n']:>6}  {fmt(r['mean_p'], '.3f')} -> "
                 f"{fmt(r['observed'], '.3f')}" for r in rel if r["n"]]  # fmt: skip
    return "\n".join(rows)


def figure(outcomes: list[Outcome], summary: dict[str, Any], path: Path) -> None:
    fig = Figure(figsize=(17, 8))
    axes = fig.subplots(2, 3)
    _reliability(axes[1][2], summary)
    _headline(axes[0][2], summary)
    ax = axes[0][0]
    for venue in sorted({o.venue for o in outcomes}):
        leads = [lead / 60 for o in outcomes if o.venue == venue
                 for ok, lead, _ in [detection(o)] if ok and lead is not None]  # fmt: skip
        if leads:
            ax.hist(
                leads, bins=20, alpha=0.55, label=f"{COVERAGE.get(venue, venue)} ({len(leads)})"
            )
    if not ax.patches:
        ax.text(0.5, 0.5, "no cascade detected", ha="center", va="center", transform=ax.transAxes)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("lead before the peak minute (minutes)")
    ax.set_ylabel("detected cascades")
    ax.set_title("Lead times")
    if ax.patches:
        ax.legend(fontsize=7)
    examples = _examples(outcomes)
    for ax, o in zip([axes[0][1], axes[1][0], axes[1][1]], examples, strict=False):
        t = np.array([b[0] for b in o.bins]) / 60
        ax.plot(t, [_finite(b[1]) for b in o.bins], lw=0.9, label="max score")
        ax.plot(t, [_finite(b[2]) for b in o.bins], lw=0.6, alpha=0.7,
                label="max branching ratio")  # fmt: skip
        if o.onset_s is not None:
            ax.axvline(o.onset_s / 60, color="tab:red", lw=0.8, ls="--", label="onset")
        if o.onset_s is not None and o.peak_minute_s is not None:
            ax.axvspan(o.peak_minute_s / 60, o.peak_minute_s / 60 + 1, color="tab:red", alpha=0.15,
                       label="peak minute")  # fmt: skip
        for a in o.alerts:
            if a["status"] == "firing":
                ax.axvline(a["t"] / 60, color="tab:orange" if a["severity"] == "warning" else "k",
                           lw=0.6)  # fmt: skip
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{o.family} seed {o.seed}, {COVERAGE.get(o.venue, o.venue)} "
                     f"({sum(a['status'] == 'firing' for a in o.alerts)} firings)", fontsize=9)  # fmt: skip
        ax.set_xlabel("scenario minutes")
        ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _headline(ax: Any, summary: dict[str, Any]) -> None:
    ax.axis("off")
    lines = []
    for key, cell in summary["cells"].items():
        family, venue = key.split("|")
        if venue != "all":
            continue
        if "cascades" in cell:
            lines.append(f"{family}: {cell['detected']}/{cell['cascades']} detected, "
                         f"{cell['first_minute']:.0%} in the first minute")  # fmt: skip
        else:
            lines.append(f"{family}: {cell['false_alerts']} false alerts "
                         f"in {cell['venue_days']:.2f} venue-days")  # fmt: skip
    a = summary["auc"].get("all", {})
    lines.append(f"ROC AUC: score {a.get('auc_score', math.nan):.3f}, "
                 f"branching ratio {a.get('auc_branching', math.nan):.3f}")  # fmt: skip
    ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=9, family="monospace",
            transform=ax.transAxes)  # fmt: skip
    ax.set_title("All coverages")


def _reliability(ax: Any, summary: dict[str, Any]) -> None:
    rel = [r for r in summary.get("reliability") or [] if r["n"]]
    ax.plot([0, 1], [0, 1], color="k", lw=0.7, ls="--", label="perfect")
    ax.plot([r["mean_p"] for r in rel], [r["observed"] for r in rel], marker="o",
            label="max score per 10 s bin")  # fmt: skip
    for r in rel:
        ax.annotate(str(r["n"]), (r["mean_p"], r["observed"]), fontsize=6,
                    textcoords="offset points", xytext=(3, -8))  # fmt: skip
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("score (decile mean)")
    ax.set_ylabel("share of positive bins")
    ax.set_title("Score reliability (bins per point)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")


def _examples(outcomes: list[Outcome]) -> list[Outcome]:
    out = []
    for family in ("jan27", "flash_crash", "calm"):
        os_ = [o for o in outcomes if o.family == family and (o.is_cascade or family == "calm")]
        if os_:
            out.append(min(os_, key=lambda o: (o.venue != "binance", o.seed)))
    return out


def real_alerts(cfg: Config) -> dict[str, Any]:
    files = sorted(REAL.glob("*.jsonl.gz"))
    if not files:
        return {"files": [], "alerts": []}
    result = backtest(cfg, files)
    return {"files": [f.name for f in files],
            "frames": sum(v.producer.frames for v in result.venues),
            "alerts": [{"t_ms": round(e.t * 1000), "status": e.status, "severity": e.severity,
                        "rule": e.rule, "symbol": e.symbol, "value": e.value}
                       for e in result.transitions]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scenarios", type=int, default=102)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--venues", default=",".join(DEFAULT_VENUES))
    ap.add_argument("--config", help="configuration file (default: the defaults)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--png", type=Path, help="write the figure here")
    ap.add_argument("--compare", type=Path, help="an earlier --json, printed beside")
    ap.add_argument("--replot", type=Path, help="draw --png from an earlier --json and stop")
    a = ap.parse_args()
    if a.replot:
        doc = orjson.loads(a.replot.read_bytes())
        outs = [
            Outcome(**{**o, "bins": [tuple(b) for b in o["bins"] or []]}) for o in doc["outcomes"]
        ]
        figure(outs, doc["summary"], a.png)
        print(table(doc["summary"]))
        return
    venues = tuple(a.venues.split(","))
    todo = jobs(a.scenarios, a.first_seed, venues)
    t0 = time.perf_counter()
    ctx = mp.get_context("spawn")
    with ctx.Pool(a.workers) as pool:
        outcomes = pool.map(run_job, [(j, a.config) for j in todo], chunksize=1)
    cfg = load(Path(a.config) if a.config else None, environ={})
    real = real_alerts(cfg)
    wall = time.perf_counter() - t0
    summary = summarize(outcomes)
    baseline = orjson.loads(a.compare.read_bytes())["summary"] if a.compare else None
    print(table(summary, baseline))
    print(f"\nshared real recordings ({len(real['files'])} files, {real.get('frames', 0)} frames): "
          f"{len(real['alerts'])} alert transitions")  # fmt: skip
    for al in real["alerts"]:
        print(f"  {al}")
    sim_h = sum(o.duration_s for o in outcomes) / 3600
    print(f"\n{len(outcomes)} scenarios ({sim_h:.1f} simulated venue-hours) in {wall:.0f} s wall "
          f"on {a.workers} workers (target < 600 s); job median {statistics.median(o.seconds for o in outcomes):.1f} s")  # fmt: skip
    if a.json:
        examples = {id(o) for o in _examples(outcomes)}  # their curves, for --replot
        doc = {"summary": summary, "real": real, "wall_s": wall, "scenarios": len(outcomes),
               "outcomes": [asdict(o) | ({} if id(o) in examples else {"bins": None})
                            for o in outcomes]}  # fmt: skip
        a.json.write_bytes(
            orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
        )
    if a.png:
        figure(outcomes, summary, a.png)
        print(f"figure written to {a.png}")


if __name__ == "__main__":
    main()
