"""Every parse in the producer tests runs through both paths, which must agree.

A test calls ``adapter.parse(frame, received_ns)`` and checks ``Parsed.events``: the objects path
(the frame's rows in a ``FrameStore``, rebuilt as events). For each such call, the autouse fixture
below also parses the same frame with a copy of the adapter as it was before the call into a fresh
``ColumnStore`` (the producer's path: the rows go into per-symbol record columns, through the
duplicate filter) and checks that the two say the same thing:

* the same ``ParseError`` reason when the frame is refused, and then no row in the store;
* the same item errors, replies, control flag, gaps and replays;
* rows offered by kind = the events by kind, duplicates = what a fresh ``Deduplicator`` drops;
* every record the store holds, encoded and decoded by the codec, gives exactly the events that
  survive the duplicate filter, per symbol and kind in the same order (a record groups its
  symbol's liquidations, trades and contexts).

So the parser tests and the documented examples (``test_documented_examples.py``) hold for the
column path too, without a second copy of them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from monitor.core.codec import decode_batch
from monitor.core.errors import ParseError
from monitor.core.schema import Event, Liquidation, MarketContext, Trade
from producers.base import Parsed
from producers.columns import ColumnStore, Deduplicator
from producers.registry import ADAPTERS

KINDS = {Liquidation: 0, Trade: 1, MarketContext: 2}


def _grouped(events: list[Event]) -> dict[tuple[str, int], list[Event]]:
    out: dict[tuple[str, int], list[Event]] = {}
    for e in events:
        out.setdefault((e.symbol, KINDS[type(e)]), []).append(e)
    return out


def check_column_path(adapter: Any, frame: Any, received_ns: int, objects: Parsed | None,
                      refused: ParseError | None, parse: Callable[..., Parsed]) -> None:  # fmt: skip
    """Parse ``frame`` with ``adapter`` (a copy taken before the objects-path parse) into a
    ColumnStore and compare with the objects-path result (``objects``, or ``refused``)."""
    store = ColumnStore(adapter.exchange)
    try:
        rows = parse(adapter, frame, received_ns, store)
    except ParseError as exc:
        assert refused is not None, f"column path refused a frame the objects path took: {exc}"
        assert exc.reason == refused.reason
        assert not store.records, "a refused frame added rows"
        return
    assert refused is None, f"column path took a frame the objects path refused: {refused}"
    assert objects is not None
    events = objects.events
    assert (rows.errors, rows.replies, rows.control, rows.gaps, rows.replayed) == (
        objects.errors, objects.replies, objects.control, objects.gaps, objects.replayed,
    )  # fmt: skip
    if rows.rows is not store:  # nothing for the store (control frames, adapters' own objects)
        assert not store.records
        assert rows.events == events
        return
    counts = [0, 0, 0]
    for e in events:
        counts[KINDS[type(e)]] += 1
    assert [rows.liquidations, rows.trades, rows.contexts] == counts
    fresh = Deduplicator().fresh(events)[0]
    assert rows.duplicates == len(events) - len(fresh)
    assert rows.refused == 0
    decoded: list[Event] = []
    for records in store.records.values():
        for record in records:
            decoded += decode_batch(record.encode()).events()
    assert _grouped(decoded) == _grouped(fresh)


@pytest.fixture(autouse=True)
def both_parse_paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Wrap every registered adapter's ``parse`` (see the module docstring)."""
    for cls in set(ADAPTERS.values()):
        original: Callable[..., Parsed] = cls.parse  # type: ignore[assignment]

        def parse(self: Any, frame: Any, received_ns: int, into: Any = None,
                  _original: Callable[..., Parsed] = original) -> Parsed:  # fmt: skip
            if into is not None:
                return _original(self, frame, received_ns, into)
            twin = copy.deepcopy(self)
            try:
                result = _original(self, frame, received_ns)
            except ParseError as exc:
                check_column_path(twin, frame, received_ns, None, exc, _original)
                raise
            check_column_path(twin, frame, received_ns, result, None, _original)
            return result

        monkeypatch.setattr(cls, "parse", parse)
    yield
