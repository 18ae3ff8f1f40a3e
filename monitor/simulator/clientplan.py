"""What a client of a venue opens and sends: its connections and their subscribe requests. Pure.

Each venue module builds its plan (``VenueSpec.client_plan``) in the venue's documented request
forms, with the helpers below; ``reflexive.plans`` calls it for recordings, and a test checks that
the project's producers send the same requests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class Connection:
    """One socket a client opens: its name (as the producer names it), URL and the requests it
    sends once connected, in order."""

    name: str
    url: str
    subscribe: tuple[str, ...] = ()


ClientPlan = Callable[[str, Sequence[str], float], list[Connection]]
"""``plan(base_url, venue_symbols, now_s)``: the connections for the venue's symbols (the venue's
spelling, distinct, in order), under ``base_url`` (``ws://host:port`` + ``VenueSpec.base_path``);
``now_s`` is the epoch second for requests that carry a clock (Gate)."""


def compact_json(doc: Any) -> str:
    """``doc`` as compact JSON text, as a client sends it."""
    return orjson.dumps(doc).decode()


def packed(args: list[dict[str, str]], max_bytes: int) -> list[list[dict[str, str]]]:
    """Args packed greedily into lists whose JSON stays within ``max_bytes`` (one alone if
    longer)."""
    batches: list[list[dict[str, str]]] = []
    size = 0
    for arg in args:
        n = len(orjson.dumps(arg))
        if batches and size + 1 + n <= max_bytes:
            batches[-1].append(arg)
            size += 1 + n
        else:
            batches.append([arg])
            size = 2 + n
    return batches


def chunks(items: list[Any], n: int) -> list[list[Any]]:
    """``items`` in consecutive lists of at most ``n``."""
    return [items[i : i + n] for i in range(0, len(items), n)]
