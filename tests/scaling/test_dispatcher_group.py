"""Two live alert dispatchers (``cascade-monitor alerts``, real OS processes) in one group on
Apache Kafka; one is SIGKILLed mid-delivery. Kafka's session expiry takes the dead member out (no
LeaveGroup sent by the test), the survivor takes its partitions, and every alert arrives, in
order per fingerprint; repeats only of what the dead one had not committed (at-least-once)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from monitor.core.alertrecord import AlertEvent
from monitor.core.config import load
from monitor.core.topics import ensure_alerts_topic
from tests.brokers import KafkaBroker
from tests.monitor.alerting.helpers import KEY, T0, Hit, Receiver, event_id_ref, mk
from tests.monitor.alerting.test_alert_dispatcher import (
    by_fingerprint,
    end_offsets,
    expected_order,
    group_offsets,
    produce,
)

pytestmark = [pytest.mark.scaling, pytest.mark.slow]
ENV = {"CASCADE_TEST_KEY": KEY}
SESSION_TIMEOUT_MS = 6000


def config_text(bootstrap: str, unique: str, url: str) -> str:
    return f"""
[kafka]
bootstrap_servers = "{bootstrap}"
topic_prefix = "s{unique}"
partitions = 6

[consumer]
group_prefix = "s{unique}"

[alerts.dispatcher]
commit_interval_s = 0.2
session_timeout_ms = {SESSION_TIMEOUT_MS}

[[alerts.sinks]]
name = "json"
kind = "json"
url = "{url}"
secret_env = "CASCADE_TEST_KEY"
backoff_initial_s = 0.05
backoff_max_s = 0.2
"""


async def test_a_killed_dispatcher_is_expired_and_its_share_delivered_in_order(
    apache_kafka: KafkaBroker, unique: str, tmp_path: Path
) -> None:
    rx = await Receiver().start()
    config = tmp_path / "alerts.toml"
    config.write_text(config_text(apache_kafka.bootstrap, unique, rx.url()))
    cfg = load(config, environ={})
    await ensure_alerts_topic(cfg)
    symbols = [f"X{i}-USDT-PERP" for i in range(12)]  # fingerprints over every partition

    def batch(k: int) -> list[AlertEvent]:
        return [mk(symbol=s, severity="warning", t=T0 + 10 * k, started_t=T0 + 10 * k)
                for s in symbols]  # fmt: skip

    procs = []
    for _ in range(2):
        procs.append(await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor.app.cli", "alerts", "--config", str(config),
            "--metrics-port", "0", env={**os.environ, **ENV},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        ))  # fmt: skip
    alerts: list[AlertEvent] = []
    try:
        alerts += batch(0)
        await produce(cfg, alerts)
        # both members deliver (the group has balanced across them): wait for every first alert
        await rx.wait_for(lambda: len({h.json["id"] for h in rx.answered()}) >= len(symbols), 90)
        victim = procs[0]
        killed_at = time.monotonic()
        victim.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(victim.wait(), 10) == -signal.SIGKILL
        for k in range(1, 4):  # alerts keep coming while the group has a dead member
            more = batch(k)
            await produce(cfg, more)
            alerts += more
        want = {event_id_ref(a) for a in alerts}
        await rx.wait_for(lambda: {h.json["id"] for h in rx.answered()} >= want, 120)
        recovery_s = time.monotonic() - killed_at
        deadline = time.monotonic() + 30
        while await group_offsets(cfg) != await end_offsets(cfg):  # the survivor commits all
            assert time.monotonic() < deadline, "the survivor did not commit every alert"
            await asyncio.sleep(0.2)
    finally:
        for p in procs:
            if p.returncode is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                await asyncio.wait_for(p.wait(), 20)
            except TimeoutError:
                p.kill()
                await p.wait()
        await rx.stop()
    ok = rx.answered()
    first_seen: list[Hit] = []
    seen: set[str] = set()
    for h in ok:
        if h.json["id"] not in seen:
            seen.add(h.json["id"])
            first_seen.append(h)
    assert by_fingerprint(first_seen) == expected_order(alerts)  # none lost, order kept
    counts: dict[str, int] = defaultdict(int)
    for h in ok:
        counts[h.json["id"]] += 1
    print(f"\ndispatcher group: recovery after SIGKILL {recovery_s:.1f} s "
          f"(session timeout {SESSION_TIMEOUT_MS / 1000:.0f} s), "
          f"{sum(n > 1 for n in counts.values())} alert(s) delivered twice")  # fmt: skip
    assert recovery_s < SESSION_TIMEOUT_MS / 1000 + 60
