"""The cascade-monitor Grafana dashboards as code (grafana-foundation-sdk, Grafana 11.6 schema).

``DASHBOARDS``: file name (without ``.json``) -> the function that builds it. ``render()`` gives
each dashboard's JSON text; ``deploy/grafana/generate.py`` writes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from grafana_foundation_sdk.builders import dashboard as db

from . import alerts, overview, pair, pipeline
from .common import finalize

DASHBOARDS: Final[dict[str, Callable[[], db.Dashboard]]] = {
    "cascade-overview": overview.build,
    "cascade-pair": pair.build,
    "cascade-pipeline": pipeline.build,
    "cascade-alerts": alerts.build,
}


def render() -> dict[str, str]:
    """File name (``cascade-overview.json``, ...) -> the dashboard's JSON text."""
    return {f"{name}.json": finalize(build()) for name, build in DASHBOARDS.items()}
