"""One sink's courier (monitor.alerting.courier) against a real local receiver: retries and their
waits (Retry-After in seconds and as an HTTP-date, Discord's retry_after), final 4xx, 5xx/408 and
timeouts retried, the attempt cap and the time budget, a receiver that comes up late, the
per-sink concurrency limit, and secrets kept out of logs and error texts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from tests.consumers.consumer_refs import scrape, value
from tests.monitor.alerting.helpers import (
    KEY,
    ROUTING,
    TOKEN_PATH,
    Hit,
    Receiver,
    Responder,
    courier,
    hold_until,
    mk,
    sink_cfg,
)


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
