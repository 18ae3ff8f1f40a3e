from __future__ import annotations

from pathlib import Path

import pytest

from monitor.core.config import load
from monitor.core.errors import ConfigError
from producers.binance.endpoints import DEFAULT_WS_URL


def test_defaults_are_valid_and_point_at_real_venues() -> None:
    cfg = load(environ={})
    assert cfg.uses_embedded_broker
    assert cfg.bootstrap_servers == "127.0.0.1:29092"
    assert cfg.ws_url("binance") == DEFAULT_WS_URL == "wss://fstream.binance.com/market"
    assert cfg.ws_url("bybit") == "wss://stream.bybit.com/v5/public/linear"
    assert cfg.topic("bybit") == "cascade.events.bybit"
    assert cfg.group_id("binance") == "cascade-risk.binance"
    assert cfg.enabled_exchanges() == ["binance", "bybit"]


def test_file_then_environment_override(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text(
        '[kafka]\nbootstrap_servers = "k1:9092"\npartitions = 12\n'
        '[exchanges.bybit]\nsymbols = ["BTCUSDT"]\n'
    )
    cfg = load(
        f,
        environ={
            "CASCADE_MONITOR__KAFKA__PARTITIONS": "3",
            "CASCADE_MONITOR__EXCHANGES__BINANCE__ENABLED": "false",
            "CASCADE_MONITOR__KAFKA__CLIENT_ID": "desk-7",
        },
    )
    assert cfg.bootstrap_servers == "k1:9092" and not cfg.uses_embedded_broker
    assert cfg.kafka.partitions == 3
    assert cfg.kafka.client_id == "desk-7"
    assert cfg.exchanges["bybit"].symbols == ("BTCUSDT",)
    assert cfg.exchanges["bybit"].stale_after_s == 30.0  # untouched keys keep their defaults
    assert cfg.enabled_exchanges() == ["bybit"]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[kafka]\npartitions = 0\n", r"kafka.partitions = 0: must be > 0"),
        ("[kafka]\npartitions = '4'\n", r"kafka.partitions: expected an integer"),
        ("[kafka]\nlinger = 5\n", r"\[kafka\] unknown key\(s\): linger"),
        ("[kafak]\n", r"unknown section\(s\): kafak"),
        ("[exchanges.ftx]\n", r"exchanges.ftx: unknown exchange"),
        ("[exchanges.binance]\nws_url = 'http://x'\n", r"must be ws:// or wss://"),
        ("[exchanges.binance]\nsymbols = ['BTC USDT']\n", r"bad symbol"),
        ("[consumer]\nvol_lambda = 1.5\n", r"must be in \(0, 1\)"),
        ("[metrics]\nport = 70000\n", r"must be a TCP port"),
        ("[kafka]\ntopic_prefix = 'a b'\n", r"topic_prefix"),
        ("[exchanges.bybit]\nbackoff_max_s = 0.1\n", r"backoff_max_s must be >="),
        ("[kafka\n", r"config file"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load(f, environ={})


def test_missing_file_and_bad_env_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "nope.toml", environ={})
    with pytest.raises(ConfigError, match="SECTION__KEY"):
        load(environ={"CASCADE_MONITOR__KAFKA": "x"})


def test_with_overrides_validates() -> None:
    cfg = load(environ={})
    assert cfg.with_overrides(kafka={"partitions": 2}).kafka.partitions == 2
    with pytest.raises(ConfigError):
        cfg.with_overrides(kafka={"partitions": -1})


def test_config_is_frozen() -> None:
    cfg = load(environ={})
    with pytest.raises(AttributeError):
        cfg.kafka.partitions = 9  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.exchanges["binance"] = cfg.exchanges["bybit"]  # type: ignore[index]
