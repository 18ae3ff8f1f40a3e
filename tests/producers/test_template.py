"""The venue template: a copy under a new name is discovered and configured, and its adapter
parses, with nothing else touched (the "one venue, one place" rule, shown end to end)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import producers
from monitor.core import venues as core_venues
from monitor.core.config import ExchangeConfig, load
from monitor.core.errors import ConfigError
from monitor.core.schema import Liquidation, Side, Trade
from producers import registry

TEMPLATE = Path(producers.__file__).parent / "_template"


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``producers/_template`` copied as the package ``producers.acme`` (on a temporary path)."""
    pkg = tmp_path / "acme"
    pkg.mkdir()
    for src in TEMPLATE.glob("*.py"):
        text = src.read_text().replace("producers._template", "producers.acme")
        (pkg / src.name).write_text(
            text.replace('EXCHANGE: Final = "template"', 'EXCHANGE: Final = "acme"')
        )
    monkeypatch.setattr(producers, "__path__", [*producers.__path__, str(tmp_path)])
    saved = dict(core_venues._REGISTERED)
    try:
        yield "acme"
    finally:
        core_venues._REGISTERED.clear()
        core_venues._REGISTERED.update(saved)
        for name in [
            m for m in sys.modules if m == "producers.acme" or m.startswith("producers.acme.")
        ]:
            del sys.modules[name]


def test_the_template_is_not_a_venue() -> None:
    assert "template" not in registry.VENUES and "_template" not in registry.VENUES


def test_a_copy_of_the_template_is_discovered_configured_and_parses(acme: str) -> None:
    found = registry._discover()
    assert set(found) == {*registry.EXCHANGES, acme}
    assert acme in core_venues.registered()
    cfg = load(environ={}).with_overrides(exchanges={acme: {"enabled": True}})
    assert cfg.ws_url(acme) == "wss://stream.example.com/ws"
    assert cfg.exchanges[acme].symbols == ("BTCUSDT", "ETHUSDT")
    assert acme in cfg.enabled_exchanges()
    adapter = found[acme].adapter(ExchangeConfig(symbols=("BTCUSDT",)))
    (plan,) = adapter.connections(cfg.exchanges[acme], cfg.ws_url(acme))
    assert [orjson.loads(f)["channel"] for f in plan.subscribe] == ["liquidations", "trades"]
    frame = {"channel": "liquidations",
             "data": [{"symbol": "BTCUSDT", "side": "sell", "price": "90000", "qty": "0.5",
                       "ts": 1_760_000_000_000}]}  # fmt: skip
    (liq,) = adapter.parse(orjson.dumps(frame), 1).events
    assert isinstance(liq, Liquidation)
    assert (liq.exchange, liq.symbol, liq.liquidated_side, liq.notional_usd) == (
        acme, "BTC-USDT-PERP", Side.LONG, 45000.0,
    )  # fmt: skip
    trades = {"channel": "trades", "data": [{"symbol": "ETHUSDT", "side": "buy", "price": "3000",
                                             "qty": "2", "ts": 1, "id": "t1"}]}  # fmt: skip
    (trade,) = adapter.parse(orjson.dumps(trades), 1).events
    assert isinstance(trade, Trade) and trade.notional_usd == 6000.0


def test_an_unknown_exchange_in_the_config_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"exchanges\.acme: unknown exchange"):
        load(environ={}).with_overrides(exchanges={"acme": {"enabled": True}})
