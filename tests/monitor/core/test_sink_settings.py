"""Sink settings (monitor.core.sink_settings): ``[[alerts.sinks]]`` and ``[alerts.dispatcher]``
errors name the key (and never echo a refused secret), the settings round-trip and take
environment overrides."""

from __future__ import annotations

import tomllib

import pytest

from monitor.core.config import build, load, to_dict
from monitor.core.errors import ConfigError

TOKEN_PATH = "/services/T000/B000/XXXXtokenXXXXXXXXXXXXXX"  # a webhook path with a token


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('name = "a"\nkind = "json"\nurl = "http://x/"\nsecret = "abc"', "alerts.sinks[0].secret"),
        ('name = "a"\nkind = "pagerduty"\nrouting_key = "abc"', "alerts.sinks[0].routing_key"),
        ('name = "a"\nkind = "smtp"\nurl = "http://x/"', "alerts.sinks[0].kind"),
        ('name = "a b"\nkind = "slack"\nurl = "http://x/"', "alerts.sinks[0].name"),
        ('name = "a"\nkind = "slack"', "alerts.sinks[0].url"),
        ('name = "a"\nkind = "slack"\nurl = "ftp://x/"', "alerts.sinks[0].url"),
        ('name = "a"\nkind = "slack"\nurl = "http://x/"\nurl_env = "U"', "alerts.sinks[0].url_env"),
        ('name = "a"\nkind = "json"\nurl = "http://x/"', "alerts.sinks[0].secret_env"),
        ('name = "a"\nkind = "slack"\nurl = "http://x/"\nsecret_env = "K"',
         "alerts.sinks[0].secret_env"),
        ('name = "a"\nkind = "slack"\nurl = "http://x/"\ntimeout_s = 0', "alerts.sinks[0].timeout_s"),
        ('name = "a"\nkind = "slack"\nurl = "http://x/"\nconcurrency = 1.5',
         "alerts.sinks[0].concurrency"),
        ('name = "a"\nkind = "slack"\nurl = "http://x/"\nmin_severity = "info"',
         "alerts.sinks[0].min_severity"),
        ('name = "a"\nkind = "slack"\nurl = "http://x/"\njitter = 2', "alerts.sinks[0].jitter"),
        ('name = "a"\nkind = "slack"\nurl = "http://x/"\nbackoff_max_s = 0.1',
         "alerts.sinks[0].backoff_max_s"),
        ('name = "a"\nkind = "slack"\nurl = "http://x/"\nreceiver = "r"', "['receiver']"),
        ('name = "a"\nkind = "slack"\nurl = "http://x/"\nretries = 3', "['retries']"),
    ],
)  # fmt: skip
def test_bad_sink_config_names_the_key(table: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        build(tomllib.loads(f"[[alerts.sinks]]\n{table}\n"))
    assert key in str(err.value)
    assert "abc" not in str(err.value)


def test_bad_dispatcher_config_and_duplicate_sink_names() -> None:
    with pytest.raises(ConfigError, match=r"alerts\.dispatcher\.max_pending"):
        build({"alerts": {"dispatcher": {"max_pending": 0}}})
    with pytest.raises(ConfigError, match=r"\['nope'\]"):
        build({"alerts": {"dispatcher": {"nope": 1}}})
    dup = {"name": "a", "kind": "slack", "url": "http://x/"}
    with pytest.raises(ConfigError, match=r"alerts\.sinks: duplicate name\(s\) \['a'\]"):
        build({"alerts": {"sinks": [dup, dup]}})


def test_config_round_trip_and_env_override() -> None:
    cfg = build(tomllib.loads(f"""
[[alerts.sinks]]
name = "slack"
kind = "slack"
url_env = "SLACK_URL"
min_severity = "critical"

[[alerts.sinks]]
name = "am"
kind = "alertmanager"
url = "http://127.0.0.1:9093{TOKEN_PATH}"
external_url = "http://grafana.local"

[alerts.dispatcher]
max_pending = 50
"""))  # fmt: skip
    again = cfg.with_overrides(alerts={"dispatcher": {"drain_timeout_s": 0.5}})
    assert again.alerts.sinks == cfg.alerts.sinks
    assert (again.alerts.dispatcher.max_pending, again.alerts.dispatcher.drain_timeout_s) == (
        50, 0.5)  # fmt: skip
    env = {"CASCADE_MONITOR__ALERTS__DISPATCHER__COMMIT_INTERVAL_S": "0.25"}
    assert load(environ=env).alerts.dispatcher.commit_interval_s == 0.25
    assert to_dict(cfg)["alerts"]["sinks"][0] == {
        "name": "slack", "kind": "slack", "url_env": "SLACK_URL", "timeout_s": 10.0,
        "concurrency": 4, "min_severity": "critical", "max_attempts": 0, "retry_budget_s": 900.0,
        "backoff_initial_s": 1.0, "backoff_max_s": 60.0, "jitter": 0.5,
        "categories": ("risk", "health"), "heartbeat_s": 0.0,
    }  # fmt: skip
    assert TOKEN_PATH not in repr(cfg) and TOKEN_PATH not in str(cfg.alerts)
    assert "http://127.0.0.1:9093/***" in repr(cfg.alerts.sinks[1])
