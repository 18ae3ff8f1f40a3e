"""The detection evaluation's scoring (monitor/app/evaluation.py), and one scenario through the
whole evaluation path. Figures are asserted only as invariants: the ground truth is consistent,
the scores are what their definitions say, never a tuned level."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from monitor.app.evaluation import (
    BIN_S,
    Job,
    Outcome,
    auc,
    detection,
    episodes,
    jobs,
    labelled,
    run_job,
    summarize,
)


def _alert(t: float, status: str, rule: str = "r", symbol: str = "S") -> dict[str, object]:
    return {"t": t, "status": status, "severity": "warning", "rule": rule, "symbol": symbol,
            "value": 1.0, "started": t}  # fmt: skip


def _outcome(family: str, alerts: list[dict[str, object]], **kw: object) -> Outcome:
    base: dict[str, object] = dict(family=family, seed=1, venue="binance", duration_s=3600.0,
                                   is_cascade=True, onset_s=1000.0, peak_minute_s=1200.0)  # fmt: skip
    base.update(kw)
    return Outcome(alerts=alerts, **base)  # type: ignore[arg-type]


def test_episodes_pair_each_firing_with_its_resolution_per_rule_and_pair() -> None:
    alerts = [_alert(10, "firing"), _alert(12, "firing", symbol="T"), _alert(20, "resolved"),
              _alert(30, "firing"), _alert(40, "resolved", symbol="T")]  # fmt: skip
    assert episodes(alerts) == [(10, 20, "r", "S"), (12, 40, "r", "T"), (30, math.inf, "r", "S")]


@pytest.mark.parametrize(
    ("alerts", "expected"),
    [
        ([], (False, None, False)),
        ([_alert(900, "firing"), _alert(950, "resolved")], (False, None, False)),  # over before
        ([_alert(900, "firing")], (True, 300.0, True)),  # still firing at the onset
        ([_alert(1100, "firing")], (True, 100.0, False)),  # 100 s after the onset
        ([_alert(1040, "firing")], (True, 160.0, True)),  # within its first minute
        ([_alert(1230, "firing")], (True, -30.0, False)),  # during the peak minute
        ([_alert(1261, "firing")], (False, None, False)),  # after it
    ],
)
def test_detection_is_an_alert_active_between_onset_and_the_end_of_the_peak_minute(
    alerts: list[dict[str, object]], expected: tuple[bool, float | None, bool]
) -> None:
    assert detection(_outcome("jan27", alerts)) == expected


def test_auc_is_the_share_of_positive_negative_pairs_ranked_right_ties_half() -> None:
    rng = random.Random(5)
    for _ in range(20):
        pos = [rng.choice([0.1, 0.2, 0.5, rng.random()]) for _ in range(rng.randint(1, 9))]
        neg = [rng.choice([0.1, 0.2, 0.5, rng.random()]) for _ in range(rng.randint(1, 9))]
        brute = sum(1.0 if p > n else 0.5 if p == n else 0.0
                    for p, n in itertools.product(pos, neg)) / (len(pos) * len(neg))  # fmt: skip
        assert auc(pos, neg) == pytest.approx(brute)
    assert math.isnan(auc([], [1.0]))


def test_bins_are_labelled_by_their_time_relative_to_the_truth() -> None:
    bins = [(t, t / 2000, math.nan) for t in range(0, 1300, 10)]
    casc = _outcome("jan27", [], onset_s=1000.0, peak_minute_s=1200.0)
    casc.bins = [(float(t), s, n) for t, s, n in bins]
    calm = _outcome("calm", [], is_cascade=False, onset_s=None, peak_minute_s=None)
    calm.bins = [(0.0, 0.3, 0.1)]
    pos, neg = labelled([casc, calm], 1)
    assert len(pos) == 36  # from 300 s before the peak minute (900 s) to its end (1260 s)
    assert len(neg) == 1 + 10  # the calm bin; cascade bins ending by onset - 900 s
    _, neg_n = labelled([casc, calm], 2)
    assert -1.0 in neg_n  # an undefined branching ratio ranks lowest


def test_the_summary_counts_add_up() -> None:
    outs = [
        _outcome("jan27", [_alert(1100, "firing")]),
        _outcome("jan27", []),
        _outcome("jan27", [], is_cascade=False),
        _outcome(
            "calm",
            [_alert(5, "firing"), _alert(9, "resolved"), _alert(50, "firing")],
            is_cascade=False,
            duration_s=43_200.0,
        ),
    ]
    cells = summarize(outs)["cells"]
    jan = cells["jan27|binance"]
    assert (jan["n"], jan["cascades"], jan["detected"]) == (3, 2, 1)
    assert jan["detection_rate"] == 0.5 and jan["lead_median_s"] == 100.0
    assert cells["calm|binance"]["false_per_venue_day"] == pytest.approx(2 / 0.5)


def test_jobs_cycle_families_and_venues() -> None:
    todo = jobs(13, 1, ("binance", "okx"))
    assert [j.family for j in todo[:6]] == [
        "jan27", "flash_crash", "short_squeeze", "calm", "slow_grind", "no_leverage_news",
    ]  # fmt: skip
    assert {j.venue for j in todo[:6]} == {"binance"} and todo[6].venue == "okx"
    assert todo[12].seed == 3


def test_one_scenario_through_render_backtest_and_scoring() -> None:
    out = run_job((Job(0, "flash_crash", 2, "deribit"), None))
    assert out.events > 0 and out.duration_s > 0
    if out.onset_s is not None:
        assert out.peak_minute_s is not None and out.onset_s <= out.peak_minute_s + 60
    assert out.bins and all(b[0] % BIN_S == 0 for b in out.bins)
    assert all(0.0 <= b[1] <= 1.0 for b in out.bins if math.isfinite(b[1]))
    times = [a["t"] for a in out.alerts]
    assert times == sorted(times)
    ok, lead, first_minute = detection(out)
    assert ok == (lead is not None) and (not first_minute or ok)
