"""The health rules on the components' heartbeats (monitor/alerting/health.py), on exact inputs:
each default rule fires on what it watches and resolves, a component gone is one alert (and no
silent streams), Kafka unreachable is one alert (and no component gone), a component stopped on
purpose is forgotten, restarts of counters are counted from 0; the ``[health]`` table."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest

from monitor.alerting.health import HealthEvaluator, increase
from monitor.core.alertrecord import AlertEvent
from monitor.core.config import build, to_dict
from monitor.core.errors import ConfigError
from monitor.core.health_settings import HealthConfig, health_from_dict
from monitor.core.healthrecord import Heartbeat, StreamFigures, decode_heartbeat

T0 = 1_700_000_000.0
H = HealthConfig(heartbeat_s=1.0, eval_s=1.0, window_s=10.0, target_gone_s=4.0,
                 kafka_timeout_s=6.0, min_silence_s=3.0)  # fmt: skip


class Beats:
    """Heartbeats of one component, numbered."""

    def __init__(self, component: str, role: str, exchange: str, instance: str = "a") -> None:
        self.component, self.role, self.exchange, self.instance = (
            component,
            role,
            exchange,
            instance,
        )
        self.seq = 0

    def __call__(
        self, t: float, counters: Mapping[str, float] | None = None,
        gauges: Mapping[str, float] | None = None, streams: tuple[StreamFigures, ...] = (),
        stopping: bool = False,
    ) -> Heartbeat:  # fmt: skip
        self.seq += 1
        hb = Heartbeat(self.component, self.role, self.exchange, self.instance, self.seq, t, 1.0,
                       stopping, dict(counters or {}), dict(gauges or {}), streams)  # fmt: skip
        assert decode_heartbeat(hb.encode()) == hb  # what the watch reads back
        return hb


def names(events: list[AlertEvent]) -> list[tuple[str, str, str, str, str]]:
    return [(e.rule, e.status, e.severity, e.exchange, e.symbol) for e in events]


def run(ev: HealthEvaluator, beats: dict[float, list[Heartbeat]], until: float) -> list[AlertEvent]:
    """Offer the heartbeats at their times and evaluate every second up to ``until``."""
    out: list[AlertEvent] = []
    t = T0
    while t <= until:
        for hb in beats.get(t, []):
            ev.offer(hb, t)
        out += ev.evaluate(t)
        t += 1.0
    return out


def test_a_producer_whose_parser_refuses_every_frame() -> None:
    p, d = Beats("producer okx", "producer", "okx"), Beats("dispatcher", "dispatcher", "")
    ev = HealthEvaluator(H, H.active_rules, T0)
    beats: dict[float, list[Heartbeat]] = {}
    frames = refused = 0.0
    for i in range(30):
        t = T0 + i
        frames += 10
        refused += 10 if 5 <= i < 15 else 0  # every frame refused from 5 s to 15 s
        beats[t] = [p(t, {"frames": frames, "parse_errors": refused}), d(t)]
    got = names(run(ev, beats, T0 + 29))
    assert got == [
        ("frames-refused", "firing", "warning", "okx", "producer"),  # 5 of 10 s refused
        ("frames-refused", "firing", "critical", "okx", "producer"),
        ("frames-refused", "resolved", "critical", "okx", "producer"),
    ], got
    assert increase([(0, {"x": 5.0}, {}), (1, {"x": 9.0}, {}), (2, {"x": 2.0}, {})], "x") == 6.0


def test_a_component_gone_and_back_and_one_stopped_on_purpose() -> None:
    c, a = Beats("consumer bybit", "consumer", "bybit"), Beats("aggregator", "aggregator", "")
    ev = HealthEvaluator(H, H.active_rules, T0)
    silent = (StreamFigures("trade", "consumer", 0.5, 10.0, 1.0),)
    beats: dict[float, list[Heartbeat]] = {}
    for i in range(40):
        t = T0 + i
        beats[t] = [a(t, stopping=(i == 30))] if i <= 30 else []
        if not 5 < i < 20:  # the consumer is frozen from 6 s to 19 s
            beats[t].append(c(t, gauges={"lag_records": 0.0, "commit_stall_s": 0.0},
                              streams=silent))  # fmt: skip
    out = run(ev, beats, T0 + 39)
    got = [(n, e.t - T0) for n, e in zip(names(out), out, strict=True)]
    assert got == [
        (("target-gone", "firing", "critical", "bybit", "consumer"), 9.0),  # 4 s after 5 s
        (("target-gone", "resolved", "critical", "bybit", "consumer"), 20.0),
    ], got
    assert ev.components(T0 + 39) == {"consumer": 1}  # the aggregator left on purpose


def test_kafka_unreachable_is_one_alert_not_one_per_component() -> None:
    p, d = Beats("producer binance", "producer", "binance"), Beats("dispatcher", "dispatcher", "")
    ev = HealthEvaluator(H, H.active_rules, T0)
    beats = {T0 + i: [p(T0 + i), d(T0 + i)] for i in range(40) if not 5 < i < 25}
    got = names(run(ev, beats, T0 + 39))
    assert got == [("kafka-unreachable", "firing", "critical", "", "kafka"),
                   ("kafka-unreachable", "resolved", "critical", "", "kafka")], got  # fmt: skip


def test_after_kafka_is_back_a_component_is_gone_only_when_silent_since() -> None:
    """The dispatcher's heartbeat is read first when Kafka is back; the consumer's producer
    reconnects later (3 s): no target-gone for the outage's silence. The producer never comes
    back: gone target_gone_s after Kafka delivered again, not at once."""
    c, d = Beats("consumer binance", "consumer", "binance"), Beats("dispatcher", "dispatcher", "")
    p = Beats("producer binance", "producer", "binance")
    ev = HealthEvaluator(H, H.active_rules, T0)
    beats: dict[float, list[Heartbeat]] = {}
    for i in range(45):
        t = T0 + i
        if 5 < i < 25:
            continue  # Kafka away
        beats[t] = [d(t)] + ([c(t)] if i <= 5 or i >= 28 else []) + ([p(t)] if i <= 5 else [])
    out = run(ev, beats, T0 + 44)
    got = [(n, e.t - T0) for n, e in zip(names(out), out, strict=True)]
    assert got == [
        (("kafka-unreachable", "firing", "critical", "", "kafka"), 11.0),  # kafka_timeout_s
        (("kafka-unreachable", "resolved", "critical", "", "kafka"), 25.0),
        (("target-gone", "firing", "critical", "binance", "producer"), 29.0),  # 4 s after 25 s
    ], got


def test_an_improbable_silence_and_a_starved_consumer() -> None:
    p, c = Beats("producer okx", "producer", "okx"), Beats("consumer okx", "consumer", "okx")
    ev = HealthEvaluator(H, H.active_rules, T0)
    month, year = 30 * 86400.0, 365 * 86400.0
    beats: dict[float, list[Heartbeat]] = {}
    for i in range(60):
        t = T0 + i
        # liquidations: the producer's silence passes a month at 10 s (judged from 3 s of silence,
        # at 11 s), a year at 12 s, ends at 20 s
        prod = 0.0 if i < 8 or i >= 20 else i - 8.0
        rp = 1.0 if prod < 2 else (month if prod < 4 else year)
        # trades: the producer receives them, the consumer applies none from 30 s to 45 s
        cons = 0.0 if not 30 <= i < 45 else i - 30.0
        crp = 1.0 if cons < 2 else month * 2
        beats[t] = [
            p(t, streams=(StreamFigures("liquidation", "producer", prod, 1.0, rp),
                          StreamFigures("trade", "producer", 0.0, 10.0, 0.1))),
            c(t, streams=(StreamFigures("trade", "consumer", cons, 10.0, crp),)),
        ]  # fmt: skip
    out = run(ev, beats, T0 + 59)
    got = [(n, e.t - T0) for n, e in zip(names(out), out, strict=True)]
    assert got == [
        (("feed-silent", "firing", "warning", "okx", "liquidation"), 11.0),
        (("feed-silent", "firing", "critical", "okx", "liquidation"), 12.0),
        (("feed-silent", "resolved", "critical", "okx", "liquidation"), 20.0),
        # held 2 heartbeats + 5 s after the consumer's silence is judged (3 s at 33 s)
        (("consumer-starved", "firing", "warning", "okx", "trade"), 40.0),
        (("consumer-starved", "resolved", "warning", "okx", "trade"), 45.0),
    ], got


def test_a_restarted_counter_is_counted_from_zero() -> None:
    p = Beats("producer gate", "producer", "gate")
    ev = HealthEvaluator(H, H.active_rules, T0)
    counts = [0, 1, 2, 0, 1, 2, 2, 2]  # a restart after the third beat: 2 + 2 reconnects
    beats = {T0 + i: [p(T0 + i, {"reconnects": float(n)})] for i, n in enumerate(counts)}
    got = names(run(ev, beats, T0 + len(counts) - 1))
    assert got == [("reconnect-storm", "firing", "warning", "gate", "producer")], got


def test_the_health_table() -> None:
    cfg = build({"health": {"heartbeat_s": 2, "rules": [
        {"name": "gone", "metric": "heartbeat_age_s", "warning": 10.0, "critical": None,
         "resolve": 5.0, "require": {"frames": 1}}]}})  # fmt: skip
    assert cfg.health.heartbeat_s == 2.0 and [r.name for r in cfg.health.active_rules] == ["gone"]
    assert health_from_dict(to_dict(cfg)["health"]) == cfg.health
    assert len(HealthConfig().active_rules) == 13
    for bad, what in (({"nope": 1}, "unknown key"), ({"heartbeat_s": 0}, "heartbeat_s"),
                      ({"target_gone_s": 1.0}, "exceed"), ({"enabled": 1}, "true/false"),
                      ({"rules": [{"name": "x", "metric": "score", "warning": 1, "resolve": 0}]},
                       "metric")):  # fmt: skip
        with pytest.raises(ConfigError, match=what):
            health_from_dict(bad)
    assert math.isclose(H.silence_warning_s, 30 * 86400.0)


@pytest.mark.parametrize(
    ("role", "exchange", "figures", "expected", "at"),
    [
        ("producer", "kraken", lambda i: ({"send_errors": float(i)}, {}),
         ("kafka-send-errors", "warning"), 3.0),  # 3 failures since the first beat
        ("producer", "kraken", lambda i: ({"dropped": 0.0 if i < 5 else 10.0}, {}),
         ("events-dropped", "critical"), 5.0),
        ("producer", "kraken", lambda i: ({}, {"publish_stall_s": 2.0 * i}),
         ("publish-stalled", "warning"), 8.0),
        ("consumer", "htx", lambda i: ({}, {"lag_records": 20_000.0 + 100 * i}),
         ("consumer-lag-growing", "warning"), 1.0),
        ("consumer", "htx", lambda i: ({}, {"lag_records": 20_000.0, "commit_stall_s": 5.0 * i}),
         ("commits-stopped", "warning"), 12.0),
        ("dispatcher", "", lambda i: ({"dead_letters": 0.0 if i < 5 else 1.0}, {}),
         ("alert-dead-letters", "warning"), 5.0),
        ("dispatcher", "", lambda i: ({"delivery_retries": float(i)}, {}),
         ("alert-delivery-failing", "warning"), 5.0),
    ],
)  # fmt: skip
def test_each_counter_and_gauge_rule(
    role: str, exchange: str, figures: object, expected: tuple[str, str], at: float
) -> None:
    """The first transition of a component whose figure passes its rule's level."""
    b = Beats(f"{role} {exchange}".strip(), role, exchange)
    ev = HealthEvaluator(H, H.active_rules, T0)
    beats = {T0 + i: [b(T0 + i, *figures(i))] for i in range(15)}  # type: ignore[operator]
    out = run(ev, beats, T0 + 14)
    assert out, "nothing fired"
    first = out[0]
    assert (first.rule, first.status, first.severity, first.exchange, first.symbol,
            first.t - T0, first.category) == (*expected[:1], "firing", expected[1], exchange,
                                               role, at, "health")  # fmt: skip
