"""The Hawkes model's online part (docs/risk-models.md §2): per event, the excitation sum and the ring
buffer of recent events; between refits, the intensity ``lambda(now)``. Pure (numpy + numba).

Online state per pair: ``s_exc = sum_i g_i*exp(-beta_cur*(t_last - t_i))`` over the events seen
(``t_last`` the latest event time, ``beta_cur`` the last fitted beta), so ``lambda(now) = mu +
alpha*s_exc*exp(-beta*(now - t_last))``. An event at ``t >= t_last`` does ``s_exc =
s_exc*exp(-beta*(t - t_last)) + g`` and moves ``t_last``; an out-of-order event (``t < t_last``)
adds ``g*exp(-beta*(t_last - t))`` without moving ``t_last`` (exact for the sum, order-free). Each
refit recomputes ``s_exc`` with the new beta from the buffered events (older, evicted events are
then forgotten).

Ring buffer per pair: the newest ``capacity`` events (time, g), kept sorted by time (a late event is
inserted in place, shifting the later ones: O(number of later events)). When full, the oldest event
by time is evicted (or the arriving one, if it is the oldest); ``t_evicted`` remembers the latest
evicted time and the fitted window then starts there, so a full buffer shrinks the window to what
it holds (``window_s`` in the read-out is the length actually fitted) instead of biasing mu down.

Input screening: a row with a pair id outside the state, a non-finite time, or a non-finite or
negative notional is counted (``n_rejected`` per pair; the kernel returns the total) and ignored.
"""

from __future__ import annotations

import math

import numpy as np

from consumers.models.jit import F64, I32, I64, njit


@njit
def hawkes_update(
    pair_id: I32,
    t: F64,
    mark: F64,  # liquidation notional, USD
    mark_ref: float,  # params.mark_ref_usd
    beta_cur: F64,  # [pairs]
    t_obs_start: F64,  # [pairs], +inf before the first event
    t_last: F64,  # [pairs], -inf before the first event
    s_exc: F64,  # [pairs]
    buf_t: F64,  # [pairs, capacity]
    buf_g: F64,  # [pairs, capacity]
    buf_start: I64,  # [pairs], slot of the oldest buffered event
    buf_len: I64,  # [pairs]
    t_evicted: F64,  # [pairs], latest evicted time, -inf if none
    n_events: I64,  # [pairs] accepted events
    n_rejected: I64,  # [pairs]
    n_evicted: I64,  # [pairs]
    n_late: I64,  # [pairs] events older than the pair's latest at arrival
) -> int:
    """Apply events in arrival order; returns the number of rows rejected by screening."""
    n_pairs, cap = buf_t.shape[0], buf_t.shape[1]
    bad = 0
    for i in range(pair_id.shape[0]):
        p = pair_id[i]
        if p < 0 or p >= n_pairs:
            bad += 1
            continue
        ti, m = t[i], mark[i]
        if not (math.isfinite(ti) and math.isfinite(m) and m >= 0.0):
            n_rejected[p] += 1
            bad += 1
            continue
        gi = math.log1p(m / mark_ref) if mark_ref > 0.0 else 1.0
        tl = t_last[p]
        if ti >= tl:  # first event: tl = -inf, exp(-inf) = 0 and s_exc is 0
            s_exc[p] = s_exc[p] * math.exp(-beta_cur[p] * (ti - tl)) + gi
            t_last[p] = ti
        else:
            s_exc[p] += gi * math.exp(-beta_cur[p] * (tl - ti))
            n_late[p] += 1
        t_obs_start[p] = min(t_obs_start[p], ti)
        n_events[p] += 1
        # ring buffer, sorted by time
        st, cnt = buf_start[p], buf_len[p]
        if cnt == cap:
            oldest = buf_t[p, st]
            n_evicted[p] += 1
            if ti <= oldest:  # the arriving event is the oldest: it is the one dropped
                t_evicted[p] = max(t_evicted[p], ti)
                continue
            t_evicted[p] = max(t_evicted[p], oldest)
            st = (st + 1) % cap
            cnt -= 1
        j = cnt
        pos = (st + j) % cap
        while j > 0:
            prev = (st + j - 1) % cap
            if buf_t[p, prev] <= ti:
                break
            buf_t[p, pos] = buf_t[p, prev]
            buf_g[p, pos] = buf_g[p, prev]
            pos = prev
            j -= 1
        buf_t[p, pos] = ti
        buf_g[p, pos] = gi
        buf_start[p] = st
        buf_len[p] = cnt + 1
    return bad


@njit
def hawkes_intensity_at(
    now: float, rows: I64, fit_mu: F64, fit_alpha: F64, fit_beta: F64, s_exc: F64,
    t_last: F64, out: F64,
) -> None:  # fmt: skip
    """``lambda(now)`` (events/s) of pair ``rows[i]`` into ``out[i]``, with its fitted parameters;
    NaN without a valid fit. A pair whose last event is later than ``now`` reads its value at
    that event."""
    for i in range(rows.shape[0]):
        p = rows[i]
        mu, a = fit_mu[p], fit_alpha[p]
        if not math.isfinite(mu):
            out[i] = np.nan
        elif a == 0.0:
            out[i] = mu
        else:
            dt = now - t_last[p]
            decay = math.exp(-fit_beta[p] * dt) if dt > 0.0 else 1.0
            out[i] = mu + a * s_exc[p] * decay
