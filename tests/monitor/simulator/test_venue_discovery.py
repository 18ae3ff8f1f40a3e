"""One venue, one place (issue 11): every simulated venue describes itself in its own module, and
no other module of the simulator lists venues, names one, or imports one.

* every module of ``monitor/simulator/venues/`` is a venue, discovered under its module's name;
* each ``VenueSpec`` field a venue must state holds what the scenarios, plans and recordings rely
  on, checked against the venue's own feed, sessions and REST answers;
* outside ``venues/``, no string literal of ``monitor/simulator`` names a venue (the names come
  from ``SPECS``) and no module imports a venue module (only ``SPECS``);
* a venue that only the registry knows (a copy of one under a new name) is played, listed, planned
  and rendered by the generic modules as they are.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import math
import pkgutil
import re
import sys
from collections.abc import Collection, Iterator
from pathlib import Path
from types import MappingProxyType

import pytest

import monitor.simulator
from monitor.core.recording import path_of, read_recording
from monitor.simulator import venues
from monitor.simulator.clientplan import Connection
from monitor.simulator.instruments import INSTRUMENTS
from monitor.simulator.ledger import SentTrade
from monitor.simulator.reflexive import plans
from monitor.simulator.reflexive.assemble import MarketSetup, SymbolSetup, simulate
from monitor.simulator.reflexive.book import BookShape
from monitor.simulator.reflexive.exogenous import News, Shock
from monitor.simulator.reflexive.families import ALL_VENUES, BASES
from monitor.simulator.reflexive.listing import listed, venue_symbol
from monitor.simulator.reflexive.render import render_venue, rest_documents, start_ms_for
from monitor.simulator.scenario import VENUES, crash_scenario
from monitor.simulator.venues import SPECS
from monitor.simulator.wire import Outgoing, Session, VenueSpec

START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
SIMULATOR_DIR = Path(monitor.simulator.__file__).parent
VENUES_DIR = Path(venues.__file__).parent


# ---- discovery -------------------------------------------------------------------------------


def test_every_module_of_the_venues_package_is_a_venue_named_after_it() -> None:
    names = [m.name for m in pkgutil.iter_modules(venues.__path__) if not m.name.startswith("_")]
    for name in names:
        spec = getattr(importlib.import_module(f"{venues.__name__}.{name}"), "SPEC", None)
        assert isinstance(spec, VenueSpec), f"venues/{name}.py defines no SPEC"
        assert spec.name == name
    assert sorted(SPECS) == sorted(names)


def test_the_order_and_the_default_market_come_from_the_specs() -> None:
    assert sorted(s.scenario_order for s in SPECS.values()) == list(range(len(SPECS)))
    assert [SPECS[v].scenario_order for v in ALL_VENUES] == list(range(len(SPECS)))
    assert tuple(v for v in sorted(SPECS) if SPECS[v].in_default_scenario) == VENUES
    assert VENUES, "the default crash scenario needs a venue"


# ---- each venue's description ----------------------------------------------------------------


def _listed(spec: VenueSpec) -> dict[str, str]:
    """Scenario symbol -> the venue's name, for the symbols the venue lists."""
    return {s: v for s in INSTRUMENTS if (v := spec.venue_symbol(s)) is not None}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_activity_and_symbols(name: str) -> None:
    spec = SPECS[name]
    assert math.isfinite(spec.activity) and spec.activity > 0
    names = _listed(spec)
    assert "BTCUSDT" in names
    assert len(set(names.values())) == len(names)  # two scenario symbols never share a name
    assert "XRPUSDT" not in INSTRUMENTS and spec.venue_symbol("XRPUSDT") is None
    assert {s: venue_symbol(name, s) for s in INSTRUMENTS} == {s: names.get(s) for s in INSTRUMENTS}
    assert [listed(name, s) for s in INSTRUMENTS] == [s in names for s in INSTRUMENTS]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_liquidations_as_trades_is_what_the_feed_does(name: str) -> None:
    """True exactly when the venue's own feed turns one scenario liquidation into a trade."""
    spec = SPECS[name]
    scenario = crash_scenario(duration_s=20.0, seed=3, venues=(name,), symbols=("BTCUSDT",))
    feed = spec.new_feed_for(scenario) if spec.new_feed_for else spec.new_feed()
    liquidation = scenario.liquidations()[0]
    outs = feed.on_event(liquidation, START_MS) + feed.flush(START_MS + 60_000)
    items = [item for out in outs for item in out.items]
    assert items, "the liquidation went out"
    assert any(isinstance(i, SentTrade) for i in items) is spec.liquidations_as_trades


