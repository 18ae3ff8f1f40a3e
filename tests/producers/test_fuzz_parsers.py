"""Random bytes and mutated valid frames: parse() returns Parsed or raises ParseError, nothing else,
and every event it does return carries finite, positive numbers."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import Liquidation, MarketContext
from producers.base import Parsed, VenueAdapter
from producers.registry import ADAPTERS

DATA = Path(__file__).resolve().parent / "data"
VALID: list[tuple[str, Any]] = [
    (venue, orjson.loads(p.read_bytes()))
    for venue in ("binance", "bybit")
    for p in sorted((DATA / venue).glob("*.json"))
]
ADAPTER: dict[str, VenueAdapter] = {
    name: factory(ExchangeConfig(max_symbols=50)) for name, factory in ADAPTERS.items()
}
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["NaN", "inf", "-1", "0", "1e400", "BTCUSDT", "Buy", "SELL", "", " 1 "]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


def check(adapter: VenueAdapter, raw: bytes | str) -> None:
    try:
        parsed = adapter.parse(raw, 1)
    except ParseError as exc:
        assert exc.reason and len(exc.reason) <= 20
        return
    assert isinstance(parsed, Parsed)
    for e in parsed.events:
        assert isinstance(e.ts_ms, int) and e.ts_ms > 0
        assert e.symbol.endswith("-PERP") or e.symbol[-6:].isdigit()
        if isinstance(e, MarketContext):  # every field it carries is a finite number
            for y in (e.mark_price, e.index_price, e.funding_rate, e.open_interest_base,
                      e.open_interest_usd):  # fmt: skip
                assert y is None or (isinstance(y, float) and math.isfinite(y))
            continue
        for x in (e.price, e.qty_raw, e.qty_base, e.notional_usd):
            assert isinstance(x, float) and math.isfinite(x) and x > 0
        if isinstance(e, Liquidation):
            assert len(e.event_id) == 20


@SETTINGS
@given(raw=st.binary(max_size=300), venue=st.sampled_from(sorted(ADAPTER)))
def test_random_bytes(raw: bytes, venue: str) -> None:
    check(ADAPTER[venue], raw)


@SETTINGS
@given(value=json_values, venue=st.sampled_from(sorted(ADAPTER)))
def test_random_json(value: Any, venue: str) -> None:
    check(ADAPTER[venue], orjson.dumps(value))


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    if not path:
        return value if action == "replace" else doc
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        doc = dict(doc)
        if not rest and action == "delete":
            doc.pop(head, None)
        else:
            doc[head] = _mutate(doc[head], rest, action, value)
    else:
        doc = list(doc)
        if not rest and action == "delete":
            doc.pop(head)
        else:
            doc[head] = _mutate(doc[head], rest, action, value)
    return doc


def mutated(data: st.DataObject, doc: Any, values: st.SearchStrategy[Any] = json_values) -> Any:
    """``doc`` with 1 to 3 nodes (the whole document included) replaced by ``values`` or deleted."""
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        action = data.draw(st.sampled_from(["replace", "delete"]))
        doc = _mutate(doc, path, action, data.draw(values))
    return doc


@SETTINGS
@given(data=st.data())
def test_mutated_valid_frames(data: st.DataObject) -> None:
    venue, doc = data.draw(st.sampled_from(VALID))
    check(ADAPTER[venue], orjson.dumps(mutated(data, doc)))


@SETTINGS
@given(data=st.data())
def test_truncated_and_bit_flipped_frames(data: st.DataObject) -> None:
    venue, doc = data.draw(st.sampled_from(VALID))
    raw = bytearray(orjson.dumps(doc))
    cut = data.draw(st.integers(0, len(raw)))
    raw = raw[:cut] if data.draw(st.booleans()) else raw
    for _ in range(data.draw(st.integers(0, 3))):
        if raw:
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
    check(ADAPTER[venue], bytes(raw))


FuzzTest = Callable[..., None]


def fuzz_suite(
    adapter: VenueAdapter, valid: list[Any], check_fn: Callable[[Any, bytes], None] = check
) -> tuple[FuzzTest, FuzzTest, FuzzTest, FuzzTest]:
    """The four tests above for one venue's adapter and valid documents, for a venue module to
    bind as ``test_random_bytes, test_random_json, test_mutated_valid_frames,
    test_truncated_and_bit_flipped_frames = fuzz_suite(...)``."""

    @SETTINGS
    @given(raw=st.binary(max_size=300))
    def random_bytes(raw: bytes) -> None:
        check_fn(adapter, raw)

    @SETTINGS
    @given(value=json_values)
    def random_json(value: Any) -> None:
        check_fn(adapter, orjson.dumps(value))

    @SETTINGS
    @given(data=st.data())
    def mutated_valid_frames(data: st.DataObject) -> None:
        check_fn(adapter, orjson.dumps(mutated(data, data.draw(st.sampled_from(valid)))))

    @SETTINGS
    @given(data=st.data())
    def truncated_and_bit_flipped_frames(data: st.DataObject) -> None:
        raw = bytearray(orjson.dumps(data.draw(st.sampled_from(valid))))
        raw = raw[: data.draw(st.integers(0, len(raw)))] if data.draw(st.booleans()) else raw
        for _ in range(data.draw(st.integers(0, 3))):
            if raw:
                raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        check_fn(adapter, bytes(raw))

    return random_bytes, random_json, mutated_valid_frames, truncated_and_bit_flipped_frames
