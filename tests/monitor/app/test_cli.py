"""The command line as a user runs it: subprocesses, an isolated broker port and state directory."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.app.broker import port_open
from producers.registry import EXCHANGES
from tests.conftest import free_port

CLI = [sys.executable, "-m", "monitor.app.cli"]


@pytest.fixture
def isolated_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a CLI run with its own embedded broker port and data directory."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_MONITOR")} | {
        "CASCADE_MONITOR__BROKER__PORT": str(port),
        "CASCADE_MONITOR__BROKER__DATA_DIR": str(tmp_path / "broker"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    yield env
    # whatever a test started, stop it
    subprocess.run([*CLI, "broker", "down"], env=env, capture_output=True, check=False)


def run(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize("args", [[], ["demo"], ["produce"], ["consume"], ["broker"], ["simulate"]])
def test_help_everywhere(args: list[str], isolated_env: dict[str, str]) -> None:
    res = run([*args, "--help"], isolated_env)
    assert res.returncode == 0, res.stderr
    assert "usage: cascade-monitor" in res.stdout


def test_simulate_serves_every_venue(isolated_env: dict[str, str]) -> None:
    res = run(["simulate", "--duration", "1", "--speed", "4"], isolated_env)
    assert res.returncode == 0, res.stderr
    served = re.findall(r"^(\w+): ws://127\.0\.0\.1:\d+", res.stdout, re.MULTILINE)
    assert served == list(EXCHANGES)
    assert "__REST_URL=http://127.0.0.1:" in res.stdout and "sent {" in res.stdout
    one = run(["simulate", "--duration", "1", "--speed", "4", "--venue", "okx"], isolated_env)
    assert re.findall(r"^(\w+): ws://", one.stdout, re.MULTILINE) == ["okx"]


def test_bad_config_is_a_clear_error(tmp_path: Path, isolated_env: dict[str, str]) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[kafka]\npartitions = -2\n")
    res = run(["broker", "status", "--config", str(cfg)], isolated_env)
    assert res.returncode == 2
    assert res.stderr.strip() == "cascade-monitor: kafka.partitions = -2: must be > 0"
    env = isolated_env | {"CASCADE_MONITOR__EXCHANGES__BYBIT__STALE_AFTER_S": "soon"}
    res = run(["consume", "--exchange", "bybit"], env)
    assert res.returncode == 2
    assert "exchanges.bybit.stale_after_s: expected a number, got 'soon'" in res.stderr


def test_produce_without_a_broker_says_how_to_start_one(isolated_env: dict[str, str]) -> None:
    res = run(["produce", "--exchange", "binance"], isolated_env)
    assert res.returncode == 2
    assert "cascade-monitor broker up" in res.stderr


def test_broker_up_status_down(isolated_env: dict[str, str]) -> None:
    port = int(isolated_env["CASCADE_MONITOR__BROKER__PORT"])
    assert run(["broker", "status"], isolated_env).returncode == 3
    up = run(["broker", "up"], isolated_env)
    assert up.returncode == 0, up.stderr
    assert f"started on 127.0.0.1:{port}" in up.stdout
    assert port_open("127.0.0.1", port)
    st = run(["broker", "status"], isolated_env)
    assert st.returncode == 0 and "running" in st.stdout and "janitor pid" in st.stdout
    assert "already running" in run(["broker", "up"], isolated_env).stdout
    down = run(["broker", "down"], isolated_env)
    assert down.returncode == 0, down.stderr
    assert not port_open("127.0.0.1", port)


def _rates(url: str) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    out: dict[tuple[str, str], float] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name == "cascade_liquidation_rate_usd_per_second":
            for s in fam.samples:
                if s.labels["side"] == "long" and s.labels["window"] == "60s":
                    out[(s.labels["exchange"], s.labels["symbol"])] = s.value
    return out


async def test_demo_end_to_end(isolated_env: dict[str, str]) -> None:
    """The README's main job, shortened: rates show up on /metrics and in the table, the
    reconciliation is exact, the crash's alerts reach the demo's receiver signed and verified,
    and the demo stops the broker it started."""
    metrics_port = free_port()
    broker_port = int(isolated_env["CASCADE_MONITOR__BROKER__PORT"])
    # The scenario's minute at speed 2: its crash spans ~22 s of event time (payload times are the
    # simulator's schedule), so the surge rules' 5 s holds confirm critical with seconds to spare.
    # At speed 4 the crash spanned ~11 s and critical came only at the very end of the data.
    proc = await asyncio.create_subprocess_exec(
        *CLI, "demo", "--duration", "30", "--speed", "2", "--metrics-port", str(metrics_port),
        env=isolated_env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    printed: dict[tuple[str, str], float] = {}  # latest long 60 s rate in the live table
    live: dict[tuple[str, str], float] = {}  # /metrics, scraped while the demo runs
    wanted = [(x, s) for x in ("binance", "bybit") for s in ("BTC-USDT-PERP", "ETH-USDT-PERP")]
    try:
        async with asyncio.timeout(120):
            while line := (await proc.stdout.readline()).decode():
                lines.append(line)
                cols = line.split()
                if len(cols) == 10 and cols[0] in ("binance", "bybit"):
                    printed[(cols[0], cols[1])] = float(cols[4].replace(",", ""))
                if not live and all(printed.get(k, 0.0) > 0 for k in wanted):
                    live = await asyncio.to_thread(
                        _rates, f"http://127.0.0.1:{metrics_port}/metrics"
                    )
            rc = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    out = "".join(lines)
    tail = out[-4000:]  # a failure shows the end of the demo's output
    assert rc == 0, tail
    assert live, f"the live table never showed long liquidation rates for all of {wanted}"
    for key in wanted:
        assert live[key] > 0, (key, live)
    final = out.split("\nfinal\n", 1)[1]
    table_rows = [ln.split() for ln in final.splitlines() if ln.startswith(("binance ", "bybit "))]
    # the scenario's three pairs on both venues, and Bybit's inverse BTC and ETH perpetuals (the
    # simulator puts every 4th of their liquidations there; liquidations only: no trades, no mark)
    assert sorted((r[0], r[1]) for r in table_rows) == sorted(
        [(x, f"{a}-USDT-PERP") for x in ("binance", "bybit") for a in ("BTC", "ETH", "SOL")]
        + [("bybit", "BTC-USD-PERP"), ("bybit", "ETH-USD-PERP")]
    )
    for row in table_rows:
        assert float(row[4].replace(",", "")) > 0, row  # long 60 s rate
        assert row[9] != "-" and 0.0 <= float(row[9]) <= 1.0, row  # the cascade score
    assert "largest per-pair difference $0.00" in out
    alerts = [ln for ln in lines if ln.startswith("ALERT firing")]
    assert any(ln.startswith("ALERT firing   critical:") for ln in alerts), tail  # default rules
    assert all("signature verified" in ln for ln in alerts)
    m = re.search(
        r"alerts: (\d+) transitions sent .*, (\d+) received and verified .*\((\d+) rej", out
    )
    assert m is not None and int(m[1]) == int(m[2]) == len(alerts) and m[3] == "0", tail
    assert "embedded, started" in out
    assert not port_open("127.0.0.1", broker_port), "demo left its broker running"
