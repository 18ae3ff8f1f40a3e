"""Alert rule semantics: for-duration, hysteresis, cooldown, resolve, escalation, scope, config."""

from __future__ import annotations

import math

import pytest

from monitor.alerting.rules import RuleEngine
from monitor.core.alert_rules import DEFAULT_RULES, Rule, rule_from_dict, rules_from_config
from monitor.core.alertrecord import decode_alert, fingerprint
from monitor.core.config import load
from monitor.core.errors import CodecError, ConfigError

RULE = Rule("r", "score", warning=0.6, critical=0.8, resolve=0.5, for_s=30.0, cooldown_s=100.0)


def feed(engine: RuleEngine, series: list[tuple[float, float]], sym: str = "BTC-USDT-PERP"):
    out = []
    for t, v in series:
        out += engine.observe(t, "bybit", sym, {"score": v}, [("branching", 0.2)])
    return out


def test_fires_only_after_the_condition_held_for_the_whole_for_duration() -> None:
    e = RuleEngine([RULE])
    # above 0.6 from t=0, one dip at t=20 restarts the run: fires at 50, not at 30
    evs = feed(e, [(0, 0.7), (10, 0.7), (20, 0.55), (30, 0.7), (40, 0.7), (50, 0.7), (60, 0.7)])
    assert [(ev.t, ev.status, ev.severity) for ev in evs] == [(60, "firing", "warning")]
    (ev,) = evs
    assert ev.fingerprint == fingerprint("r", "bybit", "BTC-USDT-PERP") and ev.started_t == 60
    assert ev.summary == "warning: score 0.7 on bybit BTC-USDT-PERP (r)"


