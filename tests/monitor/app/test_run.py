"""``cascade-monitor run`` on the simulator with all ten venues: every component ready, every
venue's liquidations counted to the cent by its consumer, a killed component restarted by the
supervisor, a clean stop on SIGTERM that leaves no process behind."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.simulator.scenario import crash_scenario
from monitor.simulator.server import ExchangeSimulator
from producers.registry import EXCHANGES, VENUES
from tests.brokers import KafkaBroker
from tests.conftest import free_port

CLI = [sys.executable, "-m", "monitor.app.cli"]
pytestmark = pytest.mark.slow


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


async def until(
    what: str, check: Callable[[], bool], timeout_s: float, explain: Callable[[], str] | None = None
) -> None:
    """Poll another process's HTTP endpoint until ``check()`` holds: that process exposes no
    event this one could await. ``explain()`` adds its state to the failure."""
    try:
        async with asyncio.timeout(timeout_s):
            while not await asyncio.to_thread(check):  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.25)
    except TimeoutError:
        why = f": {explain()}" if explain is not None else ""
        raise AssertionError(f"not {what} after {timeout_s} s{why}") from None


def readiness(urls: dict[str, str]) -> str:
    """Every component's /readyz status and body (what is not ready, and why)."""
    return "; ".join(f"{name} {get(url + '/readyz')}" for name, url in sorted(urls.items()))


async def pgrep(pattern: str) -> list[str]:
    """The pids of processes whose command line matches ``pattern``."""
    proc = await asyncio.create_subprocess_exec(
        "pgrep", "-f", pattern, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return out.decode().split()


async def stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM (the supervisor stops its components), SIGKILL only if it does not exit."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 60)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def stop_cleanly(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM: the supervisor stops every component and exits 0 within a minute."""
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(60):
        assert await proc.wait() == 0


def scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    status, text = get(url)
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    if status != 200:
        return out
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name][tuple(sorted(s.labels.items()))] = s.value
    return out


def liquidation_usd(url: str) -> dict[tuple[str, str], float]:
    got: dict[tuple[str, str], float] = defaultdict(float)
    for labels, v in scrape(url).get("cascade_liquidation_notional_usd_total", {}).items():
        d = dict(labels)
        if v:
            got[(d["symbol"], d["side"])] += v
    return got


async def kill_and_await_ready(
    supervisor: str, urls: dict[str, str], component: str, config: Path
) -> None:
    """SIGKILL ``component`` (e.g. "consume binance"); the supervisor restarts it once and
    reports ready again."""
    kind, exchange = component.split()
    pids = await pgrep(f"{kind} --exchange {exchange} .*{config}")
    assert len(pids) == 1, pids
    os.kill(int(pids[0]), signal.SIGKILL)

    def restarted() -> bool:
        m = scrape(supervisor + "/metrics")["cascade_component_restarts_total"]
        return m.get((("component", component),), 0.0) == 1.0

    await until("restarted", restarted, 60)
    ready = lambda: get(supervisor + "/readyz")[0] == 200  # noqa: E731
    await until("ready again", ready, 120, lambda: readiness(urls))


