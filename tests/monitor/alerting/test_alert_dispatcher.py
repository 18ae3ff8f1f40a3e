"""The alert dispatcher on the real broker with real local receivers: every sink served, severity
filter, in-process deduplication, dead letters, commits, metrics; a receiver down for a minute;
a dispatcher killed (SIGKILL) mid-delivery and restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.group import LeaveGroupRequest
from prometheus_client import CollectorRegistry

from monitor.alerting.dispatcher import AlertDispatcher, dead_letter_topic, group_id
from monitor.core.alertrecord import AlertEvent
from monitor.core.config import Config, load
from monitor.core.topics import ensure_alerts_topic
from tests.consumers.consumer_refs import scrape, value
from tests.monitor.alerting.helpers import (
    KEY,
    T0,
    Hit,
    Receiver,
    event_id_ref,
    hold_until,
    mk,
)

ENV = {"CASCADE_TEST_KEY": KEY}
# The outage is one minute; CASCADE_TEST_OUTAGE_S shortens it for quick local runs.
OUTAGE_S = float(os.environ.get("CASCADE_TEST_OUTAGE_S", "60"))


def _cfg(bootstrap: str, unique: str, sinks: Sequence[dict[str, Any]], **dispatcher: Any) -> Config:
    return load(environ={}).with_overrides(
        kafka={"bootstrap_servers": bootstrap, "topic_prefix": f"t{unique}", "partitions": 3},
        consumer={"group_prefix": f"g{unique}"},
        alerts={"sinks": list(sinks),
                "dispatcher": {"commit_interval_s": 0.2, "drain_timeout_s": 0.5, **dispatcher}},
        # these tests count the topic's alerts exactly; the health watch (which would report a
        # receiver that is down on purpose) is tested in tests/health/ and test_health.py
        health={"enabled": False},
    )  # fmt: skip


def json_sink(url: str, **kw: Any) -> dict[str, Any]:
    return {"name": "json", "kind": "json", "url": url, "secret_env": "CASCADE_TEST_KEY",
            "backoff_initial_s": 0.05, "backoff_max_s": 0.2, **kw}  # fmt: skip


async def produce(cfg: Config, records: Sequence[AlertEvent | bytes]) -> list[tuple[int, int]]:
    """Publish alerts (keyed by fingerprint) or raw junk; returns (partition, offset) of each."""
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap_servers, acks="all")
    await producer.start()
    try:
        out = []
        for r in records:
            v, k = (r.encode(), r.fingerprint.encode()) if isinstance(r, AlertEvent) else (r, b"x")
            md = await producer.send_and_wait(cfg.alerts_topic, v, key=k)
            out.append((md.partition, md.offset))
        return out
    finally:
        await producer.stop()


async def group_offsets(cfg: Config) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap_servers)
    await admin.start()
    try:
        got = await admin.list_consumer_group_offsets(group_id(cfg))
    finally:
        await admin.close()
    return {tp.partition: om.offset for tp, om in got.items() if tp.topic == cfg.alerts_topic}


async def evict_dead_members(cfg: Config) -> int:
    """Send LeaveGroup for every member of the dispatcher group, as Kafka's session expiry would
    for a SIGKILLed one. noida-db 0.2.3 never expires a dead member that led the group: the next
    member's SyncGroup then waits for the dead leader's assignment forever."""
    group = group_id(cfg)
    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap_servers)
    await admin.start()
    try:
        node = await admin.find_coordinator(group)
        described = await admin.describe_consumer_groups([group], group_coordinator_id=node)
    finally:
        await admin.close()
    members = [m[0] for resp in described for g in resp.groups for m in g[5]]
    client = AIOKafkaClient(bootstrap_servers=cfg.bootstrap_servers)
    await client.bootstrap()
    try:
        for member in members:
            resp = await client.send(node, LeaveGroupRequest(group, member))
            assert resp.error_code == 0, resp
    finally:
        await client.close()
    return len(members)


async def end_offsets(cfg: Config) -> dict[int, int]:
    c = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap_servers)
    await c.start()
    try:
        tps = [TopicPartition(cfg.alerts_topic, p) for p in range(cfg.kafka.partitions)]
        ends = await c.end_offsets(tps)
    finally:
        await c.stop()
    return {tp.partition: off for tp, off in ends.items() if off > 0}


async def read_topic(cfg: Config, topic: str, n: int, timeout_s: float = 10.0) -> list[Any]:
    c = AIOKafkaConsumer(topic, bootstrap_servers=cfg.bootstrap_servers,
                         auto_offset_reset="earliest")  # fmt: skip
    await c.start()
    out: list[Any] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(out) < n:
                for recs in (await c.getmany(timeout_ms=200)).values():
                    out += [(r.key, orjson.loads(r.value)) for r in recs]
    finally:
        await c.stop()
    return out


def by_fingerprint(hits: Sequence[Hit]) -> dict[str, list[str]]:
    """Event ids per fingerprint, in arrival order."""
    out: dict[str, list[str]] = defaultdict(list)
    for h in hits:
        d = h.json
        out[d["fingerprint"]].append(d["id"])
    return out


def expected_order(alerts: Sequence[AlertEvent]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for a in alerts:
        out[a.fingerprint].append(event_id_ref(a))
    return out


async def test_every_sink_served_filtered_deduplicated_dead_lettered_and_committed(
    kafka_bootstrap: str, unique: str
) -> None:
    async def respond(r: Receiver, hit: Hit) -> web.StreamResponse:
        return web.Response(status=400 if hit.path == "/am" else 200)

    rx = await Receiver(respond=respond).start()
    cfg = _cfg(kafka_bootstrap, unique, [
        json_sink(rx.url("/json")),
        {"name": "slack", "kind": "slack", "url_env": "SLACK_URL", "min_severity": "critical"},
        {"name": "am", "kind": "alertmanager", "url": rx.url("/am")},
    ], max_pending=2)  # fmt: skip
    now = time.time()
    a1 = mk(severity="warning", value=0.65, received_ts=now)
    a2 = mk(t=T0 + 30, received_ts=now)
    b1 = mk(symbol="ETH-USDT-PERP", severity="warning", value=0.61, received_ts=now)
    a3 = mk(status="resolved", t=T0 + 90, value=0.4, received_ts=now)
    registry = CollectorRegistry()
    d = AlertDispatcher(cfg, registry, environ={**ENV, "SLACK_URL": rx.url("/slack")})
    try:
        await ensure_alerts_topic(cfg)
        await produce(cfg, [a1, a2, b1, a3, b1, b"not an alert"])
        async with d:
            await d.wait_handled(6, timeout_s=30)
            await d.wait_committed(timeout_s=10)
            assert d.pending == 0 and d.dead_lettered == 4
        assert await group_offsets(cfg) == await end_offsets(cfg)
    finally:
        await rx.stop()
    json_hits = rx.answered("/json")
    assert by_fingerprint(json_hits) == expected_order([a1, a2, b1, a3])  # b1 once: deduplicated
    assert [(h.json["severity"], h.json["status"]) for h in json_hits if h.json["symbol"] ==
            "BTC-USDT-PERP"] == [("warning", "firing"), ("critical", "firing"),
                                 ("critical", "resolved")]  # fmt: skip
    slack = rx.answered("/slack")
    assert [h.json["text"].split()[0] for h in slack] == ["[FIRING]", "[RESOLVED]"]  # criticals
    assert len(rx.answered("/am", status=400)) == 4  # each tried once: a 400 is final
    dead = await read_topic(cfg, dead_letter_topic(cfg), 4)
    assert sorted(v["alert"]["fingerprint"] for _, v in dead) == sorted(
        x.fingerprint for x in (a1, a2, b1, a3))  # fmt: skip
    for key, v in dead:
        assert key == v["alert"]["fingerprint"].encode()
        assert (v["sink"], v["kind"], v["error"], v["status"], v["attempts"]) == (
            "am", "alertmanager", "HTTP 400", 400, 1)  # fmt: skip
        assert v["topic"] == cfg.alerts_topic
    s = scrape(registry)
    assert value(s, "cascade_alert_transitions_total", rule="cascade-risk", status="firing") == 3
    assert value(s, "cascade_alert_transitions_total", rule="cascade-risk", status="resolved") == 1
    dl = "cascade_alert_deliveries_total"
    assert value(s, dl, sink="json", outcome="ok") == 4
    assert value(s, dl, sink="slack", outcome="ok") == 2
    assert value(s, dl, sink="slack", outcome="dropped_by_severity") == 2
    assert value(s, dl, sink="am", outcome="dead_letter") == 4
    assert value(s, "cascade_alert_dead_letters_total", sink="am") == 4
    assert value(s, "cascade_alert_records_skipped_total", reason="duplicate") == 1
    assert value(s, "cascade_alert_records_skipped_total", reason="undecodable") == 1
    assert value(s, "cascade_alert_pending") == 0
    assert value(s, "cascade_alert_deliveries_in_flight", sink="json") == 0
    assert value(s, "cascade_alert_delivery_latency_seconds_count", sink="json") == 4
    assert value(s, "cascade_alert_dispatch_latency_seconds_count", sink="slack") == 2
    # from the (simulated) event receipt to the 2xx, the wait for the dispatcher to start included
    latency = value(s, "cascade_alert_delivery_latency_seconds_sum", sink="json")
    assert latency is not None and 0 < latency < 4 * 10.0
    dispatch = value(s, "cascade_alert_dispatch_latency_seconds_sum", sink="json")
    assert dispatch is not None and 0 < dispatch < 4 * 1.0
    print(f"json sink: mean consumed->2xx {1000 * dispatch / 4:.1f} ms")


async def test_receiver_down_for_a_minute_then_every_alert_arrives_once_in_order(
    kafka_bootstrap: str, unique: str
) -> None:
    """A real outage: the receiver's port is closed for ``OUTAGE_S`` (60 s) while alerts keep
    coming; the backoff is short (0.2 s doubling to 1 s) so recovery is quick once it is back."""
    rx = await Receiver().start()
    cfg = _cfg(kafka_bootstrap, unique, [json_sink(rx.url(), backoff_initial_s=0.2,
                                                   backoff_max_s=1.0, retry_budget_s=300)])  # fmt: skip
    symbols = ("BTC-USDT-PERP", "ETH-USDT-PERP", "SOL-USDT-PERP")
    first = [mk(symbol=s, severity="warning") for s in symbols]
    during = [x for s in symbols for x in (mk(symbol=s, t=T0 + 30),
                                           mk(symbol=s, status="resolved", t=T0 + 90))]  # fmt: skip
    later = [mk(symbol=s, severity="warning", t=T0 + 400, started_t=T0 + 400) for s in symbols]
    registry = CollectorRegistry()
    await ensure_alerts_topic(cfg)
    try:
        async with AlertDispatcher(cfg, registry, environ=ENV) as d:
            await produce(cfg, first)
            await rx.wait_for(lambda: len(rx.answered()) == 3, timeout_s=30)
            await rx.stop()  # down: connections refused
            down_at = time.monotonic()
            await produce(cfg, during)
            await asyncio.sleep(OUTAGE_S / 2)  # the outage itself: nothing to wait for
            await produce(cfg, later)
            await asyncio.sleep(max(0.0, down_at + OUTAGE_S - time.monotonic()))
            assert len(rx.hits) == 3 and d.pending == 9
            retries = value(scrape(registry), "cascade_alert_deliveries_total", sink="json",
                            outcome="retry")  # fmt: skip
            assert retries is not None and retries >= 3 * OUTAGE_S / 1.0 * 0.5
            assert await group_offsets(cfg) != await end_offsets(cfg)  # nothing lost by commit
            await rx.start()  # up again, same port
            up_at = time.monotonic()
            await rx.wait_for(lambda: len(rx.answered()) == 12, timeout_s=30)
            recovery_s = time.monotonic() - up_at
            await d.wait_committed(timeout_s=10)
        assert await group_offsets(cfg) == await end_offsets(cfg)
    finally:
        await rx.stop()
    assert len(rx.hits) == 12  # every alert exactly once: nothing duplicated, nothing lost
    assert by_fingerprint(rx.hits) == expected_order([*first, *during, *later])
    assert recovery_s < 1.0 + 3.0, recovery_s  # one backoff (<= 1 s) plus the queued alerts
    print(
        f"outage {OUTAGE_S:.0f}s: {retries:.0f} retries; all delivered {recovery_s:.2f}s after up"
    )


async def test_dispatcher_killed_mid_delivery_and_restarted_loses_nothing(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    """``cascade-monitor alerts`` in a subprocess is SIGKILLed while the receiver holds requests;
    a restarted dispatcher (same group) delivers the rest. Repeats are allowed only for alerts at
    or after the killed one's last commit (at-least-once). The dead member is evicted from the
    group by hand (``evict_dead_members``: the embedded broker does not expire it)."""
    answered_before_kill = 5
    release = asyncio.Event()

    async def first_then_hold(r: Receiver, hit: Hit) -> web.StreamResponse:
        if len(r.answered()) >= answered_before_kill and not release.is_set():
            await hold_until(asyncio.Event(), r)  # never answered: cut off by the kill
            return web.Response(status=503)
        return web.Response(status=200)

    rx = await Receiver(respond=first_then_hold).start()
    config = tmp_path / "cascade.toml"
    config.write_text(f"""
