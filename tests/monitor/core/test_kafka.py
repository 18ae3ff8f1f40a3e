"""The Kafka handle Protocols (monitor/core/kafka.py) against aiokafka's classes: mypy cannot see
aiokafka (it ships no type information), so this checks the structural fit it would: every method
exists, is a coroutine exactly when the Protocol's is, and takes the Protocol's parameters by the
same names and kinds."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, OffsetAndTimestamp

from monitor.core import kafka

P = inspect.Parameter


def members(proto: type) -> dict[str, Callable[..., Any]]:
    """The methods a Protocol declares, its bases' included."""
    out: dict[str, Callable[..., Any]] = {}
    for cls in reversed(proto.__mro__):
        if cls is object or not getattr(cls, "_is_protocol", False):
            continue
        for name, fn in vars(cls).items():
            if inspect.isfunction(fn) and not name.startswith("__"):
                out[name] = fn
    return out


def accepts(impl: Callable[..., Any], proto: Callable[..., Any]) -> list[str]:
    """What ``impl`` lacks to be called as ``proto`` is (empty: compatible)."""
    problems = []
    have = inspect.signature(impl).parameters
    kinds = {p.kind for p in have.values()}
    for name, want in inspect.signature(proto).parameters.items():
        if name == "self":
            continue
        got = have.get(name)
        if want.kind is P.VAR_POSITIONAL:
            if P.VAR_POSITIONAL not in kinds:
                problems.append(f"*{name}")
            continue
        if got is None:
            if not (want.kind is P.KEYWORD_ONLY and P.VAR_KEYWORD in kinds):
                problems.append(f"{name}: missing")
            continue
        if want.kind is P.POSITIONAL_OR_KEYWORD and got.kind is not P.POSITIONAL_OR_KEYWORD:
            problems.append(f"{name}: {got.kind.description}, not positional-or-keyword")
        if want.kind is P.KEYWORD_ONLY and got.kind is P.POSITIONAL_ONLY:
            problems.append(f"{name}: positional-only")
        if want.default is not P.empty and got.default is P.empty:
            problems.append(f"{name}: required, optional in the Protocol")
    required = [
        n for n, p in have.items()
        if n != "self" and p.default is P.empty and p.kind not in (P.VAR_POSITIONAL, P.VAR_KEYWORD)
    ]  # fmt: skip
    problems += [f"{n}: required, not in the Protocol" for n in required if n not in
                 inspect.signature(proto).parameters]  # fmt: skip
    return problems


CASES = [
    (kafka.RiskConsumer, AIOKafkaConsumer),
    (kafka.GroupConsumer, AIOKafkaConsumer),
    (kafka.Fetcher, AIOKafkaConsumer),
    (kafka.BatchSender, AIOKafkaProducer),
    (kafka.Sender, AIOKafkaProducer),
]


@pytest.mark.parametrize(("proto", "impl"), CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_aiokafka_classes_have_every_protocol_method(proto: type, impl: type) -> None:
    declared = members(proto)
    assert declared  # the walk found the Protocol's methods
    for name, fn in declared.items():
        got = getattr(impl, name, None)
        assert callable(got), f"{impl.__name__}.{name} missing"
        assert inspect.iscoroutinefunction(got) == inspect.iscoroutinefunction(fn), name
        assert accepts(got, fn) == [], f"{impl.__name__}.{name}"


def test_the_risk_consumer_needs_exactly_what_the_consumer_service_calls() -> None:
    assert sorted(members(kafka.RiskConsumer)) == [
        "assignment", "commit", "committed", "getmany", "highwater", "offsets_for_times",
        "position", "seek", "start", "stop",
    ]  # fmt: skip
    assert sorted(members(kafka.BatchSender)) == ["flush", "send", "send_and_wait", "start", "stop"]


def test_records_and_offset_answers_carry_the_attributes_read() -> None:
    rec = ConsumerRecord("t", 0, 7, 0, 0, None, b"v", None, 0, 1, ())
    assert (rec.offset, rec.value) == (7, b"v")
    assert OffsetAndTimestamp(5, 0).offset == 5


def test_the_check_itself_finds_a_missing_or_incompatible_method() -> None:
    class Wrong:
        def getmany(self, timeout_ms: int = 0) -> None: ...  # not async, no *partitions

        async def start(self, now: bool) -> None: ...  # a required extra parameter

    fns = members(kafka.Fetcher)
    assert not inspect.iscoroutinefunction(Wrong.getmany)
    assert accepts(Wrong.getmany, fns["getmany"]) == ["*partitions", "max_records: missing"]
    assert accepts(Wrong.start, fns["start"]) == ["now: required, not in the Protocol"]
    assert getattr(Wrong, "stop", None) is None
