"""Helpers of the consumer scale-out test: ``cascade-monitor consume`` processes (their logs,
readiness and metrics), the group's offsets, and an uninterrupted reference run over the topic.

A member's stderr log is its account of the group: ``assigned [..]`` at each assignment
(``consumers.service``) and ``partition P replays offsets A..B`` when a fresh partition rebuilds
its state (``consumers.warmup``): it counts live from ``B + 1`` on.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from consumers.engine import EventEngine
from consumers.ingest import RecordIngest
from consumers.service import STATE_DUMP_ENV
from monitor.core.config import Config
from tests.monitor.app.test_run import get, scrape

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "monitor.app.cli"]
_METRICS = re.compile(r"metrics on (http://\S+)/metrics")
_ASSIGNED = re.compile(r"^(\S+ \S+) .*: (\w+): assigned \[([\d, ]*)\]", re.MULTILINE)
_REPLAYS = re.compile(r": (\w+): partition (\d+) replays offsets (\d+)\.\.(\d+)")


def child_env() -> dict[str, str]:
    """The test's environment for a child process, without asyncio debug mode (conftest turns it
    on for the tests' own loops; it would slow the load and the consumers several times) and
    without configuration overrides."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CASCADE_MONITOR") and k != "PYTHONASYNCIODEBUG"
    }


async def poll(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float) -> float:
    """Poll ``check`` (state of other processes: nothing to await) until it holds; returns the
    seconds it took."""
    t0 = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            while not await check():  # noqa: ASYNC110 - other processes' state
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not {what} after {timeout_s} s") from None
    return time.monotonic() - t0


@dataclass
class Member:
    """One ``cascade-monitor consume`` process of the group."""

    name: str
    proc: asyncio.subprocess.Process
    log: Path

    @classmethod
    async def spawn(cls, name: str, exchange: str, config: Path, tmp: Path) -> Member:
        log = tmp / f"{name}.log"
        env = child_env()
        env[STATE_DUMP_ENV] = str(tmp / "dumps")
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                *CLI, "consume", "--exchange", exchange, "--config", str(config),
                "--metrics-port", "0", "--log-level", "info", cwd=ROOT, env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        return cls(name, proc, log)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> None:
        """AssertionError with the end of its log if it exited."""
        if self.proc.returncode is not None:
            tail = "\n".join(self.text().splitlines()[-15:])
            raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{tail}")

    @property
    def url(self) -> str:
        """Its metrics endpoint (it logs the free port it took), "" until then."""
        m = _METRICS.search(self.text())
        return m[1] if m else ""

    def assignments(self) -> list[set[int]]:
        """Every assignment this member logged, in order."""
        return [
            {int(p) for p in m[3].split(",") if p.strip()} for m in _ASSIGNED.finditer(self.text())
        ]

    def returned(self) -> list[int]:
        """Partitions of its latest assignment that it had, lost and got back: it rebuilt their
        pairs from its own state plus a replay of what other members applied meanwhile."""
        got = self.assignments()
        return sorted(
            p
            for p in got[-1]
            if any(p in old and any(p not in gap for gap in got[i + 1 : -1])
                   for i, old in enumerate(got[:-1]))
        )  # fmt: skip

    def assigned_at(self) -> list[float]:
        """When it logged each assignment (epoch seconds; the log's local time, this host's)."""
        return [
            datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            for m in _ASSIGNED.finditer(self.text())
        ]

    def live_from(self) -> dict[int, int]:
        """Partition -> the first offset it counted after a warm-up replay."""
        return {int(m[2]): int(m[4]) + 1 for m in _REPLAYS.finditer(self.text())}

    async def ready(self) -> bool:
        url = self.url
        return bool(url) and (await asyncio.to_thread(get, url + "/readyz"))[0] == 200

    async def lag(self) -> dict[int, float]:
        """Partition -> ``cascade_consumer_lag_records`` (the partitions assigned to it)."""
        samples = await asyncio.to_thread(scrape, self.url + "/metrics")
        return {
            int(dict(labels)["partition"]): v
            for labels, v in samples.get("cascade_consumer_lag_records", {}).items()
        }

    async def stop(self) -> int:
        """SIGTERM and the exit code (SIGKILL after 60 s)."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), 60)
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()


@dataclass
class Settled:
    """A change of the group, from ``since`` (epoch seconds: a spawn or a kill): ``rebalanced_s``
    until the last member logged its share of the new assignment, ``ready_s`` until every member
    answered /readyz (its share warmed up)."""

    rebalanced_s: float
    ready_s: float


async def settled(
    members: list[Member], partitions: int, timeout_s: float, since: float | None = None
) -> Settled:
    """Wait until the members' latest assignments split the partitions between them (disjoint,
    covering every one) and each answers /readyz (assigned, warmed up)."""
    since = time.time() if since is None else since

    async def check() -> bool:
        latest = []
        for m in members:
            m.alive()
            got = m.assignments()
            if not got:
                return False
            latest.append(got[-1])
        if sum(map(len, latest)) != partitions or set().union(*latest) != set(range(partitions)):
            return False
        return all(await asyncio.gather(*(m.ready() for m in members)))

    await poll(f"settled on {[m.name for m in members]}", check, timeout_s)
    ready_s = time.time() - since
    rebalanced_s = max(m.assigned_at()[-1] for m in members) - since
    return Settled(rebalanced_s, ready_s)


class Offsets:
    """The group's committed offsets and the topic's end offsets."""

    def __init__(self, cfg: Config, exchange: str) -> None:
        self.group = cfg.group_id(exchange)
        self.tps = [TopicPartition(cfg.topic(exchange), p) for p in range(cfg.kafka.partitions)]
        self._admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap_servers)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap_servers)

    async def __aenter__(self) -> Offsets:
        await self._admin.start()
        await self._consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def committed(self) -> dict[int, int]:
        got = await self._admin.list_consumer_group_offsets(self.group)
        return {tp.partition: om.offset for tp, om in got.items() if tp in self.tps}

    async def end(self) -> dict[int, int]:
        ends = await self._consumer.end_offsets(self.tps)
        return {tp.partition: off for tp, off in ends.items()}


# ---- the reference: every record of the topic through one uninterrupted engine -----------------

Totals = dict[str, Any]  # liq_usd [long, short], liq_n [long, short], trd_n, trd_usd


def zero() -> Totals:
    return {"liq_usd": [0.0, 0.0], "liq_n": [0, 0], "trd_n": 0, "trd_usd": 0.0}


def add(into: Totals, more: Totals) -> None:
    for k in ("liq_usd", "liq_n"):
        into[k] = [a + b for a, b in zip(into[k], more[k], strict=True)]
    into["trd_n"] += more["trd_n"]
    into["trd_usd"] += more["trd_usd"]


@dataclass
class Reference:
    """What the topic holds, per pair and per record, and an uninterrupted engine's state."""

    engine: EventEngine[None]
    records: dict[int, list[tuple[str, Totals]]] = field(default_factory=lambda: defaultdict(list))

    def share(self, partition: int, start: int, end: int) -> dict[str, Totals]:
        """Per pair, the totals of the records ``start <= offset < end`` of ``partition``."""
        out: dict[str, Totals] = defaultdict(zero)
        for symbol, t in self.records[partition][start:end]:
            add(out[symbol], t)
        return out

    def decayed(self, symbol: str, t: float) -> dict[str, Any]:
        """The pair's decayed state at ``t`` (the fields of a consumer's state dump)."""
        st = self.engine.state
        pid = st.pair_id(self.engine.exchange, symbol)
        assert pid is not None, symbol
        r = st.read(t, np.array([pid], dtype=np.int64))
        return {"t": float(st.t_max[pid]), "liq_rate": r.liq_rate[0], "trd_rate": r.trd_rate[0],
                "variance": r.variance[0], "last_price": r.last_price[0]}  # fmt: skip


