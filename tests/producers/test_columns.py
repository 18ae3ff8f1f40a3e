"""The producer's column store: records per venue symbol, the duplicate filter, ranks, room."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from monitor.core.codec import decode_batch, encode_batch
from monitor.core.config import ExchangeConfig
from monitor.core.schema import Liquidation, Trade, liquidation_id, ranked_id
from producers.base import Parsed
from producers.bybit import BybitAdapter
from producers.columns import ColumnStore
from producers.framestore import FrameStore

RECV = 1_760_000_000_000_000_000


def trade(store: Any, i: int, vs: str = "BTCUSDT", sym: str = "BTC-USDT-PERP") -> None:
    store.trade(sym, vs, f"t{i}", "buy", 100.0 + i, 0.5, "base", 1.0, 0.5, 50.0 + i / 2, None,
                1_760_000_000_000 + i, RECV + i)  # fmt: skip


def liquidation(store: Any, ts: int, *, ranked: bool = True, qty: float = 2.0) -> None:
    key = ("BTCUSDT", ts, "long", qty, 64000.0)
    store.liquidation("BTC-USDT-PERP", "BTCUSDT", "long", None, 64000.0, "bankruptcy", qty,
                      "base", 1.0, qty, qty * 64000.0, "aggregated", ts, RECV, key, ranked)  # fmt: skip


def events_of(store: ColumnStore) -> list[Any]:
    return [e for q in store.records.values() for c in q for e in decode_batch(c.encode()).events()]


def test_rows_fill_records_of_at_most_max_batch_and_announce_each_new_record() -> None:
    announced: list[str] = []
    store = ColumnStore("bybit", max_batch=3, on_record=announced.append)
    store.begin()
    for i in range(7):
        trade(store, i)
    trade(store, 7, vs="ETHUSDT", sym="ETH-USDT-PERP")
    assert [c.n for c in store.records["BTC-USDT-PERP"]] == [3, 3, 1]
    assert announced == ["BTC-USDT-PERP"] * 3 + ["ETH-USDT-PERP"]
    assert store.counts() == (0, 8, 0, 0, 0)
    assert store.held == 8
    assert [e.trade_id for e in events_of(store)] == [f"t{i}" for i in range(8)]


def test_a_record_names_one_venue_symbol() -> None:
    """Two venue symbols of one canonical symbol go to separate records (the header names it)."""
    store = ColumnStore("x")
    store.begin()
    trade(store, 1, vs="BTCUSDT")
    trade(store, 2, vs="BTC-USDT")  # same canonical symbol, another venue spelling
    trade(store, 3, vs="BTCUSDT")
    heads = [(c.venue_symbol, c.n) for c in store.records["BTC-USDT-PERP"]]
    assert heads == [("BTCUSDT", 2), ("BTC-USDT", 1)]
    assert {e.venue_symbol for e in events_of(store)} == {"BTCUSDT", "BTC-USDT"}


def test_the_duplicate_filter_counts_repeats_per_frame_and_keeps_one() -> None:
    store = ColumnStore("bybit")
    store.begin()
    trade(store, 1)
    trade(store, 1)  # repeated within the frame
    trade(store, 1, vs="ETHUSDT", sym="ETH-USDT-PERP")  # same id, other symbol: not a repeat
    assert store.counts() == (0, 3, 0, 1, 0)
    store.begin()
    trade(store, 1)  # a later frame (a reconnect overlap)
    trade(store, 2)
    assert store.counts() == (0, 2, 0, 1, 0)
    assert [(e.venue_symbol, e.trade_id) for e in events_of(store)] == [
        ("BTCUSDT", "t1"), ("BTCUSDT", "t2"), ("ETHUSDT", "t1")]  # fmt: skip


def test_identical_liquidations_of_a_frame_are_ranked_and_a_replayed_frame_is_dropped() -> None:
    store = ColumnStore("bybit")
    for _ in range(2):  # the same frame twice: the second is a replay
        store.begin()
        liquidation(store, 5)
        liquidation(store, 5)  # a genuine second liquidation, identical fields
        liquidation(store, 6)
    assert store.counts() == (3, 0, 0, 3, 0)
    base = liquidation_id("bybit", "BTCUSDT", 5, "long", 2.0, 64000.0)
    ids = [e.event_id for e in events_of(store)]
    assert ids == [base, ranked_id(base, 1), liquidation_id("bybit", "BTCUSDT", 6, "long", 2.0,
                                                            64000.0)]  # fmt: skip


def test_unranked_identical_liquidations_are_one() -> None:
    store = ColumnStore("deribit")
    store.begin()
    liquidation(store, 5, ranked=False)
    liquidation(store, 5, ranked=False)
    assert store.counts()[3] == 1 and store.held == 1


def test_the_filter_forgets_only_past_twice_its_capacity_when_a_record_is_sealed() -> None:
    store = ColumnStore("bybit", capacity=4, max_batch=100)
    store.begin()
    for i in range(9):
        trade(store, i)
    assert len(store.seen) == 9  # nothing forgotten on the parsers' path
    head = store.seal("BTC-USDT-PERP")
    assert head is not None and head.n == 9
    assert list(store.seen) == [("BTCUSDT", f"t{i}") for i in range(5, 9)]  # the newest 4
    store.begin()
    trade(store, 8)  # still remembered
    trade(store, 0)  # forgotten: taken again
    assert store.counts()[3] == 1


def test_room_refuses_rows_beyond_max_buffered_and_acknowledgements_give_it_back() -> None:
    store = ColumnStore("bybit", max_batch=2, max_buffered=3)
    store.begin()
    for i in range(5):
        trade(store, i)
    assert store.counts() == (0, 5, 0, 0, 2) and store.held == 3
    head = store.seal("BTC-USDT-PERP")
    assert head is not None and head.n == 2
    trade(store, 5)  # refused: the sealed record is still held
    assert store.counts()[4] == 3
    nxt = store.done("BTC-USDT-PERP")
    assert nxt is not None and nxt.n == 1 and store.held == 1
    trade(store, 6)
    assert store.held == 2
    store.close()
    trade(store, 7)
    assert store.counts()[4] == 4 and store.held == 2 and store.closed


def test_sealing_closes_a_record_and_a_split_keeps_every_row_in_order() -> None:
    store = ColumnStore("bybit", max_batch=10)
    store.begin()
    for i in range(4):
        trade(store, i)
    liquidation(store, 1)
    head = store.seal("BTC-USDT-PERP")
    assert head is not None and head.counts() == (1, 4, 0)
    trade(store, 4)  # a new record behind the sealed one
    assert [c.n for c in store.records["BTC-USDT-PERP"]] == [5, 1]
    store.resize_head("BTC-USDT-PERP", 2)
    queue = store.records["BTC-USDT-PERP"]
    assert sum(c.n for c in queue) == 6 and len(queue) == 3
    assert [e.trade_id for e in events_of(store) if isinstance(e, Trade)] == [
        f"t{i}" for i in range(5)]  # fmt: skip


def test_event_objects_become_the_same_record_as_encode_batch_writes() -> None:
    frame = FrameStore("bybit")
    for i in range(3):
        trade(frame, i)
    liquidation(frame, 9)
    events = frame.events()
    store = ColumnStore("bybit")
    assert store.add_events(events) == (4, 0)
    (record,) = store.records["BTC-USDT-PERP"]
    assert record.encode() == encode_batch(events)


def test_a_frame_store_gives_its_events_in_item_order() -> None:
    frame = FrameStore("bybit")
    trade(frame, 1)
    liquidation(frame, 5)
    trade(frame, 2, vs="ETHUSDT", sym="ETH-USDT-PERP")
    liquidation(frame, 5)  # ranked: a distinct id
    trade(frame, 3)
    got = frame.events()
    assert [type(e) for e in got] == [Trade, Liquidation, Trade, Liquidation, Trade]
    assert [getattr(e, "trade_id", None) for e in got] == ["t1", None, "t2", None, "t3"]
    assert got[1].event_id != got[3].event_id  # type: ignore[union-attr]
    assert frame.counts() == (2, 3, 0, 0, 0)


def test_parsed_from_a_store_is_reused_and_its_counts_end_with_the_frame() -> None:
    adapter = BybitAdapter(ExchangeConfig(symbols=("BTCUSDT",), all_liquidations=False))
    store = ColumnStore("bybit")
    item = {"T": 1760000000000, "s": "BTCUSDT", "S": "Buy", "v": "0.5", "p": "65000", "i": "a"}
    frame = orjson.dumps({"topic": "publicTrade.BTCUSDT", "ts": 1, "type": "snapshot",
                          "data": [item, item, {**item, "v": "x"}]})  # fmt: skip
    first = adapter.parse(frame, RECV, store)
    assert first.counts() == (0, 2, 0, 1, 0)
    assert first.trades == 2 and first.duplicates == 1 and first.errors == ["bad_number"]
    with pytest.raises(RuntimeError, match="not kept per frame"):
        _ = first.events
    second = adapter.parse(frame, RECV, store)
    assert second is first  # the store's result, reset
    assert second.counts() == (0, 2, 0, 2, 0) and second.errors == ["bad_number"]
    alone = adapter.parse(frame, RECV)  # without a store: its own frame store, events kept
    assert len(alone.events) == 2 and alone.counts() == (0, 2, 0, 0, 0)
    assert alone == adapter.parse(frame, RECV) and alone != Parsed()


def test_counts_of_an_older_frame_are_refused() -> None:
    store = ColumnStore("bybit")
    old, _ = Parsed.start("bybit", store)
    assert old.counts() == (0, 0, 0, 0, 0)
    store.begin()  # another frame (say, of another connection)
    with pytest.raises(RuntimeError, match="another frame"):
        old.counts()
    again, _ = Parsed.start("bybit", store)
    assert again is old and again.counts() == (0, 0, 0, 0, 0)
    assert "rows=" in repr(again)  # no events kept, but a readable result
