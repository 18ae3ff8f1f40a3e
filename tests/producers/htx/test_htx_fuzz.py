"""Random and mutated frames, gzip-compressed and not: parse() returns Parsed or raises
ParseError, nothing else, and every event carries finite, positive numbers (market context: finite
ones). The open-interest poll answer likewise: parse_poll() returns events or raises ParseError."""

from __future__ import annotations

import math
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.errors import ParseError
from monitor.core.schema import MarketContext
from tests.producers.htx.conftest import DATA, gz, loaded_adapter
from tests.producers.test_fuzz_parsers import check as shared_check
from tests.producers.test_fuzz_parsers import mutated

ADAPTER = loaded_adapter()
VALID: list[Any] = [orjson.loads(p.read_bytes()) for p in sorted(DATA.glob("*.json"))]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(), st.text(max_size=8),
    st.sampled_from(["sell", "buy", "close", "BTC-USDT", "0", "-1", "NaN", "ok"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def check(raw: bytes | str) -> None:
    """The invariants every parser keeps (tests.producers.test_fuzz_parsers.check)."""
    shared_check(ADAPTER, raw)


@SETTINGS
@given(raw=st.binary(max_size=300), compress=st.booleans())
def test_random_bytes(raw: bytes, compress: bool) -> None:
    check(gz(raw) if compress else raw)


@SETTINGS
@given(data=st.data())
def test_mutated_valid_frames(data: st.DataObject) -> None:
    raw = orjson.dumps(mutated(data, data.draw(st.sampled_from(VALID)), values))
    check(gz(raw) if data.draw(st.booleans(), label="compress") else raw)


@SETTINGS
@given(data=st.data())
def test_bit_flipped_compressed_frames(data: st.DataObject) -> None:
    raw = bytearray(gz(orjson.dumps(data.draw(st.sampled_from(VALID)))))
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    check(bytes(raw[: data.draw(st.integers(0, len(raw)))]))


OI_ANSWER: Any = orjson.loads((DATA / "swap_open_interest.json").read_bytes())


@SETTINGS
@given(data=st.data())
def test_mutated_open_interest_answers(data: st.DataObject) -> None:
    doc = mutated(data, OI_ANSWER, values)
    try:
        events = ADAPTER.parse_poll("u", orjson.dumps(doc), 1)
    except ParseError as exc:
        assert exc.reason and len(exc.reason) <= 20
        return
    for e in events:
        assert isinstance(e, MarketContext)
        assert e.ts_ms > 0 and e.symbol.endswith("-PERP")
        for y in (e.open_interest_base, e.open_interest_usd):
            assert isinstance(y, float) and math.isfinite(y) and y >= 0
