"""The json sink's signature (monitor.alerting.signing): checked by an HMAC written from RFC 2104's
definition, and the receiver's side: replays (an old timestamp), a tampered body and another key's
signature are refused, the original is taken."""

from __future__ import annotations

import hashlib
import hmac
import time

import aiohttp
from aiohttp import web

from monitor.alerting.signing import verify
from tests.monitor.alerting.helpers import KEY, Hit, Receiver, courier, mk, sink_cfg


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