async def start_run(
    config: Path, env: dict[str, str], n_components: int
) -> tuple[asyncio.subprocess.Process, str, dict[str, str]]:
    """Start ``cascade-monitor run``; its process, the supervisor's URL and the components'
    metrics URLs by label (e.g. "consume binance"), read from the table it prints."""
    proc = await asyncio.create_subprocess_exec(
        *CLI, "run", "--config", str(config), "--metrics-port", "0",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    urls: dict[str, str] = {}
    supervisor = ""
    try:
        async with asyncio.timeout(60):
            while len(urls) < n_components:
                line = (await proc.stdout.readline()).decode()
                assert line, "run exited early"
                if m := re.match(r"supervisor: (http://\S+)/metrics", line):
                    supervisor = m[1]
                if m := re.match(r"\s+(\w+(?: \w+)?)\s+(http://\S+)/metrics", line):
                    urls[m[1]] = m[2]
    except BaseException:
        await stop(proc)
        raise
    return proc, supervisor, urls


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_MONITOR")} | {
        "CASCADE_MONITOR__BROKER__PORT": str(port),
        "CASCADE_MONITOR__BROKER__DATA_DIR": str(tmp_path / "broker"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    yield env
    subprocess.run([*CLI, "broker", "down"], env=env, capture_output=True, check=False)


async def test_run_supervises_all_ten_venues_on_the_simulator(
    env: dict[str, str], tmp_path: Path
) -> None:
    scenario = crash_scenario(duration_s=40.0, seed=4, venues=EXCHANGES)
    async with ExchangeSimulator(scenario, speed=4.0) as sim:
        lines = ["[consumer]", "warmup_s = 0", "[alerts]", "rules = []"]
        for x in EXCHANGES:
            symbols = ", ".join(f'"{s}"' for s in VENUES[x].defaults.symbols)
            lines += [f"[exchanges.{x}]", "enabled = true", f'ws_url = "{sim.url(x)}"',
                      f'rest_url = "{sim.rest_url(x)}"', f"symbols = [{symbols}]",
                      "poll_interval_s = 0.5"]  # fmt: skip
        config = tmp_path / "run.toml"
        config.write_text("\n".join(lines) + "\n")
        proc, supervisor, urls = await start_run(config, env, 2 * len(EXCHANGES) + 1)
        try:
            assert set(urls) == {f"{k} {x}" for x in EXCHANGES for k in ("produce", "consume")} | {
                "aggregate"
            }
            await until(
                "ready", lambda: get(supervisor + "/readyz")[0] == 200, 180, lambda: readiness(urls)
            )
            assert get(supervisor + "/healthz")[0] == 200
            await sim.wait_liquidations_subscribed(timeout_s=60)
            sim.play()
            await sim.wait_finished()
            sent: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
            for (x, symbol, side), usd in sim.ledger.liquidation_notional_by_pair().items():
                if usd:
                    sent[x][(symbol, side)] = usd

            def counted(x: str) -> bool:
                got = liquidation_usd(urls[f"consume {x}"] + "/metrics")
                return set(got) == set(sent[x]) and all(
                    abs(got[k] - v) <= 0.005 for k, v in sent[x].items()
                )

            for x in EXCHANGES:
                if x == "hyperliquid":  # no public liquidations: trades only
                    continue
                await until(f"{x} counted", lambda x=x: counted(x), 60)

            # a component killed: the supervisor restarts it. A producer here: the embedded
            # broker never expires a killed group member, so a restarted consumer would wait for
            # partitions forever (docs/operations.md §2); that case runs on Apache Kafka below
            await kill_and_await_ready(supervisor, urls, "produce binance", config)
            await stop_cleanly(proc)
        finally:
            await stop(proc)
    assert await pgrep(str(config)) == [], "components left running"


async def test_run_restarts_a_killed_consumer_on_apache_kafka(
    apache_kafka: KafkaBroker, env: dict[str, str], tmp_path: Path, unique: str
) -> None:
    """A consumer SIGKILLed under ``run`` on Apache Kafka: the broker expires the dead member
    (session timeout), the supervisor's restarted consumer is given the partitions, warms up and
    is ready again; everything sent is counted once."""
    scenario = crash_scenario(duration_s=20.0, seed=5, venues=("binance",))
    async with ExchangeSimulator(scenario, speed=4.0) as sim:
        symbols = ", ".join(f'"{s}"' for s in VENUES["binance"].defaults.symbols)
        config = tmp_path / "run.toml"
        config.write_text("\n".join([
            "[kafka]", f'bootstrap_servers = "{apache_kafka.bootstrap}"',
            f'topic_prefix = "run{unique}"', "[consumer]", f'group_prefix = "run{unique}"',
            "[alerts]", "rules = []", "[exchanges.binance]", "enabled = true",
            f'ws_url = "{sim.url("binance")}"', f'rest_url = "{sim.rest_url("binance")}"',
            f"symbols = [{symbols}]",
            *(f"[exchanges.{x}]\nenabled = false" for x in EXCHANGES if x != "binance"),
        ]) + "\n")  # fmt: skip
        proc, supervisor, urls = await start_run(config, env, 3)
        try:
            await until(
                "ready", lambda: get(supervisor + "/readyz")[0] == 200, 180, lambda: readiness(urls)
            )
            await kill_and_await_ready(supervisor, urls, "consume binance", config)
            await sim.wait_liquidations_subscribed(timeout_s=60)
            sim.play()
            await sim.wait_finished()
            sent = {k[1:]: v for k, v in sim.ledger.liquidation_notional_by_pair().items() if v}

            def counted() -> bool:
                got = liquidation_usd(urls["consume binance"] + "/metrics")
                return set(got) == set(sent) and all(
                    abs(got[k] - v) <= 0.005 for k, v in sent.items()
                )

            await until("counted", counted, 60)
            await stop_cleanly(proc)
        finally:
            await stop(proc)
    assert await pgrep(str(config)) == [], "components left running"
