"""Slow, obvious references for the models consumers/models/microstructure.py runs: one object per
pair, events in arrival order, every value recomputed from the full history (sums over samples,
slots, buckets, returns) instead of the kernels' recursions and closed forms. The documented rules
for late events are reproduced literally."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

Nan = math.nan


def imbalance(long: float, short: float) -> float:
    return (long - short) / (long + short) if long + short > 0 else Nan


def liq_share(liq_by_side: list[float], traded: float) -> float:
    return sum(liq_by_side) / traded if traded > 0 else Nan


def _closed_rate(events: list[tuple[float, float]], tau: float, at: float) -> float:
    """sum_i (q_i/tau) exp(-(at - t_i)/tau)."""
    return sum((q / tau) * math.exp(-(at - t) / tau) for t, q in events)


# ---- baseline of the 60 s liquidation rate: every grid sample taken one by one -------------------


@dataclass
class BaselineRef:
    sample_s: float
    horizon_s: float
    tau_s: float
    warmup_s: float
    events: list[tuple[float, float]] = field(default_factory=list)
    t_max: float = -math.inf
    k_s: int | None = None  # last grid index sampled (the clock starts at the first event)
    w: float = 0.0
    m1: float = 0.0
    m2: float = 0.0
    n: int = 0

    def start(self, t: float) -> None:
        if self.k_s is None:
            self.k_s = math.floor(t / self.sample_s)

    def _sample(self, k_to: int, acc: list[float]) -> int:
        """Take the samples (k_s, k_to] into acc = [w, m1, m2]; returns how many."""
        assert self.k_s is not None
        beta = math.exp(-self.sample_s / self.tau_s)
        for j in range(self.k_s + 1, k_to + 1):
            x = _closed_rate(self.events, self.horizon_s, j * self.sample_s)
            acc[0] = beta * acc[0] + (1 - beta)
            acc[1] = beta * acc[1] + (1 - beta) * x
            acc[2] = beta * acc[2] + (1 - beta) * x * x
        return max(0, k_to - self.k_s)

    def liquidation(self, t: float, q: float) -> None:
        self.start(t)
        assert self.k_s is not None
        if t >= self.t_max:  # in order: grid times up to t are sampled before t is added
            k = math.floor(t / self.sample_s)
            acc = [self.w, self.m1, self.m2]
            self.n += self._sample(k, acc)
            self.w, self.m1, self.m2 = acc
            self.k_s = max(self.k_s, k)
            self.t_max = t
        self.events.append((t, q))

    def at(self, now: float) -> tuple[float, float, float, float]:
        """(rate, mean, sd, z) at now."""
        x = _closed_rate(self.events, self.horizon_s, max(now, self.t_max))
        if self.k_s is None:
            return x, Nan, Nan, Nan
        acc = [self.w, self.m1, self.m2]
        n = self.n + self._sample(math.floor(now / self.sample_s), acc)
        if n == 0:
            return x, Nan, Nan, Nan
        w, m1, m2 = acc
        mean = m1 / w
        var = m2 / w - mean**2
        sd = math.sqrt(var) if var > 0 else 0.0
        z = (x - mean) / sd if var > 0 and n * self.sample_s >= self.warmup_s else Nan
        return x, mean, sd, z

    def moments(self, now: float) -> tuple[float, float, float]:
        acc = [self.w, self.m1, self.m2]
        if self.k_s is not None:
            self._sample(math.floor(now / self.sample_s), acc)
        return acc[0], acc[1], acc[2]


# ---- saturation: the set of occupied slots ------------------------------------------------------

WINDOW = 62


@dataclass
class SaturationRef:
    slot_s: float
    tau_s: float
    occupied: set[int] = field(default_factory=set)
    k_last: int | None = None
    k_first: int | None = None
    late: int = 0

    def start(self, t: float) -> None:
        if self.k_first is None:
            self.k_first = math.floor(t / self.slot_s)

    def liquidation(self, t: float) -> None:
        k = math.floor(t / self.slot_s)
        self.start(t)
        assert self.k_first is not None
        if self.k_last is None or k >= self.k_last:
            self.occupied.add(k)
            self.k_last = k
            self.k_first = min(self.k_first, k)
        elif self.k_last - k < WINDOW:
            self.occupied.add(k)
            self.k_first = min(self.k_first, k)
        else:
            self.late += 1

    def at(self, now: float) -> float:
        if self.k_first is None:
            return Nan
        k_now = math.floor(now / self.slot_s)
        top = k_now - 1 if self.k_last is None else max(self.k_last, k_now - 1)
        n = top - self.k_first + 1
        if n < math.ceil(self.tau_s / self.slot_s):
            return Nan
        beta = math.exp(-self.slot_s / self.tau_s)
        num = sum(beta ** (top - k) for k in self.occupied)
        den = sum(beta ** (top - k) for k in range(self.k_first, top + 1))
        return min(1.0, num / den)


# ---- Kyle's lambda: the list of bucket observations, weighted two-pass regression ----------------


@dataclass
class KyleRef:
    bucket_s: float
    tau_s: float
    min_buckets: int
    obs: list[tuple[int, float, float, float]] = field(default_factory=list)  # (bucket, r, S, V)
    k_open: int | None = None
    l0: float | None = None
    l1: float = 0.0
    t1: float = -math.inf
    s: float = 0.0
    v: float = 0.0
    late: int = 0

    def trade(self, t: float, side: int, q: float, px: float) -> None:
        k = math.floor(t / self.bucket_s)
        sg = math.sqrt(q) if side == 0 else -math.sqrt(q)
        if self.k_open is None or k > self.k_open:
            if self.k_open is not None:
                if self.l0 is not None and self.v >= 1e-6:
                    self.obs.append((self.k_open, self.l1 - self.l0, self.s, self.v))
                self.l0 = self.l1
            self.k_open, self.l1, self.t1, self.s, self.v = k, math.log(px), t, sg, q
        elif k == self.k_open:
            self.s += sg
            self.v += q
            if t >= self.t1:
                self.l1, self.t1 = math.log(px), t
        else:
            self.late += 1

    def at(self, now: float) -> tuple[float, float, float, int]:
        """(lambda, amihud, scale sqrt(E[r^2]/Var S) for tolerances, observations)."""
        obs = list(self.obs)
        k_open, l0 = self.k_open, self.l0
        closes = k_open is not None and math.floor(now / self.bucket_s) > k_open  # at the read-out
        if k_open is not None and closes and l0 is not None and self.v >= 1e-6:
            obs.append((k_open, self.l1 - l0, self.s, self.v))
        n = len(obs)
        if n < self.min_buckets:
            return Nan, Nan, Nan, n
        last = obs[-1][0]
        w = [math.exp(-(last - b) * self.bucket_s / self.tau_s) for b, *_ in obs]
        sw = sum(w)
        mx = sum(wi * o[2] for wi, o in zip(w, obs, strict=True)) / sw
        my = sum(wi * o[1] for wi, o in zip(w, obs, strict=True)) / sw
        vxx = sum(wi * (o[2] - mx) ** 2 for wi, o in zip(w, obs, strict=True)) / sw
        vyy = sum(wi * (o[1] - my) ** 2 for wi, o in zip(w, obs, strict=True)) / sw
        cxy = sum(wi * (o[2] - mx) * (o[1] - my) for wi, o in zip(w, obs, strict=True)) / sw
        amihud = sum(wi * abs(o[1]) / o[3] for wi, o in zip(w, obs, strict=True)) / sw
        lam = cxy / vxx if vxx > 1e-10 * (vxx + mx * mx) else Nan
        scale = math.sqrt((vyy + my * my) / vxx) if vxx > 0 else math.inf
        return lam, amihud, scale, n


# ---- VPIN: every bucket kept, filled one at a time -----------------------------------------------


@dataclass
class VpinRef:
    n: int
    size_usd: float  # 0 = auto
    span_s: float
    warmup_s: float
    buckets: list[tuple[float, float]] = field(default_factory=list)  # closed (|buy-sell|, size)
    open: list[float] | None = None  # [size, buy, sell, fill]
    events: list[tuple[float, float]] = field(default_factory=list)
    t_max: float = -math.inf
    t0: float = math.inf

    def auto_size(self) -> float:
        age = self.t_max - self.t0
        if not (age >= self.warmup_s and age > 0):
            return 0.0
        rate = _closed_rate(self.events, self.span_s, self.t_max)
        per_span = rate / (1 - math.exp(-age / self.span_s)) * self.span_s
        return max(per_span / self.n, 1.0)

    def next_size(self) -> float:
        return max(self.size_usd, 1.0) if self.size_usd > 0 else self.auto_size()

    def trade(self, t: float, side: int, q: float) -> None:
        self.events.append((t, q))
        self.t_max = max(self.t_max, t)
        self.t0 = min(self.t0, t)
        v = q
        while v > 0:
            if self.open is None:
                size = self.next_size()
                if not size > 0:
                    return
                self.open = [size, 0.0, 0.0, 0.0]
            b = self.open
            room = b[0] - b[3]
            take = min(v, room)
            b[1 if side == 0 else 2] += take
            if v >= room:
                self.buckets.append((abs(b[1] - b[2]), b[0]))
                self.open = None
            else:
                b[3] += v
            v -= take

    def vpin(self) -> float:
        if len(self.buckets) < self.n:
            return Nan
        last = self.buckets[-self.n :]
        return sum(i for i, _ in last) / sum(s for _, s in last)


# ---- bipower and realized variance: the list of returns -----------------------------------------


@dataclass
class BipowerRef:
    interval_s: float
    tau_s: float
    min_returns: int
    rets: list[tuple[float, float]] = field(default_factory=list)  # (stamp = interval end, r)
    k_open: int | None = None
    l0: float | None = None
    l1: float = 0.0
    t1: float = -math.inf
    late: int = 0

    def trade(self, t: float, px: float) -> None:
        k = math.floor(t / self.interval_s)
        if self.k_open is None or k > self.k_open:
            if self.k_open is not None:
                if self.l0 is not None:
                    self.rets.append(((self.k_open + 1) * self.interval_s, self.l1 - self.l0))
                self.l0 = self.l1
            self.k_open, self.l1, self.t1 = k, math.log(px), t
        elif k == self.k_open:
            if t >= self.t1:
                self.l1, self.t1 = math.log(px), t
        else:
            self.late += 1

    def at(self, now: float) -> tuple[float, float, float, int]:
        """(BV, RV, jump share, returns) at now."""
        rets = list(self.rets)
        k_open = self.k_open
        if (
            k_open is not None
            and self.l0 is not None
            and math.floor(now / self.interval_s) > k_open
        ):
            rets.append(((k_open + 1) * self.interval_s, self.l1 - self.l0))
        if not rets:
            return Nan, Nan, Nan, 0
        at = max(now, rets[-1][0])
        w = [math.exp(-(at - te) / self.tau_s) / self.tau_s for te, _ in rets]
        rv = sum(wi * r * r for wi, (_, r) in zip(w, rets, strict=True))
        bv = sum(
            w[i] * (math.pi / 2) * abs(rets[i][1]) * abs(rets[i - 1][1])
            for i in range(1, len(rets))
        )
        jump = max(0.0, 1 - bv / rv) if len(rets) >= self.min_returns and rv > 0 else Nan
        return bv, rv, jump, len(rets)


# ---- drawdown: the log gap to the high/low relaxes, a trade pushes it -----------------------------


@dataclass
class DrawdownRef:
    tau_s: float
    x: float | None = None  # last log price
    t: float = -math.inf
    gap_hi: float = 0.0  # ln H - ln P >= 0
    gap_lo: float = 0.0  # ln P - ln L >= 0
    late: int = 0

    def trade(self, t: float, px: float) -> None:
        x = math.log(px)
        if self.x is None:
            self.x, self.t = x, t
            return
        if t < self.t:
            self.late += 1
            return
        f = math.exp(-(t - self.t) / self.tau_s)
        move = x - self.x
        self.gap_hi = max(0.0, self.gap_hi * f - move)
        self.gap_lo = max(0.0, self.gap_lo * f + move)
        self.x, self.t = x, t

    def at(self, now: float) -> tuple[float, float]:
        if self.x is None:
            return Nan, Nan
        f = math.exp(-(now - self.t) / self.tau_s) if now > self.t else 1.0
        return 1 - math.exp(-self.gap_hi * f), 1 - math.exp(-self.gap_lo * f)
