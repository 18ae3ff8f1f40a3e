"""Random and mutated frames: parse() returns Parsed or raises ParseError, nothing else; events
carry finite numbers (trades and liquidations: positive ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.config import ExchangeConfig
from producers.gate import GateAdapter
from tests.producers.test_fuzz_parsers import check as shared_check
from tests.producers.test_fuzz_parsers import mutated

DATA = Path(__file__).resolve().parent / "data"
ADAPTER = GateAdapter(ExchangeConfig(), clock=lambda: 1.0)
ADAPTER.load_instruments("u", (DATA / "contracts.json").read_bytes())
VALID: list[Any] = [
    orjson.loads(p.read_bytes()) for p in sorted(DATA.glob("*.json")) if p.name != "contracts.json"
]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(), st.text(max_size=8),
    st.sampled_from(["-1", "0", "1e400", "NaN", "BTC_USDT", "update", "!all", "-0.5"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def check(raw: bytes) -> None:
    """The invariants every parser keeps (tests.producers.test_fuzz_parsers.check)."""
    shared_check(ADAPTER, raw)


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_random_bytes(raw: bytes) -> None:
    check(raw)


@SETTINGS
@given(data=st.data())
def test_mutated_valid_frames(data: st.DataObject) -> None:
    check(orjson.dumps(mutated(data, data.draw(st.sampled_from(VALID)), values)))
