"""Health (``/healthz``, ``/readyz``) of the alert dispatcher on the real broker: ready once its
group assigned it partitions of the alerts topic, live while its loops run."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from monitor.alerting.dispatcher import AlertDispatcher
from monitor.core.lifecycle import Health
from tests.monitor.alerting.helpers import Receiver
from tests.monitor.alerting.test_alert_dispatcher import ENV, _cfg, json_sink


class Observed(AlertDispatcher):
    """Exposes assignments as an awaitable queue (through the assignment hook)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.assignments: asyncio.Queue[set[int]] = asyncio.Queue()

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        await super()._on_assigned(assigned)
        self.assignments.put_nowait({tp.partition for tp in assigned})


async def test_a_dispatcher_is_ready_with_partitions_and_live_while_its_loops_run(
    kafka_bootstrap: str, unique: str, receiver: Receiver
) -> None:
    cfg = _cfg(kafka_bootstrap, unique, [json_sink(receiver.url())])
    d = Observed(cfg, CollectorRegistry(), environ=ENV)
    assert d.health() == Health(live=True, ready=False, detail="starting")
    async with d:
        assert await asyncio.wait_for(d.assignments.get(), 30) == {0, 1, 2}
        assert d.health() == Health(live=True, ready=True)
        task = d._commit_task
        assert task is not None
        task.cancel()  # one loop ends (as if it had failed): no longer live
        await asyncio.wait([task])
        assert d.health() == Health(live=False, ready=False, detail="dispatcher loop ended")
    assert d.health() == Health(live=False, ready=False, detail="stopped")


async def test_a_dispatcher_without_partitions_is_live_and_not_ready(
    kafka_bootstrap: str, unique: str, receiver: Receiver
) -> None:
    cfg = _cfg(kafka_bootstrap, unique, [json_sink(receiver.url())]).with_overrides(
        kafka={"partitions": 1}
    )
    a, b = (Observed(cfg, CollectorRegistry(), environ=ENV) for _ in range(2))
    async with a:
        assert await asyncio.wait_for(a.assignments.get(), 30) == {0}
        async with b:
            # one partition, two members: after the rebalance exactly one of them holds it
            got = [await asyncio.wait_for(m.assignments.get(), 60) for m in (a, b)]
            assert sorted(map(len, got)) == [0, 1]
            idle, busy = (a, b) if not got[0] else (b, a)
            assert idle.health() == Health(live=True, ready=False, detail="no partitions assigned")
            assert busy.health() == Health(live=True, ready=True)
