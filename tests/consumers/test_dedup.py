"""EventIdWindow: applied ids per pair and kind, within a window of the pair's event time."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.dedup import MIN_SWEEP, EventIdWindow
from monitor.core.codec import Batch, decode_batch, encode_batch
from tests.consumers.consumer_refs import liq, trade


def batch(*events: Any) -> Batch:
    return decode_batch(encode_batch(list(events)))


def ids(b: Batch) -> tuple[list[str], list[str]]:
    return list(b.liq.get("id", [])), list(b.trd.get("id", []))


def test_new_events_pass_untouched_and_repeats_are_dropped() -> None:
    w = EventIdWindow(900.0, 60.0)
    first = batch(
        liq("BTC-USDT-PERP", "long", 100.0, 1_000), trade("BTC-USDT-PERP", "buy", 10.0, 5.0, 1_001)
    )
    out, n_liq, n_trd = w.filter(first)
    assert out is first and (n_liq, n_trd) == (0, 0)
    again = batch(
        liq("BTC-USDT-PERP", "long", 100.0, 1_000),  # seen
        liq("BTC-USDT-PERP", "short", 50.0, 1_002),  # new
        trade("BTC-USDT-PERP", "buy", 10.0, 5.0, 1_001),  # seen
    )
    out, n_liq, n_trd = w.filter(again)
    assert (n_liq, n_trd) == (1, 1)
    assert ids(out) == ([again.liq["id"][1]], [])
    assert out.liq["notional_usd"] == [50.0] and out.trd == {}
    assert len(w) == 3


def test_repeats_within_one_record_count_once() -> None:
    w = EventIdWindow(900.0, 60.0)
    e = liq("ETH-USDT-PERP", "long", 7.0, 2_000)
    out, n_liq, _ = w.filter(batch(e, liq("ETH-USDT-PERP", "short", 3.0, 2_000), e))
    assert n_liq == 1 and len(out.liq["id"]) == 2


def test_pairs_and_kinds_are_separate() -> None:
    w = EventIdWindow(900.0, 60.0)
    a = liq("BTC-USDT-PERP", "long", 1.0, 5)
    b = liq("ETH-USDT-PERP", "long", 1.0, 5)  # the same id text, another pair
    assert a.event_id == b.event_id
    assert w.filter(batch(a))[1:] == (0, 0)
    assert w.filter(batch(b))[1:] == (0, 0)


def test_ids_leave_the_window_after_a_sweep() -> None:
    w = EventIdWindow(liq_window_s=10.0, trade_window_s=10.0)
    old = liq("BTC-USDT-PERP", "long", 1.0, 0)
    w.filter(batch(old))
    # MIN_SWEEP trades do not touch the liquidation table; liquidations 60 s later do
    for i in range(MIN_SWEEP):
        w.filter(batch(liq("BTC-USDT-PERP", "short", float(i + 1), 60_000 + i)))
    _, n_liq, _ = w.filter(batch(old))  # 60 s older than the pair's newest: forgotten
    assert n_liq == 0
    assert len(w) <= MIN_SWEEP + 2


def test_a_flood_is_capped() -> None:
    w = EventIdWindow(900.0, 900.0, max_ids=1500)
    for i in range(5000):
        w.filter(batch(trade("BTC-USDT-PERP", "buy", 1.0, float(i + 1), 1_000 + i)))
    assert len(w) < 2 * 1500 + MIN_SWEEP


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        EventIdWindow(0.0, 60.0)
