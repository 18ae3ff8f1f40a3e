"""Fit the composite score's weights and logistic calibration on simulated scenarios
(``monitor.app.calibration``, docs/detection.md §6), and show how well each choice predicts out of
sample.

    .venv/bin/python benchmarks/calibrate_score.py [--scenarios 48] [--first-seed 2001]
        [--workers 2] [--data FILE] [--save-data FILE] [--json FILE] [--png FILE]

The scenarios are the detection evaluation's (``monitor.app.evaluation.jobs``), by default 48 on
the training seeds 2001-2008, disjoint from the evaluation's seeds 1-17. ``--save-data`` keeps the
components per bin, ``--data`` reuses them instead of running the scenarios again.

Three models are compared by leave-one-seed-out cross-validation (each seed's scenarios
predicted by a fit on the others): the hand-set weights as they are (raw mean, no calibration),
the hand-set weights with a fitted logistic map, and weights fitted together with the map. Printed:
the out-of-fold log-loss, Brier score and ROC AUC of each, the weights fitted on all the data, the
config lines to use them, and the reliability table (probability decile: bins, mean predicted,
observed frequency). ``--png`` draws the reliability diagram.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
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
from consumers.models.score import COMPONENTS
from monitor.app import calibration as cal
from monitor.app.evaluation import DEFAULT_VENUES, Outcome, jobs, label, run_job
from monitor.core.config import RiskConfig

# the hand-set weights the score had before its fit (docs/risk-models.md §7), the fit's start
HAND = np.array((0.25, 0.20, 0.15, 0.10, 0.10, 0.10, 0.10, 0.0))
DEFAULTS = np.array(RiskConfig().score_weights)


def outcomes(a: argparse.Namespace) -> list[Outcome]:
    if a.data:
        return [Outcome(**o) for o in orjson.loads(Path(a.data).read_bytes())]
    todo = jobs(a.scenarios, a.first_seed, DEFAULT_VENUES)
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(a.workers) as pool:
        outs = pool.map(run_job, [(j, None, True) for j in todo], chunksize=1)
    print(f"{len(outs)} scenarios in {time.perf_counter() - t0:.0f} s on {a.workers} workers")
    if a.save_data:
        Path(a.save_data).write_bytes(orjson.dumps([asdict(o) for o in outs]))
    return outs


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scenarios", type=int, default=48)
    ap.add_argument("--first-seed", type=int, default=2001)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data", help="components saved by --save-data (skips the scenarios)")
    ap.add_argument("--save-data")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--png", type=Path)
    a = ap.parse_args()
    outs = outcomes(a)
    ds = cal.dataset(outs, label, len(COMPONENTS))
    seeds = sorted({o.seed for o in outs})
    print(f"{ds.bins} labelled 10 s bins ({int(ds.y.sum())} positive) from {len(outs)} "
          f"scenarios, seeds {seeds[0]}-{seeds[-1]}, {ds.comps.shape[0]} pair rows")  # fmt: skip
    t0 = time.perf_counter()

    def hand_map(d: cal.Dataset) -> tuple[cal.F64, float, float]:
        x = cal.raw_max(d, HAND)
        return HAND, *cal.fit_logistic(x, d.y)

    fixed = cal.undefined_in_positives(ds)
    share = np.isfinite(ds.comps[ds.y[ds.group]]).mean(axis=0)
    print("components defined in the positive bins' rows: "
          + ", ".join(f"{c} {s:.0%}" for c, s in zip(COMPONENTS, share, strict=True)))  # fmt: skip
    if fixed:
        print("kept at weight 0 (undefined in over 95% of them, nothing to fit): "
              + ", ".join(COMPONENTS[j] for j in fixed))  # fmt: skip
    start = np.where(HAND > 0, HAND, 0.1)  # every free component starts in play

    def fitted(d: cal.Dataset) -> tuple[cal.F64, float, float]:
        w, ca, cb, _ = cal.fit_weights(d, start, fixed=fixed)
        return w, ca, cb

    raw_p = np.clip(cal.raw_max(ds, HAND), 0.0, 1.0)  # today's score: the raw mean
    models: dict[str, cal.F64] = {
        "hand weights, raw mean": raw_p,
        "hand weights, fitted map": cal.cross_validate(ds, hand_map),
        "fitted weights and map": cal.cross_validate(ds, fitted),
    }
    w, ca, cb, loss = cal.fit_weights(ds, start, fixed=fixed)
    ha, hb = cal.fit_logistic(cal.raw_max(ds, HAND), ds.y)
    cv_s = time.perf_counter() - t0
    base = float(ds.y.mean())
    print(f"\nout of fold (leave one seed out), base rate {base:.3f} "
          f"(log-loss of a constant {cal.log_loss(np.full(ds.bins, base), ds.y):.4f})")  # fmt: skip
    print(f"{'model':<26} {'log-loss':>9} {'Brier':>7} {'AUC':>6}")
    figures: dict[str, Any] = {}
    for name, p in models.items():
        figures[name] = {"log_loss": cal.log_loss(p, ds.y), "brier": cal.brier(p, ds.y),
                         "auc": cal.auc(p, ds.y), "reliability": cal.reliability(p, ds.y)}  # fmt: skip
        f = figures[name]
        print(f"{name:<26} {f['log_loss']:>9.4f} {f['brier']:>7.4f} {f['auc']:>6.3f}")
    print(f"\nfitted on all {len(seeds)} seeds ({cv_s:.0f} s with the cross-validation):")
    print(f"{'component':<15} {'hand':>6} {'fitted':>7} {'defaults':>9}")
    for c, h, f, d in zip(COMPONENTS, HAND / HAND.sum(), w, DEFAULTS, strict=True):
        print(f"{c:<15} {h:>6.3f} {f:>7.3f} {d:>9.4f}")
    print(f"logistic map: fitted weights a = {ca:.3f}, b = {cb:.3f} (in-sample log-loss "
          f"{loss:.4f}); hand weights a = {ha:.3f}, b = {hb:.3f}")  # fmt: skip
    print("\n[risk]\nscore_weights = [" + ", ".join(f"{x:g}" for x in w) + "]")
    print(f"score_calibration = [{ca:.3f}, {cb:.3f}]")
    print("\nreliability, out of fold (probability decile: bins, mean predicted -> observed)")
    for name in list(models)[1:]:
        print(f"  {name}")
        for r in figures[name]["reliability"]:
            if r["n"]:
                print(f"    [{r['lo']:.1f}, {r['hi']:.1f}) {r['n']:>6}  "
                      f"{r['mean_p']:.3f} -> {r['observed']:.3f}")  # fmt: skip
    if a.json:
        doc = {"bins": ds.bins, "positives": int(ds.y.sum()), "seeds": seeds,
               "components": list(COMPONENTS), "hand_weights": HAND.tolist(),
               "weights": w.tolist(), "calibration": [ca, cb],
               "fixed_at_zero": [COMPONENTS[j] for j in fixed],
               "hand_calibration": [ha, hb], "out_of_fold": figures}  # fmt: skip
        a.json.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    if a.png:
        fig = Figure(figsize=(6, 5.5))
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], color="k", lw=0.7, ls="--", label="perfect")
        for name in models:
            rel = [r for r in figures[name]["reliability"] if r["n"]]
            ax.plot([r["mean_p"] for r in rel], [r["observed"] for r in rel], marker="o",
                    label=f"{name} (Brier {figures[name]['brier']:.3f})")  # fmt: skip
        ax.set_xlabel("predicted probability (out of fold)")
        ax.set_ylabel("observed share of positive bins")
        ax.set_title(f"Score reliability, seeds {seeds[0]}-{seeds[-1]}, {ds.bins} bins")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(a.png, dpi=110)
        print(f"figure written to {a.png}")


if __name__ == "__main__":
    main()