def test_hysteresis_no_flapping_around_the_level() -> None:
    e = RuleEngine([RULE])
    series = [(t, 0.65 if (t // 10) % 2 == 0 else 0.55) for t in range(0, 40, 10)]
    series = [(t, 0.7) for t in range(0, 40, 10)] + [
        (t, 0.65 if (t // 10) % 2 == 0 else 0.55) for t in range(40, 1000, 10)
    ]
    evs = feed(e, series)
    assert [(ev.status, ev.severity) for ev in evs] == [("firing", "warning")]
    assert e.firing() == {fingerprint("r", "bybit", "BTC-USDT-PERP"): "warning"}


def test_resolve_then_cooldown_then_fires_again() -> None:
    e = RuleEngine([RULE])
    evs = feed(e, [(0, 0.7), (30, 0.7), (40, 0.5), (50, 0.9), (90, 0.9), (139, 0.9),
                   (140, 0.9), (141, 0.9)])  # fmt: skip
    assert [(ev.t, ev.status, ev.severity) for ev in evs] == [
        (30, "firing", "warning"), (40, "resolved", "warning"), (140, "firing", "critical"),
    ]  # fmt: skip
    assert evs[1].fingerprint == evs[0].fingerprint == evs[2].fingerprint


def test_escalates_to_critical_and_never_de_escalates() -> None:
    e = RuleEngine([RULE])
    evs = feed(e, [(0, 0.65), (30, 0.65), (40, 0.85), (60, 0.85), (70, 0.85), (80, 0.62),
                   (90, 0.52), (100, 0.49)])  # fmt: skip
    assert [(ev.t, ev.status, ev.severity) for ev in evs] == [
        (30, "firing", "warning"), (70, "firing", "critical"), (100, "resolved", "critical"),
    ]  # fmt: skip


def test_missing_values_neither_fire_nor_resolve() -> None:
    e = RuleEngine([RULE])
    evs = feed(e, [(0, 0.7), (10, math.nan), (30, 0.7), (40, math.nan), (50, math.nan)])
    assert [ev.status for ev in evs] == ["firing"]
    assert e.firing()


def test_below_rules_and_scopes() -> None:
    low = Rule("low", "drawdown", warning=None, critical=0.1, resolve=0.2, op="<=",
               exchange="o*", symbol="*-PERP")  # fmt: skip
    asset = Rule("btc", "score", warning=0.6, critical=None, resolve=0.5, asset="BTC")
    e = RuleEngine([low, asset])
    assert e.observe(0, "okx", "ETH-USDT-PERP", {"drawdown": 0.05})[0].severity == "critical"
    assert e.observe(0, "bybit", "ETH-USDT-PERP", {"drawdown": 0.05}) == []  # exchange glob
    assert e.observe(1, "okx", "ETH-USDT-PERP", {"drawdown": 0.25})[0].status == "resolved"
    assert e.observe(0, "htx", "ETH-USDT-PERP", {"score": 0.9}) == []  # not BTC
    assert e.observe(0, "htx", "BTC-USDT-PERP", {"score": 0.9})[0].rule == "btc"


def test_config_tables_and_their_errors() -> None:
    (r,) = rules_from_config([{"name": "a", "metric": "vpin", "warning": 0.7, "resolve": 0.6,
                               "for_s": 5, "labels": {"team": "risk"},
                               "summary": "{severity} {metric} {value:.1f} {drivers}"}])  # fmt: skip
    assert (r.metric, r.warning, r.critical, r.for_s, r.labels) == ("vpin", 0.7, None, 5.0,
                                                                     {"team": "risk"})  # fmt: skip
    bad = [
        ({"name": "a", "metric": "nope", "warning": 1, "resolve": 0}, "metric"),
        ({"name": "a", "metric": "score", "resolve": 0}, "warning and/or a critical"),
        ({"name": "a", "metric": "score", "warning": 0.6}, "resolve"),
        ({"name": "a", "metric": "score", "warning": 0.6, "resolve": 0.7}, "safe side"),
        ({"name": "a", "metric": "score", "warning": 0.8, "critical": 0.6, "resolve": 0.1},
         "beyond"),
        ({"name": "a", "metric": "score", "warning": 0.6, "resolve": 0.5, "op": ">"}, "op"),
        ({"name": "a", "metric": "score", "warning": 0.6, "resolve": 0.5, "for_s": -1}, ">= 0"),
        ({"name": "a", "metric": "score", "warning": 0.6, "resolve": 0.5, "summary": "{nope}"},
         "template"),
        ({"name": "a", "metric": "score", "warning": True, "resolve": 0.5}, "finite number"),
        ({"name": "a", "metric": "score", "warning": 0.6, "resolve": 0.5, "extra": 1}, "unknown"),
    ]  # fmt: skip
    for table, msg in bad:
        with pytest.raises(ConfigError, match=msg):
            rule_from_dict(table, "alerts.rules[0]")
    with pytest.raises(ConfigError, match="duplicate"):
        rules_from_config([{"name": "a", "metric": "score", "warning": 0.6, "resolve": 0.5}] * 2)


def test_default_rules_render_with_drivers() -> None:
    e = RuleEngine(DEFAULT_RULES)
    v = {"score": 0.9, "score_coverage": 0.8, "liq_surge": 4.0, "branching_ratio_lower": 0.2}
    evs = e.observe(0, "binance", "BTC-USDT-PERP", v, [("branching", 0.21), ("liq_share", 0.1)])
    assert evs == []  # for_s 30
    (ev,) = e.observe(30, "binance", "BTC-USDT-PERP", {**v, "score": 0.85},
                      [("branching", 0.21), ("liq_share", 0.1)])  # fmt: skip
    assert ev.summary == (
        "critical: cascade risk 0.85 on binance BTC-USDT-PERP (branching 0.21, liq_share 0.10)"
    )
    # without the coverage the score rule does not hold: a new run of 30 s never starts
    e2 = RuleEngine(DEFAULT_RULES)
    low = {**v, "score_coverage": 0.4}
    assert e2.observe(0, "binance", "X-USDT-PERP", low, ()) == []
    assert e2.observe(60, "binance", "X-USDT-PERP", low, ()) == []


def test_alert_events_round_trip_through_the_topic_codec() -> None:
    e = RuleEngine([RULE])
    evs = [
        *e.observe(0.0, "bybit", "BTC-USDT-PERP", {"score": 0.9}, [("liq_zscore", 0.4)], 1.5e9),
        *e.observe(30.0, "bybit", "BTC-USDT-PERP", {"score": 0.9}, [("liq_zscore", 0.4)], 1.5e9),
        *e.observe(31.0, "bybit", "BTC-USDT-PERP", {"score": 0.1}),
    ]
    assert [(x.status, x.severity) for x in evs] == [
        ("firing", "critical"),
        ("resolved", "critical"),
    ]
    assert evs[0].drivers == (("liq_zscore", 0.4),) and evs[0].received_ts == 1.5e9
    assert math.isnan(evs[1].received_ts)
    for ev in evs:
        back = decode_alert(ev.encode())
        assert back.__slots__ == ev.__slots__
        for f in ev.__slots__:
            a, b = getattr(back, f), getattr(ev, f)
            assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), f


@pytest.mark.parametrize(
    "raw", [b"", b"[]", b"{}", b'{"status": "firing"}', b"\xff", b'{"labels": 1}']
)
def test_decode_alert_rejects_what_is_not_an_alert(raw: bytes) -> None:
    with pytest.raises(CodecError):
        decode_alert(raw)


def test_alerts_section_builds_rules_and_names_bad_keys() -> None:
    cfg = load(environ={})
    assert cfg.alerts.rules == DEFAULT_RULES and cfg.alerts_topic == "cascade.alerts"
    rule = {"name": "x", "metric": "score", "warning": 0.3, "resolve": 0.2, "labels": {"t": "a"}}
    one = cfg.with_overrides(alerts={"rules": [rule]})
    assert [r.name for r in one.alerts.rules] == ["x"] and one.alerts.rules[0].labels == {"t": "a"}
    assert one.with_overrides(kafka={"partitions": 2}).alerts.rules == one.alerts.rules
    assert cfg.with_overrides(alerts={"rules": []}).alerts.rules == ()
    with pytest.raises(ConfigError, match=r"alerts.rules\[0\].metric"):
        cfg.with_overrides(alerts={"rules": [{**rule, "metric": "nope"}]})
    with pytest.raises(ConfigError, match="unknown key"):
        cfg.with_overrides(alerts={"rulez": []})
    with pytest.raises(ConfigError, match="array of tables"):
        cfg.with_overrides(alerts={"rules": {"name": "x"}})


def test_drivers_given_as_a_callable_are_computed_only_for_a_transition() -> None:
    calls: list[int] = []

    def drivers() -> list[tuple[str, float]]:
        calls.append(1)
        return [("vpin", 0.3)]

    e = RuleEngine([RULE, Rule("r2", "score", warning=0.7, critical=None, resolve=0.5)])
    assert e.observe(0.0, "bybit", "BTC-USDT-PERP", {"score": 0.65}, drivers) == []
    assert calls == []  # RULE needs 30 s; r2's level is not reached
    evs = e.observe(30.0, "bybit", "BTC-USDT-PERP", {"score": 0.9}, drivers)
    assert [x.rule for x in evs] == ["r", "r2"] and calls == [1]  # once for both
    assert all(x.drivers == (("vpin", 0.3),) for x in evs)


def test_requirements_must_hold_with_the_level_and_break_the_run_when_not() -> None:
    rule = Rule("flow", "liq_surge", warning=5.0, critical=None, resolve=2.0, for_s=10.0,
                require={"liq_rate_60s": 2_000.0})  # fmt: skip
    e = RuleEngine([rule])

    def obs(t: float, surge: float, rate: float) -> list[str]:
        vals = {"liq_surge": surge, "liq_rate_60s": rate}
        return [ev.status for ev in e.observe(t, "binance", "BTC-USDT-PERP", vals)]

    assert obs(0, 9.0, 500.0) == []  # surge, but too little notional: the run does not start
    assert obs(10, 9.0, 3_000.0) == []  # the run starts here
    assert obs(15, 9.0, math.nan) == []  # a requirement not known breaks the run
    assert obs(20, 9.0, 3_000.0) == []
    assert obs(30, 9.0, 3_000.0) == ["firing"]  # held 10 s since 20
    assert obs(40, 3.0, 100.0) == []  # firing until the value crosses resolve
    assert obs(50, 1.0, 100.0) == ["resolved"]


def test_scope_separates_pairs_from_venue_wide_rows() -> None:
    pair = Rule("p", "score", warning=0.5, critical=None, resolve=0.4)
    venue = Rule("v", "score", warning=0.5, critical=None, resolve=0.4, scope="venue")
    both = Rule("a", "score", warning=0.5, critical=None, resolve=0.4, scope="any")
    assert pair.matches("binance", "BTC-USDT-PERP") and not pair.matches("binance", "*")
    assert venue.matches("binance", "*") and not venue.matches("binance", "BTC-USDT-PERP")
    assert both.matches("binance", "*") and both.matches("binance", "BTC-USDT-PERP")
    with pytest.raises(ConfigError, match="scope"):
        rule_from_dict({"name": "x", "metric": "score", "warning": 1, "resolve": 0, "scope": "asset"},
                       "r")  # fmt: skip
    with pytest.raises(ConfigError, match=r"require\.nope"):
        rule_from_dict({"name": "x", "metric": "score", "warning": 1, "resolve": 0,
                        "require": {"nope": 1}}, "r")  # fmt: skip
