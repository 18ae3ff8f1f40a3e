"""Rendered recordings: the recording format, each venue's sampling, and the producers' parsers
reading exactly what was sent."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.recording import Recording, read_recording
from monitor.core.schema import Liquidation, QtyUnit
from monitor.simulator.reflexive import plans
from monitor.simulator.reflexive.assemble import (
    MarketSetup,
    ReflexiveScenario,
    SymbolSetup,
    simulate,
)
from monitor.simulator.reflexive.book import BookShape
from monitor.simulator.reflexive.exogenous import News, Shock
from monitor.simulator.reflexive.families import ALL_VENUES, BASES, BETAS, JAN27_DENSITY, SYMBOLS
from monitor.simulator.reflexive.listing import venue_symbol
from monitor.simulator.reflexive.render import (
    VenueRendering,
    generate_scenarios,
    render_scenario,
    render_venue,
    start_ms_for,
)
from producers.base import InstrumentSource
from producers.registry import ADAPTERS

COMPLETE = ("bybit", "gate", "htx", "bitmex", "deribit", "kraken")  # every liquidation, own item
SAMPLED = ("binance", "okx", "bitget")
PRICE_CONVENTION = 0.006  # bankruptcy / limit prices sit 0.5 % (and a tick) from the fill


def _small(seed: int = 21) -> ReflexiveScenario:
    """Eight minutes, every symbol and venue, a 4 % news drop into dense longs at 120 s."""
    syms = tuple(
        SymbolSetup(s, BETAS[s], BASES[s].depth_usd, BASES[s].trade_rate_per_s,
                    BASES[s].trade_median_usd,
                    longs=BookShape(2 * JAN27_DENSITY[s], BASES[s].position_median_usd, cleared=0.005),
                    shorts=BookShape(0.3 * JAN27_DENSITY[s], BASES[s].position_median_usd,
                                     cleared=0.005))
        for s in SYMBOLS
    )  # fmt: skip
    news = News(shocks=(Shock(120.0, 60.0, math.log(0.96)),))
    return simulate(MarketSetup("small", seed, 480.0, news, syms, ALL_VENUES))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReflexiveScenario, dict[str, Any]]:
    sc = _small()
    out = tmp_path_factory.mktemp("rendered")
    start = start_ms_for(sc.seed)
    return sc, {
        v: render_venue(sc, v, out / f"small.{v}.jsonl.gz", start_ms=start) for v in ALL_VENUES
    }


def _symbols(sc: ReflexiveScenario, venue: str) -> tuple[str, ...]:
    return tuple(v for s in sc.symbols if (v := venue_symbol(venue, s)) is not None)


def _parse(rec: Recording, venue: str, symbols: tuple[str, ...]) -> list[Any]:
    cfg = ExchangeConfig(symbols=symbols)
    adapter = ADAPTERS[venue](cfg)
    if isinstance(adapter, InstrumentSource):
        for path, body in rec.rest.items():
            adapter.load_instruments(plans.REST_HOST + path, body)
    events: list[Any] = []
    for frames in rec.frames.values():
        for recv_ns, frame in frames:
            parsed = adapter.parse(frame, recv_ns)
            assert parsed.errors == [], (venue, parsed.errors)
            events += parsed.events
    return events


@pytest.mark.parametrize("venue", ALL_VENUES)
def test_rendered_liquidations_against_the_scenario(
    rendered: tuple[ReflexiveScenario, dict[str, VenueRendering]], venue: str
) -> None:
    sc, renderings = rendered
    r = renderings[venue]
    rec = read_recording(r.path)
    assert rec.exchange == venue and r.frames == sum(len(f) for f in rec.frames.values())
    conns = plans.connections(venue, _symbols(sc, venue), 0.0)
    assert [c["name"] for c in rec.connections()] == [c.name for c in conns]
    assert [c["url"] for c in rec.connections()] == [c.url for c in conns]
    liqs = [e for e in _parse(rec, venue, _symbols(sc, venue)) if isinstance(e, Liquidation)]
    parsed = sum(e.notional_usd for e in liqs)
    assert parsed == pytest.approx(sum(r.ledger.liquidation_notional().values()), rel=1e-9)
    scen = sc.liquidations(venue)
    scen_usd = sum(x.qty * x.price for x in scen)
    # a contract count is within half a contract of the scenario's size
    slack = sum(0.5 * e.notional_usd / e.qty_raw for e in liqs if e.qty_unit != QtyUnit.BASE)
    assert len(liqs) <= len(scen) and parsed <= scen_usd * (1 + PRICE_CONVENTION) + slack
    if venue in COMPLETE:
        assert len(liqs) == len(scen) > 0
        assert parsed >= scen_usd * (1 - PRICE_CONVENTION) - slack
    elif venue in SAMPLED:
        assert 0 < len(liqs) < len(scen)
    else:
        assert liqs == [] and len(scen) > 0  # Hyperliquid publishes no liquidations


def test_binance_sends_at_most_one_liquidation_per_symbol_per_second(
    rendered: tuple[ReflexiveScenario, dict[str, VenueRendering]],
) -> None:
    sc, renderings = rendered
    rec = read_recording(renderings["binance"].path)
    liqs = [
        e for e in _parse(rec, "binance", _symbols(sc, "binance")) if isinstance(e, Liquidation)
    ]
    per_second = Counter((e.venue_symbol, e.ts_ms // 1000) for e in liqs)
    assert max(per_second.values()) == 1
    busy = Counter((x.venue_symbol, int(x.t)) for x in sc.liquidations("binance"))
    assert len(per_second) == len(busy)  # one for every symbol-second that had liquidations


def test_recordings_carry_the_metadata_and_subscribe_replies(
    rendered: tuple[ReflexiveScenario, dict[str, VenueRendering]],
) -> None:
    sc, renderings = rendered
    for venue in ("bybit", "okx", "htx", "gate", "bitmex"):
        rec = read_recording(renderings[venue].path)
        paths = plans.rest_paths(venue)
        assert paths and set(rec.rest) >= set(paths), venue
    bybit = read_recording(renderings["bybit"].path)
    assert any("cursor=" in p for p in bybit.rest)  # its listing is paged
    okx = read_recording(renderings["okx"].path).frames["public"]
    acks = [orjson.loads(f) for _, f in okx if b'"event":"subscribe"' in f.encode()]
    assert len(acks) == 1 + 4 * len(sc.symbols)  # one per arg
    first_data = min(ns for frames in read_recording(renderings["binance"].path).frames.values()
                     for ns, f in frames if "forceOrder" in f or "aggTrade" in f)  # fmt: skip
    assert first_data >= start_ms_for(sc.seed) * 1_000_000


def _normalised(frames: tuple[str, ...], venue: str) -> list[Any]:
    docs = [orjson.loads(f) for f in frames]
    if venue == "gate":
        for d in docs:
            d.pop("time")  # the request clock
    return docs


@pytest.mark.parametrize("venue", ALL_VENUES)
def test_plans_are_the_producers_requests(
    rendered: tuple[ReflexiveScenario, dict[str, VenueRendering]], venue: str
) -> None:
    sc, renderings = rendered
    syms = _symbols(sc, venue)
    cfg = ExchangeConfig(symbols=syms)
    adapter = ADAPTERS[venue](cfg)
    if isinstance(adapter, InstrumentSource):
        for path, body in read_recording(renderings[venue].path).rest.items():
            adapter.load_instruments(plans.REST_HOST + path, body)
    theirs = {p.name: p for p in adapter.connections(cfg, plans.base_url(venue))}
    mine = plans.connections(venue, syms, 1.7e9)
    for c in mine:
        assert theirs[c.name].url == c.url
        assert _normalised(theirs[c.name].subscribe, venue) == _normalised(c.subscribe, venue)
    if venue != "bybit":  # Bybit's producer also listens to listed symbols not in the scenario
        assert set(theirs) == {c.name for c in mine}


def test_rendering_is_deterministic(
    rendered: tuple[ReflexiveScenario, dict[str, VenueRendering]], tmp_path: Path
) -> None:
    sc, renderings = rendered
    again = render_venue(_small(), "bybit", tmp_path / "again.jsonl.gz",
                         start_ms=start_ms_for(sc.seed))  # fmt: skip
    a, b = read_recording(renderings["bybit"].path), read_recording(again.path)
    assert (a.header, a.rest, a.frames) == (b.header, b.rest, b.frames)


def test_render_scenario_writes_the_truth_beside(tmp_path: Path) -> None:
    sc = _small(seed=22)
    paths = render_scenario(sc, tmp_path, ["kraken", "bitmex"])
    assert [p.name for p in paths] == ["small-22.kraken.jsonl.gz", "small-22.bitmex.jsonl.gz",
                                       "small-22.truth.json"]  # fmt: skip
    doc = orjson.loads(paths[-1].read_bytes())
    assert doc["recordings"] == {"kraken": paths[0].name, "bitmex": paths[1].name}
    start = start_ms_for(22)
    assert doc["wall_clock"]["start_ms"] == start
    assert doc["wall_clock"]["peak_minute_ms"] == start + int(doc["peak_minute_s"] * 1000)
    assert {
        k: v for k, v in doc.items() if k not in ("wall_clock", "recordings")
    } == sc.truth.to_dict()


def test_generate_scenarios_cycles_through_families(tmp_path: Path) -> None:
    truths = generate_scenarios(tmp_path, ["no_leverage_news", "flash_crash"], 2, first_seed=40,
                                venues=("kraken",), symbols=("DOGEUSDT",))  # fmt: skip
    docs = [orjson.loads(p.read_bytes()) for p in truths]
    assert [(d["family"], d["seed"]) for d in docs] == [
        ("no_leverage_news", 40),
        ("flash_crash", 41),
    ]
    for d in docs:
        assert read_recording(tmp_path / d["recordings"]["kraken"]).exchange == "kraken"
    with pytest.raises(ValueError, match="families"):
        generate_scenarios(tmp_path, ["nope"], 1)
