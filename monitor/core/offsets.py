"""The offset ledger of a Kafka group member: which records are done, and what to commit.

Pure module (no I/O, no Kafka client): the consumer service (``consumers.service``) and the alert
dispatcher (``monitor.alerting.dispatcher``) keep their offsets here and do the commit requests
themselves, as aiokafka keeps its ``SubscriptionState`` apart from the fetcher and coordinator.
Partitions are any hashable key: aiokafka's ``TopicPartition``, or a plain ``(topic, partition)``
tuple, which compares equal to it.

Per partition the ledger keeps:

* the *commit point*: the offset after the last record of the done prefix, i.e. the lowest offset
  not yet done among the records taken (Kafka's convention: a committed offset is the next record
  to read). It only moves forward.
* the *committed* offset: what this process last committed successfully.
* the records *begun* and not yet done, in the order they were taken. A record done out of order
  (concurrent deliveries) waits there until every record taken before it is done too; only then
  does the commit point pass it.

Two ways to finish a record:

* ``done(tp, offset)``: a record processed synchronously, in the order taken (the consumer
  service: it applies a fetched batch without suspending). It is begun and finished at once, so
  it moves the commit point unless earlier records are still begun.
* ``begin(tp, offset)`` when taken, ``complete(tp, offset)`` when done, in any order (the
  dispatcher: one record waits for every sink, deliveries run concurrently). Completing an offset
  that is not begun (its partition was forgotten since) changes nothing.

``to_commit(partitions)`` gives the commit points of those partitions that moved since this
process last committed them; after the commit request succeeds, ``committed(offsets)`` records
them. ``forget(partitions)`` drops revoked partitions (the next owner starts from the group's
commit); the consumer service never forgets, so a partition that comes back within one process
is never applied twice.

Offsets of one partition are taken in increasing order (Kafka's order within a partition).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class _Partition:
    position: int | None = None  # commit point: after the done prefix; None before the first
    committed: int | None = None  # last offset this process committed
    begun: deque[int] = field(default_factory=deque)  # taken, not all done, in taking order
    pending: set[int] = field(default_factory=set)  # begun, not done
    finished: set[int] = field(default_factory=set)  # begun, done, still behind a pending one


class OffsetLedger(Generic[K]):
    """Per-partition commit points of the records done (see the module docstring)."""

    def __init__(self) -> None:
        self._parts: dict[K, _Partition] = {}

    # ---- records -------------------------------------------------------------------------

    def begin(self, tp: K, offset: int) -> None:
        """Record ``offset`` as taken: it holds the commit point until ``complete``."""
        part = self._parts.setdefault(tp, _Partition())
        part.begun.append(offset)
        part.pending.add(offset)

    def complete(self, tp: K, offset: int) -> bool:
        """Mark a begun ``offset`` done (any order). False when it was not begun (its partition
        was forgotten since, or it completed already): nothing changes then."""
        part = self._parts.get(tp)
        if part is None or offset not in part.pending:
            return False
        part.pending.remove(offset)
        part.finished.add(offset)
        self._advance(part)
        return True

    def done(self, tp: K, offset: int) -> None:
        """Mark ``offset`` processed in the order taken (begun and completed at once)."""
        part = self._parts.setdefault(tp, _Partition())
        if not part.begun:  # the common case, without touching the queue
            part.position = offset + 1 if part.position is None else max(part.position, offset + 1)
            return
        part.begun.append(offset)
        part.finished.add(offset)
        self._advance(part)

    @staticmethod
    def _advance(part: _Partition) -> None:
        begun, finished = part.begun, part.finished
        while begun and begun[0] in finished:
            off = begun.popleft()
            finished.discard(off)
            part.position = off + 1 if part.position is None else max(part.position, off + 1)

    # ---- queries -------------------------------------------------------------------------

    def is_done(self, tp: K, offset: int) -> bool:
        """Whether ``offset`` is done: below the commit point, or completed ahead of it."""
        part = self._parts.get(tp)
        if part is None:
            return False
        below = part.position is not None and offset < part.position
        return below or offset in part.finished

    def abandon(self, tp: K, offset: int) -> bool:
        """Un-take a begun ``offset`` that will not be done here (it may be taken again): the
        commit point stays before it. False when it was not begun."""
        part = self._parts.get(tp)
        if part is None or offset not in part.pending:
            return False
        part.pending.remove(offset)
        part.begun.remove(offset)
        self._advance(part)
        return True

    def is_begun(self, tp: K, offset: int) -> bool:
        """Whether ``offset`` was begun and is not done yet."""
        part = self._parts.get(tp)
        return part is not None and offset in part.pending

    def position(self, tp: K) -> int | None:
        """The commit point of ``tp`` (the next offset to process); None before any is done."""
        part = self._parts.get(tp)
        return None if part is None else part.position

    def outstanding(self, tp: K) -> int:
        """Records of ``tp`` begun and not yet done."""
        part = self._parts.get(tp)
        return 0 if part is None else len(part.pending)

    def settled(self) -> bool:
        """Whether every commit point is committed (nothing done waits for a commit)."""
        return all(p.position == p.committed for p in self._parts.values())

    # ---- commits -------------------------------------------------------------------------

    def to_commit(self, partitions: Iterable[K]) -> dict[K, int]:
        """The commit points of ``partitions`` that moved since this process committed them."""
        out: dict[K, int] = {}
        for tp in partitions:
            part = self._parts.get(tp)
            if part is not None and part.position is not None and part.position != part.committed:
                out[tp] = part.position
        return out

    def committed(self, offsets: Mapping[K, int]) -> None:
        """Record a successful commit of ``offsets`` (partitions forgotten since are left out)."""
        for tp, off in offsets.items():
            part = self._parts.get(tp)
            if part is not None:
                part.committed = off

    def committed_offsets(self) -> dict[K, int]:
        """The offsets this process committed, per partition it still keeps."""
        return {tp: p.committed for tp, p in self._parts.items() if p.committed is not None}

    def forget(self, partitions: Iterable[K]) -> int:
        """Drop revoked partitions; returns how many of their records were begun and not done."""
        dropped = 0
        for tp in partitions:
            part = self._parts.pop(tp, None)
            if part is not None:
                dropped += len(part.pending)
        return dropped
