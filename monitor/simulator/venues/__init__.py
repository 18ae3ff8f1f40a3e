"""The simulated venues, one pure module each, discovered: every module of this package that
defines ``SPEC`` (a ``monitor.simulator.wire.VenueSpec``) is a venue, named by ``SPEC.name``.

Adding a venue adds a module here (and the producer's folder); nothing else lists venues.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from monitor.simulator.wire import VenueSpec


def _discover() -> dict[str, VenueSpec]:
    specs: dict[str, VenueSpec] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, VenueSpec):
            if spec.name in specs:
                raise RuntimeError(f"two simulated venues named {spec.name!r}")
            specs[spec.name] = spec
    return specs


SPECS: Final[Mapping[str, VenueSpec]] = MappingProxyType(_discover())