[kafka]
bootstrap_servers = "{kafka_bootstrap}"
topic_prefix = "t{unique}"
partitions = 3

[consumer]
group_prefix = "g{unique}"

[alerts.dispatcher]
commit_interval_s = 0.2
session_timeout_ms = 6000

[[alerts.sinks]]
name = "json"
kind = "json"
url = "{rx.url()}"
secret_env = "CASCADE_TEST_KEY"
backoff_initial_s = 0.05
backoff_max_s = 0.2
""")  # fmt: skip
    cfg = load(config, environ={})
    symbols = ("BTC-USDT-PERP", "ETH-USDT-PERP", "SOL-USDT-PERP")
    alerts = [x for s in symbols for x in (
        mk(symbol=s, severity="warning"), mk(symbol=s, t=T0 + 30),
        mk(symbol=s, status="resolved", t=T0 + 90),
        mk(symbol=s, severity="warning", t=T0 + 400, started_t=T0 + 400))]  # fmt: skip
    await ensure_alerts_topic(cfg)
    where = dict(zip((event_id_ref(a) for a in alerts), await produce(cfg, alerts), strict=True))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor.app.cli", "alerts", "--config", str(config),
        "--metrics-port", "0", "--log-level", "debug",
        env={**os.environ, **ENV}, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    log_lines: list[str] = []
    committed_once = asyncio.Event()

    async def read_log() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            log_lines.append(line.decode(errors="replace"))
            if "alerts dispatcher: committed" in log_lines[-1]:
                committed_once.set()

    reader = asyncio.create_task(read_log())
    try:
        await rx.wait_for(lambda: len(rx.answered()) >= answered_before_kill and rx.active >= 1, 60)
        await asyncio.wait_for(committed_once.wait(), 10)  # it committed some: a mixed state
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
        await asyncio.wait_for(reader, 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        reader.cancel()
    committed = await group_offsets(cfg)
    assert await evict_dead_members(cfg) == 1  # the broker's job; see evict_dead_members
    held = rx.active
    release.set()
    try:
        async with AlertDispatcher(cfg, CollectorRegistry(), environ=ENV) as d:
            await rx.wait_for(lambda: {h.json["id"] for h in rx.answered()} == set(where), 60)
            restart_s = time.monotonic() - killed_at
            await d.wait_committed(timeout_s=10)
        assert await group_offsets(cfg) == await end_offsets(cfg)
    finally:
        await rx.stop()
    ok = rx.answered()
    first_seen: list[Hit] = []
    for h in ok:
        if h.json["id"] not in {f.json["id"] for f in first_seen}:
            first_seen.append(h)
    assert by_fingerprint(first_seen) == expected_order(alerts)  # none lost, order kept
    counts: dict[str, int] = defaultdict(int)
    for h in ok:
        counts[h.json["id"]] += 1
    repeated = {i for i, n in counts.items() if n > 1}
    for i in repeated:  # only what the killed dispatcher had not committed
        partition, offset = where[i]
        assert offset >= committed.get(partition, 0), (i, where[i], committed)
    log_text = "".join(log_lines)
    assert "alerts dispatcher" in log_text and KEY not in log_text
    print(
        f"killed with {held} request(s) held, {len(ok) - len(where)} repeat(s); "
        f"rest delivered {restart_s:.1f}s after the kill"
    )
