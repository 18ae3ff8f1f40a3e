"""EventEngine: records held per pair and tick, applied at the close, alert rules evaluated there;
the transitions depend on the events, not on how they were batched or interleaved."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from consumers.engine import EventEngine
from consumers.ingest import RecordIngest
from monitor.alerting.rules import RuleEngine
from monitor.core.alertrecord import AlertEvent
from monitor.core.codec import decode_batch, encode_batch
from monitor.core.config import Config, load
from monitor.core.errors import CodecError
from monitor.core.schema import Event
from tests.consumers.consumer_refs import EXCHANGE, liq, trade

T0_MS = 1_700_000_000_000
RULE = {
    "name": "long-flow", "metric": "liq_rate_long_60s", "warning": 2_000.0,
    "critical": 8_000.0, "resolve": 1_000.0, "for_s": 3.0, "cooldown_s": 30.0,
}  # fmt: skip


def _cfg(lateness_s: float = 1.0, **consumer: Any) -> Config:
    return load(environ={}).with_overrides(
        consumer={"alert_eval_s": 0.1, "alert_lateness_s": lateness_s, "alert_quiet_s": 1.0,
                  **consumer},
        alerts={"rules": [RULE]},
    )  # fmt: skip


def _engine(cfg: Config) -> EventEngine[int]:
    c = cfg.consumer
    return EventEngine(
        RecordIngest.from_config(cfg, EXCHANGE, wall_clock=lambda: 0.0),
        RuleEngine(cfg.alerts.rules),
        period_s=c.alert_eval_s, lateness_s=c.alert_lateness_s, quiet_s=c.alert_quiet_s,
        refit_interval_s=cfg.risk.refit_interval_s,
    )  # fmt: skip


def _offer(engine: EventEngine[int], events: list[Event], token: int | None = None,
           replay: bool = False) -> int:  # fmt: skip
    return engine.offer(decode_batch(encode_batch(events)), token, replay=replay)


def _key(ev: AlertEvent) -> tuple[Any, ...]:
    return (ev.t, ev.symbol, ev.rule, ev.status, ev.severity, ev.value, ev.started_t)


def _market(seed: int) -> list[tuple[float, Event]]:
    """Ten minutes of three pairs: trades every ~0.3 s, liquidation bursts on two of them; each
    event with its arrival time, up to 0.9 s after its event time. Each pair's trades, and its
    liquidations, arrive in order (one venue stream each), the streams interleave freely."""
    rng = random.Random(seed)
    out: list[tuple[float, Event]] = []
    arrived: dict[tuple[str, str], float] = {}

    def arrival(sym: str, kind: str, ts: int) -> float:
        at = max(arrived.get((sym, kind), 0.0), ts / 1000 + rng.uniform(0.0, 0.9))
        arrived[(sym, kind)] = at
        return at

    for sym, burst_at in (
        ("BTC-USDT-PERP", 120.0),
        ("ETH-USDT-PERP", 300.0),
        ("SOL-USDT-PERP", None),
    ):
        t = 0.0
        while t < 600.0:
            t += rng.expovariate(3.0)
            ts = T0_MS + int(t * 1000)
            ev = trade(sym, rng.choice(["buy", "sell"]), 100.0, rng.uniform(1e3, 5e4), ts)
            out.append((arrival(sym, "trade", ts), ev))
            if burst_at is not None and burst_at <= t < burst_at + 60 and rng.random() < 0.5:
                liq_ev = liq(sym, "long", rng.uniform(2e4, 2e5), ts + 1)
                out.append((arrival(sym, "liq", ts), liq_ev))
    return out


def _run(engine: EventEngine[int], records: list[list[Event]]) -> list[AlertEvent]:
    out: list[AlertEvent] = []
    for i, rec in enumerate(records):
        _offer(engine, rec, token=i)
        out += engine.step().transitions
    out += engine.step(final=True).transitions
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_transitions_do_not_depend_on_batching_or_interleaving(seed: int) -> None:
    market = _market(seed)
    # one record per event, in event-time order
    by_time = [[ev] for _, ev in sorted(market, key=lambda x: x[1].ts_ms)]
    # in arrival order (delays under the lateness), consecutive events of a pair batched
    rng = random.Random(seed + 100)
    records: list[list[Event]] = []
    for _, ev in sorted(market, key=lambda x: x[0]):
        if records and records[-1][0].symbol == ev.symbol and rng.random() < 0.7:
            records[-1].append(ev)
        else:
            records.append([ev])
    a, b = _engine(_cfg()), _engine(_cfg())
    ta, tb = _run(a, by_time), _run(b, records)
    assert [_key(e) for e in ta] == [_key(e) for e in tb]
    assert {e.status for e in ta} == {"firing", "resolved"}  # the bursts fire and resolve
    ra, rb = a.state.read(a.clock), b.state.read(b.clock)
    assert ra.keys == rb.keys
    assert (ra.liq_notional == rb.liq_notional).all() and (ra.trd_count == rb.trd_count).all()
    assert a.held == b.held == 0


def test_evaluations_are_at_tick_closes_and_a_firing_alert_resolves_while_quiet() -> None:
    engine = _engine(_cfg(lateness_s=0.5))
    # $600k of longs: the 60 s rate is $10k/s, past critical; held 3 s of event time
    _offer(engine, [liq("BTC-USDT-PERP", "long", 600_000.0, T0_MS + 50)])
    assert engine.held == 1 and engine.step().transitions == []  # tick [T0, T0 + 0.1) is held
    engine.advance(T0_MS / 1000 + 0.61)  # the clock passed the tick's end + lateness
    step = engine.step()
    assert step.evaluated == 1 and step.transitions == [] and engine.held == 0
    engine.advance(T0_MS / 1000 + 400.0)  # nothing more: quiet evaluations every 1 s
    events = engine.step().transitions
    fired, resolved = events
    t0 = T0_MS / 1000
    # pending since the close at t0 + 0.1, fired at the quiet evaluation 3 s later
    assert fired.status == "firing" and fired.severity == "critical"
    assert fired.t == pytest.approx(t0 + 3.1)
    # the 60 s rate falls below 1,000 USD/s 60 ln(10) s after the liquidation (at t0 + 0.05);
    # quiet evaluations are 1 s apart from the close at t0 + 0.1
    assert resolved.status == "resolved" and resolved.value < 1_000.0
    below = 60 * math.log(10) + 0.05
    assert resolved.t == pytest.approx(t0 + 0.1 + math.ceil(below - 0.1), abs=1e-6)
    assert engine.step().transitions == []  # resolved: no more quiet evaluations


def test_transitions_within_replayed_history_rebuild_the_rule_state_but_are_not_emitted() -> None:
    engine = _engine(_cfg(lateness_s=0.0))
    _offer(engine, [liq("BTC-USDT-PERP", "long", 600_000.0, T0_MS)], replay=True)
    _offer(engine, [trade("BTC-USDT-PERP", "sell", 100.0, 10.0, T0_MS + k * 1000)
                    for k in range(1, 6)], replay=True)  # fmt: skip
    step = engine.step()
    assert step.suppressed == 1 and step.transitions == []  # it fired within the replay
    _offer(engine, [trade("BTC-USDT-PERP", "sell", 100.0, 10.0, T0_MS + 300_000)])
    engine.advance(T0_MS / 1000 + 301)
    (resolved,) = engine.step().transitions  # live: the resolve is sent
    assert resolved.status == "resolved"


def test_a_record_across_ticks_is_done_once_every_part_is_applied() -> None:
    engine = _engine(_cfg(lateness_s=0.0))
    n = _offer(engine, [trade("BTC-USDT-PERP", "buy", 100.0, 1e3, T0_MS + dt)
                        for dt in (10, 20, 250, 990)], token=7)  # fmt: skip
    assert n == 3  # ticks 0, 2 and 9 of the second
    engine.advance(T0_MS / 1000 + 0.35)
    step = engine.step()
    assert step.done == [] and engine.held == 1
    engine.advance(T0_MS / 1000 + 2.0)
    step = engine.step()
    assert step.done == [7] and engine.held == 0
    assert sum(d.trades for d, _ in step.ingested) == 1


def test_a_late_event_is_applied_at_the_next_close_not_lost() -> None:
    engine = _engine(_cfg(lateness_s=0.0))
    _offer(engine, [trade("BTC-USDT-PERP", "buy", 100.0, 1e3, T0_MS + 500)])
    _offer(engine, [trade("ETH-USDT-PERP", "buy", 100.0, 1e3, T0_MS + 5_000)])
    engine.step()
    _offer(engine, [trade("BTC-USDT-PERP", "buy", 100.0, 2e3, T0_MS + 700)])  # its tick closed
    engine.step(final=True)
    r = engine.state.read(T0_MS / 1000 + 10)
    assert dict(zip([k[1] for k in r.keys], r.trd_count, strict=True))["BTC-USDT-PERP"] == 2


def test_drop_discards_held_parts_and_returns_their_tokens() -> None:
    engine = _engine(_cfg(lateness_s=10.0))
    _offer(engine, [trade("BTC-USDT-PERP", "buy", 100.0, 1e3, T0_MS)], token=1)
    _offer(engine, [trade("ETH-USDT-PERP", "buy", 100.0, 1e3, T0_MS)], token=2)
    assert engine.drop(["BTC-USDT-PERP"]) == [1]
    step = engine.step(final=True)
    assert step.done == [2] and step.evaluated == 1
    assert engine.state.pair_id(EXCHANGE, "BTC-USDT-PERP") is None  # never applied


def test_times_that_are_not_numbers_are_refused_before_anything_is_held() -> None:
    engine = _engine(_cfg())
    batch = decode_batch(encode_batch([trade("BTC-USDT-PERP", "buy", 100.0, 1e3, T0_MS)]))
    batch.trd["ts_ms"][0] = "soon"
    with pytest.raises(CodecError):
        engine.offer(batch, 1)
    assert engine.held == 0


def test_release_partial_completes_records_split_across_ticks_only() -> None:
    engine = _engine(_cfg(lateness_s=0.0))
    _offer(engine, [trade("BTC-USDT-PERP", "buy", 100.0, 1e3, T0_MS + dt) for dt in (10, 950)],
           token=1)  # fmt: skip
    _offer(engine, [trade("ETH-USDT-PERP", "buy", 100.0, 1e3, T0_MS + 950)], token=2)
    engine.advance(T0_MS / 1000 + 0.5)
    assert engine.step().done == []  # BTC's first part applied, its second held
    step = engine.release_partial()
    assert step.done == [1] and step.evaluated == 0 and engine.held == 1  # ETH's stays held
    assert engine.drop(["ETH-USDT-PERP"]) == [2]
