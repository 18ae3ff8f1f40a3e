"""The reading of a receiver's answer and the waits (monitor.alerting.http_policy): Retry-After in
seconds and as an HTTP-date, Discord's retry_after in a 429's body, which statuses are retried, and
the exponential backoff with its jitter. The courier following them: test_courier.py."""

from __future__ import annotations

from email.utils import formatdate

from monitor.alerting.http_policy import backoff_s, judge, parse_retry_after


def test_parse_retry_after_seconds_and_http_dates() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now) == 30.0
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-3", now) is None


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
