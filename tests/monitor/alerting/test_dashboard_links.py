"""Alerts link to the pair's Grafana drill-down around the alert (monitor.alerting.payloads), when
``alerts.grafana_url`` (or a sink's own ``grafana_url``) is set: every kind of sink, firing and
resolved, with the configuration read as a user writes it; without the key no body carries a link.
The dashboard's uid and variables are the generated ones (tests/grafana/test_dashboards.py)."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from monitor.alerting.payloads import (
    DRILLDOWN_SLUG,
    DRILLDOWN_UID,
    LINK_AFTER_S,
    LINK_BEFORE_S,
    LINK_TEXT,
    dashboard_url,
    payload,
)
from monitor.alerting.sinks import resolve_sink
from monitor.core.alertrecord import AlertEvent
from monitor.core.config import build, to_dict
from monitor.core.errors import ConfigError
from tests.monitor.alerting.helpers import ENV, T0, mk, sink_cfg

KINDS = ("json", "slack", "discord", "pagerduty", "alertmanager")
GRAFANA = "https://grafana.example.com/monitoring"
# the alert started at T0 - 120 s and resolves at T0 + 60 s: 30 min before its start, 15 min after
FIRING = mk(t=T0, started_t=T0 - 120)
RESOLVED = mk(status="resolved", t=T0 + 60, started_t=T0 - 120)


def bodies(alerts: dict[str, Any], alert: AlertEvent) -> dict[str, dict[str, Any]]:
    """Each kind's body of ``alert`` under the ``[alerts]`` table ``alerts`` (one sink per kind)."""
    tables = [sink_cfg(k, None if k == "pagerduty" else f"https://hooks.example.com/{k}")
              for k in KINDS]  # fmt: skip
    cfg = build({"alerts": {**alerts, "sinks": tables}})
    return {s.kind: payload(resolve_sink(s, ENV), alert) for s in cfg.alerts.sinks}


def link_in(kind: str, body: dict[str, Any]) -> str | None:
    """The dashboard link where each kind carries it (None if absent)."""
    if kind == "json":
        return body.get("dashboard_url")
    if kind == "slack":
        actions = [b for b in body["blocks"] if b["type"] == "actions"]
        if not actions:
            return None
        (button,) = actions[0]["elements"]
        assert button["type"] == "button" and button["text"]["text"] == LINK_TEXT
        return str(button["url"])
    if kind == "discord":
        return body["embeds"][0].get("url")
    if kind == "pagerduty":
        links = body.get("links")
        if links is None:
            return None
        (one,) = links
        assert one["text"] == LINK_TEXT
        return str(one["href"])
    (alert,) = body["alerts"]
    assert alert["annotations"] == body["commonAnnotations"]
    return alert["annotations"].get("dashboard_url")


def expected(alert: AlertEvent, base: str = GRAFANA) -> str:
    t_from = int((alert.started_t - LINK_BEFORE_S) * 1000)
    t_to = int((alert.t + LINK_AFTER_S) * 1000)
    return (f"{base}/d/{DRILLDOWN_UID}/{DRILLDOWN_SLUG}?var-exchange={alert.exchange}"
            f"&var-symbol={alert.symbol}&from={t_from}&to={t_to}")  # fmt: skip


@pytest.mark.parametrize("alert", [FIRING, RESOLVED], ids=["firing", "resolved"])
def test_every_sink_links_to_the_pair_around_the_alert(alert: AlertEvent) -> None:
    got = bodies({"grafana_url": GRAFANA + "/"}, alert)  # a trailing slash is dropped
    assert set(got) == set(KINDS)
    for kind, body in got.items():
        assert link_in(kind, body) == expected(alert), kind
    # the window, in words: 30 min before the start to 15 min after the transition
    q = parse_qs(urlsplit(expected(alert)).query)
    assert int(q["from"][0]) == (T0 - 120 - 1800) * 1000
    assert int(q["to"][0]) == (alert.t + 900) * 1000