def record_totals(batch: Any) -> Totals:
    t = zero()
    liq = batch.liq
    if liq:
        for side, usd in zip(liq["side"], liq["notional_usd"], strict=True):
            j = ("long", "short").index(side)
            t["liq_usd"][j] += usd
            t["liq_n"][j] += 1
    if batch.trd:
        t["trd_n"] = len(batch.trd["id"])
        t["trd_usd"] = float(sum(batch.trd["notional_usd"]))
    return t


async def reference(cfg: Config, exchange: str, end: dict[int, int]) -> Reference:
    """Read every partition from offset 0 to ``end`` and feed one engine, as one consumer that
    was never interrupted would (its own state, counters included), keeping each record's
    totals by partition and offset."""
    c = cfg.consumer
    ingest = RecordIngest.from_config(cfg, exchange)
    engine: EventEngine[None] = EventEngine(
        ingest, None, period_s=c.alert_eval_s, lateness_s=c.alert_lateness_s,
        quiet_s=c.alert_quiet_s, refit_interval_s=cfg.risk.refit_interval_s,
    )  # fmt: skip
    ref = Reference(engine)
    consumer = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(cfg.topic(exchange), p) for p in end]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        left = {tp.partition for tp in tps if end[tp.partition] > 0}
        while left:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, recs in batches.items():
                for rec in recs:
                    if rec.offset >= end[tp.partition]:
                        continue
                    assert rec.offset == len(ref.records[tp.partition]), "a gap in the topic"
                    batch, error, detail = ingest.decode(rec.value)
                    assert batch is not None, (error, detail)
                    ref.records[tp.partition].append((batch.symbol, record_totals(batch)))
                    engine.offer(batch)
                    if rec.offset + 1 == end[tp.partition]:
                        left.discard(tp.partition)
            engine.step()
        engine.step(final=True)
    finally:
        await consumer.stop()
    return ref


def load_dumps(folder: Path) -> dict[int, dict[str, Any]]:
    """pid -> the state dump a stopped member wrote (``consumers.service.state_dump``)."""
    return {d["pid"]: d for d in (orjson.loads(p.read_bytes()) for p in folder.glob("*.json"))}
