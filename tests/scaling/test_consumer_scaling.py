"""Consumers of one exchange scaled out and killed under load, on Apache Kafka with real processes.

Set-up: one exchange topic with 12 partitions; a load generator (``tests/scaling/loadgen.py``, its
own process) publishes about 22,000 events/s of 96 pairs, trades and liquidations. Run: start one
``cascade-monitor consume`` (a), scale to three (b, then v), SIGKILL v, then start another (d).

Accounting, exact (whole-dollar notionals: sums do not depend on their order):

* a, b and d stop with SIGTERM once the load has ended and the group has committed every record;
  each then writes its state (``CASCADE_CONSUMER_STATE_DUMP``): per pair, what it counted live.
* v's counters die with it. Its share is what it committed: the test stops it (SIGSTOP) and reads
  the group's offsets of v's partitions before the SIGKILL; on each, v counted live from where its
  log says its warm-up replay ended (``replays offsets 0..N-1``: from N) to that commit. Records
  v applied after its last commit are re-read and counted by the partition's next owner.
* per pair and side, the survivors' counters plus v's committed share equal what the topic holds
  (liquidation notional and count by side, trade count and notional): nothing lost, nothing
  counted twice; and the topic holds what the generator had acknowledged.

Decayed state: every pair's liquidation and trade rates (per side and horizon), EWMA variance and
last price, read at the pair's latest event time by its final owner, equal those of an
uninterrupted reference (every record of the topic through one ``EventEngine``), rtol 1e-9: the
pairs taken over from the dead member were rebuilt by warm-up replay. (The Hawkes fits and rank
histories are sampled at tick closes, so a replay far behind the event clock may sample them at
other moments, docs/architecture.md §5; they are not compared.)

Measured and printed, for each change of the group (a spawn, or v's crash: its SIGSTOP, when its
heartbeats stop): the time until the new assignment covered every partition (the last member's
``assigned`` log line: the rebalance; after the crash that includes Kafka's session timeout, 10 s
by aiokafka's default) and until every member answered /readyz (its fresh partitions warmed up:
recovery); after the crash, the time until the group had committed everything published before
it; after the load stopped, the time until the lag was 0; and which partitions went back to a
member that had owned them before (their pairs are rebuilt from that member's own state plus a
replay of what the others applied meanwhile, and compared like the rest).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from monitor.core.config import load
from monitor.core.topics import ensure_exchange_topics
from tests.brokers import KafkaBroker
from tests.scaling.consumer_group import (
    ROOT,
    Member,
    Offsets,
    Settled,
    Totals,
    add,
    child_env,
    load_dumps,
    poll,
    reference,
    settled,
    zero,
)

pytestmark = [pytest.mark.scaling, pytest.mark.slow]
X = "binance"
PARTITIONS = 12
PHASE_S = 8.0  # steady load between two changes of the group
MIN_RATE = 20_000.0  # events/s
RTOL = 1e-9
# Bounds on each change of the group settling (the warm-up replays every record so far of the
# member's fresh partitions: up to a million events, tens of seconds on a busy 2-core machine)
SETTLE_S = 180.0


def config_text(bootstrap: str, unique: str) -> str:
    return f"""
[kafka]
bootstrap_servers = "{bootstrap}"
topic_prefix = "s{unique}"
partitions = {PARTITIONS}

[consumer]
group_prefix = "s{unique}"
warmup_s = 900  # covers the whole run: the rebuilt pairs must equal an uninterrupted consumer's
lag_refresh_s = 0.5
risk_publish_s = 0

[alerts]
rules = []
"""


def counted(d: dict[str, Any]) -> Totals:
    """A dumped pair's counters as totals (long, short; the unknown side must be empty)."""
    assert d["liq_count"][2] == 0 and d["liq_notional"][2] == 0.0
    return {"liq_usd": d["liq_notional"][:2], "liq_n": d["liq_count"][:2],
            "trd_n": d["trd_count"], "trd_usd": d["trd_notional"]}  # fmt: skip


