"""``cascade-monitor backtest``: recordings through the parsers, codec, state, models and rules in
one process; the same alert transitions and totals as the live path; clear errors on bad files."""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from monitor.app.backtest import backtest
from monitor.app.cli import main
from monitor.app.pipeline import Pipeline
from monitor.core.alertrecord import AlertEvent, decode_alert
from monitor.core.config import Config, load
from monitor.core.errors import RecordingError
from monitor.simulator.reflexive.render import render_venue
from monitor.simulator.replay import ReplayServer
from monitor.simulator.scenario import crash_scenario
from producers.registry import VENUES

REAL = Path(os.environ.get("CASCADE_REAL_DATA", Path(__file__).parents[4] / "shared" / "data"
                           / "binance-real"))  # fmt: skip
START_MS = 1_735_700_400_000
FLOW_RULE = {
    "name": "long-flow", "metric": "liq_rate_long_60s", "warning": 2_000.0,
    "critical": 10_000.0, "resolve": 1_000.0, "for_s": 5.0, "cooldown_s": 30.0,
}  # fmt: skip


def _render(tmp_path: Path, venue: str = "binance", duration_s: float = 90.0) -> Path:
    path = tmp_path / f"crash.{venue}.jsonl.gz"
    scenario = crash_scenario(duration_s=duration_s, seed=11, venues=(venue,))
    render_venue(scenario, venue, path, start_ms=START_MS)
    return path


def _key(e: AlertEvent) -> tuple[object, ...]:
    return (round(e.t, 6), e.rule, e.status, e.severity, e.exchange, e.symbol, e.value,
            e.started_t)  # fmt: skip


def test_a_rendered_crash_fires_and_the_output_has_the_documented_keys(tmp_path: Path) -> None:
    path = _render(tmp_path)
    cfg = load(environ={}).with_overrides(alerts={"rules": [FLOW_RULE]})
    result = backtest(cfg, [path])
    assert result.transitions, "the crash's long liquidations pass the flow rule"
    times = [e.t for e in result.transitions]
    assert times == sorted(times)
    (venue,) = result.venues
    assert venue.producer.frames > 0 and venue.producer.parse_errors == {}
    liq_usd = sum(sum(p.liq_notional_usd.values()) for p in result.pairs)
    assert liq_usd > 0 and all(p.exchange == "binance" for p in result.pairs)
    # the CLI writes one JSON line per transition
    out = tmp_path / "alerts.jsonl"
    cfg_file = tmp_path / "cfg.toml"
    cfg_file.write_text(
        "[[alerts.rules]]\n"
        + "".join(f"{k} = {orjson.dumps(v).decode()}\n" for k, v in FLOW_RULE.items())
    )
    assert main(["backtest", str(path), "--config", str(cfg_file), "--out", str(out)]) == 0
    lines = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert len(lines) == len(result.transitions)
    for doc, ev in zip(lines, result.transitions, strict=True):
        keys = {"event_time_ms", "rule", "state", "severity", "exchange", "symbol", "value"}
        assert keys <= set(doc)
        assert isinstance(doc["event_time_ms"], int) and doc["state"] in {"firing", "resolved"}
        assert doc["event_time_ms"] == round(ev.t * 1000) and doc["symbol"] == ev.symbol


def test_several_venues_merge_by_receive_time(tmp_path: Path) -> None:
    a, b = _render(tmp_path, "binance"), _render(tmp_path, "bybit")
    cfg = load(environ={}).with_overrides(alerts={"rules": [FLOW_RULE]})
    both = backtest(cfg, [a, b])
    alone = {v: backtest(cfg, [p]) for v, p in (("binance", a), ("bybit", b))}
    # venues are independent consumers: merging changes nothing per venue
    for venue, result in alone.items():
        assert [_key(e) for e in both.transitions if e.exchange == venue] == [
            _key(e) for e in result.transitions
        ]
    assert {v.exchange for v in both.venues} == {"binance", "bybit"}


@pytest.mark.skipif(not REAL.is_dir(), reason=f"no shared real recordings at {REAL}")
def test_the_shared_real_recordings_run_with_the_default_rules() -> None:
    files = sorted(REAL.glob("*.jsonl.gz"))
    assert files
    result = backtest(load(environ={}), files)
    (venue,) = result.venues
    assert venue.exchange == "binance" and venue.producer.frames > 400
    assert venue.producer.events["liquidation"] > 0
    pairs = [p for p in result.pairs if p.symbol != "*"]
    assert sum(p.liquidations for p in pairs) == venue.producer.events["liquidation"]
    (whole,) = [p for p in result.pairs if p.symbol == "*"]  # the venue-wide row: all of them
    assert whole.liquidations == venue.producer.events["liquidation"]
    assert all(math.isnan(p.max_score[0]) or 0.0 <= p.max_score[0] <= 1.0 for p in result.pairs)


