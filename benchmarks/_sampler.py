"""A sampling CPU profiler for the benchmarks (standard library only): where a process's CPU goes.

``setitimer(ITIMER_PROF)`` raises ``SIGPROF`` every ``interval_s`` of the process's CPU time; the
handler (run by the interpreter in the main thread, between bytecodes) records the interrupted
Python stack. Time spent waiting (``epoll``, sleeps) uses no CPU and is not sampled. A sample is
put in the bucket of its innermost frame that belongs to a known part of the path (``BUCKETS``,
checked from the innermost frame outwards); time in C code (``orjson.loads``, zlib, socket calls)
shows as the Python line that called it, so a sample whose innermost line calls ``_loads(`` counts
as JSON decoding. Unlike ``cProfile`` it adds no cost to each call, so code made of many small
calls is not inflated; the price is sampling noise (about ``1/sqrt(samples)``) and the handler's
own time (a few percent at 1 kHz).
"""

from __future__ import annotations

import linecache
import signal
import time
from collections import Counter
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, Final

Stack = tuple[tuple[str, str, int], ...]  # (file, function, line), innermost first

# (label, test on a frame's file and function), innermost matching frame wins.
BUCKETS: Final[tuple[tuple[str, Callable[[str, str], bool]], ...]] = (
    ("rows: column appends + duplicate filter", lambda f, n: f.endswith("producers/columns.py")),
    ("parser logic (dispatch, checks, float())", lambda f, n: "/producers/" in f
     and (f.endswith("parser.py") or f.endswith("events.py") or f.endswith("base.py"))),
    ("session: counts, metrics", lambda f, n: f.endswith("producers/session.py")
     or "/prometheus_client/" in f),
    ("websockets: frames in, UTF-8", lambda f, n: "/websockets/" in f),
    ("publisher + record encode", lambda f, n: f.endswith("producers/publisher.py")
     or f.endswith("monitor/core/codec.py")),
    ("aiokafka: produce requests, acks", lambda f, n: "/aiokafka/" in f),
    ("event loop, socket reads/writes", lambda f, n: "/asyncio/" in f
     or f.endswith("selectors.py")),
)  # fmt: skip
DECODE: Final = "JSON decode (orjson.loads)"


class Sampler:
    """``with Sampler() as s: ...`` (in the main thread) then ``s.shares()``: (bucket, share)."""

    def __init__(self, interval_s: float = 0.001) -> None:
        self.interval_s = interval_s
        self.stacks: Counter[Stack] = Counter()
        self._previous: Any = None

    def __enter__(self) -> Sampler:
        self._previous = signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, self.interval_s, self.interval_s)
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0.0, 0.0)
        signal.signal(signal.SIGPROF, self._previous)

    def _sample(self, signum: int, frame: FrameType | None) -> None:
        stack = []
        while frame is not None:
            code = frame.f_code
            stack.append((code.co_filename, code.co_name, frame.f_lineno or 0))
            frame = frame.f_back
        if stack:
            self.stacks[tuple(stack)] += 1

    @property
    def samples(self) -> int:
        return sum(self.stacks.values())

    def bucket(self, stack: Stack) -> str:
        file, func, line = stack[0]
        if func == "json_object" or "_loads(" in linecache.getline(file, line):
            return DECODE
        for f, n, _ in stack:
            for label, test in BUCKETS:
                if test(f, n):
                    return label
        return "other (interpreter, benchmark driver)"

    def shares(self, within: str | None = None) -> list[tuple[str, float]]:
        """Bucket shares of all samples, or of those whose stack passes through a function
        named ``within`` (e.g. the event loop's ``_run_once``: the producer's work)."""
        counts: Counter[str] = Counter()
        for stack, n in self.stacks.items():
            if within is None or any(func == within for _, func, _ in stack):
                counts[self.bucket(stack)] += n
        total = sum(counts.values()) or 1
        return [(label, n / total) for label, n in counts.most_common()]


def timed_share(fn: Callable[[], object]) -> tuple[float, Sampler]:
    """Run ``fn`` under a sampler; (seconds, sampler)."""
    with Sampler() as s:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0, s