def _sessions(spec: VenueSpec, conns: list[Connection]) -> list[Session]:
    """One session per planned connection, sent the connection's requests: every URL is
    accepted and no request closes the connection."""
    sessions = []
    for i, conn in enumerate(conns):
        assert conn.url.startswith(plans.base_url(spec.name).removesuffix(spec.base_path))
        assert spec.route(path_of(conn.url)) is None, conn.url
        session = spec.new_session(path_of(conn.url), conn.name)
        for k, frame in enumerate(conn.subscribe):
            assert session.handle(frame, START_MS / 1000 + i + k / 10).close is None, frame
        sessions.append(session)
    return sessions


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_client_plan_receives_every_market_payload(name: str) -> None:
    """The planned connections, subscribed as planned, receive each payload that carries a trade
    or a liquidation of the scenario: nothing the venue sends for its symbols is missed."""
    spec = SPECS[name]
    names = _listed(spec)
    conns = plans.connections(name, list(names.values()), START_MS / 1000)
    assert conns and len({c.name for c in conns}) == len(conns)
    sessions = _sessions(spec, conns)
    scenario = crash_scenario(duration_s=20.0, seed=3, venues=(name,), symbols=tuple(names))
    feed = spec.new_feed_for(scenario) if spec.new_feed_for else spec.new_feed()
    outs: list[Outgoing] = []
    for event in scenario.events:
        now = START_MS + int(event.t * 1000)
        outs += feed.flush(now) + feed.on_event(event, now)
    outs += feed.flush(START_MS + 3_600_000)
    market = [out for out in outs if out.items]
    assert scenario.liquidations()
    assert len(market) > 50
    missed = [out.streams for out in market if not any(s.frames_for(out) for s in sessions)]
    assert missed == []


@pytest.mark.parametrize("name", sorted(SPECS))
def test_rest_paths_are_served(name: str) -> None:
    spec = SPECS[name]
    if spec.rest_paths:
        assert spec.rest is not None
    documents = rest_documents(name)
    assert [p for p in spec.rest_paths if p not in {path for path, _ in documents}] == []
    assert all(spec.rest is not None and spec.rest(p) == (200, body) for p, body in documents)
    if spec.rest_next_page is not None:  # a paged listing is followed to its last page
        assert len(documents) > len(spec.rest_paths)
        assert all(spec.rest_next_page(p, body) is None for p, body in documents[-1:])


@pytest.mark.parametrize("name", sorted(SPECS))
def test_transport_rules_are_positive(name: str) -> None:
    spec = SPECS[name]
    if spec.pings is not None:
        assert spec.pings.interval_s > 0 and spec.pings.timeout_s >= spec.pings.interval_s
    if spec.idle_timeout_s is not None:
        assert spec.idle_timeout_s > 0
    if spec.tick_s is not None:
        assert spec.tick_s > 0


# ---- no venue named outside venues/ ----------------------------------------------------------