async def test_consumers_scale_out_and_a_killed_one_loses_and_doubles_nothing(
    apache_kafka: KafkaBroker, unique: str, tmp_path: Path
) -> None:
    config = tmp_path / "consume.toml"
    config.write_text(config_text(apache_kafka.bootstrap, unique))
    cfg = load(config, environ={})
    await ensure_exchange_topics(cfg, [X])
    summary_path = tmp_path / "published.json"
    gen = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.scaling.loadgen", "--bootstrap", apache_kafka.bootstrap,
        "--topic", cfg.topic(X), "--partitions", str(PARTITIONS), "--out", str(summary_path),
        cwd=ROOT, env=child_env(), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    members: list[Member] = []
    changes: dict[str, Settled] = {}  # each change of the group: rebalanced, ready
    times: dict[str, float] = {}

    async def spawn(name: str, group: list[Member], what: str) -> Member:
        since = time.time()
        m = await Member.spawn(name, X, config, tmp_path)
        members.append(m)
        changes[what] = await settled([*group, m], PARTITIONS, SETTLE_S, since)
        return m

    try:
        assert gen.stdout is not None
        assert await asyncio.wait_for(gen.stdout.readline(), 60) == b"ready\n"
        async with Offsets(cfg, X) as offsets:
            a = await spawn("a", [], "start a (0 -> 1)")
            await asyncio.sleep(PHASE_S)  # steady load on one member
            b = await spawn("b", [a], "start b (1 -> 2)")
            await asyncio.sleep(PHASE_S)
            v = await spawn("v", [a, b], "start v (2 -> 3)")
            await asyncio.sleep(PHASE_S)

            # v stops (no more commits), its commits are read, then it is killed
            v.proc.send_signal(signal.SIGSTOP)  # its heartbeats stop here
            killed_at = time.time()
            v_parts = v.assignments()[-1]

            async def v_commits() -> dict[int, int]:
                got = await offsets.committed()
                return {p: got[p] for p in v_parts}

            # a commit v had sent before it stopped may still be on its way: read until two
            # reads half a second apart agree
            v_commit: dict[int, int] = {}
            while (again := await v_commits()) != v_commit:
                v_commit = again
                await asyncio.sleep(0.5)
            v.proc.send_signal(signal.SIGKILL)
            assert await v.proc.wait() == -signal.SIGKILL
            end_at_kill = await offsets.end()
            changes["kill v (3 -> 2)"] = await settled([a, b], PARTITIONS, SETTLE_S, killed_at)

            async def caught_up() -> bool:
                got = await offsets.committed()
                return all(got.get(p, 0) >= end_at_kill[p] for p in range(PARTITIONS))

            await poll("caught up after the kill", caught_up, SETTLE_S)
            times["kill v -> all it had not committed is committed"] = time.time() - killed_at
            d = await spawn("d", [a, b], "start d (2 -> 3)")
            await asyncio.sleep(PHASE_S)

            gen.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(gen.wait(), 60) == 0
            end = await offsets.end()

            async def drained() -> bool:
                return await offsets.committed() == end

            times["load stopped -> lag 0 (all committed)"] = await poll("lag 0", drained, 120)
            survivors = [a, b, d]

            async def lag_zero() -> bool:
                lags = await asyncio.gather(*(m.lag() for m in survivors))
                return all(lag and not any(lag.values()) for lag in lags)

            await poll("every member's lag gauge at 0", lag_zero, 30)
            owners = {m.name: m.assignments()[-1] for m in survivors}
            assert sorted(p for parts in owners.values() for p in parts) == list(range(PARTITIONS))
            pids = {m.proc.pid: m.name for m in survivors}
            assert await asyncio.gather(*(m.stop() for m in survivors)) == [0, 0, 0]
        published = orjson.loads(summary_path.read_bytes())
        ref = await reference(cfg, X, end)
    finally:
        for m in members:
            await m.stop()
        if gen.returncode is None:
            gen.kill()
            await gen.wait()

    dumps = {pids[pid]: dump for pid, dump in load_dumps(tmp_path / "dumps").items()}
    assert set(dumps) == {"a", "b", "d"}
    rate = published["events_per_s"]
    print(f"\nconsumer scaling: {rate:,.0f} events/s published "
          f"({published['events']:,} events, {published['records']:,} records); "
          f"v killed on partitions {sorted(v_parts)}")  # fmt: skip
    print(f"  {'change of the group':<20} {'rebalanced':>10} {'ready':>7}  (s after the change)")
    for what, c in changes.items():
        print(f"  {what:<20} {c.rebalanced_s:10.1f} {c.ready_s:7.1f}")
    for what, s in times.items():
        print(f"  {what}: {s:.1f} s")
    back = {name: m.returned() for name, m in (("a", a), ("b", b), ("d", d))}
    print(f"  partitions assigned back to a member that had them before: {back}")

    # the topic holds what the generator had acknowledged
    topic: dict[str, Totals] = {}
    for p in range(PARTITIONS):
        for symbol, t in ref.share(p, 0, end[p]).items():
            add(topic.setdefault(symbol, zero()), t)
    assert topic == {
        s: {"liq_usd": [t["liq_usd"]["long"], t["liq_usd"]["short"]],
            "liq_n": [t["liq_n"]["long"], t["liq_n"]["short"]],
            "trd_n": t["trd_n"], "trd_usd": t["trd_usd"]}
        for s, t in published["pairs"].items()
    }  # fmt: skip

    # counted once: the survivors' counters plus v's committed share, per pair
    v_live_from = v.live_from()
    assert len(v.assignments()) == 1, "v's share is known for one assignment only"
    assert set(v_live_from) == v_parts, "v did not log where it went live on every partition"
    total: dict[str, Totals] = {}
    for p in v_parts:
        for symbol, t in ref.share(p, v_live_from[p], v_commit[p]).items():
            add(total.setdefault(symbol, zero()), t)
    for dump in dumps.values():
        for symbol, pair in dump["pairs"].items():
            add(total.setdefault(symbol, zero()), counted(pair))
    assert total == topic

    # every pair's decayed state, by its final owner, equals the uninterrupted run's
    partition_of = {sym: p for p, recs in ref.records.items() for sym, _ in recs}
    owner_of = {p: name for name, parts in owners.items() for p in parts}
    assert set(partition_of) == set(published["pairs"])
    for symbol, p in sorted(partition_of.items()):
        owner = owner_of[p]
        pair = dumps[owner]["pairs"][symbol]
        want = ref.decayed(symbol, pair["t"])
        assert pair["t"] == want["t"], symbol  # the same latest event applied
        for key in ("liq_rate", "trd_rate", "variance", "last_price"):
            np.testing.assert_allclose(
                np.asarray(pair[key], dtype=np.float64), want[key], rtol=RTOL, atol=1e-12,
                err_msg=f"{symbol} {key} (owner {owner})",
            )  # fmt: skip
    assert rate >= MIN_RATE, f"the load was {rate:,.0f} events/s, not {MIN_RATE:,.0f}"
