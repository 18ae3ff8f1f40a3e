"""Time to alert of each pipeline failure of issue 17, on both paths: the project's own health
rules delivering to a signed JSON sink, and a real Prometheus evaluating the shipped rules
(deploy/prometheus/rules/cascade.yml, scraped every second). Each failure runs on a fresh rig
(tests/health/rig.py: a simulated Binance at 10x speed, producer, consumer, dispatcher, an
embedded broker of this run's own) with the rig's short health windows; the failures and their
documented bounds are those of tests/health/scenarios.py (docs/operations.md §9.1).

Prints one row per failure: seconds from the injection to each path's alert (the documented
bound in brackets), and from the end of the failure to each path's resolution. Needs Debian's
``prometheus``. About 2 minutes a failure (learning, then the shipped rules' 60 s minimum silence).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import free_port
from tests.health.rig import start_broker, stop_broker
from tests.health.scenarios import NAMES, Result, run, run_on_embedded_broker

BROKER = "broker_stopped"  # on an embedded broker of its own, stopped and started again


def _row(res: Result) -> str:
    def rb(x: float | None) -> str:
        return f"{x:.1f}" if x is not None else "-"

    (fe, fp), (be, bp), (re, rp) = res.fired, res.bound, res.resolved
    return (f"| {res.failure} | {res.engine_rule} | {fe:.1f} ({be:.1f}) | {res.prometheus_alert} "
            f"| {fp:.1f} ({bp:.1f}) | {re:.1f} ({rb(res.resolve_bound[0])}) "
            f"| {rp:.1f} ({rb(res.resolve_bound[1])}) |")  # fmt: skip


async def main(names: list[str]) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory() as d:
        data, port = Path(d) / "broker", free_port()
        bootstrap = await start_broker(data, port)
        try:
            for name in names:
                tmp = Path(d) / name
                tmp.mkdir()
                unique = uuid.uuid4().hex[:10]
                if name == BROKER:
                    res = await run_on_embedded_broker(unique, tmp)
                else:
                    res = await run(name, bootstrap, unique, tmp)
                print(_row(res), flush=True)
                results.append(res)
        finally:
            await stop_broker(data)
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", choices=[*NAMES, BROKER], action="append",
                    help="run only these failures")  # fmt: skip
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print("| failure | engine rule | engine s (bound) | Prometheus alert | Prometheus s (bound) "
          "| engine resolved s (bound) | Prometheus resolved s (bound) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    asyncio.run(main(args.only or [*NAMES, BROKER]))