def _strings(tree: ast.AST) -> Iterator[ast.Constant]:
    """The string literals of ``tree``, except those standing alone as a statement: docstrings and
    the documentation of the attribute above them."""
    docs = {
        id(n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node


def venue_mentions(source: str, names: Collection[str]) -> list[tuple[int, str]]:
    """``(line, text)`` of each string literal (documentation aside) that names a venue, and of
    each import of a venue module. A name counts when it stands as a token of its own, any case
    (delimited by anything but a letter or digit): ``"OKX"`` and ``"binance_ping_s"`` name a
    venue, ``"aggregate"`` does not name ``gate``."""
    token = re.compile(rf"(?<![a-z0-9])(?:{'|'.join(map(re.escape, names))})(?![a-z0-9])")
    tree = ast.parse(source)
    found = [(n.lineno, n.value) for n in _strings(tree) if token.search(n.value.lower())]
    package = venues.__name__
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith(package + ".")]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module.startswith(package + "."):
                found.append((node.lineno, node.module))
            elif node.module == package:
                found += [(node.lineno, a.name) for a in node.names if a.name != "SPECS"]
    return sorted(found)


def test_the_scanner_finds_names_in_tables_branches_and_imports() -> None:
    """The check below can fail: a table keyed by venue, a branch on one, an f-string and an import
    of a venue module are found; documentation and words that merely contain a name are not."""
    a, b = sorted(SPECS)[:2]
    source = (
        f'"""Docstring about {a}."""\n'
        f'ACTIVITY = {{"{a}": 1.0, "{b}": 0.8}}\n'
        "def f(venue, x):\n"
        f'    """{b} is documented here."""\n'
        f'    if venue == "{b.upper()}":\n'
        f'        return f"{{x}}:{a}_ping_s"\n'
        f'    return "x{a}" + "{a}x" + "aggregated"\n'
        f"from {venues.__name__} import SPECS, {a}\n"
        f"import {venues.__name__}.{b}\n"
    )
    assert venue_mentions(source, SPECS) == [
        (2, a), (2, b), (5, b.upper()), (6, f":{a}_ping_s"), (8, a), (9, f"{venues.__name__}.{b}"),
    ]  # fmt: skip


def _outside_venues() -> list[Path]:
    paths = sorted(SIMULATOR_DIR.rglob("*.py"))
    return [p for p in paths if VENUES_DIR not in p.parents]


def test_no_module_outside_venues_names_a_venue() -> None:
    assert len(_outside_venues()) > 10  # scenario, server, wire, reflexive/...
    mentions = {
        str(p.relative_to(SIMULATOR_DIR)): found
        for p in _outside_venues()
        if (found := venue_mentions(p.read_text(), SPECS))
    }
    assert mentions == {}


# ---- a venue only the registry knows ---------------------------------------------------------


@pytest.fixture
def twin(monkeypatch: pytest.MonkeyPatch) -> VenueSpec:
    """A copy of a venue that serves REST metadata, under a new name, put into every simulator
    module's view of the registry (each module that holds ``SPECS``), as a new module in
    ``venues/`` would be."""
    original = SPECS[_paged()]
    spec = dataclasses.replace(original, name="twinvenue", scenario_order=len(SPECS))
    extended = MappingProxyType({**SPECS, spec.name: spec})
    holders = [m for m in list(sys.modules.values())
               if m.__name__.startswith("monitor.simulator") and getattr(m, "SPECS", None) is SPECS]  # fmt: skip
    assert len(holders) >= 5  # venues, scenario, listing, assemble, plans, render, server, ...
    for module in holders:
        monkeypatch.setattr(module, "SPECS", extended)
    return spec


def _paged() -> str:
    return next(n for n in sorted(SPECS) if SPECS[n].rest_paths)


def test_a_new_venue_needs_no_other_module(twin: VenueSpec, tmp_path: Path) -> None:
    original = _paged()
    crash = crash_scenario(duration_s=10.0, seed=5, venues=(original, twin.name))
    assert crash.trades(twin.name) and crash.liquidations(twin.name)
    assert plans.connections(twin.name, ["BTCUSDT"], 0.0) == plans.connections(
        original, ["BTCUSDT"], 0.0
    )
    assert rest_documents(twin.name) == rest_documents(original)
    symbol = SymbolSetup("BTCUSDT", 1.0, BASES["BTCUSDT"].depth_usd, 8.0, 8000.0,
                         BookShape(2e6, 20_000.0, cleared=0.005),
                         BookShape(2e5, 20_000.0, cleared=0.005))  # fmt: skip
    news = News(shocks=(Shock(30.0, 20.0, math.log(0.97)),))
    reflexive = simulate(MarketSetup("twin", 5, 120.0, news, (symbol,), (original, twin.name)))
    assert reflexive.trades(twin.name) and reflexive.trades(original)
    rendering = render_venue(reflexive, twin.name, tmp_path / "twin.jsonl.gz",
                             start_ms=start_ms_for(5))  # fmt: skip
    recording = read_recording(rendering.path)
    assert recording.exchange == twin.name and rendering.frames > 0
    assert sorted(recording.rest) == sorted(p for p, _ in rest_documents(original))
