"""Random and mutated frames: parse() returns Parsed or raises ParseError, nothing else; events
carry finite numbers (trades and liquidations: positive ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import ExchangeConfig
from producers.gate import GateAdapter
from tests.producers.test_fuzz_parsers import check as shared_check

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
    doc = data.draw(st.sampled_from(VALID))
    for _ in range(data.draw(st.integers(1, 3))):
        path: list[Any] = []
        node = doc
        while isinstance(node, dict | list) and node and data.draw(st.booleans()):
            key = data.draw(
                st.sampled_from(list(node) if isinstance(node, dict) else range(len(node)))
            )
            path.append(key)
            node = node[key]
        doc = _set(doc, path, data.draw(values))
    check(orjson.dumps(doc))


def _set(doc: Any, path: list[Any], value: Any) -> Any:
    if not path:
        return value
    doc = dict(doc) if isinstance(doc, dict) else list(doc)
    doc[path[0]] = _set(doc[path[0]], path[1:], value)
    return doc
