"""Cold start (docs/risk-models.md §9.3): a consumer that starts with no history a minute before a
cascade alerts like one that had run all along, within a minute, because the surge reads against
the market-wide floor until a pair has a baseline of its own. Both runs go through ``backtest``
(the consumer's code path on event time); the cold one sees the recording from the cut on."""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path

import orjson
import pytest

from monitor.app.backtest import backtest
from monitor.core.alertrecord import AlertEvent
from monitor.core.config import load
from monitor.simulator.reflexive.families import FAMILIES
from monitor.simulator.reflexive.render import render_venue, start_ms_for

pytestmark = pytest.mark.slow

FLOW_RULES = ("liquidation-surge", "venue-liquidation-surge")


def _cut(src: Path, dst: Path, *, keep_before_ns: int, from_ns: int) -> None:
    """Copy ``src`` without the frames received in ``[keep_before_ns, from_ns)``: the
    subscription's replies (before the scenario's start) stay, the market before the cut goes."""
    with gzip.open(src, "rb") as f, gzip.open(dst, "wb") as g:
        for line in f:
            d = orjson.loads(line)
            if d["kind"] != "frame" or not keep_before_ns <= d["recv_ns"] < from_ns:
                g.write(line)


def _firings(
    events: Iterable[AlertEvent], t0: float, after_s: float
) -> dict[tuple[str, ...], float]:
    """(rule, symbol, severity) -> the first firing's scenario second, at or after ``after_s``."""
    out: dict[tuple[str, ...], float] = {}
    for e in events:
        if e.status == "firing" and e.t - t0 >= after_s:
            out.setdefault((e.rule, e.symbol, e.severity), e.t - t0)
    return out


def test_a_consumer_started_cold_before_a_cascade_alerts_like_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    scenario = FAMILIES["flash_crash"](5)
    start_ms = start_ms_for(5)
    full = tmp_path / "flash.bybit.jsonl.gz"
    render_venue(scenario, "bybit", full, start_ms=start_ms)
    onset = scenario.truth.onset_s
    assert onset is not None
    cut_s = onset - 60.0
    t0 = start_ms / 1000.0
    cold = tmp_path / "cold.bybit.jsonl.gz"
    _cut(full, cold, keep_before_ns=start_ms * 1_000_000, from_ns=int((t0 + cut_s) * 1e9))
    cfg = load(environ={})
    along = _firings(backtest(cfg, [full]).transitions, t0, cut_s)
    fresh = _firings(backtest(cfg, [cold]).transitions, t0, cut_s)

    flow = {k: t for k, t in along.items() if k[0] in FLOW_RULES}
    assert flow, "the flash crash passes the surge rules"
    assert min(flow.values()) <= onset + 60.0  # within its first minute of forced flow
    # the flow rules fire with the same severities, pair by pair, within a tick or two (the
    # uninterrupted run's 60 s rates still carry some of the calm minutes before the cut)
    fresh_flow = {k: t for k, t in fresh.items() if k[0] in FLOW_RULES}
    assert fresh_flow.keys() == flow.keys()
    assert all(abs(fresh_flow[k] - t) <= 2.0 for k, t in flow.items()), (flow, fresh_flow)
    # every other alert of the uninterrupted run: the same rule and pair within a minute
    for (rule, symbol, _), t in along.items():
        got = [u for (r, s, _), u in fresh.items() if (r, s) == (rule, symbol)]
        assert got and min(got) <= t + 60.0, (rule, symbol, t, got)
