"""The offset ledger (monitor/core/offsets.py): commit points of records done in order and out of
order, what is committed and when, and revoked partitions. Exact offsets throughout."""

from __future__ import annotations

import random

from aiokafka import TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.offsets import OffsetLedger

A, B, C = ("t", 0), ("t", 1), ("t", 2)


def test_in_order_records_move_the_commit_point_past_each_one() -> None:
    ledger: OffsetLedger[tuple[str, int]] = OffsetLedger()
    assert ledger.position(A) is None and not ledger.is_done(A, 0)
    ledger.done(A, 0)
    ledger.done(A, 1)
    assert ledger.position(A) == 2
    assert ledger.is_done(A, 0) and ledger.is_done(A, 1) and not ledger.is_done(A, 2)
    ledger.done(A, 7)  # a gap in the offsets (compaction, transaction markers)
    assert ledger.position(A) == 8 and ledger.is_done(A, 5) and not ledger.is_done(A, 8)
    assert ledger.outstanding(A) == 0


def test_the_commit_point_never_moves_back() -> None:
    ledger: OffsetLedger[tuple[str, int]] = OffsetLedger()
    ledger.done(A, 5)
    ledger.done(A, 3)
    assert ledger.position(A) == 6


def test_only_moved_partitions_of_those_asked_are_committed() -> None:
    ledger: OffsetLedger[tuple[str, int]] = OffsetLedger()
    ledger.done(A, 0)
    ledger.done(B, 4)
    ledger.begin(C, 9)  # nothing done on C yet: no commit point
    assert ledger.to_commit([A, B, C]) == {A: 1, B: 5}
    assert ledger.to_commit([B]) == {B: 5}
    assert not ledger.settled()
    ledger.committed({A: 1})
    assert ledger.to_commit([A, B, C]) == {B: 5}
    ledger.committed({B: 5})
    assert ledger.to_commit([A, B, C]) == {} and ledger.settled()
    assert ledger.committed_offsets() == {A: 1, B: 5}
    ledger.done(A, 1)
    assert ledger.to_commit([A, B]) == {A: 2} and not ledger.settled()


def test_out_of_order_completion_commits_up_to_the_lowest_record_not_done() -> None:
    ledger: OffsetLedger[tuple[str, int]] = OffsetLedger()
    for off in (10, 11, 12, 13):
        ledger.begin(A, off)
    assert ledger.outstanding(A) == 4 and ledger.position(A) is None
    assert ledger.complete(A, 12)
    assert ledger.position(A) is None and ledger.to_commit([A]) == {}
    assert ledger.is_done(A, 12) and not ledger.is_done(A, 10) and not ledger.is_done(A, 11)
    assert ledger.complete(A, 10)
    assert ledger.position(A) == 11 and ledger.to_commit([A]) == {A: 11}
    assert ledger.complete(A, 11)  # 12 was done already: the point passes it too
    assert ledger.position(A) == 13 and ledger.outstanding(A) == 1
    assert ledger.complete(A, 13)
    assert ledger.position(A) == 14 and ledger.outstanding(A) == 0
    assert not ledger.complete(A, 13)  # done twice: no change
    assert not ledger.complete(A, 99)  # never begun
    assert ledger.position(A) == 14


def test_a_record_done_in_order_waits_behind_begun_ones() -> None:
    ledger: OffsetLedger[tuple[str, int]] = OffsetLedger()
    ledger.begin(A, 0)
    ledger.done(A, 1)
    assert ledger.position(A) is None and ledger.is_done(A, 1) and ledger.outstanding(A) == 1
    ledger.complete(A, 0)
    assert ledger.position(A) == 2 and ledger.outstanding(A) == 0


def test_revoked_partitions_are_forgotten_with_their_records_in_flight() -> None:
    ledger: OffsetLedger[tuple[str, int]] = OffsetLedger()
    for off in (0, 1, 2):
        ledger.begin(A, off)
    ledger.begin(B, 0)
    ledger.complete(A, 0)
    ledger.complete(A, 2)
    ledger.committed({A: 1})
    assert ledger.forget([A, C]) == 1  # A's offset 1 was in flight; C was never seen
    assert ledger.position(A) is None and ledger.outstanding(A) == 0
    assert not ledger.is_done(A, 0)
    assert not ledger.complete(A, 1)  # a delivery of the revoked partition finishing late
    assert ledger.position(A) is None and ledger.to_commit([A, B]) == {}
    assert ledger.committed_offsets() == {}
    ledger.committed({A: 3})  # a commit answered after the revoke does not bring A back
    assert ledger.committed_offsets() == {}
    # assigned again: it starts from the group's commit, as a new partition
    ledger.begin(A, 1)
    ledger.complete(A, 1)
    assert ledger.position(A) == 2 and ledger.to_commit([A]) == {A: 2}
    assert ledger.outstanding(B) == 1


def test_aiokafka_partitions_and_plain_tuples_are_the_same_key() -> None:
    ledger: OffsetLedger[TopicPartition] = OffsetLedger()
    ledger.done(TopicPartition("t", 0), 4)
    assert ledger.position(("t", 0)) == 5  # type: ignore[arg-type]
    assert ledger.to_commit([TopicPartition("t", 0)]) == {("t", 0): 5}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=40).map(
        lambda gaps: [sum(gaps[: i + 1]) + i for i in range(len(gaps))]
    ),
    st.randoms(use_true_random=False),
)
def test_commit_point_is_the_first_offset_not_done_for_any_completion_order(
    offsets: list[int], rnd: random.Random
) -> None:
    order = list(offsets)
    rnd.shuffle(order)
    ledger: OffsetLedger[tuple[str, int]] = OffsetLedger()
    for off in offsets:
        ledger.begin(A, off)
    done: set[int] = set()
    for off in order:
        assert ledger.complete(A, off)
        done.add(off)
        first_open = next((i for i, o in enumerate(offsets) if o not in done), len(offsets))
        want = None if first_open == 0 else offsets[first_open - 1] + 1
        assert ledger.position(A) == want
        assert ledger.outstanding(A) == len(offsets) - len(done)
        assert all(ledger.is_done(A, o) == (o in done) for o in offsets)
    assert ledger.position(A) == offsets[-1] + 1
