"""No false health alert on real data: the shared real Binance liquidation recordings
(``../shared/data/binance-real``, four sessions, 110 minutes, silences up to 1,059 s) replayed on
their own receive times through the producer's health reporter (``HealthReporter.sample`` every
``sample_s`` on the recorded event counts, a heartbeat every ``heartbeat_s``) and the dispatcher's
health rules (``HealthEvaluator``), with the default ``[health]`` settings: the learned
liquidation stream's long quiet spells are ordinary for it, and no health alert fires. The same
replay with the warning level just under the highest return period it reached fires
``feed-silent`` once, on the longest silence: the rules were live, not idle."""

from __future__ import annotations

import dataclasses
import gzip
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from monitor.alerting.health import HealthEvaluator
from monitor.alerting.heartbeat import HealthReporter
from monitor.core.alertrecord import AlertEvent
from monitor.core.config import Config, load
from monitor.core.metrics import HealthRow
from tests.monitor.app.test_backtest import REAL

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f"no shared real recordings at {REAL}")


def liquidation_times(path: Path) -> list[float]:
    """Receive times (s) of the recording's liquidation frames (Binance ``forceOrder``: one
    liquidation each)."""
    out = []
    with gzip.open(path, "rb") as f:
        for line in f:
            rec = orjson.loads(line)
            if rec["kind"] == "frame" and orjson.loads(rec["text"]).get("e") == "forceOrder":
                out.append(rec["recv_ns"] / 1e9)
    return out


class RecordedProbe:
    """A producer's probe whose liquidation count is what the recording delivered so far."""

    role, exchange, component = "producer", "binance", "producer binance"

    def __init__(self) -> None:
        self.n = 0.0

    def counts(self) -> Mapping[tuple[str, str], float]:
        return {("liquidation", "producer"): self.n}

    def sample(self, t: float) -> None:
        """Nothing measured over time."""

    def figures(self, t: float) -> tuple[dict[str, float], dict[str, float]]:
        return {"frames": self.n, "parse_errors": 0.0}, {"publish_stall_s": 0.0}

    def rows(self, t: float) -> Iterable[HealthRow]:
        return ()


def replay(cfg: Config) -> tuple[list[AlertEvent], float]:
    """Every recording in order (the gap between two is a restart, not a silence); returns the
    health transitions and the highest return period of the liquidation stream's silence."""
    h = cfg.health
    probe = RecordedProbe()
    reporter = HealthReporter(cfg, CollectorRegistry(), probe)
    files = sorted(REAL.glob("*.jsonl.gz"))
    assert len(files) == 4
    evaluator: HealthEvaluator | None = None
    events: list[AlertEvent] = []
    worst = 0.0
    for path in files:
        times = liquidation_times(path)
        t, k = times[0], 0
        for model in reporter.models.values():
            model.restart(t)
        next_beat = t
        while k < len(times):
            t += h.sample_s
            while k < len(times) and times[k] <= t:
                probe.n += 1
                k += 1
            reporter.sample(t)
            if evaluator is None:
                evaluator = HealthEvaluator(h, h.active_rules, t)
            if t >= next_beat:
                next_beat += h.heartbeat_s
                hb = reporter.heartbeat(t)
                (s,) = hb.streams
                if math.isfinite(s.return_period_s) and s.silence_s >= h.min_silence_s:
                    worst = max(worst, s.return_period_s)
                evaluator.offer(hb, t)
                events += evaluator.evaluate(t)
    return events, worst


def test_the_real_recordings_raise_no_health_alert_with_the_defaults() -> None:
    cfg = load(environ={})
    events, worst = replay(cfg)
    assert events == [], [e.summary for e in events]
    # the rules judged the stream: its longest silences reached return periods of hours to days,
    # under the 30-day warning level
    assert 3600.0 < worst < cfg.health.silence_warning_s, worst
    # a level just under the worst silence's return period fires on it, once, and resolves
    lower = dataclasses.replace(cfg.health, silence_warning_s=worst * 0.99,
                                silence_critical_s=worst * 1e6)  # fmt: skip
    fired, _ = replay(dataclasses.replace(cfg, health=lower))
    got = [(e.rule, e.status, e.severity, e.symbol) for e in fired]
    assert got == [("feed-silent", "firing", "warning", "liquidation"),
                   ("feed-silent", "resolved", "warning", "liquidation")], got  # fmt: skip