def test_without_a_grafana_url_no_body_has_a_link() -> None:
    with_link = bodies({"grafana_url": GRAFANA}, FIRING)
    for alerts in ({}, {"grafana_url": ""}):
        plain = bodies(alerts, FIRING)
        for kind, body in plain.items():
            assert link_in(kind, body) is None, kind
            # the only difference a link makes is the link itself
            assert "grafana" not in str(body), kind
        assert plain["json"] == {k: v for k, v in with_link["json"].items() if k != "dashboard_url"}
        assert plain["discord"]["embeds"][0] == {
            k: v for k, v in with_link["discord"]["embeds"][0].items() if k != "url"
        }
        assert plain["slack"]["blocks"] == with_link["slack"]["blocks"][:-1]


def test_a_sink_can_link_to_its_own_grafana() -> None:
    own = "https://ops-grafana.example.com"
    tables = [sink_cfg("slack", "https://hooks.example.com/a", name="desk", grafana_url=own),
              sink_cfg("discord", "https://hooks.example.com/b", name="chat")]  # fmt: skip
    cfg = build({"alerts": {"grafana_url": GRAFANA, "sinks": tables}})
    desk, chat = cfg.alerts.sinks
    assert (desk.grafana_url, chat.grafana_url) == (own, GRAFANA)
    assert link_in("slack", payload(resolve_sink(desk, ENV), FIRING)) == expected(FIRING, own)
    # written back, the inherited URL stays in [alerts] only, the sink's own in its table
    d = to_dict(cfg)["alerts"]
    assert d["grafana_url"] == GRAFANA
    assert [s.get("grafana_url") for s in d["sinks"]] == [own, None]
    assert build({"alerts": d}).alerts == cfg.alerts
    # changing [alerts].grafana_url after a round trip reaches the sinks that inherit it
    moved = build({"alerts": {**d, "grafana_url": "https://new.example.com"}})
    assert [s.grafana_url for s in moved.alerts.sinks] == [own, "https://new.example.com"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("grafana.example.com", "http:// or https://"),
        ("ftp://grafana.example.com", "http:// or https://"),
        ("https://", "http:// or https://"),
        ("https://grafana.example.com/?orgId=1", "no query, fragment or credentials"),
        ("https://grafana.example.com/#x", "no query, fragment or credentials"),
        ("https://admin:pw@grafana.example.com", "no query, fragment or credentials"),
        ("https://grafana.example.com:99999", "not a URL"),
        (42, "a non-empty string"),
        ("   ", "a non-empty string"),
    ],
)
def test_a_bad_grafana_url_is_refused_naming_the_key(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"alerts\.grafana_url.*{message}"):
        build({"alerts": {"grafana_url": value}})
    table = sink_cfg("slack", "https://hooks.example.com/a", grafana_url=value)
    with pytest.raises(ConfigError, match=rf"alerts\.sinks\[0\]\.grafana_url.*{message}"):
        build({"alerts": {"sinks": [table]}})


def test_credentials_are_not_echoed_in_the_refusal() -> None:
    with pytest.raises(ConfigError) as info:
        build({"alerts": {"grafana_url": "https://admin:hunter2@grafana.example.com"}})
    assert "hunter2" not in str(info.value)


def test_the_link_leaves_the_time_out_when_the_alert_has_none() -> None:
    url = dashboard_url(mk(t=math.nan, started_t=math.nan), GRAFANA)
    assert (
        url
        == f"{GRAFANA}/d/{DRILLDOWN_UID}/{DRILLDOWN_SLUG}?var-exchange=bybit&var-symbol=BTC-USDT-PERP"
    )
    assert dashboard_url(FIRING, None) is None and dashboard_url(FIRING, "") is None
    # symbols are query-encoded
    odd = dashboard_url(mk(symbol="BTC/USD&X"), GRAFANA)
    assert odd is not None and "var-symbol=BTC%2FUSD%26X" in odd