def test_a_truncated_file_names_the_file_and_line(tmp_path: Path) -> None:
    good = _render(tmp_path, duration_s=20.0)
    raw = gzip.decompress(good.read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(raw)[:-200])  # the gzip stream ends early
    with pytest.raises(RecordingError, match=r"cut\.jsonl\.gz:\d+: unreadable"):
        backtest(load(environ={}), [cut])
    bad_line = tmp_path / "bad.jsonl.gz"
    lines = raw.splitlines()
    lines[5] = b"{not json"
    bad_line.write_bytes(gzip.compress(b"\n".join(lines)))
    with pytest.raises(RecordingError, match=r"bad\.jsonl\.gz:6: not JSON"):
        backtest(load(environ={}), [bad_line])


def test_an_unknown_venue_is_refused_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    path = tmp_path / "x.jsonl.gz"
    header = {"kind": "header", "version": 1, "exchange": "nowhere", "base_url": "wss://x",
              "connections": [{"name": "a", "url": "wss://x/a", "subscribe": []}]}  # fmt: skip
    path.write_bytes(gzip.compress(orjson.dumps(header) + b"\n"))
    assert main(["backtest", str(path)]) == 2
    err = capsys.readouterr().err
    assert "x.jsonl.gz:1:" in err and "nowhere" in err


def test_frames_the_parser_refuses_are_counted_not_fatal(tmp_path: Path) -> None:
    good = _render(tmp_path, duration_s=20.0)
    lines = gzip.decompress(good.read_bytes()).splitlines()
    first = next(i for i, x in enumerate(lines) if b'"kind":"frame"' in x.replace(b" ", b""))
    doc = orjson.loads(lines[first])
    doc["text"] = '{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","o":{"s":1}}}'
    lines.insert(first, orjson.dumps(doc))
    path = tmp_path / "refused.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines)))
    result = backtest(load(environ={}), [path])
    assert sum(result.venues[0].producer.parse_errors.values()) == 1
    assert sum(p.trades for p in result.pairs) > 0


# ---- the live path ----------------------------------------------------------------------------


def _live_config(venue: str, replay: ReplayServer, bootstrap: str, unique: str) -> Config:
    return load(environ={}).with_overrides(
        kafka={"bootstrap_servers": bootstrap, "topic_prefix": f"bt{unique}", "partitions": 1},
        consumer={"group_prefix": f"bt{unique}", "warmup_s": 0.0, "risk_publish_s": 0.0,
                  "alert_lateness_s": 5.0},
        exchanges={venue: {"enabled": True, "ws_url": replay.url, "rest_url": replay.rest_url,
                           "symbols": list(VENUES[venue].defaults.symbols)}},
        alerts={"rules": [FLOW_RULE]},
    )  # fmt: skip


async def test_backtest_equals_the_live_path(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    """One recording through replay -> producer -> Kafka -> consumer, and through backtest: the
    same alert transitions (up to the recording's last tick) and the same per-pair totals."""
    venue = "binance"
    path = _render(tmp_path, venue)
    async with ReplayServer(path, speed=8.0) as replay:
        cfg = _live_config(venue, replay, kafka_bootstrap, unique)
        async with Pipeline(cfg, [venue], CollectorRegistry()) as pipeline:
            await replay.wait_played()
            await pipeline.drain()
            consumer = pipeline.consumers[0]  # drained: every event applied, its ticks closed
            await consumer.send_alerts()
            live_state = consumer.state.read(consumer.engine.clock)
            sent = consumer.alerts_sent
        reader = AIOKafkaConsumer(cfg.alerts_topic, bootstrap_servers=kafka_bootstrap,
                                  auto_offset_reset="earliest")  # fmt: skip
        await reader.start()
        try:
            live: list[AlertEvent] = []
            while len(live) < sent:
                ev = decode_alert((await reader.getone()).value)
                assert isinstance(ev, AlertEvent)
                live.append(ev)
        finally:
            await reader.stop()

    result = backtest(cfg, [path])
    assert result.transitions, "the recording must fire something for the comparison to mean much"
    end = max(e.t for e in result.transitions)  # the backtest stops at the last close
    assert sorted(_key(e) for e in live if e.t <= end) == [_key(e) for e in result.transitions]
    totals = {(p.symbol): (p.liquidations, p.trades, p.liq_notional_usd) for p in result.pairs}
    for i, (_, symbol) in enumerate(live_state.keys):
        n_liq, n_trd, usd = totals[symbol]
        assert int(live_state.liq_count[i].sum()) == n_liq
        assert int(live_state.trd_count[i]) == n_trd
        assert [float(x) for x in live_state.liq_notional[i]] == [usd[s] for s in usd]
    assert len(live_state.keys) == len(totals)
