"""Webhook sinks against real local HTTP receivers (aiohttp.web on 127.0.0.1): each kind's payload
field by field, the json signature checked by an independent HMAC, retries and their waits
(Retry-After in seconds and as an HTTP-date, Discord's retry_after), final 4xx, timeouts, the
per-sink concurrency limit, configuration errors, and secrets kept out of reprs and logs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import pickle
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.alerting.courier import SinkCourier, open_session
from monitor.alerting.sinks import Sink, backoff_s, judge, parse_retry_after, resolve_sink, verify
from monitor.core.alertrecord import AlertEvent, fingerprint
from monitor.core.config import build, load, to_dict
from monitor.core.errors import ConfigError
from monitor.core.metrics import DispatcherMetrics
from monitor.core.sink_settings import SinkConfig, sink_from_dict
from tests.consumers.consumer_refs import scrape, value

T0 = 1_700_000_100.0  # 2023-11-14T22:15:00Z
T0_ISO = "2023-11-14T22:15:00.000Z"
KEY = "s3cr3t-signing-key-0123456789"
ROUTING = "R0UT1NGKEY0123456789abcdef012345"
TOKEN_PATH = "/services/T000/B000/XXXXtokenXXXXXXXXXXXXXX"


# ---- a real local receiver -------------------------------------------------------------------


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    t: float  # monotonic arrival
    status: int | None = None  # what the receiver answered (None: never answered)

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


Responder = Callable[["Receiver", Hit], Awaitable[web.StreamResponse]]


async def ok(_: Receiver, __: Hit) -> web.StreamResponse:
    return web.Response(status=200, text="ok")


@dataclass
class Receiver:
    """An HTTP receiver on 127.0.0.1; ``respond`` decides each answer. Waits are event-driven."""

    respond: Responder = ok
    port: int = 0
    hits: list[Hit] = field(default_factory=list)
    active: int = 0  # requests being handled now
    max_active: int = 0
    _runner: web.AppRunner | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        await site.start()
        self.port = runner.addresses[0][1]
        self._runner = runner
        self.closing = asyncio.Event()
        return self

    async def stop(self) -> None:
        self.closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def touch(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, pred: Callable[[], bool], timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not pred():
                await self._changed.wait()

    def answered(self, path: str | None = None, status: int = 200) -> list[Hit]:
        return [h for h in self.hits if h.status == status and (path is None or h.path == path)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        hit = Hit(request.path, dict(request.headers), await request.read(), time.monotonic())
        self.hits.append(hit)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.touch()
        try:
            resp = await self.respond(self, hit)
            hit.status = resp.status
            return resp
        finally:
            self.active -= 1
            self.touch()


async def hold_until(ev: asyncio.Event, receiver: Receiver) -> None:
    """Block a request until ``ev`` or the receiver closing."""
    closing = asyncio.ensure_future(receiver.closing.wait())
    released = asyncio.ensure_future(ev.wait())
    await asyncio.wait([closing, released], return_when=asyncio.FIRST_COMPLETED)
    closing.cancel()
    released.cancel()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


def mk(
    symbol: str = "BTC-USDT-PERP", status: str = "firing", severity: str = "critical",
    t: float = T0, started_t: float = T0, rule: str = "cascade-risk", exchange: str = "bybit",
    value: float = 0.8734, received_ts: float = math.nan,
) -> AlertEvent:  # fmt: skip
    return AlertEvent(
        fingerprint=fingerprint(rule, exchange, symbol), rule=rule, status=status,
        severity=severity, exchange=exchange, symbol=symbol, metric="score", value=value, t=t,
        started_t=started_t, summary=f"{severity}: cascade risk {value:.2f} on {exchange} {symbol}",
        labels={"team": "risk"}, drivers=(("branching", 0.42), ("vpin", 0.3)),
        received_ts=received_ts,
    )  # fmt: skip


def sink_cfg(kind: str, url: str | None, name: str | None = None, **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name or kind, "kind": kind, **kw}
    if url is not None:
        d["url"] = url
    if kind in ("json", "pagerduty") and "secret_file" not in kw:
        d.setdefault("secret_env", "CASCADE_TEST_KEY")
    return d


ENV = {"CASCADE_TEST_KEY": KEY}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    s = open_session()
    yield s
    await s.close()


def courier(
    session: aiohttp.ClientSession, d: dict[str, Any], env: dict[str, str] | None = None,
    registry: CollectorRegistry | None = None,
) -> SinkCourier:  # fmt: skip
    sink = resolve_sink(sink_from_dict(d, "alerts.sinks[0]"), env or ENV)
    metrics = DispatcherMetrics(registry or CollectorRegistry())
    return SinkCourier(sink, session, metrics, uniform=lambda: 0.0)


# ---- payloads ---------------------------------------------------------------------------------


def event_id_ref(a: AlertEvent) -> str:
    raw = f"{a.fingerprint}\0{a.status}\0{a.severity}\0{a.started_t!r}".encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


async def test_json_payload_has_every_alert_field(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    c = courier(session, sink_cfg("json", receiver.url()))
    a = mk(received_ts=T0 + 0.25)
    got = await c.deliver(a)
    assert (got.ok, got.attempts, got.status) == (True, 1, 200)
    (hit,) = receiver.hits
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["X-Cascade-Event-Id"] == event_id_ref(a)
    assert hit.json == {
        "version": 1, "id": event_id_ref(a), "fingerprint": fingerprint("cascade-risk", "bybit",
        "BTC-USDT-PERP"), "rule": "cascade-risk", "status": "firing", "severity": "critical",
        "exchange": "bybit", "symbol": "BTC-USDT-PERP", "metric": "score", "value": 0.8734,
        "t": T0, "started_t": T0, "summary": "critical: cascade risk 0.87 on bybit BTC-USDT-PERP",
        "labels": {"team": "risk"}, "drivers": [["branching", 0.42], ["vpin", 0.3]],
        "received_ts": T0 + 0.25, "time": T0_ISO, "started": T0_ISO,
    }  # fmt: skip
    await c.deliver(mk())  # NaN (no receive time) travels as null
    assert receiver.hits[1].json["received_ts"] is None


async def test_slack_payload(receiver: Receiver, session: aiohttp.ClientSession) -> None:
    c = courier(session, sink_cfg("slack", receiver.url(TOKEN_PATH)))
    a = mk(symbol="BTC<&>-PERP")
    assert (await c.deliver(a)).ok
    body = receiver.hits[0].json
    assert receiver.hits[0].path == TOKEN_PATH
    assert "X-Cascade-Signature" not in receiver.hits[0].headers
    assert body["text"] == "[FIRING] critical: cascade risk 0.87 on bybit BTC<&>-PERP"
    header, section, context = body["blocks"]
    assert header == {"type": "header", "text": {
        "type": "plain_text", "text": "CRITICAL cascade-risk on bybit BTC<&>-PERP"}}  # fmt: skip
    assert section["type"] == "section"
    assert section["text"] == {"type": "mrkdwn",
                               "text": "critical: cascade risk 0.87 on bybit BTC&lt;&amp;&gt;-PERP"}  # fmt: skip
    assert section["fields"] == [
        {"type": "mrkdwn", "text": "*Exchange*\nbybit"},
        {"type": "mrkdwn", "text": "*Symbol*\nBTC&lt;&amp;&gt;-PERP"},
        {"type": "mrkdwn", "text": "*Severity*\ncritical"},
        {"type": "mrkdwn", "text": "*Value*\nscore = 0.8734"},
        {"type": "mrkdwn", "text": "*Drivers*\nbranching 0.42, vpin 0.30"},
        {"type": "mrkdwn", "text": f"*Started*\n{T0_ISO}"},
    ]
    assert context == {"type": "context", "elements": [{"type": "mrkdwn",
        "text": f"rule cascade-risk · fingerprint {a.fingerprint}"}]}  # fmt: skip
    assert (await c.deliver(mk(status="resolved", t=T0 + 60))).ok
    resolved = receiver.hits[1].json
    assert resolved["blocks"][0]["text"]["text"] == (
        "RESOLVED cascade-risk on bybit BTC-USDT-PERP (was critical)"
    )
    assert resolved["text"].startswith("[RESOLVED] ")


async def test_discord_payload(receiver: Receiver, session: aiohttp.ClientSession) -> None:
    c = courier(session, sink_cfg("discord", receiver.url("/api/webhooks/1/tok")))
    a = mk(severity="warning", value=0.65)
    assert (await c.deliver(a)).ok
    assert (await c.deliver(mk(status="resolved", severity="warning", t=T0 + 90))).ok
    assert (await c.deliver(mk())).ok
    first, resolved, critical = (h.json for h in receiver.hits)
    assert first["allowed_mentions"] == {"parse": []}
    (embed,) = first["embeds"]
    assert embed == {
        "title": "WARNING cascade-risk on bybit BTC-USDT-PERP",
        "description": "warning: cascade risk 0.65 on bybit BTC-USDT-PERP",
        "color": 0xF5A623,
        "fields": [
            {"name": "Exchange", "value": "bybit", "inline": True},
            {"name": "Symbol", "value": "BTC-USDT-PERP", "inline": True},
            {"name": "Severity", "value": "warning", "inline": True},
            {"name": "Value", "value": "score = 0.65", "inline": True},
            {"name": "Drivers", "value": "branching 0.42, vpin 0.30", "inline": True},
            {"name": "Started", "value": T0_ISO, "inline": True},
        ],
        "timestamp": T0_ISO,
        "footer": {"text": f"rule cascade-risk · fingerprint {a.fingerprint}"},
    }
    assert resolved["embeds"][0]["color"] == 0x2EB67D
    assert resolved["embeds"][0]["timestamp"] == "2023-11-14T22:16:30.000Z"
    assert critical["embeds"][0]["color"] == 0xD0021B


async def test_pagerduty_payload_trigger_and_resolve(
    receiver: Receiver, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    key_file = tmp_path / "routing"
    key_file.write_text(ROUTING + "\n")
    c = courier(session, sink_cfg("pagerduty", receiver.url("/v2/enqueue"),
                                  secret_file=str(key_file)))  # fmt: skip
    a = mk()
    assert (await c.deliver(a)).ok
    assert (await c.deliver(mk(status="resolved", t=T0 + 60))).ok
    trigger, resolve = (h.json for h in receiver.hits)
    assert trigger == {
        "routing_key": ROUTING, "event_action": "trigger", "dedup_key": a.fingerprint,
        "client": "cascade-monitor",
        "payload": {
            "summary": "critical: cascade risk 0.87 on bybit BTC-USDT-PERP",
            "source": "bybit:BTC-USDT-PERP", "severity": "critical", "timestamp": T0_ISO,
            "component": "BTC-USDT-PERP", "group": "bybit", "class": "score",
            "custom_details": {
                "rule": "cascade-risk", "metric": "score", "value": 0.8734,
                "drivers": {"branching": 0.42, "vpin": 0.3}, "labels": {"team": "risk"},
                "started": T0_ISO, "fingerprint": a.fingerprint, "event_id": event_id_ref(a),
            },
        },
    }  # fmt: skip
    assert resolve == {"routing_key": ROUTING, "event_action": "resolve",
                       "dedup_key": a.fingerprint}  # fmt: skip
    # the default endpoint is PagerDuty's; ``source`` overrides
    pd = sink_from_dict({"name": "pd", "kind": "pagerduty", "secret_env": "K", "source": "h"}, "x")
    assert (
        resolve_sink(pd, {"K": ROUTING}).url.reveal() == "https://events.pagerduty.com/v2/enqueue"
    )


async def test_alertmanager_webhook_v4(receiver: Receiver, session: aiohttp.ClientSession) -> None:
    c = courier(session, sink_cfg("alertmanager", receiver.url("/am"), name="am",
                                  receiver="ops", external_url="http://grafana.local"))  # fmt: skip
    a = mk()
    assert (await c.deliver(a)).ok
    assert (await c.deliver(mk(status="resolved", t=T0 + 60))).ok
    firing, resolved = (h.json for h in receiver.hits)
    labels = {"alertname": "cascade-risk", "severity": "critical", "exchange": "bybit",
              "symbol": "BTC-USDT-PERP", "metric": "score", "team": "risk"}  # fmt: skip
    annotations = {
        "summary": "critical: cascade risk 0.87 on bybit BTC-USDT-PERP",
        "description": "score = 0.8734; drivers: branching 0.42, vpin 0.30",
        "value": "0.8734",
        "drivers": "branching 0.42, vpin 0.30",
    }
    assert firing == {
        "version": "4",
        "groupKey": '{}:{alertname="cascade-risk", exchange="bybit", symbol="BTC-USDT-PERP"}',
        "truncatedAlerts": 0, "status": "firing", "receiver": "ops",
        "groupLabels": {"alertname": "cascade-risk", "exchange": "bybit",
                        "symbol": "BTC-USDT-PERP"},
        "commonLabels": labels, "commonAnnotations": annotations,
        "externalURL": "http://grafana.local",
        "alerts": [{"status": "firing", "labels": labels, "annotations": annotations,
                    "startsAt": T0_ISO, "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://grafana.local", "fingerprint": a.fingerprint}],
    }  # fmt: skip
    assert resolved["status"] == resolved["alerts"][0]["status"] == "resolved"
    assert resolved["alerts"][0]["startsAt"] == T0_ISO
    assert resolved["alerts"][0]["endsAt"] == "2023-11-14T22:16:00.000Z"
    assert resolved["groupKey"] == firing["groupKey"]


# ---- the json signature -----------------------------------------------------------------------


def hmac_sha256_ref(key: bytes, msg: bytes) -> str:
    """RFC 2104 from its definition (no ``hmac`` module): H((K^opad) || H((K^ipad) || m))."""
    block = 64
    k = hashlib.sha256(key).digest() if len(key) > block else key
    k = k.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in k) + msg).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in k) + inner).hexdigest()


def receiver_accepts(key: bytes, headers: dict[str, str], body: bytes, now: float) -> bool:
    """What a receiver does: signature over "<ts>.<body>", and a timestamp at most 300 s old."""
    ts = headers.get("X-Cascade-Timestamp", "")
    sig = headers.get("X-Cascade-Signature", "")
    if not ts.isdigit() or abs(now - int(ts)) > 300:
        return False
    expected = "sha256=" + hmac_sha256_ref(key, ts.encode() + b"." + body)
    return hmac.compare_digest(expected, sig)


async def test_json_signature_verifies_independently_and_replays_are_rejected(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    async def check(r: Receiver, hit: Hit) -> web.StreamResponse:
        good = receiver_accepts(KEY.encode(), hit.headers, hit.body, time.time())
        return web.Response(status=204 if good else 401)

    receiver.respond = check
    c = courier(session, sink_cfg("json", receiver.url()))
    got = await c.deliver(mk())
    assert (got.ok, got.status) == (True, 204)
    hit = receiver.hits[0]
    ts = hit.headers["X-Cascade-Timestamp"]
    assert abs(int(ts) - time.time()) <= 2
    ref = "sha256=" + hmac_sha256_ref(KEY.encode(), ts.encode() + b"." + hit.body)
    assert hit.headers["X-Cascade-Signature"] == ref
    assert verify(KEY.encode(), ts, hit.body, ref, time.time())  # the helper agrees

    async def post(headers: dict[str, str], body: bytes) -> int:
        async with session.post(receiver.url(), data=body, headers=headers) as resp:
            return resp.status

    # a replay: a request captured 10 minutes ago, correctly signed for its own timestamp
    old = str(int(time.time()) - 600)
    replay = {"X-Cascade-Timestamp": old,
              "X-Cascade-Signature": "sha256=" + hmac_sha256_ref(KEY.encode(),
                                                                 old.encode() + b"." + hit.body)}  # fmt: skip
    assert await post(replay, hit.body) == 401
    assert not verify(KEY.encode(), old, hit.body, replay["X-Cascade-Signature"], time.time())
    # tampered body, and the right body signed with another key
    signed = {k: v for k, v in hit.headers.items() if k.startswith("X-Cascade-")}
    assert await post(signed, hit.body.replace(b"critical", b"warning")) == 401
    forged = "sha256=" + hmac_sha256_ref(b"other", ts.encode() + b"." + hit.body)
    assert await post({**signed, "X-Cascade-Signature": forged}, hit.body) == 401
    assert await post(signed, hit.body) == 204  # the original, still fresh


# ---- retries ------------------------------------------------------------------------------------


def scripted(*answers: Callable[[], web.StreamResponse]) -> Responder:
    """Answer the n-th request with ``answers[n]``; 200 after the script."""

    async def respond(r: Receiver, hit: Hit) -> web.StreamResponse:
        n = len(r.hits) - 1
        return answers[n]() if n < len(answers) else web.Response(status=200)

    return respond


async def test_429_retry_after_seconds_and_http_date_are_honored(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    fast: dict[str, Any] = {"backoff_initial_s": 0.01, "backoff_max_s": 0.01}
    c = courier(session, sink_cfg("json", receiver.url(), **fast))
    receiver.respond = scripted(lambda: web.Response(status=429, headers={"Retry-After": "1"}))
    got = await c.deliver(mk())
    assert (got.ok, got.attempts) == (True, 2)
    gap = receiver.hits[1].t - receiver.hits[0].t
    assert 1.0 <= gap < 1.4, gap
    # an HTTP-date two seconds ahead (whole seconds: the wait is between 1 and 2 s)
    receiver.hits.clear()
    receiver.respond = scripted(lambda: web.Response(
        status=503, headers={"Retry-After": formatdate(time.time() + 2, usegmt=True)}))  # fmt: skip
    got = await c.deliver(mk(symbol="ETH-USDT-PERP"))
    assert (got.ok, got.attempts) == (True, 2)
    gap = receiver.hits[1].t - receiver.hits[0].t
    assert 0.95 <= gap < 2.4, gap
    # the parsing itself
    now = 1_700_000_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now) == 30.0
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-3", now) is None


async def test_discord_retry_after_in_the_json_body(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    c = courier(session, sink_cfg("discord", receiver.url(), backoff_initial_s=5.0,
                                  backoff_max_s=5.0))  # fmt: skip
    body = {"message": "You are being rate limited.", "retry_after": 0.6, "global": False}
    receiver.respond = scripted(lambda: web.json_response(body, status=429,
                                                          headers={"Retry-After": "1"}))  # fmt: skip
    got = await c.deliver(mk())
    assert (got.ok, got.attempts) == (True, 2)
    gap = receiver.hits[1].t - receiver.hits[0].t
    assert 0.6 <= gap < 0.95, gap  # the body's 0.6 s: not the header's 1 s, not the 5 s backoff


async def test_final_4xx_retried_5xx_408_timeouts_and_the_budget(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    fast: dict[str, Any] = {"backoff_initial_s": 0.01, "backoff_max_s": 0.02}
    registry = CollectorRegistry()
    c = courier(session, sink_cfg("json", receiver.url(), **fast), registry=registry)
    receiver.respond = scripted(lambda: web.Response(status=400, text="bad"))
    got = await c.deliver(mk())
    assert (got.ok, got.attempts, got.status, got.error) == (False, 1, 400, "HTTP 400")
    for final in (401, 403, 404, 410, 413, 302):
        receiver.hits.clear()
        receiver.respond = scripted(lambda s=final: web.Response(status=s, headers={  # type: ignore[misc]
            "Location": "http://127.0.0.1:9/elsewhere"}))  # fmt: skip
        got = await c.deliver(mk())
        assert (got.ok, got.attempts, got.status) == (False, 1, final)
    receiver.hits.clear()
    receiver.respond = scripted(lambda: web.Response(status=503), lambda: web.Response(status=408),
                                lambda: web.Response(status=500))  # fmt: skip
    got = await c.deliver(mk())
    assert (got.ok, got.attempts) == (True, 4)

    async def slow_once(r: Receiver, hit: Hit) -> web.StreamResponse:
        if len(r.hits) == 1:
            await hold_until(asyncio.Event(), r)  # never answered: the client times out
        return web.Response(status=200)

    receiver.hits.clear()
    receiver.respond = slow_once
    t = courier(session, sink_cfg("json", receiver.url(), timeout_s=0.2, **fast))
    got = await t.deliver(mk())
    assert (got.ok, got.attempts) == (True, 2)
    # attempts cap, then the time budget
    receiver.respond = scripted(*[lambda: web.Response(status=500)] * 100)
    receiver.hits.clear()
    capped = courier(session, sink_cfg("json", receiver.url(), max_attempts=3, **fast))
    got = await capped.deliver(mk())
    assert (got.ok, got.attempts, got.status) == (False, 3, 500)
    receiver.hits.clear()
    budget = courier(session, sink_cfg("json", receiver.url(), retry_budget_s=0.3,
                                       backoff_initial_s=0.1, backoff_max_s=0.1))  # fmt: skip
    got = await budget.deliver(mk())
    assert not got.ok and 2 <= got.attempts <= 4
    s = scrape(registry)
    assert value(s, "cascade_alert_deliveries_total", sink="json", outcome="ok") == 1.0
    assert value(s, "cascade_alert_deliveries_total", sink="json", outcome="dead_letter") == 7.0
    assert value(s, "cascade_alert_deliveries_total", sink="json", outcome="retry") == 3.0


async def test_connection_refused_is_retried_until_the_receiver_answers(
    session: aiohttp.ClientSession,
) -> None:
    r = await Receiver().start()
    port = r.port
    await r.stop()  # nobody listens there now
    c = courier(session, sink_cfg("json", f"http://127.0.0.1:{port}/hook",
                                  backoff_initial_s=0.05, backoff_max_s=0.05))  # fmt: skip
    delivery = asyncio.ensure_future(c.deliver(mk()))
    r2 = Receiver(port=port)
    await asyncio.sleep(0.3)  # a few refused attempts first (nothing to await: it is down)
    assert not delivery.done()
    await r2.start()
    try:
        got = await asyncio.wait_for(delivery, 5)
        assert got.ok and got.attempts >= 3 and len(r2.hits) == 1
    finally:
        await r2.stop()


def test_backoff_and_judge() -> None:
    assert [backoff_s(n, 0.5, 4.0, 0.0, 0.9) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]
    assert backoff_s(3, 0.5, 4.0, 0.5, 0.5) == 1.5  # 2 s less a quarter
    assert backoff_s(10_000, 0.5, 4.0, 0.0, 0.0) == 4.0
    v = judge(429, {"retry-after": "7"}, b"", 0.0)
    assert (v.ok, v.retriable, v.retry_after_s) == (False, True, 7.0)
    v = judge(429, {}, b'{"retry_after": 0.25}', 0.0)
    assert v.retry_after_s == 0.25
    v = judge(404, {"Retry-After": "7"}, b"", 0.0)
    assert (v.retriable, v.retry_after_s) == (False, None)
    assert judge(204, {}, b"", 0.0).ok


async def test_concurrency_limit_per_sink(
    receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    gates: list[asyncio.Event] = []

    async def held(r: Receiver, hit: Hit) -> web.StreamResponse:
        gate = asyncio.Event()
        gates.append(gate)
        r.touch()
        await hold_until(gate, r)
        return web.Response(status=200)

    registry = CollectorRegistry()
    c = courier(session, sink_cfg("json", receiver.url(), concurrency=2), registry=registry)
    receiver.respond = held
    jobs = asyncio.gather(*(c.deliver(mk(symbol=f"S{i}-USDT-PERP")) for i in range(6)))
    await receiver.wait_for(lambda: len(gates) == 2)
    s = scrape(registry)
    assert value(s, "cascade_alert_deliveries_in_flight", sink="json") == 2.0
    for i in range(6):  # let one out whenever as many as allowed are held
        n = min(2, 6 - i)
        await receiver.wait_for(lambda n=n: len(gates) == n and receiver.active == n)  # type: ignore[misc]
        gates.pop(0).set()
    results = await asyncio.wait_for(jobs, 10)
    assert all(r.ok for r in results) and len(receiver.hits) == 6
    assert receiver.max_active == 2
    assert value(scrape(registry), "cascade_alert_deliveries_in_flight", sink="json") == 0.0


# ---- configuration and secrets ----------------------------------------------------------------


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
    }  # fmt: skip
    assert TOKEN_PATH not in repr(cfg) and TOKEN_PATH not in str(cfg.alerts)
    assert "http://127.0.0.1:9093/***" in repr(cfg.alerts.sinks[1])


def test_secrets_read_from_env_or_file_never_shown(tmp_path: Path) -> None:
    url = f"https://hooks.slack.com{TOKEN_PATH}"
    f = tmp_path / "url"
    f.write_text(url + "\n")
    for cfg in (SinkConfig("s", "slack", url_env="SLACK_URL"),
                SinkConfig("s", "slack", url_file=str(f))):  # fmt: skip
        sink = resolve_sink(cfg, {"SLACK_URL": url})
        assert sink.url.reveal() == url
        for shown in (repr(sink), str(sink), f"{sink.url}", repr(cfg)):
            assert "XXXXtoken" not in shown and "services" not in shown
        assert "hooks.slack.com/***" in repr(sink)
    js = resolve_sink(SinkConfig("j", "json", url="http://x/", secret_env="K"), {"K": KEY})
    assert js.key is not None and js.key.reveal() == KEY
    assert KEY not in repr(js) and KEY not in f"{js.key}" and KEY not in str(js.key)
    with pytest.raises(ConfigError) as err:
        resolve_sink(SinkConfig("j", "json", url="http://x/", secret_env="MISSING"), {})
    assert "secret_env" in str(err.value) and "MISSING" in str(err.value)
    with pytest.raises(ConfigError, match=r"url_file"):
        resolve_sink(SinkConfig("s", "slack", url_file=str(tmp_path / "nope")), {})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match=r"secret_file: signing key is empty"):
        resolve_sink(SinkConfig("j", "json", url="http://x/", secret_file=str(empty)), {})


async def test_secrets_never_appear_in_logs(
    receiver: Receiver, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.respond = scripted(lambda: web.Response(status=500, text=f"echo {TOKEN_PATH}"),
                                lambda: web.Response(status=400))  # fmt: skip
    fast: dict[str, Any] = {"backoff_initial_s": 0.01, "backoff_max_s": 0.01}
    env = {"SLACK_URL": receiver.url(TOKEN_PATH), "CASCADE_TEST_KEY": KEY}
    slack = courier(session, {"name": "s", "kind": "slack", "url_env": "SLACK_URL", **fast}, env)
    assert not (await slack.deliver(mk())).ok  # 500 (logged), then 400 (logged, given up)
    signed = courier(session, sink_cfg("json", receiver.url(TOKEN_PATH), **fast), env)
    assert (await signed.deliver(mk())).ok
    r = await Receiver().start()
    port = r.port
    await r.stop()
    refused = courier(session, {"name": "d", "kind": "discord", "url_env": "DISCORD_URL",
                                "max_attempts": 2, **fast},
                      {"DISCORD_URL": f"http://127.0.0.1:{port}{TOKEN_PATH}?wait=true"})  # fmt: skip
    got = await refused.deliver(mk())
    assert not got.ok and "XXXXtoken" not in got.error
    text = caplog.text
    assert "gave up" in text and "retrying" in text  # the failures were logged...
    for secret in (KEY, "XXXXtoken", TOKEN_PATH, ROUTING):  # ...without any secret
        assert secret not in text
    for rec in caplog.records:
        assert "XXXXtoken" not in repr(rec.args) and KEY not in repr(rec.args)


def test_sink_objects_do_not_pickle_secrets() -> None:

    js: Sink = resolve_sink(SinkConfig("j", "json", url="http://x/", secret_env="K"), {"K": KEY})
    with pytest.raises(TypeError):
        pickle.dumps(js)
