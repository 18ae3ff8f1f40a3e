"""Every venue's documented example payloads, parsed to events worked out by hand.

Each ``tests/producers/<venue>/documented/*.json`` holds one case: a venue's example payloads as its
own documentation prints them (the page is named in ``doc`` and in the folder's README) and, next
to them, the normalized events a person derived from the documented meaning of each field (which
side was liquidated, the quantity's unit, the contract size). Nothing here reads a parser constant:
a wrong convention in a parser fails its venue's case.

A case::

    {"doc": "https://... (page, section)",
     "received_ns": 1568014460950000000,        # receive time given to every frame and poll
     "config": {"symbols": ["BTCUSDT"]},           # optional ExchangeConfig fields (lists: tuples)
     "instruments": [{"path": "/fapi/...", "body": {...}}],   # optional REST metadata, loaded first
     "encoding": "gzip",                           # optional: frames are gzip-compressed (HTX)
     "frames": [{...}, "pong", ...],               # JSON values (sent as their JSON text) or text
     "polls": [{"path": "/fapi/...", "body": {...}}],  # optional REST poll answers, after the frames
     "expected": [{"type": "liquidation", ...}, ...],  # events of the frames, then of the polls
     "errors": []}                                 # optional: the item errors the frames give

REST bodies (``instruments``, ``polls``) are JSON values sent as their JSON text, or text as is; a
path is appended to the venue's real REST base (its declared ``rest_url``).

Floats are compared with a relative tolerance of 1e-9 (the expected values are written as decimal
literals; the parsers multiply floats).
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path
from typing import Any, Final

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.schema import Event, Liquidation, MarketContext, Trade
from producers.base import InstrumentSource
from producers.registry import ADAPTERS, VENUES

HERE: Final = Path(__file__).resolve().parent
CASES: Final = sorted(HERE.glob("*/documented/*.json"))
REQUIRED: Final = {
    "liquidation": (
        "symbol", "venue_symbol", "liquidated_side", "order_side", "price", "price_kind",
        "qty_raw", "qty_unit", "contract_multiplier", "qty_base", "notional_usd", "coverage",
        "ts_ms",
    ),
    "trade": (
        "symbol", "venue_symbol", "taker_side", "price", "qty_raw", "qty_unit",
        "contract_multiplier", "qty_base", "notional_usd", "is_liquidation", "ts_ms", "trade_id",
    ),
    "context": ("symbol", "venue_symbol", "ts_ms"),
}  # fmt: skip
TYPES: Final = {Liquidation: "liquidation", Trade: "trade", MarketContext: "context"}


def _case_id(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.stem}"


def _plain(value: Any) -> Any:
    """Enum members as their values, everything else as is."""
    return getattr(value, "value", value)


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) or (isinstance(got, float) and isinstance(want, int)):
        if got is None or isinstance(got, bool):
            return False
        return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=0.0)
    return bool(got == want)


def _frame(payload: Any, encoding: str | None) -> bytes | str:
    text = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    if encoding == "gzip":
        return gzip.compress(text.encode())
    if encoding is not None:
        raise ValueError(f"unknown encoding {encoding!r}")
    return text


def _body(body: Any) -> bytes:
    return body.encode() if isinstance(body, str) else orjson.dumps(body)


def _config(fields: dict[str, Any]) -> ExchangeConfig:
    """The case's ExchangeConfig overrides (JSON lists become the tuples the config holds)."""
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    cfg = ExchangeConfig(**values)
    cfg.validate("documented")
    return cfg


def parse_case(case: dict[str, Any], venue: str) -> tuple[list[Event], list[str]]:
    adapter = ADAPTERS[venue](_config(case.get("config", {})))
    rest = VENUES[venue].defaults.rest_url
    for inst in case.get("instruments", ()):
        assert isinstance(adapter, InstrumentSource), f"{venue} takes no instrument metadata"
        assert adapter.load_instruments(rest + inst["path"], _body(inst["body"])) > 0
    events: list[Event] = []
    errors: list[str] = []
    for payload in case["frames"]:
        parsed = adapter.parse(_frame(payload, case.get("encoding")), case["received_ns"])
        events += parsed.events
        errors += parsed.errors
    for poll in case.get("polls", ()):
        parse_poll = getattr(adapter, "parse_poll", None)  # producers.poller.PollSource
        assert parse_poll is not None, f"{venue} polls no REST data"
        events += parse_poll(rest + poll["path"], _body(poll["body"]), case["received_ns"])
    return events, errors


def test_every_venue_has_documented_examples() -> None:
    venues = {p.parent.parent.name for p in CASES}
    assert venues == set(ADAPTERS), f"venues without documented examples: {set(ADAPTERS) - venues}"
    for venue in venues:
        readme = HERE / venue / "documented" / "README.md"
        assert readme.is_file(), f"{readme} names the documentation pages of {venue}'s examples"


@pytest.mark.parametrize("path", CASES, ids=_case_id)
def test_documented_example(path: Path) -> None:
    venue = path.parent.parent.name
    case = orjson.loads(path.read_bytes())
    assert case["doc"].startswith("https://"), "a case names the documentation page it comes from"
    assert path.stem in (path.parent / "README.md").read_text(), "the README lists every case"
    events, errors = parse_case(case, venue)
    assert errors == case.get("errors", [])
    expected = case["expected"]
    assert len(events) == len(expected), [TYPES[type(e)] for e in events]
    for i, (got, want) in enumerate(zip(events, expected, strict=True)):
        kind = want["type"]
        assert TYPES[type(got)] == kind, f"event {i}: {type(got).__name__}, expected {kind}"
        missing = [k for k in REQUIRED[kind] if k not in want]
        assert not missing, f"event {i}: the expected event must state {missing}"
        assert got.exchange == venue
        for key, value in want.items():
            if key == "type":
                continue
            have = _plain(getattr(got, key))
            assert _same(have, value), (
                f"event {i} ({kind}) {key}: parsed {have!r}, documented {value!r}"
            )
