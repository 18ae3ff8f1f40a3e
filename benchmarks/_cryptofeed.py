"""cryptofeed in its own virtualenv, timed on the same frames as ours (benchmarks/bench_vs_cryptofeed.py).

cryptofeed is not a project dependency: it runs in ``benchmarks/.cfvenv`` (created and
pip-installed on first use, the version pinned below), as a subprocess reading the frames from
temporary files. Per case the child preloads cryptofeed's symbol table (no REST), calls
``<Exchange>.message_handler(frame, conn, timestamp)`` as its connection handler would (its own
JSON decode, ``yapic.json.loads(..., parse_float=Decimal)``, dispatch, the normalizer and one
awaited callback per event), one pass per request with ``gc.collect()`` before it, pinned to
``cpu``, so that its passes interleave with ours; it also times the JSON decode alone. Times are the
process's CPU time (``time.process_time``), as on our side: on a shared machine the wall clock
also counts the time other processes held the core.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

CRYPTOFEED_VERSION: Final = "2.4.1"  # latest on PyPI; installs on CPython 3.11
CFVENV: Final = Path(__file__).resolve().parent / ".cfvenv"

CF_CHILD: Final = r"""
import asyncio, gc, json, os, sys, time, types
from decimal import Decimal
from importlib.metadata import version

from yapic import json as yjson
from cryptofeed.defines import BINANCE_FUTURES, BYBIT, LIQUIDATIONS, OKX, PERPETUAL, TRADES
from cryptofeed.exchanges import OKX as OkxFeed, BinanceFutures, Bybit
from cryptofeed.symbols import Symbols

FEEDS = {
    "binance": (BinanceFutures, BINANCE_FUTURES, [TRADES, LIQUIDATIONS], "wss://fstream.binance.com/stream"),
    "bybit": (Bybit, BYBIT, [TRADES, LIQUIDATIONS], "wss://stream.bybit.com/v5/public/linear"),
    "okx": (OkxFeed, OKX, [TRADES], "wss://ws.okx.com:8443/ws/v5/public"),
}


def main():
    spec = json.load(open(sys.argv[1]))
    if spec["cpu"] is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {spec["cpu"]})
    count = [0]

    async def on_event(obj, receipt_timestamp):
        count[0] += 1

    cases = {}
    for case in spec["cases"]:
        cls, exchange_id, channels, address = FEEDS[case["venue"]]
        symbols = case["symbols"]  # normalized -> venue spelling, as cryptofeed's REST load builds
        Symbols.set(exchange_id, symbols, {"tick_size": {}, "instrument_type": {s: PERPETUAL for s in symbols}})
        feed = cls(symbols=list(symbols), channels=channels,
                   callbacks={TRADES: on_event, LIQUIDATIONS: on_event})
        conn = types.SimpleNamespace(address=address, uuid=exchange_id)
        with open(case["file"], "rb") as fh:
            cases[case["key"]] = (feed.message_handler, conn, fh.read().split(b"\n"))
    loop = asyncio.new_event_loop()
    loads = yjson.loads

    async def one_pass(handler, conn, frames):
        t0 = time.process_time()
        for m in frames:
            await handler(m, conn, 1.0)
        return time.process_time() - t0

    def reply(doc):
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()

    reply({"version": version("cryptofeed"), "python": sys.version.split()[0]})
    for line in sys.stdin:
        command, _, key = line.strip().partition(" ")
        if command == "quit":
            return
        handler, conn, frames = cases[key]
        gc.collect()
        if command == "json":
            t0 = time.process_time()
            for m in frames:
                loads(m, parse_float=Decimal)
            reply({"s": time.process_time() - t0})
            continue
        count[0] = 0
        s = loop.run_until_complete(one_pass(handler, conn, frames))
        reply({"s": s, "events": count[0]})


main()
"""


def cf_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def installed_cryptofeed(py: Path) -> str | None:
    if not py.exists():
        return None
    r = subprocess.run(
        [str(py), "-c", "import importlib.metadata as m, cryptofeed; print(m.version('cryptofeed'))"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return r.stdout.strip() if r.returncode == 0 else None


def ensure_cfvenv(venv: Path) -> Path:
    """The venv's interpreter, with cryptofeed==CRYPTOFEED_VERSION (created/installed if needed)."""
    py = cf_python(venv)
    if installed_cryptofeed(py) == CRYPTOFEED_VERSION:
        return py
    print(f"setting up {venv} with cryptofeed=={CRYPTOFEED_VERSION} from PyPI ...", flush=True)
    if not py.exists():
        r = subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False
        )
        if r.returncode != 0:
            raise SystemExit(f"error: could not create the venv {venv}:\n{r.stderr.strip()}")
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "--disable-pip-version-check", "--timeout", "30",
         "--retries", "2", f"cryptofeed=={CRYPTOFEED_VERSION}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-8:])
        raise SystemExit(
            f"error: pip could not install cryptofeed=={CRYPTOFEED_VERSION} into {venv}: is PyPI "
            f"reachable (proxy, PIP_INDEX_URL)? Nothing was benchmarked.\n--- pip said:\n{tail}"
        )
    if installed_cryptofeed(py) != CRYPTOFEED_VERSION:
        raise SystemExit(f"error: cryptofeed=={CRYPTOFEED_VERSION} still not importable in {venv}")
    return py


class Cryptofeed:
    """The cryptofeed child, kept running so that its passes interleave with ours: ``run(key)``
    times one pass of a case (``(cpu seconds, events)``), ``json(key)`` its JSON decode alone.

    ``cases``: (key, venue, frames, cryptofeed symbol -> venue symbol). Use as a context manager."""

    def __init__(
        self, py: Path, cases: list[tuple[str, str, list[bytes], dict[str, str]]],
        cpu: int | None,
    ) -> None:  # fmt: skip
        self._tmp = tempfile.TemporaryDirectory(prefix="bench_cf_")
        tmp = Path(self._tmp.name)
        specs = []
        for key, venue, frames, symbols in cases:
            path = tmp / f"{key}.frames"
            path.write_bytes(b"\n".join(frames))  # compact JSON: no newline inside a frame
            specs.append({"key": key, "venue": venue, "file": str(path), "symbols": symbols})
        (tmp / "spec.json").write_text(json.dumps({"cases": specs, "cpu": cpu}))
        (tmp / "cf_child.py").write_text(CF_CHILD)
        self._proc = subprocess.Popen(
            [str(py), str(tmp / "cf_child.py"), str(tmp / "spec.json")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            err = self._proc.stderr.read() if self._proc.stderr is not None else ""
            raise SystemExit(f"error: the cryptofeed child failed:\n{err.strip()[-3000:]}")
        doc: dict[str, Any] = json.loads(line)
        return doc

    def _ask(self, command: str) -> dict[str, Any]:
        assert self._proc.stdin is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        return self._read()

    def run(self, key: str) -> tuple[float, int]:
        doc = self._ask(f"pass {key}")
        return float(doc["s"]), int(doc["events"])

    def json(self, key: str) -> float:
        return float(self._ask(f"json {key}")["s"])

    def __enter__(self) -> Cryptofeed:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc.poll() is None and self._proc.stdin is not None:
            self._proc.stdin.write("quit\n")
            self._proc.stdin.close()
        try:
            self._proc.wait(30)
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
            self._tmp.cleanup()
